"""One rank's whole-set pass of one validation: every labelled token's gold probability and prediction.

Per batch, on the batch's device: the label probabilities (softmax, or the CRF's marginals, see
:mod:`~lightning_ner_viz.capture.marginals`), then per labelled token a few numbers. Past
``max_tokens`` rows the collector keeps a deterministic subset: the tokens with the smallest hash
priority (:func:`~lightning_ner_viz.capture.sampling.token_priority`), the same tokens every epoch.
It also keeps the text (input and word ids) of sentences it has not seen in an earlier validation,
so the label issues can show each token in its sentence; the set of sentence ids seen is the
only state that outlives a validation, and it grows with the validation set, not with epochs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lightning_ner_viz.capture import gather
from lightning_ner_viz.capture.batch import TokenBatch
from lightning_ner_viz.capture.marginals import label_probabilities
from lightning_ner_viz.capture.sampling import token_priority
from lightning_ner_viz.capture.sentences import UNKNOWN_WORD
from lightning_ner_viz.capture.tensor_ops import rows_at
from lightning_ner_viz.snapshot import POSITION_BITS

MAX_DYNAMICS_TOKENS = 1_000_000
"""Default bound on the labelled tokens whose dynamics are kept per validation (about 34 bytes each in flight)."""

Columns = dict[str, torch.Tensor]


class DynamicsCollector:
    """Collects one validation's token dynamics on this rank.

    Args:
        num_labels: the number of labels.
        crf: a ``torchcrf.CRF`` for marginals, or ``None`` for the softmax of the emissions.
        max_tokens: rows kept (a deterministic subset past it).
        seed: the subset's hash seed.
        seen_sentences: sentence ids whose text an earlier validation kept (updated in place).
    """

    def __init__(self, num_labels: int, crf: nn.Module | None, max_tokens: int, seed: int,
                 seen_sentences: set[int]) -> None:
        self.num_labels = num_labels
        self.crf = crf
        self.max_tokens = max_tokens
        self.seed = seed
        self.seen_sentences = seen_sentences
        self.source = "softmax" if crf is None else "crf_marginals"
        self.labelled = 0  # labelled tokens offered on this rank
        self._chunks: list[Columns] = []
        self._rows = 0
        self._texts: list[Columns] = []

    def add(self, batch: TokenBatch, emissions: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor,
            example_ids: torch.Tensor) -> None:
        """One batch: ``valid`` marks its labelled tokens, ``example_ids`` (shape (batch,)) its sentence ids."""
        seq = valid.shape[1]
        flat = valid.flatten().nonzero().squeeze(1)
        self._remember_texts(batch, example_ids, valid)
        if flat.numel() == 0:
            return
        if self.crf is None:  # a softmax is per token: only the labelled ones (a merged batch is half padding)
            probs = torch.softmax(rows_at(emissions, flat).float(), dim=-1)
        else:
            probs = label_probabilities(emissions, batch.attention_mask, self.crf).reshape(-1, self.num_labels)[flat]
        gold = batch.labels.flatten()[flat].long()
        gold_prob = probs.gather(1, gold[:, None]).squeeze(1)
        other_prob = probs.scatter(1, gold[:, None], -1.0).amax(1)
        token_id = (example_ids.long()[flat // seq] << POSITION_BITS) | (flat % seq)
        self.labelled += flat.numel()
        self._chunks.append({"token_id": token_id, "gold": gold.short(), "pred": pred.flatten()[flat].short(),
                             "gold_prob": gold_prob.half(), "other_prob": other_prob.half(), "probs": probs.half()})
        self._rows += flat.numel()
        if self._rows > 2 * self.max_tokens:
            self._chunks = [self._subset(self._merged(), self.max_tokens)]
            self._rows = self.max_tokens

    def _remember_texts(self, batch: TokenBatch, example_ids: torch.Tensor, valid: torch.Tensor) -> None:
        rows = [r for r, sid in enumerate(example_ids.tolist()) if sid >= 0 and sid not in self.seen_sentences]
        if not rows:
            return
        self.seen_sentences.update(int(example_ids[r]) for r in rows)
        index = torch.as_tensor(rows, device=valid.device)
        mask = batch.attention_mask[index].bool()
        words = batch.word_ids if batch.word_ids is not None else torch.full_like(batch.input_ids, UNKNOWN_WORD)
        sid = example_ids[index].long()[:, None].expand_as(mask)
        self._texts.append({"sid": sid[mask].cpu(), "input_id": batch.input_ids[index][mask].long().cpu(),
                            "word_id": words[index][mask].long().cpu()})

    def _merged(self) -> Columns:
        empty = {"token_id": torch.zeros(0, dtype=torch.long), "gold": torch.zeros(0, dtype=torch.short),
                 "pred": torch.zeros(0, dtype=torch.short), "gold_prob": torch.zeros(0, dtype=torch.half),
                 "other_prob": torch.zeros(0, dtype=torch.half),
                 "probs": torch.zeros(0, self.num_labels, dtype=torch.half)}
        if not self._chunks:
            return empty
        return {k: torch.cat([c[k].cpu() for c in self._chunks]) for k in empty}

    def _subset(self, rows: Columns, limit: int) -> Columns:
        """The ``limit`` rows of smallest hash priority (all of them when there are fewer)."""
        if len(rows["token_id"]) <= limit:
            return rows
        keep = torch.topk(token_priority(rows["token_id"], self.seed), limit, largest=False).indices
        return {k: v[keep] for k, v in rows.items()}

    def finish(self, device: torch.device) -> tuple[Columns, Columns, int] | None:
        """Gather every rank's rows and texts (a collective: every rank calls it, after the scores' reduce).

        Returns:
            On rank zero ``(rows sorted by token id, texts, labelled tokens seen on every rank)``; ``None`` elsewhere.
        """
        rows = gather.gather_columns(self._merged(), device)
        texts = gather.gather_columns(self._text_columns(), device)
        seen = int(gather.all_reduce_sum(torch.tensor([self.labelled]), device)[0])
        if gather.rank() != 0:
            return None
        rows = self._subset(rows, self.max_tokens)
        order = torch.argsort(rows["token_id"])
        rows = {k: v[order] for k, v in rows.items()}
        ids = rows["token_id"].numpy()
        first = np.ones(len(ids), dtype=bool)
        first[1:] = ids[1:] != ids[:-1]  # a token offered twice (repeated example ids) counts once
        return {k: v[torch.from_numpy(first)] for k, v in rows.items()}, texts, seen

    def _text_columns(self) -> Columns:
        if not self._texts:
            return {k: torch.zeros(0, dtype=torch.long) for k in ("sid", "input_id", "word_id")}
        return {k: torch.cat([t[k] for t in self._texts]) for k in ("sid", "input_id", "word_id")}
