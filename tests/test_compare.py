"""``lightning-ner-viz compare``: runs matched by snapshot and token id, the numbers (a run against itself: CKA 1,
no distance, no changed neighbour), the clear refusals, the report in a headless browser (one slider, linked
hover and selection, hostile text kept as text) and the recording."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
from conftest import chromium_page, needs_chromium, trainer_kwargs
from rrd_reading import read_rrd
from test_registries import import_graph

from lightning_ner_viz import NerVizWarning
from lightning_ner_viz.cli import main
from lightning_ner_viz.comparison.html import read_payload
from lightning_ner_viz.comparison.metrics import align_onto, centroid_distances, compare_vectors
from lightning_ner_viz.snapshot import Snapshot
from lightning_ner_viz.store import SnapshotStore

HOSTILE_TOKEN = "<img src=x onerror=window.__pwned=1>"
HOSTILE_SENTENCE = "</script><script>window.__pwned=1</script> <b>bold</b> &amp;"
SNAPSHOTS = ["validate=00-step=0000000", "epoch=0000-step=0000002", "epoch=0001-step=0000004"]


class Runs(NamedTuple):
    """Two tiny runs over the same data and sampling, with other model seeds: each a run directory."""

    seed1: Path
    seed2: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, examples: Any, tokenizer: Any) -> Runs:
    """A baseline ``validate()`` then 2 epochs of 2 batches, 80 sampled tokens; trained once for the module."""
    import lightning.pytorch as pl
    import torch
    from outside_model import UserCrfTagger
    from transformers import BertConfig

    from lightning_ner_viz import EmbeddingDriftCallback
    from lightning_ner_viz.demo.data import LABEL_NAMES
    from lightning_ner_viz.demo.datamodule import NerDataModule

    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    roots, base = [], tmp_path_factory.mktemp("runs")
    for seed in (1, 2):
        root = base / f"seed{seed}"
        data = NerDataModule(examples[:320], examples[320:], tokenizer, LABEL_NAMES, batch_size=16)
        callback = EmbeddingDriftCallback(sinks=[], max_tokens=80, label_names=LABEL_NAMES)
        trainer = pl.Trainer(**trainer_kwargs(root, max_epochs=2, limit_train_batches=2), callbacks=[callback])
        torch.manual_seed(seed)
        model = UserCrfTagger(config, num_tags=len(LABEL_NAMES))
        trainer.validate(model, datamodule=data, verbose=False)
        trainer.fit(model, datamodule=data)
        callback.wait()
        assert SnapshotStore(root / "ner_viz").names() == SNAPSHOTS
        roots.append(root)
    return Runs(*roots)


def copy_run(source: Path, target: Path, change: Callable[[Snapshot], None] = lambda s: None,
             skip: tuple[str, ...] = ()) -> Path:
    """Every snapshot of the run ``source`` (but ``skip``), changed by ``change``, saved under ``target/ner_viz``."""
    store = SnapshotStore(source / "ner_viz")
    for name in store.names():
        if name not in skip:
            snapshot = store.load(name)
            change(snapshot)
            snapshot.save(target / "ner_viz" / name)
    return target


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """``lightning-ner-viz compare ARGS``: exit code, stdout, stderr."""
    code = main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


# ---- the numbers ----------------------------------------------------------------------------------------


def test_a_run_compared_with_itself_is_identical(runs, tmp_path, capsys):
    code, out, err = run_cli(capsys, runs.seed1, runs.seed1 / "ner_viz", "--out", tmp_path / "self")
    assert code == 0, err
    payload = read_payload(tmp_path / "self.html")
    assert payload["runs"] == ["seed1", "seed1-2"]
    assert [s["name"] for s in payload["snapshots"]] == SNAPSHOTS
    for snapshot in payload["snapshots"]:
        (vs,) = snapshot["vs"]
        assert vs["cka"] == pytest.approx(1.0, abs=1e-6)
        assert all(d == pytest.approx(0.0, abs=1e-6) for d in vs["centroid"] if d is not None)
        assert vs["changed"] == 0 and vs["top"] == [] and set(vs["shared"]) == {vs["k"]}
        np.testing.assert_allclose(snapshot["runs"][0]["xyz"], snapshot["runs"][1]["xyz"], atol=1e-3)
    assert out.count("0 of 80") == 3 and "1.000" in out and str(tmp_path / "self.html") in out


def test_a_rotated_and_scaled_copy_of_a_run_lands_on_it_point_for_point(runs, tmp_path, capsys):
    """The PCA frame maps the other run's vectors, rotated onto the reference's, through the reference's own
    projection: a run whose hidden space is only rotated and scaled is drawn exactly where the reference is."""
    rotation, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((32, 32)))

    def rotate(snapshot: Snapshot) -> None:
        snapshot.views["hidden"] = (2.5 * snapshot.views["hidden"] @ rotation).astype(np.float32)

    code, _, err = run_cli(capsys, runs.seed1, copy_run(runs.seed1, tmp_path / "rotated", rotate), "--out", tmp_path / "rot")
    assert code == 0, err
    for snapshot in read_payload(tmp_path / "rot.html")["snapshots"]:
        a, b = (np.asarray(r["xyz"], dtype=float) for r in snapshot["runs"])
        np.testing.assert_allclose(b, a, atol=1e-3 * np.ptp(a))
        assert snapshot["vs"][0]["cka"] == pytest.approx(1.0, abs=1e-6)


def test_alignment_ignores_rotation_scale_and_width():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 16))
    gold = rng.integers(0, 4, 300)
    rotation, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    wider, _ = np.linalg.qr(rng.standard_normal((24, 16)))  # 16 -> 24 columns, orthonormal
    for other in (3.0 * x @ rotation, x @ wider.T):
        result = compare_vectors(x, other, gold, ["O", "A", "B", "C"])
        assert result.cka == pytest.approx(1.0, abs=1e-9)
        assert max(result.centroid_distance.values()) == pytest.approx(0.0, abs=1e-9)
        assert result.n_changed == 0 and len(result.top) == 0
    noisy = x + 0.8 * rng.standard_normal(x.shape)
    result = compare_vectors(x, noisy, gold, ["O", "A", "B", "C"], top=5)
    assert result.cka < 0.9 and 0 < result.n_changed and len(result.top) == 5
    assert np.all(np.diff(result.shared_neighbours[result.top]) >= 0)  # least overlap first
    a, b = align_onto(x, x + np.r_[5.0, np.zeros(15)])  # a shift is centred away
    assert max(centroid_distances(a, b, gold, ["O", "A", "B", "C"]).values()) == pytest.approx(0.0, abs=1e-9)


def test_other_copies_of_the_same_word_count_as_the_same_neighbour():
    """A frequent word's neighbours are copies of itself; which copies come up changes between runs, its
    neighbourhood does not. Only the token that moved to another crowd is listed."""
    rng = np.random.default_rng(1)
    crowds = rng.standard_normal((4, 8)) * 10
    words = ["1"] * 20 + [f"w{i}" for i in range(20)]  # a blob of 20 copies of "1", then 4 crowds of 5 words
    a = np.r_[crowds[0] + 0.1 * rng.standard_normal((20, 8)), np.repeat(crowds, 5, axis=0) + rng.standard_normal((20, 8))]
    b = a.copy()
    b[:20] = crowds[0] + 0.1 * rng.standard_normal((20, 8))  # the copies reshuffled
    b[39] = crowds[1]  # w19 moved from the last crowd to the second
    result = compare_vectors(a, b, np.zeros(40, dtype=int), ["O"], words=words, top=5)
    assert (result.shared_neighbours[:20] < result.k).sum() >= 10  # as tokens, most copies "changed"
    assert (result.shared_words[:20] == result.k).all()  # as words, none did
    assert result.top[0] == 39 and result.shared_words[39] < result.k


# ---- two seeds: the report, the recording, the table -------------------------------------------------------


class Compared(NamedTuple):
    report: Path
    recording: Path
    stdout: str


def hostile(snapshot: Snapshot) -> None:
    """Every token's text and every sentence made of markup a careless page would run (each token keeps its own
    text after the markup, so the runs' neighbour words still differ)."""
    snapshot.token = [HOSTILE_TOKEN + t for t in snapshot.token]
    snapshot.sentences = {k: f"{HOSTILE_SENTENCE} {v}" for k, v in snapshot.sentences.items()}


