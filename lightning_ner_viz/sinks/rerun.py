"""RerunSink: one Rerun recording per fit, scrubbed along an ``epoch`` timeline."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lightning_ner_viz._imports import require
from lightning_ner_viz.sinks.base import (
    Sink, check_listening, check_writable_file, output_root, renamed_attribute, renamed_keyword, resolve_under,
)
from lightning_ner_viz.sinks.analysis_text import events_markdown
from lightning_ner_viz.sinks.rerun_analysis import log_analysis
from lightning_ner_viz.sinks.rerun_blueprint import default_blueprint
from lightning_ner_viz.sinks.rerun_closing import close_stream, flush_within
from lightning_ner_viz.sinks.rerun_summary import HeldSummary, epoch_markdown, label_annotations, set_snapshot_time
from lightning_ner_viz.sinks.trajectories import TrajectoryHistory
from lightning_ner_viz.snapshot import Snapshot

if TYPE_CHECKING:
    import lightning.pytorch as pl

    from lightning_ner_viz.analysis.epoch_analysis import EpochAnalysis

DEFAULT_FILE = "embeddings.rrd"


class RerunSink(Sink):
    """Logs each epoch's clouds to a Rerun recording.

    Entities (under ``prefix``, default ``embeddings``):

    - ``embeddings/<view>``: ``Points3D``/``Points2D`` per view, ``class_ids`` = gold
      label, with hover values token, word, gold, predicted, correct, token_id, sentence;
    - ``embeddings/<view>/errors``: the misclassified tokens again, larger and coloured by
      their *predicted* label, with gold vs predicted on hover;
    - ``embeddings/<view>/trajectories``: each followed token's path up to this epoch;
    - ``embeddings/entities``: one point per gold entity span (mean of its subwords),
      coloured by entity type, with its own ``AnnotationContext`` (``embeddings/cls``
      likewise, one point per sentence, when the ``cls`` view is on);
    - ``embeddings/summary``: a markdown ``TextDocument`` with the epoch's counts, the whole validation
      set's span errors and the sub-clusters' events;
    - from :meth:`log_analysis`: ``embeddings/confusion`` and ``embeddings/class_similarity/<view>``
      (heatmap images, with the matrices as tensors below them), ``embeddings/errors`` and
      ``embeddings/clusters`` (markdown tables), ``embeddings/<cloud>/clusters`` (the cloud coloured by
      sub-cluster), the ``hidden`` points' nearest neighbours (a click lists them); see :mod:`.rerun_analysis`;
    - ``embeddings/metrics/<name>``: ``Scalars`` for every metric;
    - ``/``: a static ``AnnotationContext`` naming and colouring the labels.

    Every entity is logged on the ``step`` timeline (the global step) with the snapshot's own
    values, so late (background) logging lands at the right time; fit's validations also on the
    ``epoch`` timeline, ``trainer.validate()`` runs on the ``validate`` timeline (a baseline
    before training also at epoch -1). See :func:`~lightning_ner_viz.sinks.rerun_summary.set_snapshot_time`.

    Args:
        path: write the recording to this ``.rrd`` file. Relative paths resolve under the
            callback's snapshot root (``<default_root_dir>/ner_viz`` by default).
        spawn: start a local viewer and stream to it.
        connect: stream to a running viewer, e.g. ``"rerun+http://127.0.0.1:9876/proxy"``.
        application_id: the recording's application id.
        recording_id: continue this recording (restored automatically on resume).
        prefix: the entity path prefix.
        blueprint: send a default layout (one 3-D view per cloud, drift curves, the
            summary, the ``epoch`` timeline selected).
        trajectories: how many tracked tokens get a path over epochs
            (``LineStrips3D`` at ``<prefix>/<view>/trajectories``); 0 turns paths off.
        root: deprecated name of ``prefix``.

    Example::

        EmbeddingDriftCallback(sinks=[RerunSink(path="runs/embeddings.rrd")])
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        spawn: bool = False,
        connect: str | None = None,
        application_id: str = "lightning_ner_viz",
        recording_id: str | None = None,
        prefix: str = "embeddings",
        trajectories: int = 200,
        blueprint: bool = True,
        root: str | None = None,
    ) -> None:
        prefix = renamed_keyword("RerunSink", "root", "prefix", root, prefix, "embeddings")
        targets = sum([path is not None, spawn, connect is not None])
        if targets > 1:
            raise ValueError("RerunSink takes one target: `path=`, `spawn=True` or `connect=`; got several.")
        self._path = Path(path) if path is not None else (None if targets else Path(DEFAULT_FILE))
        self._output_root: Path | None = None
        self.spawn = spawn
        self.connect = connect
        self.application_id = application_id
        self.recording_id = recording_id
        self.prefix = prefix.strip("/")
        self.trajectories = trajectories
        self._history = TrajectoryHistory(max(trajectories, 1))
        self.written_path: Path | None = None
        self._continue_in_new_file = False
        self._rec: Any = None
        self._broken = False  # a write failed: closing skips the flush that would only wait
        self._label_names: list[str] | None = None
        self._group_names: dict[str, list[str]] = {}
        self._clouds: list[str] = []
        self._panels: tuple[list[str], list[str]] = ([], [])  # heatmaps, clustered clouds in the layout
        self._summary, self._crowds = HeldSummary(), {}  # the crowds: each token's neighbours' labels, last logged
        self.blueprint = blueprint

    def setup(self, trainer: pl.Trainer | None, save_dir: Path | None = None) -> None:
        """Fix the recording id; a relative ``path`` resolves under ``save_dir``."""
        self.recording_id = self.recording_id or str(uuid.uuid4())
        self._output_root = output_root(trainer, save_dir)

    def check_target(self) -> None:
        """The ``.rrd`` file's directory is writable, or the ``connect`` viewer listens (else ``SinkTargetError``)."""
        if self.path is not None:
            check_writable_file(self.path, repr(self))
        elif self.connect is not None:
            from urllib.parse import urlsplit

            url = urlsplit(self.connect if "://" in self.connect else f"rerun+http://{self.connect}")
            check_listening(url.hostname or "127.0.0.1", url.port or 9876, repr(self))

    @property
    def path(self) -> Path | None:
        """The ``.rrd`` file (resolved by :meth:`setup`), or ``None`` when streaming to a viewer."""
        return None if self._path is None else resolve_under(self._path, self._output_root)

    output_path = path  # the .rrd file is this sink's alone (None when streaming)

    @property
    def location(self) -> str | None:
        """The file written (or to be written), or the viewer streamed to."""
        if self.path is not None:
            return str(self.written_path or self.path)
        return self.connect or "a spawned viewer"

    @property
    def root(self) -> str:
        """Deprecated name of :attr:`prefix`."""
        return renamed_attribute(self, "root", "prefix")

    def _stream(self) -> Any:
        if self._rec is None:
            rr = require("rerun")
            self.recording_id = self.recording_id or str(uuid.uuid4())
            rec = rr.RecordingStream(self.application_id, recording_id=self.recording_id)
            if self.path is not None:
                rec.save(self._next_free_path())
            elif self.spawn:
                rec.spawn()
            else:
                rec.connect_grpc(self.connect)
            self._rec = rec
        return self._rec

    def _next_free_path(self) -> Path:
        """The file to write: ``path``, or ``path-1.rrd``... when continuing a recording (resume, or a
        second ``fit``/``validate`` after ``close``) whose file already exists.

        Rerun merges files that share a recording id when they are opened together.
        """
        path = self.path
        assert path is not None
        candidate, n = path, 0
        while candidate.exists() and self._continue_in_new_file:
            n += 1
            candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        candidate.parent.mkdir(parents=True, exist_ok=True)
        self.written_path = candidate
        return candidate

    def _log_annotations(self, label_names: list[str]) -> None:
        self._stream().log("/", label_annotations(label_names), static=True)
        self._label_names = list(label_names)

    def log_epoch(self, snapshot: Snapshot, coords: dict[str, np.ndarray], metrics: dict[str, float]) -> None:
        """Log one epoch's clouds and metrics; its summary waits for :meth:`log_analysis` (or the next epoch)."""
        rr = require("rerun")
        rec = self._stream()
        self._summary.release(rec, f"{self.prefix}/summary")  # the previous snapshot's, if its analyses did not come
        if self._label_names != snapshot.label_names:
            self._log_annotations(snapshot.label_names)
        set_snapshot_time(rec, snapshot)
        gold, pred = snapshot.gold_names(), snapshot.pred_names()
        hover = rr.AnyValues(token=snapshot.token, word=snapshot.word, gold=gold, predicted=pred,
                             correct=[bool(c) for c in snapshot.correct], token_id=snapshot.token_id.tolist(),
                             sentence=[snapshot.sentences.get(int(s), "") for s in snapshot.sentence_id])
        wrong = np.flatnonzero(~snapshot.correct)
        gold_of = {int(t): int(g) for t, g in zip(snapshot.token_id, snapshot.gold)}
        self._history.add(snapshot, coords)
        for view, xyz in coords.items():
            points = rr.Points3D if xyz.shape[1] == 3 else rr.Points2D
            rec.log(f"{self.prefix}/{view}", points(xyz, class_ids=snapshot.gold, radii=rr.Radius.ui_points(3.0)), hover)
            rec.log(
                f"{self.prefix}/{view}/errors",
                points(xyz[wrong], class_ids=snapshot.pred[wrong].clip(min=0), radii=rr.Radius.ui_points(6.0)),
                rr.AnyValues(token=[snapshot.token[i] for i in wrong], gold=[gold[i] for i in wrong],
                             predicted=[pred[i] for i in wrong]),
            )
            strips, ids = self._history.strips(view) if self.trajectories else ([], [])
            if strips:
                lines = rr.LineStrips3D if xyz.shape[1] == 3 else rr.LineStrips2D
                rec.log(f"{self.prefix}/{view}/trajectories",
                        lines(strips, class_ids=[gold_of.get(t, 0) for t in ids], radii=rr.Radius.ui_points(0.3)),
                        rr.AnyValues(token_id=ids))
        self._update_layout(list(coords))
        self._summary.hold(snapshot, epoch_markdown(snapshot, metrics), coords)  # logged by log_analysis
        for name, value in metrics.items():
            if np.isfinite(value):
                rec.log(f"{self.prefix}/metrics/{name}", rr.Scalars(float(value)))
        self._flush(rec)  # the epoch is on disk (or sent) before the next one

    def _update_layout(self, clouds: list[str], heatmaps: list[str] | None = None,
                       clustered: list[str] | None = None) -> None:
        """Send the default layout once, and again when a new cloud (view or group) or analysis panel appears."""
        clouds = list(dict.fromkeys(clouds))
        panels = ([*self._panels[0], *(p for p in heatmaps or [] if p not in self._panels[0])],
                  [*self._panels[1], *(c for c in clustered or [] if c not in self._panels[1])])
        if self.blueprint and (set(clouds) - set(self._clouds) or panels != self._panels):
            self._clouds, self._panels = clouds, panels
            self._stream().send_blueprint(default_blueprint(self.prefix, clouds, *panels))

    flush_timeout = 10.0
    """Seconds to wait for a viewer to take an epoch before the sink reports it as failed."""
    warm_imports = ("rerun", "rerun.blueprint")

    def log_group(self, name: str, group: Snapshot, coords: np.ndarray) -> None:
        """Log a group (``entities``, ``cls``) at ``<prefix>/<name>``, with its own class colours."""
        rr = require("rerun")
        rec = self._stream()
        path = f"{self.prefix}/{name}"
        if self._group_names.get(name) != group.label_names:
            rec.log(path, label_annotations(group.label_names), static=True)
            self._group_names[name] = list(group.label_names)
        self._update_layout([*self._clouds, name])
        set_snapshot_time(rec, group)
        self._summary.coords_of(group)[name] = coords
        points = rr.Points3D if coords.shape[1] == 3 else rr.Points2D
        rec.log(path, points(coords, class_ids=group.gold, radii=rr.Radius.ui_points(4.0)),
                rr.AnyValues(text=group.token, gold=group.gold_names(), predicted=group.pred_names(),
                             sentence=[group.sentences.get(int(s), "") for s in group.sentence_id]))
        self._flush(rec)

    def log_analysis(self, snapshot: Snapshot, analysis: EpochAnalysis) -> None:
        """Log the snapshot's heatmaps, errors and sub-cluster tables and layers, and its summary (held since
        ``log_epoch``) with the sub-clusters' events (see :mod:`~lightning_ner_viz.sinks.rerun_analysis`)."""
        rec = self._stream()
        set_snapshot_time(rec, snapshot)
        coords = self._summary.coords_of(snapshot)
        heatmaps = log_analysis(rec, self.prefix, snapshot, analysis, coords, self._crowds)
        events = events_markdown(analysis) if self._summary.holds(snapshot) else ""
        self._summary.release(rec, f"{self.prefix}/summary", events)
        clustered = [c for c in analysis.clusters if c in coords]
        self._update_layout(self._clouds, heatmaps, clustered)
        self._flush(rec)

    def _flush(self, rec: Any) -> None:
        self._broken = True  # until the flush returns
        flush_within(rec, self.flush_timeout, str(self.location))
        self._broken = False

    def flush(self) -> None:
        """Everything logged so far is in the file (or sent), within :attr:`flush_timeout`; the recording stays open."""
        if self._rec is not None:
            self._summary.release(self._rec, f"{self.prefix}/summary")
            self._flush(self._rec)

    def close(self) -> None:
        """Flush, then close, each within :attr:`flush_timeout` (after a failed write: close only, 1 s); raises ``OSError``."""
        if self._rec is not None:
            if not self._broken:
                self._summary.release(self._rec, f"{self.prefix}/summary")
            rec, self._rec, broken, self._broken = self._rec, None, self._broken, False
            self._continue_in_new_file = True
            close_stream(rec, self.flush_timeout, str(self.location), broken)

    def state_dict(self) -> dict[str, Any]:
        """The recording id, so a resumed fit continues the same recording."""
        return {"recording_id": self.recording_id}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the recording ``state['recording_id']`` in a new file beside the old one."""
        self.recording_id = state.get("recording_id") or self.recording_id
        self._continue_in_new_file = True

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_rec"] = None
        return state

    def __repr__(self) -> str:
        target = f"path={str(self.path)!r}" if self.path else ("spawn=True" if self.spawn else f"connect={self.connect!r}")
        return f"RerunSink({target})"
