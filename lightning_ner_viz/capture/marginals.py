"""Per-token label probabilities: the softmax of the emissions, or the CRF's marginals when there is a CRF.

With a CRF the model predicts the best *path*, and a token's emission softmax ignores the transitions
that the path uses; the marginal ``p(y_t = k | sentence)`` (forward-backward over the CRF's lattice) is
the probability the model itself gives label ``k`` at that token, so it is what a label-quality score
must read.
"""

from __future__ import annotations

import torch
from torch import nn


def label_probabilities(emissions: torch.Tensor, attention_mask: torch.Tensor, crf: nn.Module | None) -> torch.Tensor:
    """Probabilities of shape (batch, seq_len, n_labels), float32, on the emissions' device.

    Args:
        emissions: array of shape (batch, seq_len, n_labels), the logits before any CRF.
        attention_mask: array of shape (batch, seq_len); padding must come after the tokens.
        crf: a ``torchcrf.CRF`` (its ``start_transitions``, ``transitions`` and ``end_transitions``), or ``None``.
    """
    if crf is None:
        return torch.softmax(emissions.float(), dim=-1)
    return crf_marginals(emissions, attention_mask, crf)


def crf_marginals(emissions: torch.Tensor, attention_mask: torch.Tensor, crf: nn.Module) -> torch.Tensor:
    """The linear-chain CRF's per-token marginals by forward-backward in log space.

    Positions past a row's last unmasked token get meaningless rows (callers mask them out).
    """
    e = emissions.float()
    mask = attention_mask.bool().clone()
    mask[:, 0] = True  # as torchcrf: the first timestep is always on
    trans = crf.transitions.detach().float()  # [i, j]: score of moving from label i to label j
    start, end = crf.start_transitions.detach().float(), crf.end_transitions.detach().float()
    batch, seq, n = e.shape
    alpha = torch.empty_like(e)
    a = start + e[:, 0]
    alpha[:, 0] = a
    for t in range(1, seq):
        step = torch.logsumexp(a[:, :, None] + trans, dim=1) + e[:, t]
        a = torch.where(mask[:, t, None], step, a)
        alpha[:, t] = a
    beta = torch.empty_like(e)
    b = end.expand(batch, n)
    beta[:, seq - 1] = b
    for t in range(seq - 2, -1, -1):
        step = torch.logsumexp(trans + (e[:, t + 1] + b)[:, None, :], dim=2)
        b = torch.where(mask[:, t + 1, None], step, end.expand(batch, n))
        beta[:, t] = b
    return torch.softmax(alpha + beta, dim=-1)
