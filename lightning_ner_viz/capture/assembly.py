"""Build an epoch's :class:`~lightning_ner_viz.snapshot.Snapshot` from its gathered rows (rank zero)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lightning_ner_viz.analysis.token_dynamics import SentenceText, TokenDynamics
from lightning_ner_viz.analysis.word_pieces import join_word
from lightning_ner_viz.capture.layers import LAYER_PREFIX, split_layer_views
from lightning_ner_viz.capture.sentences import Sentence, known_word_ids, sentences_from_table
from lightning_ner_viz.capture.text import TokenTexts
from lightning_ner_viz.keys import SnapshotKey
from lightning_ner_viz.labels import EntityTypes
from lightning_ner_viz.snapshot import Snapshot, split_token_id

Columns = dict[str, np.ndarray]


@dataclass
class GatheredDynamics:
    """The whole-set pass of one validation, from every rank (see :mod:`lightning_ner_viz.capture.dynamics`).

    Attributes:
        rows: ``token_id``, ``gold``, ``pred``, ``gold_prob``, ``other_prob`` and ``probs``, sorted by token id.
        texts: per token of the sentences first seen: ``sid``, ``input_id`` and ``word_id``.
        seen: labelled tokens seen on every rank (more than the rows when a subset was kept).
        source: ``"softmax"`` or ``"crf_marginals"``.
    """

    rows: Columns
    texts: Columns
    seen: int
    source: str


@dataclass
class GatheredEpoch:
    """One epoch's selected rows from every rank: plain arrays, handed from the capture to the rendering.

    Attributes:
        epoch: the trainer's epoch.
        step: the trainer's global step.
        views: the token views, e.g. ``("hidden", "emissions")``.
        tokens: the selected tokens' columns, sorted by token id: ``token_id``, ``label``, ``pred``,
            ``input_id``, ``priority`` and one array of shape (n_tokens, dim) per view.
        groups: group name (``entities``, ``cls``) to its selected rows.
        sentence_table: the selected rows' sentences (see :mod:`lightning_ner_viz.capture.sentences`).
        stats: the capture's counters on rank zero.
        stage: ``"fit"`` or ``"validate"`` (see :mod:`lightning_ner_viz.keys`).
        run: for ``validate``: which of the callback's ``validate()`` calls.
        confusion: full-set gold × predicted token counts (see :class:`~lightning_ner_viz.capture.scores.FullSetScores`).
        span_counts: full-set span-error counts, one row per entity type in ``span_types``.
        dynamics: the whole-set pass of every labelled token, when it was recorded.
    """

    epoch: int
    step: int
    views: tuple[str, ...]
    tokens: Columns
    groups: dict[str, Columns] = field(default_factory=dict)
    sentence_table: np.ndarray = field(default_factory=lambda: np.zeros((0, 1), dtype=np.int64))
    stats: dict[str, int] = field(default_factory=dict)
    stage: str = "fit"
    run: int = 0
    confusion: np.ndarray | None = None
    span_counts: np.ndarray | None = None
    span_types: list[str] = field(default_factory=list)
    dynamics: GatheredDynamics | None = None

    @property
    def name(self) -> str:
        """The snapshot's name (its directory), see :class:`~lightning_ner_viz.keys.SnapshotKey`."""
        return SnapshotKey(self.stage, self.epoch, self.step, self.run).name  # type: ignore[arg-type]


def assemble_snapshot(gathered: GatheredEpoch, texts: TokenTexts, label_names: list[str],
                      entity_types: EntityTypes | None) -> Snapshot:
    """The epoch's Snapshot: token, word and sentence text, entity-level tags, and the groups."""
    sentences = sentences_from_table(gathered.sentence_table)
    columns = gathered.tokens
    cloud_views, layer_names = split_layer_views(gathered.views)
    sentence_id, position = split_token_id(columns["token_id"])
    used = {int(s): sentences[int(s)] for s in np.unique(sentence_id) if int(s) in sentences}
    tokens, words, sentence_text = texts.describe(
        {sid: (rec["input_ids"], known_word_ids(rec)) for sid, rec in used.items()}, sentence_id, position)
    tags = {sid: (rec["labels"][rec["labels"] >= 0], rec["pred"][rec["labels"] >= 0]) for sid, rec in used.items()}
    groups = {}
    if "entities" in gathered.groups and entity_types is not None:
        rows = gathered.groups["entities"]
        sids = [int(s) for s in np.unique(split_token_id(rows["token_id"])[0]) if int(s) in sentences]
        tokens_of = {s: texts.tokens_and_words(sentences[s]) for s in sids}
        sentence_text = {**_texts(texts, sentences, sids), **sentence_text}
        groups["entities"] = entity_snapshot(gathered, tokens_of, entity_types, sentence_text)
    if "cls" in gathered.groups and entity_types is not None:
        sids = [int(s) for s in split_token_id(gathered.groups["cls"]["token_id"])[0] if int(s) in sentences]
        groups["cls"] = cls_snapshot(gathered, entity_types, _texts(texts, sentences, sids))
    return Snapshot(
        epoch=gathered.epoch, step=gathered.step, stage=gathered.stage, run=gathered.run,
        token_id=columns["token_id"], sentence_id=sentence_id,
        position=position, token=tokens, word=words, gold=columns["label"], pred=columns["pred"],
        views={v: columns[v] for v in cloud_views}, layers={n: columns[LAYER_PREFIX + n] for n in layer_names},
        label_names=label_names, sentences=sentence_text,
        sentence_tags=tags, groups=groups, stats=dict(gathered.stats),
        confusion=gathered.confusion, span_counts=gathered.span_counts, span_types=list(gathered.span_types),
        dynamics=None if gathered.dynamics is None else token_dynamics(gathered.dynamics, texts, label_names),
    )


