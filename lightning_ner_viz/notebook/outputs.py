"""Where a run's HTML report and Rerun recording are: from a file, a run's directory, or a callback after ``fit``.

Nothing here imports IPython, torch or Lightning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPORT_FILE = "embeddings.html"
"""The name :class:`~lightning_ner_viz.sinks.HtmlSink` writes by default."""
RECORDING_FILE = "embeddings.rrd"
"""The name :class:`~lightning_ner_viz.sinks.RerunSink` writes by default."""


@dataclass(frozen=True)
class RunOutputs:
    """A run's report and recording; either may be ``None`` (not written, or not asked for)."""

    report: Path | None = None
    recording: Path | None = None

    def describe(self) -> str:
        """One line per file, saying how to open it outside a notebook."""
        lines = []
        if self.report is not None:
            lines.append(f"HTML report: {self.report} (open it in any browser, offline: {self.report.as_uri()})")
        if self.recording is not None:
            lines.append(f"Rerun recording: {self.recording} (open it with `rerun {self.recording}`)")
        return "\n".join(lines)


def find_outputs(source: str | os.PathLike[str] | Any) -> RunOutputs:
    """The report and the recording of ``source``.

    Args:
        source: a report (``.html``), a recording (``.rrd``), a run's snapshot directory (``ner_viz/``) or
            the directory above it (the Trainer's ``default_root_dir``, or a demo's ``--out``), or an
            :class:`~lightning_ner_viz.EmbeddingDriftCallback` after ``fit`` (its ``HtmlSink`` and ``RerunSink``
            files, once its last pictures are written: this waits for them).

    Raises:
        FileNotFoundError: when the path does not exist, or a directory holds neither file.
        ValueError: for a file that is neither ``.html`` nor ``.rrd``, or a callback whose sinks wrote no file.
    """
    if hasattr(source, "resolved_sinks"):
        return _of_callback(source)
    path = Path(source).expanduser().resolve()
    if path.is_dir():
        return _of_directory(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. Pass a report (.html), a recording (.rrd), a run's "
                                "directory, or the EmbeddingDriftCallback after fit.")
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        return RunOutputs(report=path)
    if suffix == ".rrd":
        return RunOutputs(recording=path)
    raise ValueError(f"{path} is neither an HTML report (.html) nor a Rerun recording (.rrd).")


def _of_directory(directory: Path) -> RunOutputs:
    from lightning_ner_viz.store import DEFAULT_SUBDIR

    for where in (directory, directory / DEFAULT_SUBDIR):
        report, recording = where / REPORT_FILE, where / RECORDING_FILE
        found = RunOutputs(report if report.is_file() else None, recording if recording.is_file() else None)
        if found.report is not None or found.recording is not None:
            return found
    raise FileNotFoundError(
        f"Neither {REPORT_FILE} nor {RECORDING_FILE} is in {directory} or {directory / DEFAULT_SUBDIR}. Pass the "
        "file itself (a sink given another `path=` writes there), or the run's directory.")


def _of_callback(callback: Any) -> RunOutputs:
    from lightning_ner_viz.sinks.html import HtmlSink
    from lightning_ner_viz.sinks.rerun import RerunSink

    callback.wait(progress=False)  # fit returns before its last pictures are drawn; the cell shows them then
    sinks = list(callback.resolved_sinks)
    if not sinks:
        raise ValueError("This EmbeddingDriftCallback has no sinks in use yet: call show() after `trainer.fit(...)`, "
                         "in the process that ran it (rank zero).")
    report = _first_file(sinks, HtmlSink)
    recording = _first_file(sinks, RerunSink)
    if report is None and recording is None:
        names = ", ".join(repr(s) for s in sinks)
        raise ValueError(f"None of this callback's sinks wrote an HTML report or a .rrd file ({names}). Add "
                         "HtmlSink() or RerunSink(), or render the saved snapshots: "
                         "`lightning-ner-viz render <snapshot dir> --sink html`.")
    return RunOutputs(report, recording)


def _first_file(sinks: list[Any], kind: type) -> Path | None:
    """The first existing file a sink of ``kind`` wrote (its ``location``: a RerunSink may have moved on to
    ``embeddings-2.rrd``)."""
    for sink in sinks:
        if isinstance(sink, kind) and sink.location is not None and Path(sink.location).is_file():
            return Path(sink.location).resolve()
    return None
