"""One validation epoch's capture on one rank: per-batch selection on the device, then the epoch's gather."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from lightning_ner_viz.capture import gather
from lightning_ner_viz.capture.assembly import GatheredDynamics, GatheredEpoch
from lightning_ner_viz.capture.batch import TokenBatch
from lightning_ner_viz.capture.dynamics import DynamicsCollector
from lightning_ner_viz.capture.entities import span_begins, span_means, span_members
from lightning_ner_viz.capture.groups import Rows, SampledGroup, span_priority_of
from lightning_ner_viz.capture.predictions import NO_PREDICTION, predict_labels
from lightning_ner_viz.capture.sampling import token_priority
from lightning_ner_viz.capture.scores import FullSetScores
from lightning_ner_viz.capture.sentences import SentenceBuffer
from lightning_ner_viz.capture.tensor_ops import finite_rows, one_thread, rows_at
from lightning_ner_viz.labels import EntityTypes
from lightning_ner_viz.snapshot import POSITION_BITS


class EpochCollector:
    """Collects one epoch's sampled tokens, entity spans and sentences on this rank.

    Args:
        views: the captured views, e.g. ``("hidden", "emissions")``.
        num_labels: number of gold labels.
        max_tokens: rows per group in the epoch's selection.
        seed: sampling seed.
        crf: a ``torchcrf.CRF`` whose ``decode`` gives predictions, or ``None`` for argmax.
        entity_types: the BIO label-to-type map; needed by the entity and cls groups.
        entity_view: also sample gold entity spans (the ``entities`` group).
        cls_view: also sample one row per sentence, its first token's hidden vector (the ``cls`` group).
        label_names: label id to BIO name: with emissions captured, the epoch also counts the full-set
            confusion matrix and the span errors of every labelled validation token (not only the sample).
        dynamics: with emissions captured, also record every labelled token's gold probability and prediction
            (see :mod:`~lightning_ner_viz.capture.dynamics`).
    """

    def __init__(self, views: tuple[str, ...], num_labels: int, max_tokens: int, seed: int, crf: nn.Module | None,
                 entity_types: EntityTypes | None = None, entity_view: bool = True, cls_view: bool = False,
                 label_names: Sequence[str] | None = None, dynamics: DynamicsCollector | None = None) -> None:
        self.views = views
        self.num_labels = num_labels
        self.crf = crf
        self.entity_types = entity_types
        self.tokens = SampledGroup("tokens", num_labels, max_tokens, seed, ("pred", "input_id"), views)
        n_types = len(entity_types.names) if entity_types is not None else 0
        with_hidden = entity_types is not None and "hidden" in views
        self.entities = (SampledGroup("entities", n_types, max_tokens, seed, ("pred", "end"), ("entities",))
                         if with_hidden and entity_view else None)
        self.cls = SampledGroup("cls", n_types, max_tokens, seed, ("pred",), ("cls",)) if with_hidden and cls_view else None
        self.sentences = SentenceBuffer()
        self.scores = FullSetScores(label_names, num_labels) if label_names is not None and "emissions" in views else None
        self.dynamics = dynamics if "emissions" in views else None
        self._tables: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._dims: dict[str, int] = {}
        self._tokens_seen = 0
        self._valid_total: torch.Tensor | int = 0  # valid tokens before the non-finite filter (on device)
        self._batches = 0

    def track(self, token_ids: list[int] | None) -> None:
        """Keep exactly these tokens (an earlier epoch's selection) instead of sampling; call before any batch."""
        self.tokens.track(None if token_ids is None else torch.tensor(token_ids, dtype=torch.long))

    @property
    def stats(self) -> dict[str, int]:
        """``tokens_seen`` (valid, finite), ``nonfinite_filtered`` (NaN/Inf tokens left out) and ``batches``."""
        return {"tokens_seen": self._tokens_seen, "nonfinite_filtered": int(self._valid_total) - self._tokens_seen,
                "batches": self._batches}

    def _type_tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The entity types' ``type_of`` and ``begins`` on ``device`` (copied once)."""
        assert self.entity_types is not None
        if device not in self._tables:
            self._tables[device] = (self.entity_types.type_of.to(device), self.entity_types.begins.to(device))
        return self._tables[device]

    def add_batch(self, batch: TokenBatch, outputs: dict[str, torch.Tensor], example_ids: torch.Tensor,
                  batches: int = 1) -> None:
        """Offer one batch: every valid token is a candidate; only likely winners leave the device.

        Args:
            batch: the batch's ids, mask and labels.
            outputs: view name to the captured tensor of shape (batch, seq_len, dim).
            example_ids: array of shape (batch,), each row's index in the validation set (-1 to skip).
            batches: the validation batches merged into ``batch`` (counted in :attr:`stats`).
        """
        self._batches += batches
        with one_thread(batch.labels.device):
            self._add_batch(batch, outputs, example_ids)

    def _add_batch(self, batch: TokenBatch, outputs: dict[str, torch.Tensor], example_ids: torch.Tensor) -> None:
        seq = batch.labels.shape[1]
        valid = batch.valid & (example_ids >= 0)[:, None]
        self._valid_total = self._valid_total + valid.sum()
        self._check_labels(batch.labels[valid])
        finite = {view: finite_rows(tensor) for view, tensor in outputs.items()}  # once per view and batch
        pred = None
        if "emissions" in outputs:
            pred = predict_labels(outputs["emissions"], batch.attention_mask, self.crf)
            if self.scores is not None:
                self.scores.add(batch.labels, pred, valid)
            if self.dynamics is not None:
                self.dynamics.add(batch, outputs["emissions"], pred, valid & finite["emissions"], example_ids)
        for view, tensor in outputs.items():
            self._dims[view] = tensor.shape[-1]
            valid &= finite[view]
        flat = valid.flatten().nonzero().squeeze(1)
        self._tokens_seen += flat.numel()
        if flat.numel() == 0:
            return
        labels = batch.labels.flatten()[flat].long()
        if pred is None:
            pred = torch.full_like(batch.labels, NO_PREDICTION)
        # every position's token id: tokens, entity spans (their first token) and sentences (position 0)
        # share them, so the hash runs once per batch
        ids = ((example_ids.long() << POSITION_BITS)[:, None] | torch.arange(seq, device=flat.device)).flatten()

        def columns(kept: torch.Tensor) -> Rows:
            at = flat[kept]
            found = {"pred": pred.flatten()[at].long(), "input_id": batch.input_ids.flatten()[at].long()}
            found.update({v: rows_at(t, at).float() for v, t in outputs.items()})
            return found

        priority = None if self.tokens.tracking else token_priority(ids, self.tokens.seed)
        kept = self.tokens.offer(ids[flat], labels, columns, priority=None if priority is None else priority[flat])
        remember = [flat[kept] // seq] if kept is not None else []
        if self.entities is not None:
            remember += self._add_entities(batch, outputs["hidden"], pred, valid, ids, priority)
        if self.cls is not None:
            remember += self._add_cls(batch, outputs["hidden"], pred, valid, ids, priority)
        if remember:
            self.sentences.remember(remember, batch, example_ids, pred)

    def _check_labels(self, labels: torch.Tensor) -> None:
        """Gold labels of the labelled tokens must be label ids (else a ValueError that says what to check)."""
        if labels.numel() == 0:
            return
        low, high = torch.aminmax(labels)
        if int(high) >= self.num_labels or int(low) < 0:
            raise ValueError(
                f"Gold labels must be in [0, {self.num_labels}) or -100 (ignored); found "
                f"{int(low)}..{int(high)}. Check `label_names` and the model's number of labels."
            )

    def _add_cls(self, batch: TokenBatch, hidden: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor,
                 ids: torch.Tensor, priority: torch.Tensor | None) -> list[torch.Tensor]:
        """One row per sentence: the first token's vector, class = the most frequent gold entity type."""
        assert self.entity_types is not None and self.cls is not None
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
        kept = self.cls.offer(ids[first], dominant(batch.labels), columns,
                              priority=span_priority_of(priority, first, ids, self.cls.seed))
        return [] if kept is None else [rows[kept]]

    def _add_entities(self, batch: TokenBatch, hidden: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor,
                      ids: torch.Tensor, priority: torch.Tensor | None) -> list[torch.Tensor]:
        """One row per gold entity span: decode the span starts, then average only the spans that can make the cut."""
        assert self.entities is not None
        type_of, begins = self._type_tables(pred.device)
        kind, begin = span_begins(batch.labels, valid, type_of, begins)
        starts = begin.flatten().nonzero().squeeze(1)
        if starts.numel() == 0:
            return []
        types = kind.flatten()[starts]
        self.entities.count(types)
        span_priority = span_priority_of(priority, starts, ids, self.entities.seed)
        chosen = self.entities.could_keep(span_priority, types)
        if chosen.numel() == 0:
            return []
        every = chosen.numel() == starts.numel()  # common until the bars tighten: no renumbering
        tokens, span = span_members(kind, begin) if every else span_members(kind, begin, chosen, starts.numel())
        lengths = torch.bincount(span, minlength=chosen.numel())
        at = starts[chosen]
        columns = {
            "entities": span_means(rows_at(hidden, tokens), span, chosen.numel()),
            "pred": type_of[pred.flatten()[at].clamp(min=0)],
            "end": at % valid.shape[1] + lengths - 1,
        }
        kept = self.entities.offer(ids[at], types[chosen], columns, count=False, priority=span_priority[chosen])
        return [] if kept is None else [at[kept] // valid.shape[1]]

    def finish(self, device: torch.device, epoch: int, step: int) -> GatheredEpoch | None:
        """Gather every rank's rows and select the epoch's (a collective call: every rank calls it).

        The epoch's collectives, in this order on every rank (a rank that skipped one would
        deadlock the others):

        1. ``all_reduce_sum`` of the class counts of every group and the full-set scores (confusion, span counts);
        2. ``all_reduce_max`` of the vector widths and of the longest selected sentence;
        3. ``gather_columns`` of the tokens, then of each enabled group (entities, cls);
        4. ``gather_columns`` of the sentence table;
        5. with ``dynamics``: ``gather_columns`` of its rows, then of its texts, then an ``all_reduce_sum``.

        Returns:
            The gathered epoch on rank zero (``None`` elsewhere, or when no rank saw a valid token).
        """
        with one_thread(torch.device("cpu")):  # the selection runs on CPU tensors; collectives on ``device``
            return self._finish(device, epoch, step)

    def _finish(self, device: torch.device, epoch: int, step: int) -> GatheredEpoch | None:
        groups = [g for g in (self.tokens, self.entities, self.cls) if g is not None]
        sizes = [g.class_counts.size for g in groups]
        scores = self.scores.flat() if self.scores is not None else np.zeros(0, np.int64)
        summed = gather.all_reduce_sum(torch.as_tensor(np.concatenate([*(g.class_counts for g in groups), scores])),
                                       device).numpy()
        summed, scores = summed[: len(summed) - len(scores)], summed[len(summed) - len(scores):]
        counts = dict(zip([g.name for g in groups], np.split(summed, np.cumsum(sizes)[:-1])))
        vector_names = [*self.views, *(g.name for g in groups[1:])]
        widths = [self._dims.get(v, 0) for v in self.views]
        widths += [self._dims.get("hidden", 0)] * (len(groups) - 1)
        locals_ = {group.name: group.local_selection(counts[group.name]) for group in groups}
        picked, lengths = self.sentences.pick(np.concatenate([r["token_id"].numpy() for r in locals_.values()]))
        maxima = gather.all_reduce_max(torch.tensor([*widths, int(lengths.max(initial=0))]), device).tolist()
        dims, longest = dict(zip(vector_names, maxima[:-1])), maxima[-1]
        gathered = {}
        for group in groups:  # a rank without rows sends empty vector columns of the common width
            rows = locals_[group.name]
            rows.update({v: torch.zeros(0, dims[v]) for v in group.vector_columns if len(rows.get(v, ())) == 0})
            gathered[group.name] = gather.gather_columns(rows, device)
        table = gather.gather_columns({"table": torch.as_tensor(self.sentences.table(picked, longest))}, device)
        dynamics = self.dynamics.finish(device) if self.dynamics is not None else None
        if gather.rank() != 0:
            return None
        tokens = self.tokens.final_selection(gathered["tokens"], counts["tokens"])
        if tokens is None:
            return None
        chosen = {g.name: g.final_selection(gathered[g.name], counts[g.name]) for g in groups[1:]}
        return GatheredEpoch(
            epoch=epoch, step=step, views=self.views, tokens=_numpy(tokens),
            groups={name: _numpy(rows) for name, rows in chosen.items() if rows is not None},
            sentence_table=table["table"].numpy(), stats=self.stats,
            dynamics=None if dynamics is None else GatheredDynamics(
                _numpy(dynamics[0]), _numpy(dynamics[1]), dynamics[2], self.dynamics.source),  # type: ignore[union-attr]
            **(self.scores.unflat(scores) if self.scores is not None else {}),
        )


def _numpy(rows: Rows) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in rows.items()}
