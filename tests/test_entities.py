"""The entities view: BIO spans decoded on the device, one mean vector per span."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_ner_viz.capture.entities import EntityTypes, entity_spans, mean_vectors

NAMES = ["O", "B-BRAND", "I-BRAND", "B-TYPE", "I-TYPE"]
TYPES = EntityTypes.from_label_names(NAMES)


def _reference_spans(labels: list[int]) -> list[tuple[int, int, int]]:
    """(start, end, type) by a plain loop: a span starts at B- or a type change; O and -100 end it."""
    spans, current = [], None
    for i, lab in enumerate(labels + [-100]):
        kind = 0 if lab < 0 else int(TYPES.type_of[lab])
        starts = kind > 0 and (NAMES[lab].startswith("B-") or current is None or current[2] != kind)
        if current is not None and (kind == 0 or starts):
            spans.append(current)
            current = None
        if starts:
            current = (i, i, kind)
        elif kind > 0 and current is not None:
            current = (current[0], i, kind)
    return spans


@settings(max_examples=150, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from([-100, 0, 1, 2, 3, 4]), min_size=6, max_size=6), min_size=1, max_size=5))
def test_spans_match_a_plain_bio_decoder(rows):
    labels = torch.tensor(rows)
    spans = entity_spans(labels, labels != -100, TYPES)
    got = sorted(zip(spans["row"].tolist(), spans["start"].tolist(), spans["end"].tolist(), spans["type"].tolist()))
    want = sorted((r, a, b, k) for r, row in enumerate(rows) for a, b, k in _reference_spans(row))
    assert got == want


def test_mean_vector_averages_the_subwords_of_each_span():
    labels = torch.tensor([[0, 1, 2, 2, 0, 3]])  # O, B-BRAND I-BRAND I-BRAND, O, B-TYPE
    hidden = torch.arange(6, dtype=torch.float32).view(1, 6, 1).repeat(1, 1, 2)
    spans = entity_spans(labels, torch.ones_like(labels, dtype=torch.bool), TYPES)
    vectors = mean_vectors(hidden, spans["span_of"], len(spans["row"]))
    assert np.allclose(vectors.numpy(), [[2.0, 2.0], [5.0, 5.0]])
    assert TYPES.names == ["O", "BRAND", "TYPE"] and spans["type"].tolist() == [1, 2]


def test_cls_view_alone_logs_one_point_per_sentence(tmp_path, fit_with_callback, datamodule, bert_config):
    from rrd_reading import read_rrd

    from lightning_ner_viz import load_snapshots
    from lightning_ner_viz.sinks import RerunSink

    rrd = tmp_path / "cls.rrd"
    fit_with_callback(sinks=[RerunSink(path=rrd)], max_tokens=50, entity_view=False, cls_view=True)
    rows = read_rrd(rrd)
    assert "/embeddings/entities" not in rows
    clouds = [r for r in rows["/embeddings/cls"] if "epoch" in r]
    assert [c["epoch"] for c in clouds] == [0, 1] and len(clouds[0]["Points3D:positions"]) == 50
    snapshot = load_snapshots(tmp_path / "ner_viz")[1]
    group = snapshot.groups["cls"]
    assert set(group.sentence_id.tolist()) <= set(range(len(datamodule.val_rows)))
    assert len(set(group.sentence_id.tolist())) == 50 and group.views["cls"].shape == (50, bert_config.hidden_size)
    assert group.token[0] == snapshot.sentences.get(int(group.sentence_id[0]), group.token[0])


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from([-100, 0, 1, 2, 3, 4]), min_size=5, max_size=5), min_size=1, max_size=4),
       pick=st.lists(st.booleans(), min_size=20, max_size=20))
def test_members_of_chosen_spans_are_renumbered_in_order(rows, pick):
    from lightning_ner_viz.capture.entities import span_begins, span_members

    labels = torch.tensor(rows)
    kind, begin = span_begins(labels, labels != -100, TYPES.type_of, TYPES.begins)
    tokens, span = span_members(kind, begin)
    n = int(begin.sum())
    chosen = torch.tensor([i for i in range(n) if pick[i]], dtype=torch.long)
    got_tokens, got_span = span_members(kind, begin, chosen, n)
    keep = torch.isin(span, chosen)
    assert torch.equal(got_tokens, tokens[keep])
    assert torch.equal(chosen[got_span], span[keep])
