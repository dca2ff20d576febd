"""Full-validation-set scores, counted batch by batch: the token confusion matrix and the span errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lightning_ner_viz.analysis.span_errors import SPAN_CATEGORIES, SpanCounter


class FullSetScores:
    """Counts every labelled validation token of this rank, not only the sample, so nothing grows with the set.

    - ``confusion``: gold × predicted token counts, one ``bincount`` per batch on the batch's device
      (a token whose prediction is unknown, -1, is left out);
    - span errors per entity type (:class:`~lightning_ner_viz.analysis.span_errors.SpanCounter`),
      a batch at a time with numpy on the CPU (in the capture thread).

    :meth:`flat` and :meth:`unflat` turn both into one int64 vector for the epoch's ``all_reduce_sum``.

    Args:
        label_names: label id to BIO name.
        num_labels: the number of labels.
    """

    def __init__(self, label_names: Sequence[str], num_labels: int) -> None:
        self.num_labels = num_labels
        self.spans = SpanCounter(label_names)
        self._confusion: torch.Tensor | None = None

    def add(self, labels: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor) -> None:
        """One batch: ``labels`` and ``pred`` of shape (batch, seq_len); ``valid`` marks the labelled tokens."""
        n = self.num_labels
        known = valid & (pred >= 0) & (labels >= 0) & (labels < n)
        cells = labels[known].long() * n + pred[known].long().clamp(max=n - 1)
        counts = torch.bincount(cells, minlength=n * n)
        self._confusion = counts if self._confusion is None else self._confusion + counts
        self.spans.add_batch(labels.cpu().numpy(), pred.cpu().numpy(), valid.cpu().numpy())

    @property
    def confusion(self) -> np.ndarray:
        """Int array of shape (n_labels, n_labels): row = gold label, column = predicted label."""
        if self._confusion is None:
            return np.zeros((self.num_labels, self.num_labels), dtype=np.int64)
        return self._confusion.cpu().numpy().reshape(self.num_labels, self.num_labels).astype(np.int64)

    def flat(self) -> np.ndarray:
        """The confusion matrix and the span counts as one int64 vector (same length on every rank)."""
        return np.concatenate([self.confusion.ravel(), self.spans.counts.ravel()]).astype(np.int64)

    def unflat(self, summed: np.ndarray) -> dict[str, Any]:
        """:meth:`flat`'s vector (summed over ranks) back as ``confusion``, ``span_counts`` and ``span_types``."""
        n = self.num_labels * self.num_labels
        return {"confusion": summed[:n].reshape(self.num_labels, self.num_labels),
                "span_counts": summed[n:].reshape(len(self.spans.types), len(SPAN_CATEGORIES)),
                "span_types": list(self.spans.types)}
