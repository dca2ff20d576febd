"""Forward hooks that hold each watched module's latest per-token output until its batch is processed.

The callback never runs a second forward pass: it reads what the model's own
validation forward produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


def unwrap_token_tensor(output: object, *, module_name: str) -> torch.Tensor:
    """The per-token tensor ``(batch, seq_len, dim)`` inside a module's output.

    Accepts a tensor, an HF ``ModelOutput`` (``last_hidden_state`` or its first
    tensor), a tuple/list (its first tensor) or a mapping.

    Raises:
        ValueError: when no 3-D tensor is found.
    """
    candidate: object = output
    if isinstance(output, Mapping):
        candidate = output.get("last_hidden_state", output.get("logits"))
        if candidate is None:
            candidate = next((v for v in output.values() if isinstance(v, torch.Tensor)), None)
    elif isinstance(output, (tuple, list)):
        candidate = next((v for v in output if isinstance(v, torch.Tensor)), None)
    if isinstance(candidate, torch.Tensor) and candidate.dim() == 3:
        return candidate
    shape = tuple(candidate.shape) if isinstance(candidate, torch.Tensor) else type(output).__name__
    raise ValueError(
        f"The output of module {module_name!r} has no per-token tensor of shape "
        f"(batch, seq_len, dim); got {shape}. Point `hidden_module`/`emissions_module` at a layer "
        "that returns one (for example the encoder, or a transformer layer)."
    )


@dataclass
class ForwardCapture:
    """Forward hooks that keep the latest per-token output of each named module.

    ``outputs`` holds at most one detached tensor per module, and :meth:`pop`
    empties it, so no tensor outlives its batch. The hooks store only while ``enabled``:
    they are attached once, before the model first runs, so a ``torch.compile`` that
    traces the model afterwards traces them too (a hook added to a compiled module after
    its first call never runs), and the gate (a plain attribute Dynamo guards on) turns
    capturing on for a validation epoch and off after it.
    """

    modules: dict[str, tuple[str, nn.Module]]
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    enabled: bool = False
    _handles: list[RemovableHandle] = field(default_factory=list)

    def attach(self) -> None:
        """Register one forward hook per module (idempotent)."""
        if self._handles:
            return
        for view, (name, module) in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(view, name)))

    def _hook(self, view: str, name: str):  # noqa: ANN202 - torch hook signature
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            if self.enabled:
                self.outputs[view] = unwrap_token_tensor(output, module_name=name).detach()

        return hook

    def pop(self) -> dict[str, torch.Tensor]:
        """Return and forget the outputs captured since the last call."""
        outputs, self.outputs = self.outputs, {}
        return outputs

    def detach(self) -> None:
        """Remove every hook and drop captured tensors."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.outputs.clear()
