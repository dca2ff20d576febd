"""``lightning-ner-viz issues``: the most suspect labels of a run as a terminal table, and a CoNLL file to review them.

Printing the table reads only ``label_issues.csv`` (no numpy); ``--conll`` also reads the token dynamics.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_ner_viz.analysis.word_pieces import join_word

if TYPE_CHECKING:
    from lightning_ner_viz.analysis.token_dynamics import SentenceText

    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]
    Row = dict[str, str]

CSV_NAME = "label_issues.csv"  # = label_issue_report.CSV_NAME, not imported: that module imports numpy
TRAIN_CSV_NAME = "train_label_issues.csv"  # = capture.train_dynamics.TRAIN_CSV
NEEDED = ("rank", "sentence_id", "position", "word", "given", "suggested", "quality", "confidence", "variability",
          "flagged", "sentence")
CONLL_HELP = ("also write the sentences holding the listed issues to OUT.conll for review, most suspect first. "
              "Each block: a '# sentence_id = N' line, then one line per word (subword pieces joined): "
              "WORD<TAB>GIVEN<TAB>SUGGESTED<TAB>REVIEW for a word holding a listed issue, else "
              "WORD<TAB>GIVEN<TAB>GIVEN<TAB>-; a blank line between blocks. GIVEN is the word's label in the newest "
              "validation ('--' when unknown); a word whose pieces carry different labels shows them joined with "
              "'|' (e.g. B-X|I-X), and so does its SUGGESTED")


def add_issues_parser(subparsers: SubParsers) -> argparse.ArgumentParser:
    """Add the ``issues`` subcommand to ``subparsers``."""
    parser = subparsers.add_parser(
        "issues", help="print the most suspect labels (label_issues.csv) as a table, or write them for review",
        description="Print the tokens whose given label is most likely wrong, from the label_issues.csv the "
        "callback writes after each fit validation: rank, given -> suggested label, cleanlab's label quality, the "
        "Dataset Cartography confidence and variability, whether cleanlab flags it, and the word in its sentence.",
    )
    parser.add_argument("directory", metavar="DIR",
                        help="the run directory (default_root_dir) or its ner_viz folder, which holds label_issues.csv")
    parser.add_argument("--top", type=_positive, default=20, metavar="N", help="rows to list (default: %(default)s)")
    parser.add_argument("--flagged-only", action="store_true", help="list only the tokens cleanlab flags")
    parser.add_argument("--conll", metavar="OUT.conll", help=CONLL_HELP)
    parser.add_argument("--train", action="store_true",
                        help="the training set's issues (train_label_issues.csv, written with train_dynamics=True)")
    parser.set_defaults(handler=run)
    return parser


def _positive(value: str) -> int:
    if not value.strip().isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1; got {value!r}")
    return int(value)


def run(args: argparse.Namespace) -> int:
    """The ``issues`` handler: print the table, then write the CoNLL file when asked."""
    path = find_csv(args.directory, TRAIN_CSV_NAME if args.train else CSV_NAME)
    rows = read_rows(path)
    listed = [row for row in rows if _flagged(row) or not args.flagged_only][: args.top]
    color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    lines = [f"{len(rows)} most suspect tokens listed, {sum(map(_flagged, rows))} flagged, in {path}",
             *issue_table(listed, shutil.get_terminal_size().columns, color=color)]
    if not listed:
        lines.append("No flagged tokens." if args.flagged_only else "No ranked tokens.")
    if args.conll:  # written before printing, so a closed pipe (| head) cannot stop it
        out = Path(args.conll).expanduser()
        blocks = write_conll(path.parent / "train_dynamics" if args.train else path.parent, listed, out)
        lines.append(f"Wrote {out.resolve()} ({blocks} sentences; the words of the {len(listed)} listed issues "
                     f"marked REVIEW).")
    try:
        for line in lines:
            print(_encodable(line))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def find_csv(directory: str | os.PathLike[str], name: str = CSV_NAME) -> Path:
    """The ``label_issues.csv`` (or ``name``) of a run directory or snapshot root.

    Raises:
        FileNotFoundError: when the directory does not exist or holds no CSV (saying why it may be missing).
    """
    from lightning_ner_viz.store import resolve_snapshot_root

    if not Path(directory).expanduser().is_dir():
        raise FileNotFoundError(f"{directory} is not a directory; give the run directory (the Trainer's "
                                f"default_root_dir) or its ner_viz snapshot folder.")
    root = resolve_snapshot_root(directory).root
    when = "epoch when train_dynamics=True" if name == TRAIN_CSV_NAME else "validation when label_issues=True (the default)"
    if not (root / name).is_file():
        raise FileNotFoundError(f"No {name} in {root}: the callback writes it after each fit {when} and cleanlab is "
                                f"installed (pip install 'lightning-ner-viz[analysis]'); if both hold, none has finished yet.")
    return root / name


def read_rows(path: Path) -> list[Row]:
    """The CSV's rows, most suspect first.

    Raises:
        ValueError: when it lacks a column or a number does not parse, naming the file.
    """
    again = "Delete it; the next fit validation writes it again."
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in NEEDED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path} lacks the column(s) {', '.join(missing)}: not a {CSV_NAME} of this "
                             f"version. {again}")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        try:
            for c in ("rank", "sentence_id", "position"):
                int(row[c])
            for c in ("quality", "confidence", "variability"):
                float(row[c])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path} line {line} is damaged ({err}). {again}") from err
    return rows


def _flagged(row: Row) -> bool:
    return row["flagged"].strip().lower() in ("true", "1", "yes")


# ---- the table ----------------------------------------------------------------------------------------------


def plain(text: str) -> str:
    """``text`` with control and format characters (escapes, bidi overrides, newlines) written as ``\\x..`` escapes."""
    return "".join(repr(c)[1:-1] if unicodedata.category(c).startswith("C") else c for c in text)


def _char_width(c: str) -> int:
    return 0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def width(text: str) -> int:
    """Columns ``text`` takes in a terminal (wide characters count twice)."""
    return sum(map(_char_width, text))


def clip(text: str, columns: int, *, left: bool = False) -> str:
    """``text`` cut to ``columns`` with ``…`` where it was cut (its start instead when ``left``)."""
    if width(text) <= columns:
        return text
    kept: list[str] = []
    used = 1
    for c in reversed(text) if left else text:
        if used + _char_width(c) > columns:
            break
        kept.append(c)
        used += _char_width(c)
    return ("…" + "".join(reversed(kept)) if left else "".join(kept) + "…") if columns > 0 else ""


def around_word(sentence: str, word: str, columns: int) -> str:
    """The sentence (its word marked «word») shortened to ``columns`` around the marked word."""
    marked = f"«{word}»"
    start = sentence.find(marked)
    if start < 0 and "«" in sentence and "»" in sentence[sentence.find("«"):]:
        start = sentence.find("«")
        marked = sentence[start:sentence.find("»", start) + 1]
    elif start < 0:  # the word is not in the sentence text (not kept, or left out as a special token)
        sentence, start = f"{marked} · {sentence}" if sentence else marked, 0
    if width(sentence) <= columns:
        return sentence
    before, after = sentence[:start], sentence[start + len(marked):]
    room = columns - width(marked)
    if room < 2:
        return clip(marked, columns)
    left = min(width(before), max(room // 2, room - width(after)))
    return clip(before, left, left=True) + marked + clip(after, room - left)


def issue_table(rows: list[Row], columns: int, *, color: bool = False) -> list[str]:
    """The rows as aligned lines of at most ``columns`` terminal columns, a title line first (none without rows)."""
    if not rows:
        return []
    arrow = "→" if _encodable("→") == "→" else "->"
    titles = ("rank", f"given {arrow} suggested", "quality", "conf", "var", "flagged")
    cells = [(row["rank"], f"{plain(row['given'])} {arrow} {plain(row['suggested'])}",
              *(f"{float(row[c]):.3f}" for c in ("quality", "confidence", "variability")),
              "yes" if _flagged(row) else "") for row in rows]
    widths = [max(width(t), *(width(cell[i]) for cell in cells)) for i, t in enumerate(titles)]

    def line(values: tuple[str, ...], text: str) -> str:
        pads = [" " * (widths[i] - width(value)) for i, value in enumerate(values)]
        aligned = [v + pad if i in (1, 5) else pad + v for i, (v, pad) in enumerate(zip(values, pads))]
        return clip("  ".join([*aligned, text]), columns)

    room = max(columns - sum(widths) - 2 * len(widths), 3)
    lines = [line(titles, "word in its sentence")]
    for row, cell in zip(rows, cells):
        lines.append(line(cell, around_word(plain(row["sentence"]), plain(row["word"]), room)))
    if color:
        lines[0] = f"\033[1m{lines[0]}\033[0m"
    return lines


def _encodable(line: str) -> str:
    """``line`` with what stdout's encoding cannot write as backslash escapes (never a UnicodeEncodeError)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return line.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return line


