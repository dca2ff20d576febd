"""The terminal summary of a comparison: per matched snapshot and run against the reference, CKA, the mean label-centroid
distance and how many tokens' neighbour words changed."""

from __future__ import annotations

import math

from lightning_ner_viz.comparison.compare import Comparison

HEADERS = ("snapshot", "run", "CKA", "mean centroid dist.", "neighbour words changed")


def _number(x: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def summary_rows(comparison: Comparison) -> list[tuple[str, ...]]:
    """One row of cells per matched snapshot and compared run."""
    rows = []
    for matched, results in zip(comparison.matched, comparison.results):
        for result in results:
            rows.append((matched.key.label, f"{result.run} vs {result.reference}", _number(result.cka),
                         _number(result.mean_centroid_distance), f"{result.n_changed} of {len(matched)}"))
    return rows


def summary_table(comparison: Comparison) -> str:
    """The comparison as an aligned plain-text table, with a line naming what was compared."""
    rows = summary_rows(comparison)
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(HEADERS)]
    right = {2, 3, 4}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if k in right else c.ljust(w) for k, (c, w) in enumerate(zip(cells, widths))).rstrip()

    n = len(comparison.matched)
    head = (f"Compared {len(comparison.runs)} runs against {comparison.names[0]!r} over {n} snapshot{'s' * (n != 1)} "
            f"(view {comparison.view}, {comparison.reducer} {comparison.n_components}-D, frame {comparison.frame}):")
    return "\n".join([head, line(HEADERS), line(tuple("-" * w for w in widths)), *(line(r) for r in rows)])
