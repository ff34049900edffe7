"""Annotated spans (not only a prefix) and the 'annotate next' query tier."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import AnnotationError, ParameterError
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.labels.spans import (
    annotated_extent,
    frame_uncertainty,
    parse_spans,
    query_stretches,
    query_tier,
    spans_to_mask,
)


def aset(**tiers):
    return AnnotationSet(tiers={n: Tier(n, [Annotation(s, e, n) for s, e in iv]) for n, iv in tiers.items()})


def test_parse_spans_sorts_merges_and_rejects_bad_text():
    assert parse_spans("45-60,0-20.5, 18-25").tolist() == [[0.0, 25.0], [45.0, 60.0]]
    with pytest.raises(ParameterError, match="START-END"):
        parse_spans("0-10,abc")
    with pytest.raises(ParameterError, match="ends before"):
        parse_spans("10-5")


def test_spans_to_mask_keeps_frames_entirely_inside():
    m = spans_to_mask(np.array([[0.0, 0.5], [1.02, 1.5]]), n_frames=20, fps=10.0)
    assert np.flatnonzero(m).tolist() == [0, 1, 2, 3, 4, 11, 12, 13, 14]


def test_extent_defaults_to_the_last_annotation_and_says_so():
    a = aset(lifted=[(1.0, 2.0), (5.0, 7.5)], turned=[(3.0, 4.0)])
    ext = annotated_extent(a, duration=20.0)
    assert ext.spans.tolist() == [[0.0, 7.5]] and ext.source == "last annotation"
    assert "up to the last annotation" in ext.warnings[0]
    ext = annotated_extent(a, duration=20.0, until=10.0)
    assert ext.spans.tolist() == [[0.0, 10.0]] and "past the last annotation" in ext.warnings[0]
    assert "past the end of the video" in annotated_extent(a, duration=20.0, until=30.0).warnings[0]
    ext = annotated_extent(a, duration=20.0, annotated="0-8,12-25")
    assert ext.spans.tolist() == [[0.0, 8.0], [12.0, 20.0]] and "clipped" in ext.warnings[0]
    spans = aset(done=[(0.0, 8.0), (12.0, 14.0)], lifted=[(1.0, 2.0)])
    assert annotated_extent(spans, tier="done").spans.tolist() == [[0.0, 8.0], [12.0, 14.0]]
    with pytest.raises(ParameterError, match="only one"):
        annotated_extent(a, until=3.0, annotated="0-3")
    with pytest.raises(AnnotationError, match="no annotation"):
        annotated_extent(aset(lifted=[]))


def test_query_ranks_the_most_uncertain_stretches_outside_the_annotated_part():
    fps = 10.0
    p = np.zeros((200, 2))
    p[:, 1] = 1.0
    p[150:170, 0] = 0.5  # most uncertain: 2 s at p = 0.5
    p[100:120, 1] = 0.7  # less uncertain (0.6)
    p[10:30, 0] = 0.5  # as uncertain, but annotated already
    annotated = np.zeros(200, bool)
    annotated[:50] = True
    got = query_stretches(p, fps=fps, n=3, length=2.0, annotated=annotated)
    assert [(s, e) for s, e, _ in got[:2]] == [(15.0, 17.0), (10.0, 12.0)]
    assert got[0][2] == pytest.approx(1.0) and got[1][2] == pytest.approx(0.6)
    assert got[2][2] == pytest.approx(0.0)
    assert all(e <= 5.0 or s >= 5.0 for s, e, _ in got)
    tier = query_tier(got)
    assert tier.name == "auto-query" and sorted(a.value.split()[0] for a in tier.annotations) == ["1", "2", "3"]
    assert [a.start for a in tier.annotations] == sorted(a.start for a in tier.annotations)
    assert sorted(a.value for a in tier.annotations)[0].startswith("1 (uncertainty 1.00)")
    assert frame_uncertainty(np.array([[0.5, 0.0], [0.9, 1.0]])).tolist() == pytest.approx([1.0, 0.2])
