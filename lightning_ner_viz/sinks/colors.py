"""Label colours shared by every sink: ``O`` is dark grey, B-/I- of a type share a hue."""

from __future__ import annotations

from lightning_ner_viz.labels import OUTSIDE, entity_type

__all__ = ["OUTSIDE_COLOR", "entity_type", "hex_color", "label_colors"]

_PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (255, 187, 120),
]
OUTSIDE_COLOR = (90, 90, 90)


def label_colors(label_names: list[str]) -> list[tuple[int, int, int]]:
    """An RGB colour per label: ``O`` dark grey; B- full hue, I- the same hue lighter."""
    types = [t for t in dict.fromkeys(entity_type(n) for n in label_names) if t != OUTSIDE]
    hue = {t: _PALETTE[i % len(_PALETTE)] for i, t in enumerate(types)}
    colors = []
    for name in label_names:
        if name == OUTSIDE:
            colors.append(OUTSIDE_COLOR)
            continue
        r, g, b = hue[entity_type(name)]
        if name.startswith("I-"):
            r, g, b = (int(c + (255 - c) * 0.45) for c in (r, g, b))
        colors.append((r, g, b))
    return colors


def hex_color(rgb: tuple[int, int, int]) -> str:
    """``(255, 0, 0)`` -> ``#ff0000``."""
    return "#{:02x}{:02x}{:02x}".format(*rgb)
