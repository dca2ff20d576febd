"""`lightning-ner-viz issues`: the label_issues.csv of a real (small) store as a terminal table, the CoNLL review
file, hostile text printed as plain text, and refusals with exit code 2."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from label_issue_data import HOSTILE, LABELS, NAMES, _records, reports, write_store

from lightning_ner_viz.cli import main
from lightning_ner_viz.cli.issues import around_word, width
from lightning_ner_viz.snapshot import split_token_id

SCRIPT = Path(sys.executable).with_name("lightning-ner-viz")
HEAVY = {"torch", "lightning", "numpy", "transformers", "rerun", "wandb", "cleanlab", "sklearn", "scipy", "pandas"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory whose ner_viz folder holds three fit snapshots, their dynamics and label_issues.csv."""
    run = tmp_path_factory.mktemp("run")
    reports(run / "ner_viz")
    return run


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # shutil.get_terminal_size reads it first


def _cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["issues", *args])
        except SystemExit as exit_:  # argparse's usage errors
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def _csv(run: Path) -> list[dict[str, str]]:
    with (run / "ner_viz" / "label_issues.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _rows(out: str) -> list[str]:
    """The table's rows: the lines after the header and the title line, up to the first non-row."""
    lines = out.splitlines()
    assert lines[1].split()[0] == "rank"
    rows = []
    for line in lines[2:]:
        if not line.split() or not line.split()[0].isdigit():
            break
        rows.append(line)
    return rows


def test_table_lists_the_most_suspect_first(run_dir):
    code, out, err = _cli(str(run_dir))
    assert code == 0, err
    rows, issues = _rows(out), _csv(run_dir)
    flagged = sum(r["flagged"] == "True" for r in issues)
    assert out.splitlines()[0] == (f"{len(issues)} most suspect tokens listed, {flagged} flagged, in "
                                   f"{run_dir / 'ner_viz' / 'label_issues.csv'}")
    assert len(rows) == 20
    first = rows[0].split()
    assert first[0] == "1" and f"«{issues[0]['word']}»" in rows[0]
    assert first[1:4] == [issues[0]["given"], "→", issues[0]["suggested"]]
    assert [r.split()[0] for r in rows] == [r["rank"] for r in issues[:20]]
    assert "\033" not in out  # no colour when stdout is not a terminal


def test_top_and_flagged_only(run_dir):
    code, out, _ = _cli(str(run_dir / "ner_viz"), "--top", "3")
    assert code == 0 and len(_rows(out)) == 3
    code, out, _ = _cli(str(run_dir), "--flagged-only")
    flagged = [r["rank"] for r in _csv(run_dir) if r["flagged"] == "True"]
    rows = _rows(out)
    assert code == 0 and 0 < len(flagged) < 20
    assert [r.split()[0] for r in rows] == flagged[:20]
    assert all(r.split()[7] == "yes" for r in rows)  # rank, given, →, suggested, quality, conf, var, flagged


def test_a_narrow_terminal_shortens_the_sentence_around_the_word(run_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "64")
    code, out, _ = _cli(str(run_dir), "--top", "40")
    assert code == 0
    assert all(width(line) <= 64 for line in out.splitlines()[1:])
    for row, issue in zip(_rows(out), _csv(run_dir)):
        if len(issue["word"]) < 10:
            assert f"«{issue['word']}»" in row


def test_around_word_keeps_the_word_and_the_width():
    sentence = " ".join(f"word{i}" for i in range(30)).replace("word15", "«word15»")
    shown = around_word(sentence, "word15", 30)
    assert "«word15»" in shown and width(shown) == 30 and shown.startswith("…") and shown.endswith("…")
    assert around_word("短い «文章» です", "文章", 80) == "短い «文章» です"
    assert width(around_word("前" * 40 + " «語» " + "後" * 40, "語", 21)) <= 21
    assert around_word("", "w", 20) == "«w»"  # the sentence's text was not kept


def test_hostile_text_is_printed_as_plain_text(run_dir, tmp_path, monkeypatch):
    code, out, _ = _cli(str(run_dir), "--top", "200")
    assert code == 0
    assert HOSTILE in out and "</script><script>window.__pwned=2</script>" in out and "&lt;" not in out
    # a word holding terminal escapes and a newline: written as escapes, on one line
    issues = _csv(run_dir)
    issues[0]["word"] = "\x1b[31mred\nword\u202e"
    issues[0]["sentence"] = f"a «{issues[0]['word']}» b"
    root = tmp_path / "ner_viz"
    root.mkdir()
    with (root / "label_issues.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(issues[0]))
        writer.writeheader()
        writer.writerows(issues)
    code, out, _ = _cli(str(tmp_path), "--top", "2")
    assert code == 0 and "\x1b" not in out and "\u202e" not in out
    rows = _rows(out)
    assert len(rows) == 2 and "«\\x1b[31mred\\nword\\u202e»" in rows[0]


def _blocks(path: Path) -> list[tuple[int, list[list[str]]]]:
    blocks = []
    for chunk in path.read_text(encoding="utf-8").split("\n\n"):
        head, *lines = chunk.strip("\n").split("\n")
        assert head.startswith("# sentence_id = ")
        blocks.append((int(head.removeprefix("# sentence_id = ")), [line.split("\t") for line in lines]))
    return blocks


def _gold() -> dict[tuple[int, int], str]:
    """(sentence id, position) to the given label, in the newest validation's record."""
    newest = _records()[0][-1]
    sentence_id, position = split_token_id(newest.token_id)
    return {(s, p): LABELS[g] for s, p, g in zip(sentence_id.tolist(), position.tolist(), newest.gold.tolist())}


def test_conll_marks_exactly_the_listed_issues(run_dir, tmp_path):
    out = tmp_path / "review.conll"
    code, printed, err = _cli(str(run_dir), "--top", "12", "--conll", str(out))
    assert code == 0, err
    listed = _csv(run_dir)[:12]
    sids = list(dict.fromkeys(int(r["sentence_id"]) for r in listed))
    assert f"Wrote {out} ({len(sids)} sentences" in printed
    blocks = _blocks(out)
    assert [sid for sid, _ in blocks] == sids  # most suspect first, each sentence once
    gold = _gold()
    issue_of = {(int(r["sentence_id"]), r["word"]): r for r in listed}
    review = set()
    for sid, lines in blocks:
        assert len(lines) == 4 and all(len(line) == 4 for line in lines)  # every word, no [CLS] / [SEP]
        for w, (word, given, suggested, mark) in enumerate(lines):
            assert given == gold[(sid, w + 1)]
            if mark == "REVIEW":
                review.add((sid, word))
                assert (given, suggested) == (issue_of[(sid, word)]["given"], issue_of[(sid, word)]["suggested"])
            else:
                assert (mark, suggested) == ("-", given)
    assert review == set(issue_of)


def test_conll_of_the_flagged_issues_with_hostile_words(run_dir, tmp_path):
    out = tmp_path / "all.conll"
    code, _, err = _cli(str(run_dir), "--top", "200", "--conll", str(out))
    assert code == 0, err
    words = [line[0] for _, lines in _blocks(out) for line in lines]
    assert HOSTILE in words and "</script><script>window.__pwned=2</script>" in words
    code, _, _ = _cli(str(run_dir), "--flagged-only", "--conll", str(out))
    flagged = {(int(r["sentence_id"]), r["word"]) for r in _csv(run_dir) if r["flagged"] == "True"}
    assert code == 0 and {(sid, line[0]) for sid, lines in _blocks(out) for line in lines if line[3] == "REVIEW"} == flagged


@pytest.mark.parametrize(("setup", "message"), [
    ("missing", "is not a directory"),
    ("no-csv", "label_issues=True (the default) and cleanlab is installed (pip install 'lightning-ner-viz[analysis]')"),
    ("no-columns", "lacks the column(s)"),
    ("damaged", "line 2 is damaged"),
])
def test_bad_input_exits_with_2_and_one_line(tmp_path, setup, message):
    if setup == "no-csv":
        write_store(tmp_path / "ner_viz")  # snapshots, but no fit validation ranked yet
    elif setup != "missing":
        (tmp_path / "label_issues.csv").write_text("rank,word\n1,x\n" if setup == "no-columns" else
                                                   "rank,sentence_id,position,word,given,suggested,quality,confidence,"
                                                   "variability,flagged,sentence\nx,1,1,w,O,O,0.1,0.1,0.1,True,s\n")
    code, out, err = _cli(str(tmp_path / "nope" if setup == "missing" else tmp_path))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert out == ""


def test_bad_options_exit_with_2(run_dir, tmp_path):
    code, _, err = _cli(str(run_dir), "--top", "0")
    assert code == 2 and "usage:" in err and "--top" in err
    code, _, err = _cli(str(run_dir), "--conll", str(tmp_path))
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize("extra", [["--help"], ["{run}"]], ids=["help", "table"])
def test_help_and_table_import_no_heavy_package(run_dir, extra):
    done = subprocess.run([sys.executable, "-X", "importtime", str(SCRIPT), "issues",
                           *(a.format(run=run_dir) for a in extra)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    assert "lightning_ner_viz" in imported and not imported & HEAVY, sorted(imported & HEAVY)
    if extra == ["--help"]:
        assert "WORD<TAB>GIVEN<TAB>SUGGESTED<TAB>REVIEW" in done.stdout


def test_conll_joins_a_words_pieces_and_survives_a_lost_text(run_dir, tmp_path):
    shutil.copytree(run_dir, tmp_path / "run")
    texts_file = tmp_path / "run" / "ner_viz" / NAMES[0] / "dynamics_texts.json"
    meta = json.loads(texts_file.read_text(encoding="utf-8"))
    first, second = (_csv(run_dir)[i] for i in (0, 1))
    tokens, words = meta["texts"][first["sentence_id"]]
    at = int(first["position"])
    assert at >= 2 and first["sentence_id"] != second["sentence_id"]  # a word before it to join with
    meta["texts"][first["sentence_id"]] = [tokens, [*words[:at], words[at - 1], *words[at + 1:]]]  # one word, 2 pieces
    del meta["texts"][second["sentence_id"]]  # that sentence's text was lost
    texts_file.write_text(json.dumps(meta), encoding="utf-8")
    out = tmp_path / "two.conll"
    code, _, err = _cli(str(tmp_path / "run"), "--top", "2", "--conll", str(out))
    assert code == 0, err
    (sid1, lines1), (sid2, lines2) = _blocks(out)
    gold = _gold()
    sid = int(first["sentence_id"])

    def tag(labels: list[str]) -> str:
        return labels[0] if len(set(labels)) == 1 else "|".join(labels)

    pieces = [gold[(sid, at - 1)], gold[(sid, at)]]
    assert sid1 == sid and len(lines1) == 3  # four words, two of them now one
    assert lines1[at - 2] == [tokens[at - 1] + tokens[at], tag(pieces), tag([pieces[0], first["suggested"]]), "REVIEW"]
    assert pieces[1] == first["given"]
    assert (sid2, lines2) == (int(second["sentence_id"]),
                              [[second["word"], second["given"], second["suggested"], "REVIEW"]])
