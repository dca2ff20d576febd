"""One validation epoch's capture: per-batch selection on device, then a gather into a Snapshot."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lightning_ner_viz import gather
from lightning_ner_viz.batch import TokenBatch
from lightning_ner_viz.entities import EntityTypes, cls_snapshot, entity_snapshot, entity_spans, mean_vectors
from lightning_ner_viz.sampling import TokenSampler, select_final
from lightning_ner_viz.snapshot import POSITION_BITS, Snapshot
from lightning_ner_viz.text import TokenTexts

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
        self.sentences: dict[int, dict[str, np.ndarray]] = {}
        """Sentence id to its unpadded rows: ``input_ids``, ``word_ids`` (-2 = unknown), ``labels``, ``pred``."""
        self.stats = {"tokens_seen": 0, "nonfinite_filtered": 0, "batches": 0}
        self._dims: dict[str, int] = {}
        self.entity_types = entity_types
        self.entity_sampler = (
            TokenSampler(max_tokens, len(entity_types.names), seed) if entity_types and entity_view else None
        )
        self.entity_columns: dict[str, torch.Tensor] | None = None
        self.cls_sampler = TokenSampler(max_tokens, len(entity_types.names), seed) if entity_types and cls_view else None
        self.cls_columns: dict[str, torch.Tensor] | None = None

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

    def add_batch(self, batch: TokenBatch, outputs: dict[str, torch.Tensor], example_ids: torch.Tensor) -> None:
        """Offer one batch: every valid token is a candidate; only likely winners leave the device.

        Args:
            batch: the batch's ids, mask and labels.
            outputs: view name to the captured tensor of shape (batch, seq_len, dim).
            example_ids: array of shape (batch,), each row's index in the validation set (-1 to skip).
        """
        self.stats["batches"] += 1
        valid = batch.valid & (example_ids >= 0)[:, None]
        for view, tensor in outputs.items():
            self._dims[view] = tensor.shape[-1]
            finite = torch.isfinite(tensor).all(-1)
            self.stats["nonfinite_filtered"] += int((valid & ~finite).sum())
            valid &= finite
        self.stats["tokens_seen"] += int(valid.sum())
        if "emissions" in outputs:
            pred = self.predictions(outputs["emissions"], batch.attention_mask)
        else:
            pred = torch.full_like(batch.labels, -1)
        rows, pos = valid.nonzero(as_tuple=True)
        if rows.numel() == 0:
            return
        labels = batch.labels[rows, pos].long()
        if int(labels.max()) >= self.num_labels or int(labels.min()) < 0:
            raise ValueError(
                f"Gold labels must be in [0, {self.num_labels}) or -100 (ignored); found "
                f"{int(labels.min())}..{int(labels.max())}. Check `label_names` and the model's number of labels."
            )
        token_id = (example_ids[rows].long() << POSITION_BITS) | pos.long()
        columns = {"pred": pred[rows, pos].long(), "input_id": batch.input_ids[rows, pos].long()}
        columns.update({v: t[rows, pos].float() for v, t in outputs.items()})
        kept = self.sampler.update(token_id, labels, columns)
        if kept is not None:
            self._remember_sentences(rows[kept], batch, example_ids, pred)
        if self.entity_sampler is not None and "hidden" in outputs:
            self._add_entities(batch, outputs["hidden"], pred, example_ids, valid)
        if self.cls_sampler is not None and "hidden" in outputs:
            self._add_cls(batch, outputs["hidden"], pred, example_ids, valid)

    def _add_cls(self, batch: TokenBatch, hidden: torch.Tensor, pred: torch.Tensor, example_ids: torch.Tensor,
                 valid: torch.Tensor) -> None:
        """One row per sentence: the first token's vector, class = the most frequent gold entity type."""
        assert self.entity_types is not None and self.cls_sampler is not None
        rows = valid.any(1).nonzero().squeeze(1)
        if rows.numel() == 0:
            return
        type_of = self.entity_types.type_of.to(pred.device)
        n_types = len(self.entity_types.names)

        def dominant(ids: torch.Tensor) -> torch.Tensor:
            kinds = torch.where(valid[rows], type_of[ids[rows].clamp(min=0)], 0)
            counts = torch.nn.functional.one_hot(kinds, n_types)[..., 1:].sum(1)
            return torch.where(counts.sum(1) > 0, counts.argmax(1) + 1, 0)

        ids = example_ids[rows].long() << POSITION_BITS
        columns = {"cls": hidden[rows, 0].float(), "pred": dominant(pred)}
        kept = self.cls_sampler.update(ids, dominant(batch.labels), columns)
        if kept is not None:
            self._remember_sentences(rows[kept], batch, example_ids, pred)

    def _add_entities(self, batch: TokenBatch, hidden: torch.Tensor, pred: torch.Tensor, example_ids: torch.Tensor,
                      valid: torch.Tensor) -> None:
        assert self.entity_types is not None and self.entity_sampler is not None
        spans = entity_spans(batch.labels, valid, self.entity_types)
        if len(spans["row"]) == 0:
            return
        ids = (example_ids[spans["row"]].long() << POSITION_BITS) | spans["start"]
        self.entity_sampler.count(spans["type"])
        chosen = self.entity_sampler.admissible(ids, spans["type"])  # average only the spans that can make the cut
        if chosen.numel() == 0:
            return
        compact = torch.full((len(ids),), -1, dtype=torch.long, device=ids.device)
        compact[chosen] = torch.arange(len(chosen), device=ids.device)
        span_of = torch.where(spans["span_of"] >= 0, compact[spans["span_of"].clamp(min=0)], -1)
        type_of = self.entity_types.type_of.to(pred.device)
        rows, starts = spans["row"][chosen], spans["start"][chosen]
        columns = {
            "entities": mean_vectors(hidden, span_of, len(chosen)),
            "pred": type_of[pred[rows, starts].clamp(min=0)],
            "end": spans["end"][chosen],
        }
        kept = self.entity_sampler.update(ids[chosen], spans["type"][chosen], columns, count=False)
        if kept is not None:
            self._remember_sentences(rows[kept], batch, example_ids, pred)

    def _remember_sentences(self, rows: torch.Tensor, batch: TokenBatch, example_ids: torch.Tensor,
                            pred: torch.Tensor) -> None:
        """Keep the ids, word ids, gold and predicted labels of these batch rows' sentences (CPU)."""
        sentence_of = example_ids.tolist()
        new_rows = [r for r in torch.unique(rows).tolist() if sentence_of[r] not in self.sentences]
        if not new_rows:
            return
        word_ids = batch.word_ids if batch.word_ids is not None else torch.full_like(batch.input_ids, -2)
        index = torch.as_tensor(new_rows, device=batch.input_ids.device)
        fields = torch.stack([t[index].long() for t in (batch.input_ids, word_ids, batch.labels, pred)]).cpu().numpy()
        lengths = batch.attention_mask[index].sum(1).tolist()
        for i, (row, length) in enumerate(zip(new_rows, lengths)):  # one device-to-host copy for all rows
            self.sentences[sentence_of[row]] = {k: fields[f, i, : int(length)] for f, k in enumerate(_SENTENCE_FIELDS)}

    def finish(self, device: torch.device, tracked: torch.Tensor | None = None) -> dict[str, torch.Tensor] | None:
        """Gather every rank's candidates and select the epoch's tokens (a collective call).

        Every rank must call this, even with no tokens. Returns the selected columns
        on rank zero (``None`` elsewhere, or when no rank saw a valid token).

        Args:
            device: where collectives run.
            tracked: token ids chosen in an earlier epoch. When given, the epoch keeps
                exactly those of them it saw (a token the sampler chose once stays among
                the candidates as long as it is seen), so trajectories stay comparable.
        """
        counts = gather.all_reduce_sum(torch.as_tensor(self.sampler.label_counts), device).numpy()
        dims = torch.tensor([self._dims.get(v, 0) for v in self.views], dtype=torch.long)
        dims = gather.all_reduce_max(dims, device).tolist()
        local = self.sampler.candidates()
        if tracked is not None and local:
            local = {k: v[torch.isin(local["token_id"], tracked)] for k, v in local.items()}
        else:
            local = select_final(local, counts, self.sampler.max_tokens)
        columns = {k: local.get(k, torch.zeros(0, dtype=torch.long)) for k in _INT_COLUMNS}
        columns.update({v: local.get(v, torch.zeros(0, d)) for v, d in zip(self.views, dims)})
        gathered = gather.gather_columns(columns, device)
        wanted = set(local.get("token_id", torch.zeros(0)).tolist())
        dim = dims[self.views.index("hidden")] if "hidden" in self.views else 0
        if self.entity_sampler is not None:
            self.entity_columns, ids = self._finish_group(self.entity_sampler, "entities", ("end",), dim, device)
            wanted |= ids
        if self.cls_sampler is not None:
            self.cls_columns, ids = self._finish_group(self.cls_sampler, "cls", (), dim, device)
            wanted |= ids
        sentence_rows = gather.gather_columns(self._sentence_table(wanted, device), device)
        if gather.rank() != 0 or counts.sum() == 0 or len(gathered["token_id"]) == 0:
            return None
        self._merge_sentences(sentence_rows["table"])
        if tracked is not None:
            return {k: v[torch.argsort(gathered["token_id"])] for k, v in gathered.items()}
        return select_final(gathered, counts, self.sampler.max_tokens)

    def _finish_group(self, sampler: TokenSampler, name: str, extra: tuple[str, ...], dim: int,
                      device: torch.device) -> tuple[dict[str, torch.Tensor] | None, set[int]]:
        """Gather and select a group's rows (a collective call): rank zero's selection, and this rank's ids."""
        counts = gather.all_reduce_sum(torch.as_tensor(sampler.label_counts), device).numpy()
        local = select_final(sampler.candidates(), counts, sampler.max_tokens)
        columns = {k: local.get(k, torch.zeros(0, dtype=torch.long)) for k in (*_GROUP_INT_COLUMNS, *extra)}
        columns[name] = local.get(name, torch.zeros(0, dim))
        gathered = gather.gather_columns(columns, device)
        chosen = None
        if gather.rank() == 0 and len(gathered["token_id"]):
            chosen = select_final(gathered, counts, sampler.max_tokens)
        return chosen, set(columns["token_id"].tolist())

    def _sentence_table(self, token_ids: set[int], device: torch.device) -> dict[str, torch.Tensor]:
        """The sentences of this rank's selected tokens as one padded int table (for the gather).

        Row layout: sentence id, then one block of ``longest`` columns per field.
        """
        wanted = sorted({t >> POSITION_BITS for t in token_ids} & set(self.sentences))
        longest = max((len(self.sentences[s]["input_ids"]) for s in wanted), default=0)
        longest = int(gather.all_reduce_max(torch.tensor([longest]), device)[0])
        table = torch.full((len(wanted), 1 + len(_SENTENCE_FIELDS) * longest), _PAD, dtype=torch.long)
        for r, sid in enumerate(wanted):
            table[r, 0] = sid
            for f, name in enumerate(_SENTENCE_FIELDS):
                values = torch.as_tensor(self.sentences[sid][name])
                table[r, 1 + f * longest : 1 + f * longest + len(values)] = values
        return {"table": table}

    def _merge_sentences(self, table: torch.Tensor) -> None:
        longest = (table.shape[1] - 1) // len(_SENTENCE_FIELDS)
        for row in table.numpy():
            blocks = {name: row[1 + f * longest : 1 + (f + 1) * longest] for f, name in enumerate(_SENTENCE_FIELDS)}
            length = int((blocks["input_ids"] != _PAD).sum())
            self.sentences[int(row[0])] = {k: v[:length] for k, v in blocks.items()}

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
