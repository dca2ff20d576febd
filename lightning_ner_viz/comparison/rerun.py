"""The comparison as a Rerun recording: each run's clouds under ``runs/<name>/<view>`` in the reference run's
frame, the numbers against the reference under ``metrics/``, all on one ``epoch`` timeline.

The ``epoch`` timeline counts the matched snapshots in capture order (0, 1, ...): a run's snapshots may mix
``validate()`` baselines and several validations per epoch, and the runs' global steps may differ; the
``step`` timeline carries the reference run's global step, and ``summary`` names each snapshot.
"""

from __future__ import annotations

import math
import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.comparison.compare import Comparison
from lightning_ner_viz.sinks.analysis_text import cell
from lightning_ner_viz.sinks.rerun_closing import close_stream
from lightning_ner_viz.sinks.rerun_summary import label_annotations

APPLICATION_ID = "lightning_ner_viz_compare"
CLOSE_SECONDS = 30.0
"""How long writing the recording out may take when it is closed."""


def entity_part(name: str) -> str:
    """A run's name as one entity path part (``/``, spaces and the like escaped)."""
    return require("rerun").escape_entity_path_part(name)


def blueprint(comparison: Comparison) -> Any:
    """Side-by-side views of the runs' clouds, the metrics below, the summary beside them, the ``epoch`` timeline."""
    rrb = require("rerun").blueprint
    space = rrb.Spatial3DView if comparison.n_components == 3 else rrb.Spatial2DView
    reference = comparison.names[0]
    panels = [space(origin=f"runs/{entity_part(name)}", name=name if i else f"{name} (reference)")
              for i, name in enumerate(comparison.names)]
    curves = [rrb.TimeSeriesView(origin=f"metrics/{metric}", name=f"{title} vs {reference}")
              for metric, title in (("cka", "CKA"), ("mean_centroid_distance", "mean centroid distance"),
                                    ("neighbour_words_changed", "tokens whose neighbour words changed"))]
    return rrb.Blueprint(
        rrb.Horizontal(rrb.Vertical(rrb.Horizontal(*panels), rrb.Horizontal(*curves), row_shares=[3, 2]),
                       rrb.TextDocumentView(origin="summary", name="snapshot"), column_shares=[4, 1]),
        rrb.TimePanel(timeline="epoch"),
        collapse_panels=False,
    )


def snapshot_markdown(comparison: Comparison, s: int) -> str:
    """The matched snapshot ``s``: its name, and each run's numbers against the reference."""
    matched = comparison.matched[s]
    lines = [f"## {cell(matched.key.label)}", "", f"{len(matched)} tokens every run sampled; view `{comparison.view}`.", "",
             f"| run vs {cell(comparison.names[0])} | CKA | mean centroid distance | neighbour words changed |",
             "| --- | ---: | ---: | ---: |"]
    for r in comparison.results[s]:
        lines.append(f"| {cell(r.run)} | {r.cka:.3f} | {r.mean_centroid_distance:.3f} | {r.n_changed} of {len(matched)} |")
    return "\n".join(lines)


def log_snapshot(rec: Any, comparison: Comparison, s: int) -> None:
    """Log matched snapshot ``s``: every run's points and the metrics, at ``epoch = s``."""
    rr = require("rerun")
    matched = comparison.matched[s]
    rec.reset_time()
    rec.set_time("epoch", sequence=s)
    rec.set_time("step", sequence=int(matched.snapshots[0].step))
    labels = comparison.label_names
    ref, rows = matched.snapshots[0], matched.rows[0]
    tokens = [ref.token[j] for j in rows]
    words = [ref.word[j] for j in rows]
    sentences = [ref.sentences.get(int(ref.sentence_id[j]), "") for j in rows]
    name = lambda q: labels[q] if 0 <= q < len(labels) else "?"  # noqa: E731
    for r, (run, xyz) in enumerate(zip(comparison.runs, comparison.coords[s])):
        gold, pred = matched.gold(r), matched.pred(r)
        points = rr.Points3D if xyz.shape[1] == 3 else rr.Points2D
        values: dict[str, Any] = dict(token=tokens, word=words, sentence=sentences, gold=[name(q) for q in gold.tolist()],
                                      predicted=[name(q) for q in pred.tolist()], token_id=matched.token_id.tolist())
        if r > 0:
            values["neighbours_kept"] = comparison.results[s][r - 1].shared_neighbours.tolist()
        rec.log(f"runs/{entity_part(run.name)}/{comparison.view}",
                points(np.asarray(xyz), class_ids=gold, radii=rr.Radius.ui_points(3.0)), rr.AnyValues(**values))
    for result in comparison.results[s]:
        part = entity_part(result.run)
        for metric, value in (("cka", result.cka), ("mean_centroid_distance", result.mean_centroid_distance),
                              ("neighbour_words_changed", float(result.n_changed))):
            if math.isfinite(value):
                rec.log(f"metrics/{metric}/{part}", rr.Scalars(float(value)))
    rec.log("summary", rr.TextDocument(snapshot_markdown(comparison, s), media_type=rr.MediaType.MARKDOWN))


def write_recording(comparison: Comparison, path: str | os.PathLike[str]) -> Path:
    """Write the comparison to the ``.rrd`` file ``path``; returns it.

    Raises:
        OSError: when the file cannot be written (see :func:`~lightning_ner_viz.sinks.rerun_closing.close_stream`).
    """
    rr = require("rerun")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    rec = rr.RecordingStream(APPLICATION_ID, recording_id=str(uuid.uuid4()))
    rec.save(target)
    try:
        rec.send_blueprint(blueprint(comparison))
        rec.log("/", label_annotations(comparison.label_names), static=True)
        for s in range(len(comparison.matched)):
            log_snapshot(rec, comparison, s)
    finally:
        close_stream(rec, CLOSE_SECONDS, str(target))
    return target
