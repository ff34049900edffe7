"""Per-frame labels from intervals: hand-computed cases at 25 and 29.97 fps, edges on frame
boundaries, points, background, clipping and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from musicperf.errors import AnnotationError, ParameterError
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.labels import (
    GESTURES18,
    Taxonomy,
    frame_labels,
    intervals_to_frames,
    time_to_frames,
)

NTSC = 30000 / 1001


def covered(intervals, *, fps, n_frames, start_time=0.0):
    """Indices of the frames covered by ``intervals``."""
    mask = intervals_to_frames(np.asarray(intervals, dtype=float), fps=fps, n_frames=n_frames, start_time=start_time)
    return np.flatnonzero(mask).tolist()


def one_tier(name, *spans, source=None):
    aset = AnnotationSet(source=source)
    aset.add_tier(Tier(name, [Annotation(s, e) for s, e in spans]))
    return aset


# --------------------------------------------------------------------------- 25 fps
@pytest.mark.parametrize(
    "interval, frames",
    [
        ((0.04, 0.08), [1]),  # both ends exactly on frame edges: frame 1 only
        ((0.0, 0.04), [0]),
        ((0.05, 0.09), [1, 2]),  # any overlap: partly covered frames count
        ((0.039, 0.04), [0]),  # ends on the edge of frame 1: not frame 1
        ((0.08, 0.0800001), [2]),  # starts on the edge of frame 2: not frame 1
        ((0.1, 0.2), [2, 3, 4]),  # ELAN-style milliseconds: 100 ms .. 200 ms
        ((0.04, 0.04), [1]),  # a point on an edge marks the frame that starts there
        ((0.05, 0.05), [1]),  # a point inside frame 1
        ((0.0, 0.0), [0]),
        ((0.19, 0.41), [4, 5, 6, 7, 8, 9, 10]),
    ],
)
def test_frames_25fps(interval, frames):
    assert covered([interval], fps=25.0, n_frames=20) == frames


def test_every_frame_edge_25fps_both_spellings():
    # k / 25 and k * 0.04 round differently in binary; both must select exactly frame k
    for k in range(0, 3000, 7):
        for s, e in ((k / 25, (k + 1) / 25), (k * 0.04, (k + 1) * 0.04)):
            assert covered([(s, e)], fps=25.0, n_frames=3001) == [k], (k, s, e)


# --------------------------------------------------------------------------- 29.97 fps
@pytest.mark.parametrize(
    "interval, frames",
    [
        ((1001 / 30000, 2002 / 30000), [1]),  # exactly frame 1's span
        ((0.0334, 0.0667), [1]),  # frame 1 is [0.033367, 0.066733)
        ((0.0333, 0.0668), [0, 1, 2]),  # just outside both edges
        ((0.1, 0.2), [2, 3, 4, 5]),  # 100 ms -> frame 2 (starts 0.0667); 200 ms < 0.2002 (frame 6 start)
        ((1.0, 1.001), [29]),  # 1.001 s = 30 * 1001 / 30000 is frame 30's start edge
        ((1.001, 1.001), [30]),  # a point on that edge
        ((0.0, 1001 / 30000), [0]),
    ],
)
def test_frames_2997fps(interval, frames):
    assert covered([interval], fps=NTSC, n_frames=40) == frames


def test_every_frame_edge_2997fps():
    # ten minutes in, k * 1001 / 30000 still selects exactly frame k
    for k in list(range(0, 200, 3)) + [17981, 17982, 17983]:
        s, e = k * 1001 / 30000, (k + 1) * 1001 / 30000
        assert covered([(s, e)], fps=NTSC, n_frames=18000) == [k], k
        assert time_to_frames(s, fps=NTSC) == k


# --------------------------------------------------------------------------- matrix
def test_frame_labels_matrix_and_background():
    tax = Taxonomy.builtin("gestures18")
    aset = AnnotationSet()
    aset.add_tier(Tier("Nodding", [Annotation(0.04, 0.08), Annotation(0.06, 0.12)]))  # overlapping
    aset.add_tier(Tier("eyes_closed ", [Annotation(0.2, 0.2)]))  # forgiving name, a point
    aset.add_tier(Tier("Vibrato", []))
    y = frame_labels(aset, tax, fps=25.0, n_frames=8)
    assert y.shape == (8, 18) and y.dtype == np.float32
    nod, eyes, normal = (GESTURES18.index(c) for c in ("Nodding", "Eyes closed", "Normal play"))
    assert np.flatnonzero(y[:, nod]).tolist() == [1, 2]
    assert np.flatnonzero(y[:, eyes]).tolist() == [5]
    assert np.flatnonzero(y[:, normal]).tolist() == [0, 3, 4, 6, 7]
    assert y.sum() == 8  # every frame has exactly one class here
    assert set(np.unique(y)) <= {0.0, 1.0}


def test_annotated_background_tier_is_ignored_background_is_derived():
    tax = Taxonomy.builtin("gestures18")
    aset = one_tier("Normal play", (0.0, 0.32))
    aset.add_tier(Tier("Freeze", [Annotation(0.0, 0.04)]))
    y = frame_labels(aset, tax, fps=25.0, n_frames=8)
    assert y[:, GESTURES18.index("Normal play")].tolist() == [0, 1, 1, 1, 1, 1, 1, 1]


def test_start_time_and_clipping():
    tax = Taxonomy.from_annotations(one_tier("A", (0, 1)))
    aset = one_tier("A", (0.5, 1.04), (1.04, 1.08), (9.0, 9.5))
    y = frame_labels(aset, tax, fps=25.0, n_frames=4, start_time=1.0, check=False)
    assert y[:, 0].tolist() == [1, 1, 0, 0]


def test_superclass_frames():
    tax = Taxonomy.builtin("superclasses7")
    aset = one_tier("Frowning", (0.0, 0.08))
    aset.add_tier(Tier("Physical energy", [Annotation(0.08, 0.16)]))  # dropped -> normal play
    aset.add_tier(Tier("Lifting head", [Annotation(0.04, 0.08)]))
    y = frame_labels(aset, tax, fps=25.0, n_frames=5)
    assert y.tolist() == [
        [1, 0, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
    ]


def test_unknown_tiers_warn_or_raise():
    tax = Taxonomy.builtin("gestures18")
    aset = one_tier("Comments", (0.0, 0.1), source="perf.eaf")
    with pytest.warns(UserWarning, match="'Comments'.*ignored"):
        frame_labels(aset, tax, fps=25.0, n_frames=4)
    with pytest.raises(AnnotationError, match=r"perf\.eaf.*'Comments'"):
        frame_labels(aset, tax, fps=25.0, n_frames=4, unknown="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frame_labels(aset, tax, fps=25.0, n_frames=4, unknown="ignore")


def test_annotations_past_the_video_are_an_error():
    tax = Taxonomy.builtin("gestures18")
    aset = one_tier("Nodding", (1000.0, 4521.0), source="concert.eaf")
    with pytest.raises(AnnotationError, match=r"4521\.000 s exceeds.*concert\.eaf.*milliseconds"):
        frame_labels(aset, tax, fps=25.0, n_frames=1000)  # 40 s of video


def test_bad_intervals_and_parameters():
    tax = Taxonomy.builtin("gestures18")
    with pytest.raises(AnnotationError, match=r"ends .* before it starts.*bad\.eaf"):
        frame_labels(one_tier("Nodding", (0.5, 0.2), source="bad.eaf"), tax, fps=25.0, n_frames=40)
    with pytest.raises(ParameterError, match="fps"):
        frame_labels(one_tier("Nodding", (0.1, 0.2)), tax, fps=0, n_frames=40)
    with pytest.raises(ParameterError, match="n_frames"):
        frame_labels(one_tier("Nodding", (0.1, 0.2)), tax, fps=25.0, n_frames=-1)


def test_frame_labels_by_value():
    aset = AnnotationSet()
    aset.add_tier(Tier("gestures", [Annotation(0.0, 0.04, "Vibrato"), Annotation(0.04, 0.08, "FREEZE")]))
    tax = Taxonomy.builtin("gestures18", by="value")
    y = frame_labels(aset, tax, fps=25.0, n_frames=3)
    assert y[:, GESTURES18.index("Vibrato")].tolist() == [1, 0, 0]
    assert y[:, GESTURES18.index("Freeze")].tolist() == [0, 1, 0]
    assert y[:, GESTURES18.index("Normal play")].tolist() == [0, 0, 1]
