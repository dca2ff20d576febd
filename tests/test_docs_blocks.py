"""Every fenced block in README.md and docs/*.md runs as written (issue #12).

Each block is one test, ``<file>#<index>-<language>`` (index counts every fenced block of the
file from 0). By language:

- ``python``: written to ``block.py`` and run with this interpreter in a fresh process, in an
  empty temporary directory, with W&B offline and no download; it must exit with 0. Files
  listed in ``WRITES`` must exist afterwards.
- ``bash``: run with ``bash -e`` the same way, this environment's ``bin`` first on ``PATH``.
- ``yaml``: a LightningCLI config, loaded by a ``LightningCLI`` (with Lightning's ``BoringModel``)
  that builds the Trainer and its callbacks without fitting.
- ``text``: not code (diagrams, output samples); not run.

A block that is expensive or needs a display or a network is listed in ``SKIP`` with the
reason; anything else (an untagged fence, an unknown language) fails, so a new block is
either runnable or explained.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 300  # seconds per block; a training block takes 10-25 s on 2 cores

NOT_CODE = {"text"}
RUNNERS = {"python", "bash", "yaml"}

# (file, a substring of the block) -> why the block is not run.
SKIP: dict[tuple[str, str], str] = {
    ("README.md", "bash scripts/demo.sh"):
        "Quick start: builds .venv and runs the demo / the whole test suite (tests/test_cli_demo.py runs the demo)",
    ("README.md", "pip install"): "installs packages into the environment",
    ("README.md", "lightning-ner-viz render demo-out/ner_viz"):
        "needs demo-out/ from a finished demo; AlignedUMAP is slow; replay --web serves a viewer until stopped "
        "(tests/test_cli_replay.py covers render and replay)",
    ("docs/getting-started.md", "bash scripts/demo.sh"): "builds .venv and runs the demo (tests/test_cli_demo.py)",
    ("docs/getting-started.md", "lightning-ner-viz demo --out demo-out"):
        "the full demo, 3 epochs on 2,500 titles, from the clone's .venv (tests/test_cli_demo.py runs the demo)",
    ("docs/getting-started.md", "lightning-ner-viz render runs/ner_viz"):
        "needs runs/ner_viz from a finished run; AlignedUMAP is slow; replay --web serves a viewer until stopped "
        "(tests/test_cli_replay.py covers render and replay)",
    ("docs/performance.md", "benchmarks/run_all.py"): "runs the benchmarks (minutes) and rewrites docs/performance.md",
    ("docs/performance.md", "benchmarks/label_issues.py"): "runs the label-issue benchmarks (73 s to 7 min)",
}

# (file, a substring of the block) -> glob patterns, relative to the block's working directory,
# that must each match a file after the block ran: what the text around the block says it writes.
WRITES: dict[tuple[str, str], list[str]] = {
    ("docs/label-issues.md", "--label-noise 0.05"): [
        "noisy/ner_viz/label_issues.csv", "noisy/review.conll", "noisy/flipped_labels.csv"],
    ("README.md", "rerun_sink, wandb_sink = "): [
        "ner_viz/embeddings.rrd", "ner_viz/epoch=0001-step=*/meta.json", "wandb/offline-run-*/run-*.wandb"],
    ("docs/getting-started.md", 'WandbLogger(project="ner", save_dir="runs"'): [
        "runs/ner_viz/embeddings.rrd", "runs/ner_viz/embeddings.html", "runs/ner_viz/epoch=0000-step=*/arrays.npz",
        "runs/ner_viz/epoch=0001-step=*/arrays.npz", "runs/wandb/offline-run-*/run-*.wandb"],
    ("docs/comparing.md", "lightning-ner-viz compare run-a/ner_viz"): [
        "compare.html", "compare.rrd", "run-a/ner_viz/epoch=0001-step=*/layers.npz", "run-b/embeddings.html"],
    ("docs/sinks.md", "TensorBoardSink(),"): [
        "runs/ner_viz/embeddings.rrd", "runs/ner_viz/embeddings.html", "runs/ner_viz/tensorboard/events.out.tfevents.*",
        "wandb/offline-run-*/run-*.wandb"],
}

# (file, a substring of the block) -> text its standard output must contain.
PRINTS: dict[tuple[str, str], list[str]] = {
    ("docs/label-issues.md", "--label-noise 0.05"): ["most suspect tokens listed", "marked REVIEW", "sentence_id,position"],
    ("README.md", "rerun_sink, wandb_sink = "): ["Rerun recording:", "ner_viz/embeddings.rrd", "W&B offline run:"],
    ("docs/sinks.md", "TensorBoardSink(),"): [  # the sample output below the block
        "RerunSink       runs/ner_viz/embeddings.rrd", "WandbSink       /", "/wandb/offline-run-",
        "HtmlSink        runs/ner_viz/embeddings.html", "TensorBoardSink runs/ner_viz/tensorboard"],
    ("docs/api.md", "lightning-ner-viz --help"): ["usage: lightning-ner-viz", "--frame", "--web"],
    ("docs/comparing.md", "lightning-ner-viz compare run-a/ner_viz"): [  # the sample output below the block
        "Compared 2 runs against 'lr1e-3' over 2 snapshots", "lr3e-3 vs lr1e-3", "Report: ", "compare.rrd"],
    ("docs/comparing.md", 'hidden_module="all"'): ["all"],
    ("docs/getting-started.md", "trainer.validate(model, datamodule)"): [  # the sample output below the block
        "validate=00-step=0000000", "epoch=0000-step=0000004", "epoch=0000-step=0000008", "epoch=0001-step=0000016"],
    ("docs/getting-started.md", "class_path: lightning_ner_viz.EmbeddingDriftCallback"): ["EmbeddingDriftCallback"],
}

_FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a Markdown file."""

    file: str  # relative to the repository, e.g. "docs/sinks.md"
    index: int  # 0-based, counting every fenced block of the file
    line: int  # 1-based line of the opening fence
    language: str  # the info string's first word, "" when untagged
    text: str

    @property
    def id(self) -> str:
        return f"{self.file}#{self.index}-{self.language or 'untagged'}"

    def listed_in(self, table: dict[tuple[str, str], object]) -> list[tuple[str, str]]:
        return [key for key in table if key[0] == self.file and key[1] in self.text]