@pytest.fixture(scope="module")
def two_seeds(runs, tmp_path_factory) -> Compared:
    """The two seeds compared, their text made hostile, with ``--rrd``; run once for the module."""
    tmp = tmp_path_factory.mktemp("two_seeds")
    first, second = copy_run(runs.seed1, tmp / "a", hostile), copy_run(runs.seed2, tmp / "b", hostile)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["compare", str(first), str(second), "--names", "seed 1,seed <2>", "--out", str(tmp / "report.html"),
                     "--rrd", str(tmp / "compare")])
    assert code == 0
    return Compared(tmp / "report.html", tmp / "compare.rrd", out.getvalue())


def test_two_seeds_differ_and_the_table_lists_every_snapshot(two_seeds):
    payload = read_payload(two_seeds.report)
    assert payload["runs"] == ["seed 1", "seed <2>"] and payload["view"] == "hidden"
    ckas = [s["vs"][0]["cka"] for s in payload["snapshots"]]
    assert min(ckas) < 0.99 and all(0 <= c <= 1 + 1e-9 for c in ckas)
    assert any(s["vs"][0]["top"] for s in payload["snapshots"])
    for label in ("baseline · validate 0 · step 0", "epoch 0 · step 2", "epoch 1 · step 4"):
        assert label in two_seeds.stdout
    assert "seed <2> vs seed 1" in two_seeds.stdout
    assert str(two_seeds.report) in two_seeds.stdout and str(two_seeds.recording) in two_seeds.stdout


