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
        attention_mask: array of shape (batch, seq_len); padding must come after the tokens (right padding).
        crf: a ``torchcrf.CRF`` (its ``start_transitions``, ``transitions`` and ``end_transitions``), or ``None``.
    """
    if crf is None:
        return torch.softmax(emissions.float(), dim=-1)
    return crf_marginals(emissions, attention_mask, crf)


def crf_marginals(emissions: torch.Tensor, attention_mask: torch.Tensor, crf: nn.Module) -> torch.Tensor:
    """The linear-chain CRF's per-token marginals by forward-backward, in probability space.

    Both passes run in one loop of ``seq_len`` steps of one batched matmul each: the forward pass over the
    rows as they are, the backward pass over the rows right-aligned (each row's last token at the end), so
    neither needs a mask. Each step is rescaled to sum to 1; a position's scale cancels in its marginals.
    Positions past a row's last unmasked token get meaningless rows (callers mask them out).
    """
    e = emissions.float()
    mask = attention_mask.bool().clone()
    mask[:, 0] = True  # as torchcrf: the first timestep is always on
    batch, seq, n = e.shape
    lengths = mask.sum(1)
    E = torch.exp((e - e.amax(-1, keepdim=True)).clamp(min=-60.0))  # > 0: beta_t = c_t / E_t below
    T = torch.exp(crf.transitions.detach().float())  # [i, j]: moving from label i to label j
    start, end = (torch.exp(p.detach().float()) for p in (crf.start_transitions, crf.end_transitions))
    shift = (seq - lengths)[:, None]
    pos = torch.arange(seq, device=e.device)[None, :]
    right = E.gather(1, (pos - shift).clamp(min=0)[:, :, None].expand(batch, seq, n))  # right-aligned rows
    steps = torch.stack([E.transpose(0, 1), right.flip(1).transpose(0, 1)], 1)  # (seq, 2, batch, n)
    M = torch.stack([T, T.t()])  # forward: alpha @ T; backward (c_t = E_t * beta_t): c @ T^T
    s = torch.stack([start * E[:, 0], end * right[:, seq - 1]])
    out = torch.empty(seq, 2, batch, n, device=e.device)
    out[0] = s = s / s.sum(-1, keepdim=True)
    for t in range(1, seq):
        s = torch.bmm(s, M) * steps[t]
        out[t] = s = s / s.sum(-1, keepdim=True)
    alpha = out[:, 0].transpose(0, 1)
    c = out[:, 1].flip(0).transpose(0, 1).gather(1, (pos + shift).clamp(max=seq - 1)[:, :, None].expand(batch, seq, n))
    marginals = alpha * c / E  # alpha_t * beta_t
    return marginals / marginals.sum(-1, keepdim=True)