def fenced_blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """Every fenced block of a CommonMark file (backtick or tilde fences, up to 3 spaces of indent)."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            i += 1
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (closing is not None and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence)
                    and not closing["info"].strip()):
                break
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(' '))):])  # the fence's indent, at most
            j += 1
        info = opening["info"].strip().split()
        blocks.append(Block(path.relative_to(root).as_posix(), len(blocks), i + 1, info[0].lower() if info else "",
                            "\n".join(body) + "\n"))
        i = j + 1
    return blocks


ALL_BLOCKS = [block for path in DOC_FILES for block in fenced_blocks(path)]
CODE_BLOCKS = [block for block in ALL_BLOCKS if block.language not in NOT_CODE]


def _env(tmp_path: Path) -> dict[str, str]:
    """A quiet, offline environment whose caches and configs live in ``tmp_path``."""
    env = dict(os.environ)
    home = tmp_path / ".home"
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "WANDB_CACHE_DIR", "WANDB_DATA_DIR",
                "WANDB_CONFIG_DIR", "MPLCONFIGDIR"):
        env[var] = str(home / var.lower())
    env.pop("WANDB_DIR", None)  # runs go where the block puts them (./wandb by default), as for a user
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", JSONARGPARSE_DEPRECATION_WARNINGS="off", PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


_YAML_RUNNER = """\
import sys
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.demos.boring_classes import BoringModel

