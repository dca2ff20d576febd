"""``show()``: a run's HTML report and Rerun recording inline in a Jupyter notebook.

The report goes into an ``<iframe srcdoc="...">`` holding the whole page (plotly.js, data and scripts
inlined), escaped for the attribute: it needs no server, no network and no widget, and it is saved with
the notebook, so an exported or reopened notebook still shows it (a reopened notebook shows HTML with
scripts once it is trusted, as for any such output). The iframe has a fixed height and the page scrolls
inside it.

The recording goes to Rerun's notebook viewer (``rerun.notebook.Viewer``, from the ``rerun-notebook``
package: ``pip install 'lightning-ner-viz[notebook]'``). It is a widget: it needs the live kernel, and the
data is not saved in the notebook file. Its code comes from ``app.rerun.io`` unless
``RERUN_NOTEBOOK_ASSET`` says otherwise (``serve-local`` serves it from the kernel's machine; set it before
``rerun`` is imported). Without ``rerun-notebook``, ``show`` says how to install it, and how to open the
file with the ``rerun`` command, and still shows the report.

IPython and Rerun are imported only when ``show`` runs.
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path
from typing import Any, Literal

from lightning_ner_viz.notebook.outputs import RunOutputs, find_outputs

Which = Literal["both", "html", "rerun"]

INSTALL_HINT = "pip install 'lightning-ner-viz[notebook]'"
"""What installs Rerun's notebook viewer (the ``notebook`` extra brings ``rerun-sdk[notebook]`` and IPython)."""


class NotInNotebookError(RuntimeError):
    """:func:`show` was called outside a Jupyter kernel: open the files it names instead."""


def show(source: str | os.PathLike[str] | Any, *, which: Which = "both", height: int = 820) -> None:
    """Show a run's HTML report and Rerun recording inline in a Jupyter notebook (the cell's output).

    Args:
        source: a report (``.html``), a recording (``.rrd``), a run's snapshot directory (``ner_viz/``) or the
            directory above it, or an :class:`~lightning_ner_viz.EmbeddingDriftCallback` after ``fit``; see
            :func:`~lightning_ner_viz.notebook.outputs.find_outputs`.
        which: ``"html"``, ``"rerun"``, or ``"both"`` (whichever of the two exist).
        height: the height in pixels of the report's frame and of the Rerun viewer.

    Raises:
        NotInNotebookError: outside a Jupyter kernel (a script, a terminal IPython); the message, also
            printed, names the files and how to open them.
        FileNotFoundError: when the file asked for is not there.
    """
    if which not in ("both", "html", "rerun"):
        raise ValueError(f"which={which!r}: choose 'both', 'html' or 'rerun'.")
    if not isinstance(height, int) or height < 100:
        raise ValueError(f"height={height!r}: give a height in pixels, at least 100.")
    found = find_outputs(source)
    wanted = RunOutputs(found.report if which != "rerun" else None, found.recording if which != "html" else None)
    if which != "both" and (wanted.report if which == "html" else wanted.recording) is None:
        kind = "HTML report" if which == "html" else "Rerun recording"
        raise FileNotFoundError(f"{source!r} has no {kind}. It has: {found.describe()}")
    if not in_kernel():
        where = wanted.describe()
        print(where)
        raise NotInNotebookError("lightning_ner_viz.show() displays inside a Jupyter notebook, and no IPython kernel "
                                 f"is running here. Open the files instead:\n{where}")
    from IPython.display import display

    if wanted.report is not None:
        display(report_bundle(wanted.report, height), raw=True)
    if wanted.recording is not None:
        show_recording(wanted.recording, height)


def in_kernel() -> bool:
    """Whether this runs in a Jupyter kernel (JupyterLab, Notebook, VS Code, Colab): an IPython shell with a kernel."""
    ipython = sys.modules.get("IPython")  # a kernel has imported it; never imported here otherwise
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def report_iframe(report: str | os.PathLike[str], height: int = 820) -> str:
    """The report as an ``<iframe srcdoc="...">`` element: the whole page, escaped for the attribute."""
    page = Path(report).read_text(encoding="utf-8")
    srcdoc = page.replace("&", "&amp;").replace('"', "&quot;")  # all a double-quoted attribute needs (+13%)
    title = html.escape(Path(report).name, quote=True)
    return (f'<iframe srcdoc="{srcdoc}" title="lightning-ner-viz report {title}" '
            f'style="width:100%;height:{int(height)}px;border:1px solid #d0d0d0;border-radius:4px" '
            'allow="fullscreen"></iframe>')


def report_bundle(report: Path, height: int) -> dict[str, str]:
    """The cell output of a report: the frame (``text/html``), and the path for plain-text views."""
    caption = (f'<div style="font:12px sans-serif;color:#666;margin:2px 0">lightning-ner-viz report '
               f'<code>{html.escape(str(report))}</code> (open it in a browser for the full window)</div>')
    return {"text/html": caption + report_iframe(report, height),
            "text/plain": f"lightning-ner-viz report {report} (open it in a browser)"}


def show_recording(recording: Path, height: int) -> None:
    """Rerun's notebook viewer, with the recording's data (its blueprint included) sent to it; without
    ``rerun-notebook``, a message saying how to install it and how to open the file."""
    from IPython.display import display

    from lightning_ner_viz._imports import _RERUN_AVAILABLE, _RERUN_NOTEBOOK_AVAILABLE

    if not (_RERUN_AVAILABLE and _RERUN_NOTEBOOK_AVAILABLE):
        display(missing_viewer_bundle(recording), raw=True)
        return
    import rerun as rr
    from rerun.notebook import Viewer

    application_id, recording_id = _store_of(recording)
    stream = rr.RecordingStream(application_id, recording_id=recording_id)  # the file's own store: one recording
    viewer = Viewer(width="auto", height=height, recording=stream)  # what the stream logs goes to the viewer
    stream.log_file_from_path(recording)  # the file's chunks and blueprints, as they are
    stream.flush()
    viewer.display()  # the data waits in the widget until the browser side is ready


def missing_viewer_bundle(recording: Path) -> dict[str, str]:
    """The message shown instead of the viewer when ``rerun-notebook`` is not installed."""
    text = (f"Rerun's notebook viewer is not installed, so the recording {recording} is not shown inline. "
            f"Install it with `{INSTALL_HINT}` (it brings rerun-sdk[notebook]) and restart the kernel, or open "
            f"the file with `rerun {recording}`.")
    return {"text/html": f'<div class="ner-viz-rerun-missing" style="font:13px sans-serif;padding:6px 8px;'
                         f'border-left:3px solid #e0a000;background:#fff8e5">{html.escape(text)}</div>',
            "text/plain": text}


def _store_of(recording: Path) -> tuple[str, str | None]:
    """The application and recording id of the file's first recording (``lightning_ner_viz`` and a new id when
    they cannot be read)."""
    try:
        from rerun.chunk import RrdReader

        entry = RrdReader(recording).recordings()[0]
        return entry.application_id, entry.recording_id
    except Exception:  # an older rerun-sdk without RrdReader, or a file it cannot list
        return "lightning_ner_viz", None
