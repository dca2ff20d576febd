"""examples/notebook.ipynb run headlessly in a real Jupyter kernel (this interpreter, through nbclient): the
report inline in an ``<iframe srcdoc>``, Rerun's notebook viewer (or its install message), no cell error; the
inline report opens in headless Chromium; and ``show`` outside a notebook."""

from __future__ import annotations

import html
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, chromium_page, needs_chromium

import lightning_ner_viz
from lightning_ner_viz._imports import _RERUN_NOTEBOOK_AVAILABLE
from lightning_ner_viz.notebook import NotInNotebookError, find_outputs, in_kernel
from lightning_ner_viz.notebook.inline import INSTALL_HINT, missing_viewer_bundle

NOTEBOOK = ROOT / "examples" / "notebook.ipynb"
KERNEL = "lightning-ner-viz-tests"
_SRCDOC = re.compile(r'<iframe srcdoc="([^"]*)"')


def _kernel_spec(directory: Path) -> Path:
    """A kernel spec that starts this very interpreter, so the test needs no `ipykernel install` and ignores
    whatever kernels the machine has (``JUPYTER_PATH`` is searched first)."""
    spec = directory / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    return directory


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """The notebook executed in a temporary directory (its working directory), and that directory."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    work = tmp_path_factory.mktemp("notebook")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(_kernel_spec(tmp_path_factory.mktemp("jupyter"))))
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        mp.delenv("WANDB_SERVICE", raising=False)
        nb = nbformat.read(NOTEBOOK, as_version=4)
        start = time.perf_counter()
        nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=240,
                                resources={"metadata": {"path": str(work)}}).execute()  # raises on a cell error
        print(f"\nexamples/notebook.ipynb ran in {time.perf_counter() - start:.1f} s")
    return nb, work


def _cell(nb: Any, marker: str) -> Any:
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    return cell


def test_the_notebook_shows_the_report_and_the_recording(executed):
    nb, work = executed
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and "Traceback" in o.text]
    run = work / "runs" / "notebook" / "ner_viz"
    report, recording = run / "embeddings.html", run / "embeddings.rrd"
    assert report.is_file() and recording.is_file()

    (shown,) = _cell(nb, 'which="html"').outputs
    page = shown.data["text/html"]
    assert shown.output_type == "display_data" and str(report) in shown.data["text/plain"]
    (srcdoc,) = _SRCDOC.findall(page)
    assert html.unescape(srcdoc) == report.read_text(encoding="utf-8")  # the whole report, in the notebook
    assert 'id="ner-viz-data"' in html.unescape(srcdoc) and "height:820px" in page

    viewer = _cell(nb, 'which="rerun"').outputs
    if _RERUN_NOTEBOOK_AVAILABLE:
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in viewer)
        widgets = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        rerun = [w["state"] for w in widgets.values() if w["model_module"] == "anywidget"]
        assert len(rerun) == 1 and "rerun" in rerun[0]["_esm"] and str(rerun[0]["_height"]) == "640"
    else:  # the documented fallback: how to install the viewer, and how to open the file
        (message,) = viewer
        assert INSTALL_HINT in message.data["text/plain"] and str(recording) in message.data["text/plain"]


@needs_chromium
def test_the_inline_report_runs_in_a_browser(executed, tmp_path):
    """The cell's HTML output, as a notebook front end inserts it: the frame is 820 px high and the report's
    scripts run inside it (its page API answers, every snapshot is a frame), with no page or console error."""
    nb, _ = executed
    output = _cell(nb, 'which="html"').outputs[0].data["text/html"]
    host = tmp_path / "cell.html"
    host.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{output}</body></html>",
                    encoding="utf-8")
    with chromium_page(tmp_path / "profile", 1300, 1000) as (page, errors):
        page.goto(host.as_uri())
        frame = page.frames[1]
        frame.wait_for_function("window.nerViz !== undefined", timeout=30_000)
        frame.evaluate("nerViz.ready")
        assert page.locator("iframe").bounding_box()["height"] >= 820
        assert frame.evaluate("nerViz.frames('hidden')") == ["epoch=0000-step=0000015", "epoch=0001-step=0000030"]
        assert frame.evaluate("nerViz.state()")["webgl"]
        page.wait_for_timeout(300)
        assert errors == []


def test_outside_a_notebook_show_names_the_files_and_raises(tmp_path, capsys):
    run = tmp_path / "run" / "ner_viz"
    run.mkdir(parents=True)
    (run / "embeddings.html").write_text("<html></html>")
    (run / "embeddings.rrd").write_bytes(b"RRF2")
    assert not in_kernel()
    with pytest.raises(NotInNotebookError, match="open it in any browser") as err:
        lightning_ner_viz.show(tmp_path / "run")
    printed = capsys.readouterr().out
    for name in ("embeddings.html", "embeddings.rrd"):
        assert str(run / name) in printed and str(run / name) in str(err.value)
    assert find_outputs(run) == find_outputs(tmp_path / "run")  # the snapshot directory or the run's
    assert find_outputs(run / "embeddings.rrd").report is None
    with pytest.raises(FileNotFoundError, match="has no HTML report. It has: Rerun recording"):
        lightning_ner_viz.show(run / "embeddings.rrd", which="html")
    with pytest.raises(ValueError, match="which="):
        lightning_ner_viz.show(run, which="report")
    with pytest.raises(FileNotFoundError, match="Neither embeddings.html nor embeddings.rrd"):
        find_outputs(tmp_path)


def test_a_callback_before_fit_and_the_missing_viewer_message():
    from lightning_ner_viz import EmbeddingDriftCallback

    with pytest.raises(ValueError, match="after `trainer.fit"):
        find_outputs(EmbeddingDriftCallback())
    message = missing_viewer_bundle(Path("/runs/x/embeddings.rrd"))
    assert "pip install 'lightning-ner-viz[notebook]'" in message["text/plain"]
    assert "rerun /runs/x/embeddings.rrd" in message["text/plain"]
