"""One validation epoch's capture: per-batch selection on device, then a gather into a Snapshot."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from lightning_ner_viz.capture import gather
from lightning_ner_viz.capture.batch import TokenBatch
from lightning_ner_viz.capture.entities import EntityTypes, cls_snapshot, entity_snapshot, span_begins, span_means, span_members
from lightning_ner_viz.capture.sampling import TokenSampler, select_final, token_priority
from lightning_ner_viz.snapshot import POSITION_BITS, Snapshot
from lightning_ner_viz.capture.text import TokenTexts

_INT_COLUMNS = ("token_id", "label", "priority", "pred", "input_id")
_GROUP_INT_COLUMNS = ("token_id", "label", "priority", "pred")
_SENTENCE_FIELDS = ("input_ids", "word_ids", "labels", "pred")
_PAD = -999


class EpochCollector:
    """Collects one epoch's sampled tokens on this rank and gathers them across ranks.

    Args:
        views: the captured views, e.g. ``("hidden", "emissions")``.
        num_labels: number of gold labels.
        max_tokens: tokens per epoch in the snapshot.
        seed: sampling seed.
        crf: a ``torchcrf.CRF`` whose ``decode`` gives predictions, or ``None`` for argmax.
        entity_types: when given, also sample gold entity spans for the ``entities`` view.
        entity_view: sample entity spans (with ``entity_types``).
        cls_view: also sample one row per sentence (its first token's hidden vector) for the
            ``cls`` view; needs ``entity_types`` for the sentence classes.
    """

    def __init__(self, views: tuple[str, ...], num_labels: int, max_tokens: int, seed: int, crf: nn.Module | None,
                 entity_types: EntityTypes | None = None, cls_view: bool = False, entity_view: bool = True) -> None:
        self.views = views
        self.num_labels = num_labels
        self.sampler = TokenSampler(max_tokens, num_labels, seed)
        self.crf = crf
        self._sentences: dict[int, dict[str, np.ndarray]] = {}
        self._sentence_chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        """Per batch: the sentence ids, fields (rows, len(_SENTENCE_FIELDS), seq_len) and lengths of the rows
        that had a kept token, entity or sentence; turned into ``sentences`` only when needed."""
        self._chunks_in_dict = 0
        self._gathered_sentences: np.ndarray | None = None
        self._tokens_seen = 0
        self._valid_total: torch.Tensor | int = 0  # valid tokens before the non-finite filter (on device)
        self._batches = 0
        self._dims: dict[str, int] = {}
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self.entity_types = entity_types
        self.entity_sampler = (
            TokenSampler(max_tokens, len(entity_types.names), seed) if entity_types and entity_view else None
        )
        self.entity_columns: dict[str, torch.Tensor] | None = None
        self.cls_sampler = TokenSampler(max_tokens, len(entity_types.names), seed) if entity_types and cls_view else None
        self.cls_columns: dict[str, torch.Tensor] | None = None
        self._tracked: torch.Tensor | None = None  # sorted token ids to keep, instead of sampling
        self._tracked_on: dict[torch.device, torch.Tensor] = {}
        self._tracked_chunks: list[dict[str, torch.Tensor]] = []

    def track(self, token_ids: torch.Tensor | None) -> None:
        """Keep exactly these tokens (an earlier epoch's selection) wherever they are seen, instead of sampling.

        Call before the first batch. The tokens' label counts are still taken, and the entity and
        cls views are still sampled. Unlike sampling, a tracked token is kept even when the
        validation set grew and new tokens would have outranked it.
        """
        self._tracked = None if token_ids is None else torch.sort(torch.as_tensor(token_ids, dtype=torch.long)).values
        self._tracked_on = {}

    @property
    def stats(self) -> dict[str, int]:
        """``tokens_seen`` (valid, finite), ``nonfinite_filtered`` (NaN/Inf tokens left out) and ``batches``."""
        return {"tokens_seen": self._tokens_seen, "nonfinite_filtered": int(self._valid_total) - self._tokens_seen,
                "batches": self._batches}

    @property
    def sentences(self) -> dict[int, dict[str, np.ndarray]]:
        """Sentence id to its unpadded rows: ``input_ids``, ``word_ids`` (-2 = unknown), ``labels``, ``pred``.

        After :meth:`finish` on rank zero: the sentences of every rank's selected rows.
        """
        for sids, fields, lengths in self._sentence_chunks[self._chunks_in_dict:]:  # views, not copies
            for sid, row, length in zip(sids.tolist(), fields, lengths.tolist()):
                if sid not in self._sentences:
                    self._sentences[sid] = {k: row[f, :length] for f, k in enumerate(_SENTENCE_FIELDS)}
        self._chunks_in_dict = len(self._sentence_chunks)
        if self._gathered_sentences is not None:
            self._merge_sentences(self._gathered_sentences)
            self._gathered_sentences = None
        return self._sentences

    def predictions(self, emissions: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Predicted label ids of shape (batch, seq_len): CRF Viterbi decode, else argmax."""
        if self.crf is None:
            return emissions.argmax(-1)
        mask = attention_mask.bool()
        mask[:, 0] = True  # torchcrf requires the first timestep on
        paths = self.crf.decode(emissions, mask=mask)
        pred = torch.full(mask.shape, -1, dtype=torch.long, device=emissions.device)
        for row, path in enumerate(paths):
            pred[row, : len(path)] = torch.as_tensor(path, device=emissions.device)
        return pred

    def _type_tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The entity types' ``type_of`` and ``begins`` on ``device`` (copied once)."""
        assert self.entity_types is not None
        if device not in self._tables:
            self._tables[device] = (self.entity_types.type_of.to(device), self.entity_types.begins.to(device))
        return self._tables[device]

    def add_batch(self, batch: TokenBatch, outputs: dict[str, torch.Tensor], example_ids: torch.Tensor) -> None:
        """Offer one batch: every valid token is a candidate; only likely winners leave the device.

        The per-batch work is a fixed, small number of tensor operations on the device, with
        one host synchronisation for the candidates (and one for the label check); the wide
        columns (hidden vectors, emissions) are gathered for the kept tokens only. On a CPU
        they run on this thread alone (see :func:`_one_thread`).

        Args:
            batch: the batch's ids, mask and labels.
            outputs: view name to the captured tensor of shape (batch, seq_len, dim).
            example_ids: array of shape (batch,), each row's index in the validation set (-1 to skip).
        """
        with _one_thread(batch.labels.device):
            self._add_batch(batch, outputs, example_ids)

    def _add_batch(self, batch: TokenBatch, outputs: dict[str, torch.Tensor], example_ids: torch.Tensor) -> None:
        self._batches += 1
        seq = batch.labels.shape[1]
        valid = batch.valid & (example_ids >= 0)[:, None]
        self._valid_total = self._valid_total + valid.sum()
        for view, tensor in outputs.items():
            self._dims[view] = tensor.shape[-1]
            valid &= _finite_rows(tensor)
        flat = valid.flatten().nonzero().squeeze(1)
        self._tokens_seen += flat.numel()
        if flat.numel() == 0:
            return
        labels = batch.labels.flatten()[flat].long()
        low, high = torch.aminmax(labels)
        if int(high) >= self.num_labels or int(low) < 0:
            raise ValueError(
                f"Gold labels must be in [0, {self.num_labels}) or -100 (ignored); found "
                f"{int(low)}..{int(high)}. Check `label_names` and the model's number of labels."
            )
        if "emissions" in outputs:
            pred = self.predictions(outputs["emissions"], batch.attention_mask)
        else:
            pred = torch.full_like(batch.labels, -1)
        # every position's token id and priority: tokens, entity spans (their first token) and
        # sentences (position 0) share them, so the hash runs once per batch
        ids = (example_ids.long() << POSITION_BITS)[:, None] | torch.arange(seq, device=flat.device)
        ids = ids.flatten()

        def columns(kept: torch.Tensor) -> dict[str, torch.Tensor]:
            at = flat[kept]
            found = {"pred": pred.flatten()[at].long(), "input_id": batch.input_ids.flatten()[at].long()}
            found.update({v: _rows_at(t, at).float() for v, t in outputs.items()})
            return found

        priority: torch.Tensor | None = None
        if self._tracked is not None:  # a later epoch: the tokens are known, nothing to rank
            kept = self._keep_tracked(ids[flat], labels, columns)
        else:
            priority = token_priority(ids, self.sampler.seed)
            kept = self.sampler.update(ids[flat], labels, columns, priority=priority[flat])
        remember = [flat[kept] // seq] if kept is not None else []
        if self.entity_sampler is not None and "hidden" in outputs:
            remember += self._add_entities(batch, outputs["hidden"], pred, valid, ids, priority)
        if self.cls_sampler is not None and "hidden" in outputs:
            remember += self._add_cls(batch, outputs["hidden"], pred, valid, ids, priority)
        if remember:
            self._remember_sentences(remember, batch, example_ids, pred)

    def _keep_tracked(self, token_id: torch.Tensor, labels: torch.Tensor,
                      columns: Callable[[torch.Tensor], dict[str, torch.Tensor]]) -> torch.Tensor | None:
        """Count the labels and keep the tracked tokens among this batch's valid ones; their indices, or ``None``."""
        assert self._tracked is not None
        self.sampler.count(labels)
        device = token_id.device
        if device not in self._tracked_on:
            self._tracked_on[device] = self._tracked.to(device)
        kept = torch.isin(token_id, self._tracked_on[device]).nonzero().squeeze(1)
        if kept.numel() == 0:
            return None
        ints = torch.stack([token_id[kept], labels[kept].long()]).cpu()
        self._tracked_chunks.append({"token_id": ints[0], "label": ints[1],
                                     **{k: v.cpu() for k, v in columns(kept).items()}})
        return kept

    def _tracked_rows(self) -> dict[str, torch.Tensor]:
        """The tracked tokens kept this epoch, as one set of columns with their priorities (CPU)."""
        if not self._tracked_chunks:
            return {}
        merged = {k: torch.cat([c[k] for c in self._tracked_chunks]) for k in self._tracked_chunks[0]}
        merged["priority"] = token_priority(merged["token_id"], self.sampler.seed)
        return merged

    def _add_cls(self, batch: TokenBatch, hidden: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor,
                 ids: torch.Tensor, priority: torch.Tensor | None) -> list[torch.Tensor]:
        """One row per sentence: the first token's vector, class = the most frequent gold entity type."""
        assert self.entity_types is not None and self.cls_sampler is not None
        rows = valid.any(1).nonzero().squeeze(1)
        if rows.numel() == 0:
            return []
        type_of, _ = self._type_tables(pred.device)
        n_types = len(self.entity_types.names)

        def dominant(labels: torch.Tensor) -> torch.Tensor:
            kinds = torch.where(valid[rows], type_of[labels[rows].clamp(min=0)], 0)
            counts = torch.nn.functional.one_hot(kinds, n_types)[..., 1:].sum(1)
            return torch.where(counts.sum(1) > 0, counts.argmax(1) + 1, 0)

        first = rows * valid.shape[1]  # position 0 of each row
        columns = {"cls": hidden[rows, 0].float(), "pred": dominant(pred)}
        kept = self.cls_sampler.update(ids[first], dominant(batch.labels), columns, priority=_at(priority, first))
        return [] if kept is None else [rows[kept]]

    def _add_entities(self, batch: TokenBatch, hidden: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor,
                      ids: torch.Tensor, priority: torch.Tensor | None) -> list[torch.Tensor]:
        """One row per gold entity span: decode the span starts, then average only the spans that can make the cut."""
        assert self.entity_sampler is not None
        type_of, begins = self._type_tables(pred.device)
        kind, begin = span_begins(batch.labels, valid, type_of, begins)
        starts = begin.flatten().nonzero().squeeze(1)
        if starts.numel() == 0:
            return []
        types = kind.flatten()[starts]
        self.entity_sampler.count(types)
        span_priority = _at(priority, starts, ids, self.entity_sampler.seed)
        chosen = (span_priority < self.entity_sampler._bar(span_priority.device)[types]).nonzero().squeeze(1)
        if chosen.numel() == 0:
            return []
        every = chosen.numel() == starts.numel()  # common until the bars tighten: no renumbering
        tokens, span = span_members(kind, begin) if every else span_members(kind, begin, chosen, starts.numel())
        lengths = torch.bincount(span, minlength=chosen.numel())
        at = starts[chosen]
        columns = {
            "entities": span_means(_rows_at(hidden, tokens), span, chosen.numel()),
            "pred": type_of[pred.flatten()[at].clamp(min=0)],
            "end": at % valid.shape[1] + lengths - 1,
        }
        kept = self.entity_sampler.update(ids[at], types[chosen], columns, count=False, priority=span_priority[chosen])
        return [] if kept is None else [at[kept] // valid.shape[1]]

    def _remember_sentences(self, rows: list[torch.Tensor], batch: TokenBatch, example_ids: torch.Tensor,
                            pred: torch.Tensor) -> None:
        """Keep the ids, word ids, gold and predicted labels of these batch rows' sentences (one copy to the CPU)."""
        marked = torch.zeros(batch.labels.shape[0], dtype=torch.bool, device=batch.labels.device)
        for r in rows:
            marked[r] = True
        index = marked.nonzero().squeeze(1)
        word_ids = batch.word_ids if batch.word_ids is not None else torch.full_like(batch.input_ids, -2)
        fields = torch.stack([t.long() for t in (batch.input_ids, word_ids, batch.labels, pred)], 1)[index]
        self._sentence_chunks.append((example_ids[index].cpu().numpy(), fields.cpu().numpy(),
                                      batch.attention_mask[index].sum(1).cpu().numpy()))

    def finish(self, device: torch.device, tracked: torch.Tensor | None = None) -> dict[str, torch.Tensor] | None:
        """Gather every rank's candidates and select the epoch's tokens (a collective call).

        Every rank must call this, even with no tokens. Returns the selected columns
        on rank zero (``None`` elsewhere, or when no rank saw a valid token).

        Args:
            device: where collectives run.
            tracked: token ids chosen in an earlier epoch. When given, the epoch keeps
                exactly those of them it saw, so trajectories stay comparable. After
                :meth:`track` the batches kept exactly those already; without it they are
                looked up among the sampler's candidates (which a grown validation set
                may have pushed out).
        """
        with _one_thread(torch.device("cpu")):  # the selection runs on CPU tensors; collectives on ``device``
            return self._finish(device, tracked)

    def _finish(self, device: torch.device, tracked: torch.Tensor | None) -> dict[str, torch.Tensor] | None:
        counts = gather.all_reduce_sum(torch.as_tensor(self.sampler.label_counts), device).numpy()
        dims = torch.tensor([self._dims.get(v, 0) for v in self.views], dtype=torch.long)
        dims = gather.all_reduce_max(dims, device).tolist()
        if self._tracked is not None:
            local = self._tracked_rows()
        elif tracked is not None:
            local = self.sampler.candidates()
            if local:
                local = {k: v[torch.isin(local["token_id"], tracked)] for k, v in local.items()}
        else:
            local = self.sampler.candidates()
            local = select_final(local, counts, self.sampler.max_tokens)
        columns = {k: local.get(k, torch.zeros(0, dtype=torch.long)) for k in _INT_COLUMNS}
        columns.update({v: local.get(v, torch.zeros(0, d)) for v, d in zip(self.views, dims)})
        gathered = gather.gather_columns(columns, device)
        wanted = [columns["token_id"].numpy()]
        dim = dims[self.views.index("hidden")] if "hidden" in self.views else 0
        if self.entity_sampler is not None:
            self.entity_columns, ids = self._finish_group(self.entity_sampler, "entities", ("end",), dim, device)
            wanted.append(ids)
        if self.cls_sampler is not None:
            self.cls_columns, ids = self._finish_group(self.cls_sampler, "cls", (), dim, device)
            wanted.append(ids)
        sentence_rows = gather.gather_columns(self._sentence_table(np.concatenate(wanted), device), device)
        if gather.rank() != 0 or counts.sum() == 0 or len(gathered["token_id"]) == 0:
            return None
        # every selected row's sentence is in the gathered table: the dict is built from it when first needed
        self._sentence_chunks, self._chunks_in_dict, self._sentences = [], 0, {}
        self._gathered_sentences = sentence_rows["table"].numpy()
        if tracked is not None or self._tracked is not None:
            order = torch.argsort(gathered["token_id"])
            return {k: v[order] for k, v in gathered.items()}
        return select_final(gathered, counts, self.sampler.max_tokens)

    def _finish_group(self, sampler: TokenSampler, name: str, extra: tuple[str, ...], dim: int,
                      device: torch.device) -> tuple[dict[str, torch.Tensor] | None, np.ndarray]:
        """Gather and select a group's rows (a collective call): rank zero's selection, and this rank's ids."""
        counts = gather.all_reduce_sum(torch.as_tensor(sampler.label_counts), device).numpy()
        local = select_final(sampler.candidates(), counts, sampler.max_tokens)
        columns = {k: local.get(k, torch.zeros(0, dtype=torch.long)) for k in (*_GROUP_INT_COLUMNS, *extra)}
        columns[name] = local.get(name, torch.zeros(0, dim))
        gathered = gather.gather_columns(columns, device)
        chosen = None
        if gather.rank() == 0 and len(gathered["token_id"]):
            chosen = select_final(gathered, counts, sampler.max_tokens)
        return chosen, columns["token_id"].numpy()

    def _sentence_table(self, token_ids: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
        """The sentences of this rank's selected tokens as one padded int table (for the gather).

        Row layout: sentence id, then one block of ``longest`` columns per field, ``_PAD`` past
        the sentence's end. Rows are sorted by sentence id.
        """
        chunks = self._sentence_chunks
        sids = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=np.int64)
        unique, first = np.unique(sids, return_index=True)  # a sentence's first stored copy
        pick = first[np.isin(unique, np.asarray(token_ids, dtype=np.int64) >> POSITION_BITS)]
        lengths = np.concatenate([c[2] for c in chunks])[pick] if chunks else np.zeros(0, dtype=np.int64)
        longest = int(gather.all_reduce_max(torch.tensor([int(lengths.max(initial=0))]), device)[0])
        blocks = np.full((len(pick), len(_SENTENCE_FIELDS), longest), _PAD, dtype=np.int64)
        offset = 0
        for _, fields, chunk_lengths in chunks:  # copy each batch's picked rows, cut at their lengths
            rows = np.flatnonzero((pick >= offset) & (pick < offset + len(fields)))
            if len(rows):
                local = pick[rows] - offset
                width = min(fields.shape[2], longest)
                inside = np.arange(width) < chunk_lengths[local][:, None]
                blocks[rows, :, :width] = np.where(inside[:, None, :], fields[local, :, :width], _PAD)
            offset += len(fields)
        return {"table": torch.as_tensor(np.concatenate([sids[pick][:, None], blocks.reshape(len(pick), len(_SENTENCE_FIELDS) * longest)], 1))}

    def _merge_sentences(self, table: np.ndarray) -> None:
        longest = (table.shape[1] - 1) // len(_SENTENCE_FIELDS)
        for row in table:
            blocks = {name: row[1 + f * longest : 1 + (f + 1) * longest] for f, name in enumerate(_SENTENCE_FIELDS)}
            length = int((blocks["input_ids"] != _PAD).sum())
            self._sentences[int(row[0])] = {k: v[:length] for k, v in blocks.items()}

    def to_snapshot(
        self, columns: dict[str, torch.Tensor], *, epoch: int, step: int, label_names: list[str], texts: TokenTexts
    ) -> Snapshot:
        """Build the epoch's :class:`Snapshot` from the selected columns (rank zero)."""
        token_id = columns["token_id"].numpy()
        sentence_id, position = token_id >> POSITION_BITS, token_id & ((1 << POSITION_BITS) - 1)
        used = {int(s): self.sentences[int(s)] for s in np.unique(sentence_id) if int(s) in self.sentences}
        tokens, words, sentence_text = texts.describe(
            {sid: (rec["input_ids"], None if (rec["word_ids"] == -2).all() else rec["word_ids"]) for sid, rec in used.items()},
            sentence_id, position,
        )
        tags = {sid: (rec["labels"][rec["labels"] >= 0], rec["pred"][rec["labels"] >= 0]) for sid, rec in used.items()}
        groups = {}
        if self.entity_columns is not None and self.entity_types is not None:
            sids = np.unique(self.entity_columns["token_id"].numpy() >> POSITION_BITS)
            tokens_of = {int(s): texts.tokens_and_words(self.sentences[int(s)]) for s in sids if int(s) in self.sentences}
            sentence_text = {**texts.sentence_texts(
                {int(s): (self.sentences[int(s)]["input_ids"], None) for s in sids if int(s) in self.sentences}),
                **sentence_text}
            groups["entities"] = entity_snapshot(self.entity_columns, tokens_of, self.entity_types, sentence_text, epoch, step)
        if self.cls_columns is not None and self.entity_types is not None:
            sids = self.cls_columns["token_id"].numpy() >> POSITION_BITS
            known = texts.sentence_texts(
                {int(s): (self.sentences[int(s)]["input_ids"], None) for s in sids if int(s) in self.sentences})
            groups["cls"] = cls_snapshot(self.cls_columns, self.entity_types, known, epoch, step)
        return Snapshot(
            epoch=epoch,
            step=step,
            token_id=token_id,
            sentence_id=sentence_id,
            position=position,
            token=tokens,
            word=words,
            gold=columns["label"].numpy(),
            pred=columns["pred"].numpy(),
            views={v: columns[v].numpy() for v in self.views},
            label_names=label_names,
            sentences=sentence_text,
            sentence_tags=tags,
            groups=groups,
            stats=dict(self.stats),
        )


def _finite_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Whether each row of ``tensor`` (shape (..., dim)) is all finite: shape (...).

    ``amax``/``amin`` propagate NaN and keep +-Inf, and cannot overflow (unlike a sum); on a
    CPU they are an order of magnitude faster than ``isfinite(tensor).all(-1)``.
    """
    return torch.isfinite(tensor.amax(-1)) & torch.isfinite(tensor.amin(-1))


def _at(priority: torch.Tensor | None, index: torch.Tensor, ids: torch.Tensor | None = None,
        seed: int = 0) -> torch.Tensor | None:
    """``priority[index]`` when the batch's priorities were computed; else hash ``ids[index]`` (or ``None``)."""
    if priority is not None:
        return priority[index]
    return None if ids is None else token_priority(ids[index], seed)


def _rows_at(tensor: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """Rows ``tensor[b, s]`` (shape (n, dim)) of a (batch, seq_len, dim) tensor at flat indices ``b * seq_len + s``."""
    if tensor.stride(0) == tensor.stride(1) * tensor.shape[1]:  # (batch, seq_len) merge into one dim: no copy
        return tensor.flatten(0, 1)[flat]
    return tensor[flat // tensor.shape[1], flat % tensor.shape[1]]


@functools.cache
def _openmp() -> bool:
    """Whether torch's intra-op threads are OpenMP's, whose count a thread may change at any time (per thread)."""
    return "OpenMP" in torch.__config__.parallel_info()


@contextmanager
def _one_thread(device: torch.device) -> Iterator[None]:
    """Run this thread's CPU tensor operations without intra-op parallelism.

    The capture's operations are small (microseconds each); above 32k elements torch still
    splits them across its intra-op threads. When the cores are busy (another process, the
    projection's child process, DDP ranks on one machine), each such split waits for a
    descheduled thread: a 200-row gather then took 7 ms instead of 30 us. OpenMP's thread
    count is a per-thread setting: threads that already ran torch code keep theirs (a thread
    whose very first torch call falls inside this window starts with one thread). With
    torch's native pool (where changing it warns) nothing is changed.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1 or not _openmp():
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
