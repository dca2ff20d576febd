"""Find what to watch in the user's model: the hidden, emissions and CRF modules, labels and tokenizer."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from lightning_ner_viz.capture.layers import ALL_LAYERS, encoder_layers


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


def find_num_labels(root: nn.Module, emissions: nn.Module | None, label_names: list[str] | None) -> int | None:
    """The number of labels: the emission layer's ``out_features``, else the label names, else the HF config."""
    if isinstance(emissions, nn.Linear):
        return emissions.out_features
    if label_names is not None:
        return len(label_names)
    model = find_pretrained_model(root)
    return getattr(getattr(model, "config", None), "num_labels", None)


def find_label_names(root: nn.Module, datamodule: Any, num_labels: int) -> tuple[list[str], str]:
    """Label names and where they came from: the HF config's ``id2label`` (unless generic), a
    ``label_names`` attribute of the module or datamodule, else ``LABEL_i``."""
    model = find_pretrained_model(root)
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    names = [id2label.get(i) for i in range(num_labels)] if len(id2label) == num_labels else []
    if names and not all(str(n) == f"LABEL_{i}" for i, n in enumerate(names)):
        return [str(n) for n in names], "the model config's id2label"
    for owner, where in ((root, "the LightningModule"), (datamodule, "the datamodule")):
        found = getattr(owner, "label_names", None)
        if found is not None and len(found) == num_labels:
            return [str(n) for n in found], f"{where}'s label_names"
    return [f"LABEL_{i}" for i in range(num_labels)], "generic LABEL_i names (pass label_names= for real ones)"


def find_tokenizer(root: nn.Module, datamodule: Any) -> Any | None:
    """A ``tokenizer`` attribute of the LightningModule or the datamodule, if any."""
    for owner in (root, datamodule):
        tokenizer = getattr(owner, "tokenizer", None)
        if tokenizer is not None and hasattr(tokenizer, "convert_ids_to_tokens"):
            return tokenizer
    return None


def validation_set_sizes(trainer: Any) -> list[int | None]:
    """Length of each validation dataset (``None`` where it has none)."""
    loaders = trainer.val_dataloaders
    sizes: list[int | None] = []
    for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
        try:
            sizes.append(len(loader.dataset))
        except (AttributeError, TypeError):
            sizes.append(None)
    return sizes


def check_capture_arguments(max_tokens: int, every_n_epochs: int, hidden_module: str | Sequence[str] | None,
                            every_n_val_runs: int = 1, dataloader_idx: int | str = 0,
                            label_issues: bool | int = True) -> str | list[str] | None:
    """Check the callback's capture arguments; ``hidden_module`` comes back as a name, a list or ``None``.

    Raises:
        ValueError: naming the argument and what it must be.
    """
    if not isinstance(max_tokens, int) or max_tokens <= 0:
        raise ValueError(f"max_tokens must be a positive int; got {max_tokens!r}.")
    if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
        raise ValueError(f"every_n_epochs must be an int >= 1; got {every_n_epochs!r}.")
    if not isinstance(every_n_val_runs, int) or every_n_val_runs < 1:
        raise ValueError(f"every_n_val_runs must be an int >= 1 (1: every validation); got {every_n_val_runs!r}.")
    if dataloader_idx != "all" and (not isinstance(dataloader_idx, int) or dataloader_idx < 0):
        raise ValueError(f"dataloader_idx must be a validation dataloader's index (an int >= 0) or 'all'; "
                         f"got {dataloader_idx!r}.")
    if not isinstance(label_issues, (bool, int)) or label_issues < 0:
        raise ValueError(f"label_issues must be True, False or the number of labelled tokens to follow (an int >= 0); "
                         f"got {label_issues!r}.")
    if hidden_module is None or isinstance(hidden_module, str):
        return hidden_module
    names = list(hidden_module)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"hidden_module must be a name or a list of distinct names; got {names!r}.")
    return names


def hidden_view_name(module_name: str, index: int) -> str:
    """The view name of the ``index``-th hidden module: ``hidden``, then ``hidden_<dotted_name_with_underscores>``."""
    return "hidden" if index == 0 else "hidden_" + re.sub(r"\W+", "_", module_name).strip("_")


@dataclass
class CaptureTargets:
    """What the callback watches in a model, as found at ``setup``.

    Attributes:
        modules: view name (``hidden``, ``hidden_<layer>``, ``emissions``, and ``layer:<name>`` for every
            encoder layer with ``hidden_module="all"``) to ``(dotted name, module)``.
        crf: the CRF whose Viterbi decode gives predictions, or ``None`` (argmax).
        crf_name: its dotted name, or ``None``.
        label_names: label id to name, one per emission column.
        label_source: where the label names came from.
        tokenizer: the tokenizer for hover text, or ``None``.
        root: the module searched (the LightningModule).
    """

    modules: dict[str, tuple[str, nn.Module]]
    crf: nn.Module | None
    crf_name: str | None
    label_names: list[str]
    label_source: str
    tokenizer: Any | None
    root: nn.Module | None = None

    @property
    def module_names(self) -> dict[str, str]:
        """View name to the hooked module's dotted name."""
        return {view: name for view, (name, _) in self.modules.items()}


def discover_targets(root: nn.Module, datamodule: Any, *, hidden_module: str | Sequence[str] | None,
                     emissions_module: str | None, crf_module: str | None, label_names: list[str] | None,
                     tokenizer: Any | None) -> CaptureTargets:
    """Resolve the callback's module, label and tokenizer arguments against the model.

    Raises:
        ValueError: for a module name that does not exist (naming the closest ones), when the
            number of labels cannot be told, or when ``label_names`` does not match the emissions.
    """
    hidden_names = [hidden_module] if isinstance(hidden_module, str) else list(hidden_module or [])
    model = find_pretrained_model(root)
    layers = encoder_layers(root, getattr(model, "base_model", model)) if ALL_LAYERS in hidden_names else {}
    hidden_names = [name for name in hidden_names if name != ALL_LAYERS] or [detect_hidden_module(root)]
    modules = {hidden_view_name(name, i): (name, get_module(root, name, argument="hidden_module"))
               for i, name in enumerate(hidden_names)}
    emissions_name = emissions_module or detect_emissions_module(root, len(label_names) if label_names else None)
    emissions = get_module(root, emissions_name, argument="emissions_module")
    modules["emissions"] = (emissions_name, emissions)
    modules.update(layers)
    crf = get_module(root, crf_module, argument="crf_module") if crf_module else find_crf(root)
    num_labels = find_num_labels(root, emissions, label_names)
    if num_labels is None:
        raise ValueError("Could not tell the number of labels; pass `label_names=[...]`.")
    names, source = (label_names, "the label_names argument") if label_names else find_label_names(root, datamodule, num_labels)
    if len(names) != num_labels:
        raise ValueError(
            f"label_names has {len(names)} names but {emissions_name!r} outputs {num_labels} "
            "columns; pass one name per emission column, in label-id order."
        )
    return CaptureTargets(
        modules=modules, crf=crf, crf_name=None if crf is None else _name_of(root, crf), label_names=names,
        label_source=source, tokenizer=tokenizer or find_tokenizer(root, datamodule), root=root,
    )


def is_compiled(root: nn.Module) -> bool:
    """Whether ``root`` or a module in it is compiled with ``torch.compile`` (or ``Module.compile()``),
    or Lightning fitted a compiled ``root``."""
    if getattr(root, "_compiler_ctx", None):
        return True
    return any(type(m).__name__ == "OptimizedModule" or getattr(m, "_compiled_call_impl", None) is not None
               for m in root.modules())
