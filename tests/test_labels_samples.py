"""16-frame samples, Equation 6 temporal smoothing, intervals from predictions and round trips."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.labels import (
    Taxonomy,
    add_background,
    frame_labels,
    intervals_from_frames,
    labels_to_annotationset,
    merge_intervals,
    sample_labels,
    sample_starts,
    temporal_smoothing,
)

NTSC = 30000 / 1001


# --------------------------------------------------------------------------- samples
def test_sample_starts():
    assert sample_starts(40).tolist() == [0, 16]  # the 8-frame tail is dropped
    assert sample_starts(48).tolist() == [0, 16, 32]
    assert sample_starts(40, stride=8).tolist() == [0, 8, 16, 24]
    assert sample_starts(15).tolist() == []
    assert sample_starts(12013).size == 750  # video-1 of Table 1 of 001: 12013 frames
    with pytest.raises(ParameterError, match="stride"):
        sample_starts(40, stride=0)


def test_temporal_smoothing_equation_6():
    x = np.zeros(16)
    x[-2:] = 1  # present in the two most recent frames
    assert temporal_smoothing(x) == pytest.approx((15 + 16) / 136)
    y = np.zeros(16)
    y[:2] = 1  # present in the two oldest frames: weighs less
    assert temporal_smoothing(y) == pytest.approx((1 + 2) / 136)
    assert temporal_smoothing(np.ones(16)) == pytest.approx(1.0)
    assert temporal_smoothing(np.zeros(16)) == 0.0
    # (n, K) and (B, n, K) use the frame axis
    two = np.stack([x, y], axis=1)
    assert temporal_smoothing(two) == pytest.approx([31 / 136, 3 / 136])
    assert temporal_smoothing(np.stack([two, two[::-1]])).shape == (2, 2)
    assert temporal_smoothing(np.stack([two, two[::-1]]))[1] == pytest.approx([3 / 136, 31 / 136])
    # n = 4: weights 1..4 over 10
    assert temporal_smoothing(np.array([0, 1, 0, 1.0])) == pytest.approx(6 / 10)


def test_sample_labels_any_and_ts():
    labels = np.zeros((40, 2), dtype=np.float32)
    labels[14:18, 0] = 1  # straddles samples 0 and 1
    labels[20, 1] = 1
    starts = sample_starts(40)
    assert sample_labels(labels, starts).tolist() == [[1, 0], [1, 1]]
    ts = sample_labels(labels, starts, how="ts")
    assert ts[0] == pytest.approx([(15 + 16) / 136, 0])
    assert ts[1] == pytest.approx([(1 + 2) / 136, 5 / 136])
    assert sample_labels(labels, sample_starts(40, stride=8), length=16).shape == (4, 2)
    with pytest.raises(ParameterError, match="do not fit"):
        sample_labels(labels, [30])
    with pytest.raises(ParameterError, match="'any' or 'ts'"):
        sample_labels(labels, starts, how="mean")


# --------------------------------------------------------------------------- intervals
def test_intervals_from_frames_runs_gaps_and_min_duration():
    b = np.zeros(20)
    b[[1, 2, 5, 9, 10, 11, 12]] = 1
    (iv,) = intervals_from_frames(b, fps=25.0)
    assert iv == pytest.approx(np.array([[0.04, 0.12], [0.20, 0.24], [0.36, 0.52]]))
    # gap 0.08 s between the first two runs: closed only when min_gap > 0.08
    (iv,) = intervals_from_frames(b, fps=25.0, min_gap=0.08)
    assert len(iv) == 3
    (iv,) = intervals_from_frames(b, fps=25.0, min_gap=0.1)
    assert iv == pytest.approx(np.array([[0.04, 0.24], [0.36, 0.52]]))
    # the one-frame run (0.04 s) goes; runs of 0.08 s stay at min_duration 0.08
    (iv,) = intervals_from_frames(b, fps=25.0, min_duration=0.08)
    assert iv == pytest.approx(np.array([[0.04, 0.12], [0.36, 0.52]]))
    # gaps are closed before short runs are dropped
    (iv,) = intervals_from_frames(b, fps=25.0, min_gap=0.1, min_duration=0.2)
    assert iv == pytest.approx(np.array([[0.04, 0.24]]))
    (iv,) = intervals_from_frames(b, fps=25.0, start_time=10.0, min_duration=0.1)
    assert iv == pytest.approx(np.array([[10.36, 10.52]]))


def test_intervals_from_frames_thresholds():
    p = np.array([[0.2, 0.9], [0.6, 0.4], [0.7, 0.3], [0.1, 0.8]])
    a, b = intervals_from_frames(p, fps=10.0)
    assert a == pytest.approx(np.array([[0.1, 0.3]]))
    assert b == pytest.approx(np.array([[0.0, 0.1], [0.3, 0.4]]))
    a, b = intervals_from_frames(p, fps=10.0, threshold=np.array([0.65, 0.35]))
    assert a == pytest.approx(np.array([[0.2, 0.3]]))
    assert b == pytest.approx(np.array([[0.0, 0.2], [0.3, 0.4]]))
    with pytest.raises(ParameterError, match="one per class"):
        intervals_from_frames(p, fps=10.0, threshold=[0.5, 0.5, 0.5])
    assert [x.shape for x in intervals_from_frames(np.zeros((5, 2)), fps=10.0)] == [(0, 2), (0, 2)]


def test_merge_intervals():
    iv = np.array([[3.0, 4.0], [0.0, 1.0], [1.0, 2.0], [0.5, 0.7], [2.5, 2.6]])
    assert merge_intervals(iv).tolist() == [[0.0, 2.0], [2.5, 2.6], [3.0, 4.0]]
    assert merge_intervals(iv, gap=0.5).tolist() == [[0.0, 2.0], [2.5, 4.0]]
    assert merge_intervals(np.zeros((0, 2))).shape == (0, 2)


@pytest.mark.parametrize("fps", [25.0, NTSC])
def test_round_trip_frames_intervals_frames(fps, rng):
    tax = Taxonomy.builtin("superclasses7")
    y = (rng.random((300, 7)) < 0.3).astype(np.float32)
    y = add_background(y, tax)
    aset = labels_to_annotationset(y, tax, fps=fps)
    assert list(aset.tiers) == list(tax.classes)
    assert all(a.value == t.name for t in aset for a in t.annotations)
    # super-class names are known source names of the super-class taxonomy itself
    back = frame_labels(aset, tax, fps=fps, n_frames=300)
    np.testing.assert_array_equal(back, y)


def test_labels_to_annotationset_options():
    tax = Taxonomy.builtin("gestures18")
    y = np.zeros((10, 18))
    y[2:4, 1] = 0.9
    aset = labels_to_annotationset(y, tax, fps=25.0, include_background=False)
    assert "Normal play" not in aset.tiers and len(aset) == 17
    assert [(a.start, a.end) for a in aset["Nodding"].annotations] == [pytest.approx((0.08, 0.16))]
    with pytest.raises(ParameterError, match="do not match the 18 classes"):
        labels_to_annotationset(np.zeros((10, 7)), tax, fps=25.0)
