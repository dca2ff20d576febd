"""Keep umap-learn's compiled numba code on disk, so a new Python process does not compile it again.

umap-learn declares one of its numba functions with ``cache=True`` (pynndescent most of its
own); numba compiles the others again in every new process: on a 2-core machine that is about
5 s before the first UMAP layout, every run. Setting ``NUMBA_CACHE_DIR`` alone does not help: it
only moves the cache of the functions that ask for one. :func:`cache_umap_code` asks for it on
every numba dispatcher of umap and pynndescent that has none, once per process, before their
first call. Numba then writes the machine code beside the library's sources (``__pycache__``)
or, when that is read-only, into its user-wide cache directory, and keys it by the source
file's timestamp, so an upgraded umap-learn compiles afresh. Measured in docs/performance.md.

Two pynndescent functions (``nn_descent`` and ``nn_descent_internal``, used above
``exact_knn_max`` tokens) cannot be cached (numba: "uses dynamic globals"): they still compile
once per process, and numba's warning about it is silenced by :data:`CACHE_WARNING`.

``LIGHTNING_NER_VIZ_NUMBA_CACHE=0`` in the environment leaves umap-learn as it is (nothing written).
"""

from __future__ import annotations

import os
import sys
import threading

_PACKAGES = ("umap", "pynndescent")
CACHE_WARNING = r"Cannot cache compiled function"
"""The start of numba's warning for a function whose code cannot be cached (filtered where UMAP runs)."""

_done = False
_lock = threading.Lock()


def cache_umap_code() -> int:
    """Turn on numba's disk cache for every already imported umap and pynndescent function without one.

    Call it after ``import umap`` and before the first layout; later calls do nothing.

    Returns:
        How many functions it turned the cache on for (0 on a later call, or without numba).
    """
    global _done
    with _lock:
        if _done or os.environ.get("LIGHTNING_NER_VIZ_NUMBA_CACHE", "1") == "0":
            return 0
        _done = True
        try:
            from numba.core.caching import NullCache
            from numba.core.registry import CPUDispatcher
        except ImportError:  # numba moved these: umap still works, it compiles as before
            return 0
        enabled = 0
        for name, module in list(sys.modules.items()):
            if module is None or name.split(".")[0] not in _PACKAGES:
                continue
            for value in list(vars(module).values()):
                if isinstance(value, CPUDispatcher) and isinstance(getattr(value, "_cache", None), NullCache):
                    try:
                        value.enable_caching()
                        enabled += 1
                    except Exception:  # noqa: BLE001 - a function numba cannot cache still runs, compiled
                        pass
        return enabled
