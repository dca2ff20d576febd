"""Optional dependencies, checked lazily the Lightning way.

Nothing here imports an optional package at import time. Each flag is a
:class:`~lightning_utilities.core.imports.RequirementCache`, whose ``str()``
already says what to ``pip install``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lightning_utilities.core.imports import RequirementCache

_RERUN_AVAILABLE = RequirementCache("rerun-sdk>=0.28", "rerun")
_WANDB_AVAILABLE = RequirementCache("wandb>=0.17", "wandb")
_PLOTLY_AVAILABLE = RequirementCache("plotly>=5", "plotly")
_UMAP_AVAILABLE = RequirementCache("umap-learn>=0.5.5", "umap")
_OPENTSNE_AVAILABLE = RequirementCache("openTSNE>=1.0", "openTSNE")
_TRANSFORMERS_AVAILABLE = RequirementCache("transformers>=4.40", "transformers")
_SKLEARN_AVAILABLE = RequirementCache("scikit-learn>=1.3", "sklearn")
_IPYTHON_AVAILABLE = RequirementCache("ipython>=8", "IPython")
_RERUN_NOTEBOOK_AVAILABLE = RequirementCache("rerun-notebook", "rerun_notebook")

_EXTRA_FOR = {
    "rerun": "rerun",
    "wandb": "wandb",
    "plotly": "html",
    "umap": "umap",
    "openTSNE": "tsne",
    "transformers": "all",
    "sklearn": "analysis",
    "IPython": "notebook",
}
_FLAG_FOR = {
    "rerun": _RERUN_AVAILABLE,
    "wandb": _WANDB_AVAILABLE,
    "plotly": _PLOTLY_AVAILABLE,
    "umap": _UMAP_AVAILABLE,
    "openTSNE": _OPENTSNE_AVAILABLE,
    "transformers": _TRANSFORMERS_AVAILABLE,
    "sklearn": _SKLEARN_AVAILABLE,
    "IPython": _IPYTHON_AVAILABLE,
}


def require(module: str) -> ModuleType:
    """Import an optional dependency, or raise naming the pip extra that installs it.

    Args:
        module: the import name, one of ``rerun``, ``wandb``, ``plotly``, ``umap``, ``openTSNE``, ``transformers``, ``sklearn``,
            ``IPython``.

    Raises:
        ModuleNotFoundError: when the package is missing; the message names the extra.
    """
    flag = _FLAG_FOR[module]
    if not flag:
        raise ModuleNotFoundError(
            f"{flag!s}. Install it with `pip install 'lightning-ner-viz[{_EXTRA_FOR[module]}]'`."
        )
    return importlib.import_module(module)