# ---- the CoNLL review file ----------------------------------------------------------------------------------


def write_conll(root: Path, rows: list[Row], out: Path) -> int:
    """Write the sentences holding ``rows``, in the order they first appear, as CoNLL review blocks to ``out``.

    Words and given labels come from the newest fit validation's token dynamics and the sentence
    texts of all of them (see :data:`CONLL_HELP` for the format).

    Returns:
        The number of sentences written.

    Raises:
        ValueError: when the snapshots hold no token dynamics, or ``out`` is a directory.
    """
    from lightning_ner_viz.analysis.token_dynamics import TokenDynamics
    from lightning_ner_viz.snapshot import split_token_id
    from lightning_ner_viz.store import SnapshotStore

    if out.is_dir():
        raise ValueError(f"--conll {out} is a directory; give a file name, e.g. {out / 'label_issues.conll'}.")
    store = SnapshotStore(root)
    names = [k.name for k in store.keys() if k.stage == "fit" and TokenDynamics.exists(store.directory(k.name))]
    if not names:
        raise ValueError(f"No token dynamics (dynamics.npz) in the fit snapshots under {root}, which --conll reads; "
                         f"print the table without --conll.")
    newest = TokenDynamics.load(store.directory(names[-1]), probs=False)
    label_names = newest.label_names or store.load(names[-1]).label_names
    sids = list(dict.fromkeys(int(row["sentence_id"]) for row in rows))
    texts = {sid: newest.texts[sid] for sid in sids if sid in newest.texts}
    for name in reversed(names[:-1]):  # each sentence's text is in the validation that first saw it
        if len(texts) == len(sids):
            break
        older = TokenDynamics.load(store.directory(name), probs=False).texts
        texts.update({sid: older[sid] for sid in sids if sid in older and sid not in texts})
    sentence_id, position = split_token_id(newest.token_id)
    gold = {(s, p): label_names[g] if 0 <= g < len(label_names) else "?"
            for s, p, g in zip(sentence_id.tolist(), position.tolist(), newest.gold.tolist()) if s in texts}
    issues: dict[tuple[int, int], Row] = {}
    for row in rows:
        issues.setdefault((int(row["sentence_id"]), int(row["position"])), row)
    blocks = [conll_block(sid, texts.get(sid), gold, issues) for sid in sids]
    out.write_text("\n".join(blocks), encoding="utf-8")
    return len(blocks)


