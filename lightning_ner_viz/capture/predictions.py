"""Predicted label ids of a batch: the CRF's Viterbi path when there is a CRF, else the argmax."""

from __future__ import annotations

import torch
from torch import nn

NO_PREDICTION = -1
"""The predicted id of positions the CRF did not decode."""


def predict_labels(emissions: torch.Tensor, attention_mask: torch.Tensor, crf: nn.Module | None) -> torch.Tensor:
    """Predicted label ids of shape (batch, seq_len).

    Args:
        emissions: array of shape (batch, seq_len, n_labels), the logits before any CRF.
        attention_mask: array of shape (batch, seq_len).
        crf: a ``torchcrf.CRF`` whose ``decode`` gives the predictions, or ``None`` for the argmax.
    """
    if crf is None:
        return emissions.argmax(-1)
    mask = attention_mask.bool()
    mask[:, 0] = True  # torchcrf requires the first timestep on
    paths = crf.decode(emissions, mask=mask)
    pred = torch.full(mask.shape, NO_PREDICTION, dtype=torch.long, device=emissions.device)
    for row, path in enumerate(paths):
        pred[row, : len(path)] = torch.as_tensor(path, device=emissions.device)
    return pred