def test_the_recording_has_a_subtree_per_run_on_the_epoch_timeline(two_seeds):
    from rerun import escape_entity_path_part

    rows = read_rrd(two_seeds.recording)
    for run in map(escape_entity_path_part, ("seed 1", "seed <2>")):
        points = rows[f"/runs/{run}/hidden"]
        assert [row["epoch"] for row in points] == [0, 1, 2]
        assert len(points[0]["Points2D:positions"]) == 80 and points[0]["token"][0].startswith(HOSTILE_TOKEN)
    assert [row["epoch"] for row in rows[f"/metrics/cka/{escape_entity_path_part('seed <2>')}"]] == [0, 1, 2]
    assert [row["step"] for row in rows["/summary"]] == [0, 2, 4]


@needs_chromium
def test_the_report_links_its_panels_offline_and_keeps_hostile_text_as_text(two_seeds, tmp_path):
    payload = read_payload(two_seeds.report)
    first_x = [[run["xyz"][0] for run in s["runs"]] for s in payload["snapshots"]]
    with chromium_page(tmp_path / "profile", 1400, 1400) as (page, errors):
        page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_())
        page.goto(two_seeds.report.as_uri())
        page.wait_for_function("window.nerCompare !== undefined", timeout=20_000)
        page.evaluate("nerCompare.ready")
        for i in (0, 2, 1):  # the slider moves every panel
            page.eval_on_selector("#slider", f"e => {{ e.value = {i}; e.dispatchEvent(new Event('input')); }}")
            page.wait_for_timeout(100)
            shown = page.evaluate("nerCompare.shown()")
            assert [p["snapshot"] for p in shown] == [SNAPSHOTS[i]] * 2
            np.testing.assert_allclose([p["x"] for p in shown], first_x[i])
        ids = page.evaluate("nerCompare.state().selected")
        assert ids == []
        # a real mouse over a point of the first panel shows the same token in the second
        x, y, token = page.evaluate("""() => {
            const d = document.getElementById('panel-0'), fl = d._fullLayout, box = d.getBoundingClientRect();
            const j = 5, t = d.data[0];
            return [box.left + fl._size.l + fl.xaxis.l2p(t.x[j]), box.top + fl._size.t + fl.yaxis.l2p(t.y[j]), j];
        }""")
        page.mouse.move(x, y)
        page.wait_for_timeout(300)
        hovered = page.evaluate("nerCompare.hovered()")
        assert hovered[0] is not None and hovered[0] == hovered[1]
        assert HOSTILE_TOKEN in page.evaluate("document.getElementById('panel-1').querySelector('.hoverlayer').textContent")
        # a box dragged in the second panel selects the same tokens in both
        box = page.evaluate("(() => { const b = document.getElementById('panel-1').querySelector('.nsewdrag')"
                            ".getBoundingClientRect(); return [b.left, b.top, b.width, b.height]; })()")
        page.mouse.move(box[0] + 0.05 * box[2], box[1] + 0.05 * box[3])
        page.mouse.down()
        page.mouse.move(box[0] + 0.6 * box[2], box[1] + 0.6 * box[3], steps=8)
        page.mouse.up()
        page.wait_for_timeout(300)
        selected = page.evaluate("[nerCompare.selected(0), nerCompare.selected(1), nerCompare.state().selected]")
        assert selected[0] and sorted(selected[0]) == sorted(selected[1]) == sorted(selected[2])
        page.evaluate("nerCompare.selectRows(0, [0, 1, 2])")
        assert sorted(page.evaluate("nerCompare.selected(1)")) == sorted(page.evaluate("nerCompare.state().selected"))
        page.click(".tokens tbody tr")  # a table row selects its token everywhere
        page.wait_for_timeout(100)
        assert len(page.evaluate("nerCompare.selected(0)")) == 1
        page.evaluate("Plotly.relayout('panel-0', {'xaxis.range': [-1, 1], 'yaxis.range': [-2, 2]})")  # zoom follows
        page.wait_for_timeout(200)
        assert page.evaluate("document.getElementById('panel-1')._fullLayout.yaxis.range") == [-2, 2]
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.querySelectorAll('img').length") == 0
        assert page.evaluate("document.scripts.length") == 3
        assert page.evaluate("document.querySelector('.tokens td.tok').textContent").startswith(HOSTILE_TOKEN)
        assert "bold</b> &amp;" in page.evaluate("document.querySelector('.tokens td.sent').textContent")
        assert page.evaluate("document.querySelector('.panel:nth-child(2) .name').textContent") == "seed <2>"
        assert errors == []