def conll_block(sid: int, text: SentenceText | None, gold: dict[tuple[int, int], str],
                issues: dict[tuple[int, int], Row]) -> str:
    """One sentence's block: its comment, then one line per word (the listed words alone when its text was not kept)."""
    from lightning_ner_viz.analysis.token_dynamics import SentenceText

    if text is None:
        at = {p: row["word"] for (s, p), row in issues.items() if s == sid}
        span = range(max(at) + 1)
        text = SentenceText([at.get(i, "") for i in span], [i if i in at else -1 for i in span])
    words: dict[int, list[int]] = {}
    for pos, w in enumerate(text.words):
        words.setdefault(w, []).append(pos)
    lines = [f"# sentence_id = {sid}"]
    for w, positions in words.items():
        pieces = [text.tokens[p] for p in positions]
        labelled = [p for p in positions if (sid, p) in gold or (sid, p) in issues]
        if not labelled and (w < 0 or (len(pieces) == 1 and pieces[0][:1] in "[<" and pieces[0][-1:] in "]>")):
            continue  # a special token ([CLS], <s>, ...)
        given = [gold.get((sid, p)) or issues[(sid, p)]["given"] for p in labelled] or ["--"]
        suggested = [issues[(sid, p)]["suggested"] if (sid, p) in issues else g for p, g in zip(labelled, given)]
        review = any((sid, p) in issues for p in labelled)
        lines.append("\t".join([plain(join_word(pieces)) or "_", _tag(given),
                                _tag(suggested or given), "REVIEW" if review else "-"]))
    return "\n".join(lines) + "\n"


def _tag(labels: list[str]) -> str:
    """One label, or the labels of a word's pieces joined with ``|`` when they differ."""
    return plain(labels[0] if len(set(labels)) == 1 else "|".join(labels))
