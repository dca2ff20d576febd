"""Every encoder layer of a Hugging Face model, for ``hidden_module="all"``: the layer × epoch figures.

The layers are captured by the same forward hooks as the clouds, in the same validation pass, and travel on
the :class:`~lightning_ner_viz.snapshot.Snapshot` as ``layers`` (numbers only: no layer is projected unless it
is also named as a cloud in ``hidden_module``).
"""

from __future__ import annotations

from torch import nn

ALL_LAYERS = "all"
"""The ``hidden_module`` value (alone or in a list) that captures every encoder layer."""

LAYER_PREFIX = "layer:"
"""Capture-time view names of the layers are ``layer:<name>``; the snapshot keeps ``<name>`` in ``layers``."""

EMBEDDINGS = "embeddings"
"""The first layer's name: the embedding module's output (Hugging Face's ``hidden_states[0]``)."""


def layer_name(index: int) -> str:
    """The name of encoder block ``index`` (0-based): ``layer_01`` is Hugging Face's ``hidden_states[1]``."""
    return f"layer_{index + 1:02d}"


def _block_list(model: nn.Module) -> tuple[str, nn.ModuleList] | None:
    """The model's list of transformer blocks: the longest ``ModuleList`` of identical modules
    (``encoder.layer`` in BERT, MiniLM and DeBERTa, ``transformer.layer`` in DistilBERT)."""
    expected = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    found = [(name, m) for name, m in model.named_modules()
             if isinstance(m, nn.ModuleList) and len(m) > 0 and len({type(c) for c in m}) == 1]
    if expected is not None:
        found = [(name, m) for name, m in found if len(m) == expected] or found
    return max(found, key=lambda item: len(item[1]), default=None)


def encoder_layers(root: nn.Module, model: nn.Module | None) -> dict[str, tuple[str, nn.Module]]:
    """Capture view name (``layer:embeddings``, ``layer:layer_01``, ...) to ``(dotted name, module)`` of every
    layer of the Hugging Face ``model`` inside ``root``, input side first.

    Raises:
        ValueError: when ``model`` is ``None`` or has no list of transformer blocks; the message says to
            list the layers in ``hidden_module`` instead.
    """
    blocks = None if model is None else _block_list(model)
    if blocks is None:
        raise ValueError(
            f"hidden_module='all' needs a Hugging Face encoder (a model with a list of transformer blocks) inside "
            f"{type(root).__name__}; found none. List the layers to compare instead, e.g. "
            "hidden_module=['encoder.layer.0', 'encoder.layer.1', ...] (dotted module names).")
    assert model is not None
    names = {m: n for n, m in root.named_modules()}
    layers: dict[str, tuple[str, nn.Module]] = {}
    embeddings = getattr(model, "embeddings", None)
    if isinstance(embeddings, nn.Module):
        layers[LAYER_PREFIX + EMBEDDINGS] = (names[embeddings], embeddings)
    for i, block in enumerate(blocks[1]):
        layers[LAYER_PREFIX + layer_name(i)] = (names[block], block)
    return layers


def split_layer_views(views: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Capture view names split into the clouds' views and the layers' (without :data:`LAYER_PREFIX`)."""
    return ([v for v in views if not v.startswith(LAYER_PREFIX)],
            [v[len(LAYER_PREFIX):] for v in views if v.startswith(LAYER_PREFIX)])