# ---- refusals and warnings ------------------------------------------------------------------------------


def test_runs_sharing_no_token_id_are_refused(runs, tmp_path, capsys):
    def renumber(snapshot: Snapshot) -> None:
        snapshot.token_id = snapshot.token_id + (1 << 40)

    other = copy_run(runs.seed2, tmp_path / "other", renumber)
    code, out, err = run_cli(capsys, runs.seed1, other, "--out", tmp_path / "r.html")
    assert code == 2 and out == ""
    assert "share no token id" in err and "same validation data" in err and "max_tokens" in err
    assert not (tmp_path / "r.html").exists()


def test_runs_with_other_labels_are_refused_naming_them(runs, tmp_path, capsys):
    def rename(snapshot: Snapshot) -> None:
        snapshot.label_names = [("B-MAKER" if n == "B-BRAND" else n) for n in snapshot.label_names]

    code, _, err = run_cli(capsys, runs.seed1, copy_run(runs.seed2, tmp_path / "o", rename), "--out", tmp_path / "r")
    assert code == 2 and "B-MAKER" in err and "B-BRAND" in err and "label" in err


def test_a_view_missing_in_a_run_is_refused_naming_each_runs_views(runs, tmp_path, capsys):
    code, _, err = run_cli(capsys, runs.seed1, runs.seed2, "--view", "cls", "--out", tmp_path / "r")
    assert code == 2 and "'cls'" in err and "['emissions', 'hidden']" in err and "--view" in err


def drop_tokens(snapshot: Snapshot, n: int = 10) -> None:
    """The snapshot without its last ``n`` sampled tokens, as if it had sampled fewer."""
    keep = slice(0, len(snapshot) - n)
    for name in ("token_id", "sentence_id", "position", "gold", "pred"):
        setattr(snapshot, name, getattr(snapshot, name)[keep])
    snapshot.token, snapshot.word = snapshot.token[keep], snapshot.word[keep]
    snapshot.views = {k: v[keep] for k, v in snapshot.views.items()}


def test_snapshots_and_tokens_missing_in_one_run_warn_and_the_rest_is_compared(runs, tmp_path, capsys):
    shorter = copy_run(runs.seed2, tmp_path / "short", drop_tokens, skip=(SNAPSHOTS[0],))
    with pytest.warns(NerVizWarning) as warned:
        code, out, err = run_cli(capsys, runs.seed1, shorter, "--view", "emissions", "--out", tmp_path / "r")
    assert code == 0, err
    messages = [str(w.message) for w in warned]
    assert any("not in every run" in m and SNAPSHOTS[0] in m and "comparing the 2 snapshots" in m for m in messages)
    assert any("sampled different tokens" in m and "70 of 80/70" in m for m in messages)
    payload = read_payload(tmp_path / "r.html")
    assert [s["name"] for s in payload["snapshots"]] == SNAPSHOTS[1:]
    assert [len(s["idx"]) for s in payload["snapshots"]] == [70, 70]
    assert "baseline" not in out and "epoch 1 · step 4" in out and "of 70" in out


def test_fewer_than_two_runs_are_refused(runs, tmp_path, capsys):
    code, _, err = run_cli(capsys, runs.seed1, "--out", tmp_path / "r")
    assert code == 2 and "at least two" in err


# ---- the command line's shape ---------------------------------------------------------------------------


def test_help_imports_no_heavy_package():
    script = Path(sys.executable).with_name("lightning-ner-viz")
    done = subprocess.run([sys.executable, "-X", "importtime", str(script), "compare", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: lightning-ner-viz compare")
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert not imported & {"numpy", "torch", "plotly", "rerun", "lightning"}


def test_only_the_compare_command_imports_the_comparison_package():
    importers = {name for name, deps in import_graph().items()
                 if any(d.startswith("lightning_ner_viz.comparison") for d in deps)}
    assert {n for n in importers if not n.startswith("lightning_ner_viz.comparison")} <= {"lightning_ner_viz.cli.compare"}
    cli_compare = Path(__file__).parents[1] / "lightning_ner_viz" / "cli" / "compare.py"
    assert "comparison" not in cli_compare.read_text().split("def run(")[0]  # imported inside the handler only
