"""Facts the callback reads off the user's model, Trainer and datamodule."""

from __future__ import annotations

from typing import Any

from torch import nn

from lightning_ner_viz.capture.discovery import find_pretrained_model


def find_num_labels(root: nn.Module, emissions: nn.Module | None, label_names: list[str] | None) -> int | None:
    """The number of labels: the emission layer's ``out_features``, else the label names, else the HF config."""
    if isinstance(emissions, nn.Linear):
        return emissions.out_features
    if label_names is not None:
        return len(label_names)
    model = find_pretrained_model(root)
    return getattr(getattr(model, "config", None), "num_labels", None)


def find_label_names(root: nn.Module, datamodule: Any, num_labels: int) -> list[str]:
    """Label names from the HF config's ``id2label`` (unless generic), a ``label_names``
    attribute of the module or datamodule, else ``LABEL_i``."""
    model = find_pretrained_model(root)
    id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
    names = [id2label.get(i) for i in range(num_labels)] if len(id2label) == num_labels else []
    if names and not all(str(n) == f"LABEL_{i}" for i, n in enumerate(names)):
        return [str(n) for n in names]
    for owner in (root, datamodule):
        found = getattr(owner, "label_names", None)
        if found is not None and len(found) == num_labels:
            return [str(n) for n in found]
    return [f"LABEL_{i}" for i in range(num_labels)]


def find_tokenizer(root: nn.Module, datamodule: Any) -> Any | None:
    """A ``tokenizer`` attribute of the LightningModule or the datamodule, if any."""
    for owner in (root, datamodule):
        tokenizer = getattr(owner, "tokenizer", None)
        if tokenizer is not None and hasattr(tokenizer, "convert_ids_to_tokens"):
            return tokenizer
    return None


def validation_set_size(trainer: Any) -> int | None:
    """Length of the first validation dataset, when it has one."""
    loaders = trainer.val_dataloaders
    loader = loaders[0] if isinstance(loaders, (list, tuple)) and loaders else loaders
    dataset = getattr(loader, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:
        return None
