"""The warning category every lightning-ner-viz warning uses, so users can filter them."""

from __future__ import annotations

import warnings


class NerVizWarning(UserWarning):
    """A problem lightning-ner-viz worked around; training goes on."""


def warn(message: str) -> None:
    """Emit a :class:`NerVizWarning` pointing at the caller's caller."""
    warnings.warn(message, NerVizWarning, stacklevel=3)
