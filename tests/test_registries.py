"""The reducer and frame registries, their validation, and the package's import graph (no cycles, stages layered)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from lightning_ner_viz.projection.frame_names import (
    FRAME_NAMES,
    RENDER_FRAME_NAMES,
    FrameName,
    RenderFrameName,
    check_frame,
    check_reducer_frame,
)
from lightning_ner_viz.projection.frames import FRAMES, make_frame
from lightning_ner_viz.reducers import REDUCERS, PCAReducer, UMAPReducer
from lightning_ner_viz.reducers.registry import REDUCER_NAMES, ReducerName, check_reducer, make_reducer

PACKAGE = Path(__file__).resolve().parents[1] / "lightning_ner_viz"


# --- the import graph --------------------------------------------------------------------------------


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements run when the module is imported: not in functions, classes or ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            found += [] if _is_type_checking(node) else _module_level_imports(node.body)
            found += _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _module_level_imports(block)
    return found


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name to (file, is a package ``__init__``) for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def import_graph() -> dict[str, set[str]]:
    """Each module of the package to the package's modules it imports at module level.

    ``from a.b import c`` counts as importing ``a.b.c`` when that is a module, else ``a.b``.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        targets: set[str] = set()
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
                continue
            base = node.module or ""
            if node.level:  # relative: anchored at this module's package
                anchor = name.split(".")[: None if is_package else -1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_find_cycles_sees_a_cycle() -> None:
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert "lightning_ner_viz.reducers.base" in graph and "lightning_ner_viz.analysis.quality" in graph
    cycles = find_cycles(graph)
    assert not cycles, "Module-level import cycles (outside `if TYPE_CHECKING:`); import downward only:\n" + "\n".join(
        " <-> ".join(cycle) for cycle in cycles
    )


def _imports_of(prefix: str) -> dict[str, set[str]]:
    return {name: deps for name, deps in import_graph().items() if name.startswith(prefix)}


def test_reducers_import_downward_only() -> None:
    layer = {"_linalg": 0, "base": 1, "pca": 2, "umap": 2, "tsne": 2, "extension": 2}
    for name, deps in _imports_of("lightning_ner_viz.reducers.").items():
        short = name.rsplit(".", 1)[1]
        for dep in deps:
            assert dep.startswith(("lightning_ner_viz.reducers.", "lightning_ner_viz._")), (name, dep)
            if short in layer and dep.rsplit(".", 1)[1] in layer:
                assert layer[dep.rsplit(".", 1)[1]] < layer[short], f"{name} imports {dep}, which is not below it"


def test_analysis_does_not_import_later_stages() -> None:
    for name, deps in _imports_of("lightning_ner_viz.analysis").items():
        for stage in ("capture", "projection", "sinks", "cli", "callback"):
            assert not any(dep.startswith(f"lightning_ner_viz.{stage}") for dep in deps), (name, deps)


# --- the registries ----------------------------------------------------------------------------------


def test_the_registries_import_no_numpy_torch_or_optional_dependency() -> None:
    code = (
        "import sys, lightning_ner_viz.reducers.registry, lightning_ner_viz.projection.frame_names, "
        "lightning_ner_viz.reducers\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'torch', 'umap', 'openTSNE', 'lightning'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_names_agree_with_literals_and_classes() -> None:
    assert REDUCER_NAMES == ("pca", "umap", "tsne") == get_args(ReducerName)
    assert tuple(REDUCERS) == REDUCER_NAMES
    assert FRAME_NAMES == ("procrustes", "fixed", "warm", "independent") == get_args(FrameName)
    assert RENDER_FRAME_NAMES == (*FRAME_NAMES, "aligned") == get_args(RenderFrameName)
    assert tuple(FRAMES) == FRAME_NAMES
    assert all(FRAMES[name].name == name for name in FRAME_NAMES)


def test_the_reducers_package_keeps_its_names() -> None:
    from lightning_ner_viz import reducers

    for name in reducers.__all__:
        assert getattr(reducers, name) is not None
    assert set(reducers.__all__) <= set(dir(reducers))
    with pytest.raises(AttributeError, match="no attribute 'Isomap'"):
        reducers.Isomap  # noqa: B018


def test_check_reducer() -> None:
    for name in REDUCER_NAMES:
        check_reducer(name)
    check_reducer(PCAReducer())
    with pytest.raises(ValueError, match=r"reducer='umapp' is not one of \['pca', 'tsne', 'umap'\]"):
        check_reducer("umapp")
    with pytest.raises(TypeError, match=r"have fit_transform\(X\); got object"):
        check_reducer(object())


def test_make_reducer_resolves_names_to_fresh_seeded_reducers() -> None:
    a, b = make_reducer("umap", 2, 9), make_reducer("umap", 2, 9)
    assert a is not b and isinstance(a, UMAPReducer) and (a.n_components, a.seed) == (2, 9)
    mine = PCAReducer(2)
    assert make_reducer(mine, 3, 0) is mine


def test_check_frame() -> None:
    for name in FRAME_NAMES:
        check_frame(name)
    check_frame("aligned", RENDER_FRAME_NAMES)
    with pytest.raises(ValueError) as err:
        check_frame("spinning")
    assert "frame='spinning'" in str(err.value) and all(name in str(err.value) for name in FRAME_NAMES)
    with pytest.raises(ValueError, match="only re-renders saved snapshots"):
        check_frame("aligned")
    with pytest.raises(ValueError, match="frame='spinning'"):
        make_frame("spinning")


class FitOnly:
    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        return PCAReducer(2).fit_transform(X)


class WithInit(FitOnly):
    init = None


@pytest.mark.parametrize("frame", ["procrustes", "independent"])
@pytest.mark.parametrize("reducer", [*REDUCER_NAMES, FitOnly()])
def test_procrustes_and_independent_take_any_reducer(frame: str, reducer: object) -> None:
    check_reducer_frame(reducer, frame)


def test_warm_needs_a_reducer_that_takes_a_start_layout() -> None:
    for reducer in ("umap", "tsne", UMAPReducer(), WithInit()):
        check_reducer_frame(reducer, "warm")
    with pytest.raises(ValueError, match=r"reducer 'pca' takes no start layout.*frame='procrustes'"):
        check_reducer_frame("pca", "warm")
    with pytest.raises(ValueError, match="reducer FitOnly takes no start layout"):
        check_reducer_frame(FitOnly(), "warm")


def test_fixed_needs_transform_from_an_object() -> None:
    for reducer in (*REDUCER_NAMES, PCAReducer()):
        check_reducer_frame(reducer, "fixed")
    with pytest.raises(TypeError, match=r"transform\(X\); FitOnly has none"):
        check_reducer_frame(FitOnly(), "fixed")


def test_aligned_needs_umap() -> None:
    check_reducer_frame("umap", "aligned")
    for reducer in ("pca", "tsne", UMAPReducer()):
        with pytest.raises(ValueError, match="needs reducer='umap'"):
            check_reducer_frame(reducer, "aligned")


def test_check_reducer_frame_checks_each_name() -> None:
    with pytest.raises(ValueError, match="reducer='isomap'"):
        check_reducer_frame("isomap", "procrustes")
    with pytest.raises(ValueError, match="frame='spinning'"):
        check_reducer_frame("pca", "spinning")
    with pytest.raises(TypeError, match="fit_transform"):
        check_reducer_frame(object(), "procrustes")
