"""The command line's parser: quick to build (no heavy import), choices from the registries, clear refusals."""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_ner_viz.cli import build_parser, main
from lightning_ner_viz.projection.frame_names import FRAME_CHOICES, RENDER_FRAME_CHOICES
from lightning_ner_viz.reducers.registry import REDUCER_NAMES
from lightning_ner_viz.sinks.registry import SINK_NAMES
from lightning_ner_viz.cli.render import resolve_reducer

SCRIPT = Path(sys.executable).with_name("lightning-ner-viz")
HEAVY = {"torch", "lightning", "pytorch_lightning", "numpy", "transformers", "rerun", "wandb", "umap", "openTSNE",
         "plotly", "tensorboard", "sklearn", "scipy"}


def _imported(stderr: str) -> set[str]:
    """Top-level names of the modules that ``-X importtime`` reports."""
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("command", [[], ["demo"], ["replay"], ["render"], ["issues"], ["compare"]],
                         ids=["top", "demo", "replay", "render", "issues", "compare"])
def test_help_imports_no_heavy_package(command):
    done = subprocess.run([sys.executable, "-X", "importtime", str(SCRIPT), *command, "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: lightning-ner-viz {' '.join(command)}".rstrip())
    imported = _imported(done.stderr)
    assert "lightning_ner_viz" in imported  # the profile covers the package's own imports
    assert not imported & HEAVY, sorted(imported & HEAVY)


def _options(command: str) -> dict[str, argparse.Action]:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {action.dest: action for action in subparsers.choices[command]._actions}


def test_choices_come_from_the_registries():
    demo, render = _options("demo"), _options("render")
    assert tuple(demo["reducer"].choices) == tuple(REDUCER_NAMES)
    assert tuple(demo["frame"].choices) == tuple(FRAME_CHOICES)
    assert tuple(render["reducer"].choices) == tuple(REDUCER_NAMES)
    assert tuple(render["frame"].choices) == tuple(RENDER_FRAME_CHOICES)
    assert tuple(render["sink"].choices) == tuple(SINK_NAMES)
    assert (demo["reducer"].default, demo["frame"].default) == ("pca", "auto")  # the golden demo's settings
    assert render["frame"].default == "auto"


def _cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse's usage errors
            code = int(exit_.code or 0)
    return code, err.getvalue()


@pytest.mark.parametrize("reducer", ["pca", "tsne"])
def test_aligned_frame_with_another_reducer_is_refused(tmp_path, reducer):
    code, err = _cli("render", str(tmp_path), "--reducer", reducer, "--frame", "aligned")
    assert code == 2 and "aligned" in err and "umap" in err


def test_aligned_frame_defaults_to_umap():
    assert resolve_reducer(None, "aligned") == "umap"
    assert resolve_reducer(None, "procrustes") == "pca"
    assert resolve_reducer(None, "auto") == "pca"
    assert resolve_reducer("umap", "auto") == "umap"


@pytest.mark.parametrize("args", [["render", ".", "--sink", "nope"], ["demo", "--reducer", "nope"], ["replay"]])
def test_bad_options_exit_with_2(args):
    code, err = _cli(*args)
    assert code == 2 and "usage:" in err


def test_demo_refuses_a_frame_its_reducer_cannot_use_before_training(tmp_path):
    code, err = _cli("demo", "--out", str(tmp_path / "o"), "--frame", "warm")  # the default reducer is pca
    assert code == 2 and "warm" in err
    assert not (tmp_path / "o").exists()