config = sys.argv.pop(1)  # LightningCLI warns when both sys.argv and args= hold arguments
cli = LightningCLI(BoringModel, args=["--config", config, "--trainer.logger=false"], run=False)
print(", ".join(type(c).__name__ for c in cli.trainer.callbacks))
"""


def _command(block: Block, workdir: Path) -> list[str]:
    if block.language == "python":
        script = workdir / "block.py"
        script.write_text(block.text)
        return [sys.executable, str(script)]
    if block.language == "bash":
        script = workdir / "block.sh"
        script.write_text(block.text)
        return ["bash", "-e", "-o", "pipefail", str(script)]
    config = workdir / "block.yaml"
    config.write_text(block.text)
    runner = workdir / "load_yaml.py"
    runner.write_text(_YAML_RUNNER)
    return [sys.executable, str(runner), str(config)]


@pytest.mark.parametrize("block", CODE_BLOCKS, ids=[b.id for b in CODE_BLOCKS])
def test_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    skipped = block.listed_in(SKIP)
    if skipped:
        pytest.skip(SKIP[skipped[0]])
    assert block.language in RUNNERS, (
        f"{block.file}:{block.line}: a ```{block.language or ''} block the test cannot run. Tag a diagram or an "
        f"output sample ```text; make code ```python, ```bash or ```yaml; or list it in SKIP with a reason."
    )
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    done = subprocess.run(_command(block, workdir), check=False, cwd=workdir, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, (
        f"{block.file}:{block.line} ({block.language}) exited with {done.returncode}\n--- block ---\n{block.text}"
        f"--- stdout (end) ---\n{done.stdout[-3000:]}\n--- stderr (end) ---\n{done.stderr[-6000:]}"
    )
    for key in block.listed_in(WRITES):
        for pattern in WRITES[key]:
            assert glob.glob(str(workdir / pattern)), (
                f"{block.file}:{block.line} should have written {pattern}; the directory holds:\n"
                + "\n".join(sorted(str(p.relative_to(workdir)) for p in workdir.rglob("*") if ".home" not in p.parts)))
    for key in block.listed_in(PRINTS):
        for text in PRINTS[key]:
            assert text in done.stdout, f"{block.file}:{block.line} should print {text!r}; it printed:\n{done.stdout}"


def test_the_docs_have_blocks_to_check() -> None:
    runnable = [b for b in CODE_BLOCKS if not b.listed_in(SKIP)]
    assert {b.language for b in runnable} >= {"python", "bash", "yaml"}, [b.id for b in runnable]
    assert any(b.file == "README.md" and b.language == "python" for b in runnable)


@pytest.mark.parametrize("table", ["SKIP", "WRITES", "PRINTS"])
def test_every_listed_block_exists(table: str) -> None:
    """An entry that matches no block (the text changed) would silently stop checking anything."""
    entries = {"SKIP": SKIP, "WRITES": WRITES, "PRINTS": PRINTS}[table]
    for file, needle in entries:
        matches = [b for b in ALL_BLOCKS if b.file == file and needle in b.text]
        assert matches, f"{table}[{(file, needle)!r}] matches no fenced block of {file}"
        if table != "SKIP":
            assert len(matches) == 1, f"{table}[{(file, needle)!r}] matches several blocks: {[b.id for b in matches]}"


def test_the_extractor_reads_fences_as_commonmark(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("intro\n\n```python\nif x:\n    print(1)\n```\n\n~~~~\n```\nnot a fence\n```\n~~~~\n\n"
                   "- item\n\n  ```bash title=x\n  echo hi\n    indented\n nope\n  ```\n\n```text\nA\n```\n")
    blocks = fenced_blocks(doc, root=tmp_path)
    assert {b.file for b in blocks} == {"doc.md"}
    assert [(b.index, b.language, b.text) for b in blocks] == [
        (0, "python", "if x:\n    print(1)\n"), (1, "", "```\nnot a fence\n```\n"),
        (2, "bash", "echo hi\n  indented\nnope\n"), (3, "text", "A\n")]


def test_api_reference_lists_every_argument_of_the_callback_at_its_default() -> None:
    """docs/api.md's ``EmbeddingDriftCallback(...)`` block: the same arguments, in order, with the same defaults."""
    import ast
    import inspect

    from lightning_ner_viz import EmbeddingDriftCallback

    [block] = [b for b in ALL_BLOCKS if b.file == "docs/api.md" and "callback = EmbeddingDriftCallback(" in b.text]
    [call] = [node for node in ast.walk(ast.parse(block.text)) if isinstance(node, ast.Call)
              and getattr(node.func, "id", None) == "EmbeddingDriftCallback"]
    documented = [(kw.arg, ast.literal_eval(kw.value)) for kw in call.keywords]
    actual = [(name, p.default) for name, p in inspect.signature(EmbeddingDriftCallback).parameters.items()]
    assert documented == actual
