"""Find the modules to watch and capture their outputs with forward hooks.

The callback never runs a second forward pass: it reads what the model's own
validation forward produced, through hooks that hold a tensor only until the
batch is processed.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle


def get_module(root: nn.Module, name: str, *, argument: str) -> nn.Module:
    """Return the submodule at dotted path ``name``.

    Raises:
        ValueError: naming the closest real module names when ``name`` does not exist.
    """
    try:
        return root.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in root.named_modules() if n]
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
        hint = f" Did you mean one of {close}?" if close else f" Some module names: {names[:8]}."
        raise ValueError(f"`{argument}={name!r}` is not a submodule of {type(root).__name__}.{hint}") from None


def _is_pretrained_model(module: nn.Module) -> bool:
    return any(cls.__name__ == "PreTrainedModel" for cls in type(module).__mro__)


def find_pretrained_model(root: nn.Module) -> nn.Module | None:
    """The first Hugging Face ``PreTrainedModel`` in ``root`` (``root`` itself included), at any depth."""
    return next((m for m in root.modules() if _is_pretrained_model(m)), None)


def find_crf(root: nn.Module) -> nn.Module | None:
    """The first ``torchcrf.CRF`` in ``root``, if any."""
    return next((m for m in root.modules() if type(m).__module__.startswith("torchcrf")), None)


def _name_of(root: nn.Module, target: nn.Module) -> str:
    return next(n for n, m in root.named_modules() if m is target)


def detect_hidden_module(root: nn.Module) -> str:
    """Dotted name of the module whose output is the last hidden state.

    That is the first ``PreTrainedModel``; for a ``*ForTokenClassification`` model,
    its base model (``.base_model``).

    Raises:
        ValueError: when no Hugging Face model is found; the message says to pass ``hidden_module``.
    """
    model = find_pretrained_model(root)
    if model is None:
        raise ValueError(
            f"Found no Hugging Face PreTrainedModel inside {type(root).__name__}, so the hidden states "
            "cannot be found automatically. Pass `hidden_module=` with the dotted name of the encoder "
            f"(modules here: {[n for n, _ in root.named_modules() if n][:8]})."
        )
    base = getattr(model, "base_model", model)
    return _name_of(root, base if isinstance(base, nn.Module) else model)


def detect_emissions_module(root: nn.Module, num_labels: int | None) -> str:
    """Dotted name of the module producing the emissions (logits before any CRF).

    That is the Hugging Face model's ``classifier`` when present; otherwise the
    last ``nn.Linear`` whose ``out_features`` equals the number of labels.

    Raises:
        ValueError: when no such module exists; the message says to pass ``emissions_module``.
    """
    model = find_pretrained_model(root)
    classifier = getattr(model, "classifier", None) if model is not None else None
    if isinstance(classifier, nn.Module):
        return _name_of(root, classifier)
    crf = find_crf(root)
    config = getattr(model, "config", None) if model is not None else None
    # the model's own count first (CRF tags, HF config), then what the user said
    counts = [getattr(crf, "num_tags", None), getattr(config, "num_labels", None), num_labels]
    linears: list[str] = []
    for count in (c for c in counts if c is not None):
        linears = [n for n, m in root.named_modules() if isinstance(m, nn.Linear) and m.out_features == count]
        if linears:
            break
    if not linears:
        raise ValueError(
            f"Found no classifier and no nn.Linear with one output per label (tried {[c for c in counts if c]}) "
            f"in {type(root).__name__}. Pass `emissions_module=` with the dotted name of the layer "
            "that outputs the per-label logits."
        )
    return linears[-1]


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
    empties it, so no tensor outlives its batch.
    """

    modules: dict[str, tuple[str, nn.Module]]
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    _handles: list[RemovableHandle] = field(default_factory=list)

    def attach(self) -> None:
        """Register one forward hook per module (idempotent)."""
        if self._handles:
            return
        for view, (name, module) in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(view, name)))

    def _hook(self, view: str, name: str):  # noqa: ANN202 - torch hook signature
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
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

    @property
    def attached(self) -> bool:
        """Whether hooks are registered."""
        return bool(self._handles)