def token_dynamics(gathered: GatheredDynamics, texts: TokenTexts, label_names: list[str]) -> TokenDynamics:
    """The validation's :class:`TokenDynamics`, with the new sentences' token strings decoded."""
    rows, new = gathered.rows, gathered.texts
    decoded = {}
    order = np.argsort(new["sid"], kind="stable")  # a sentence's tokens stay in order
    sids, starts = np.unique(new["sid"][order], return_index=True)
    for sid, at in zip(sids.tolist(), np.split(order, starts[1:])):
        tokens, words = texts.tokens_and_words({"input_ids": new["input_id"][at], "word_ids": new["word_id"][at]})
        decoded[sid] = SentenceText(tokens, words)
    return TokenDynamics(token_id=rows["token_id"], gold=rows["gold"], pred=rows["pred"], gold_prob=rows["gold_prob"],
                         other_prob=rows["other_prob"], probs=rows["probs"], source=gathered.source,
                         seen=gathered.seen, texts=decoded, label_names=list(label_names))


def _texts(texts: TokenTexts, sentences: dict[int, Sentence], sids: list[int]) -> dict[int, str]:
    return texts.sentence_texts({s: (sentences[s]["input_ids"], known_word_ids(sentences[s])) for s in sids})


def entity_snapshot(gathered: GatheredEpoch, tokens_of: dict[int, tuple[list[str], list[int]]],
                    types: EntityTypes, sentences: dict[int, str]) -> Snapshot:
    """A Snapshot whose rows are entities: text = the span's words, class = the entity type.

    ``tokens_of`` maps a sentence id to its tokens and each token's word index.
    """
    columns = gathered.groups["entities"]
    sentence_id, start = split_token_id(columns["token_id"])
    texts = []
    for sid, a, b in zip(sentence_id.tolist(), start.tolist(), columns["end"].tolist()):
        tokens, words = tokens_of.get(sid, ([], []))
        by_word: dict[int, list[str]] = {}
        for token, word in zip(tokens[a : b + 1], words[a : b + 1]):
            by_word.setdefault(word, []).append(token)
        texts.append(" ".join(join_word(p) for p in by_word.values()) or "?")
    return Snapshot(
        epoch=gathered.epoch, step=gathered.step, stage=gathered.stage, run=gathered.run,
        token_id=columns["token_id"], sentence_id=sentence_id,
        position=start, token=texts, word=texts, gold=columns["label"], pred=columns["pred"],
        views={"entities": columns["entities"]}, label_names=types.names,
        sentences={int(s): sentences.get(int(s), "") for s in np.unique(sentence_id)},
    )


def cls_snapshot(gathered: GatheredEpoch, types: EntityTypes, sentences: dict[int, str]) -> Snapshot:
    """A Snapshot whose rows are sentences: their first ([CLS]) token's vector, class = main entity type."""
    columns = gathered.groups["cls"]
    sentence_id = split_token_id(columns["token_id"])[0]
    texts = [sentences.get(int(s), "?") for s in sentence_id]
    return Snapshot(
        epoch=gathered.epoch, step=gathered.step, stage=gathered.stage, run=gathered.run,
        token_id=columns["token_id"], sentence_id=sentence_id,
        position=np.zeros_like(sentence_id), token=texts, word=texts, gold=columns["label"], pred=columns["pred"],
        views={"cls": columns["cls"]}, label_names=types.names,
        sentences={int(s): t for s, t in zip(sentence_id, texts)},
    )
