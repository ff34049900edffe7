"""Splits: random 80/10/10, leave-one-video-out, blocked (no neighbour leakage), until time T."""

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.train.splits import blocked_split, leave_one_video_out, random_split, until_time_split


def _disjoint(s, n=None):
    sets = [set(s.train.tolist()), set(s.val.tolist()), set(s.test.tolist())]
    assert not (sets[0] & sets[1]) and not (sets[0] & sets[2]) and not (sets[1] & sets[2])
    if n is not None:
        assert sets[0] | sets[1] | sets[2] == set(range(n))


def test_random_split_sizes_and_seed():
    s = random_split(737, seed=3)
    assert s.sizes == (589, 74, 74)
    _disjoint(s, 737)
    assert np.array_equal(random_split(737, seed=3).test, s.test)
    assert not np.array_equal(random_split(737, seed=4).test, s.test)
    assert s.name == "random 80/10/10 seed=3"
    assert random_split(10).sizes == (8, 1, 1)
    with pytest.raises(ParameterError, match="sum to 1|summing to 1"):
        random_split(10, (0.5, 0.1, 0.1))


def test_leave_one_video_out():
    ids = ["v1"] * 10 + ["v2"] * 20 + ["v3"] * 30
    splits = leave_one_video_out(ids, val_fraction=0.1)
    assert [s.name.split()[1] for s in splits] == ["test=v1", "test=v2", "test=v3"]
    for s, (lo, hi) in zip(splits, [(0, 10), (10, 30), (30, 60)]):
        _disjoint(s, 60)
        assert s.test.tolist() == list(range(lo, hi))
        assert len(s.val) == round((60 - (hi - lo)) * 0.1)
    with pytest.raises(ParameterError, match="at least 2 videos"):
        leave_one_video_out(["a"] * 5)


def test_blocked_split_keeps_neighbours_apart():
    groups = np.repeat(["a", "b"], [103, 57])
    s = blocked_split(160, block=10, gap=1, groups=groups, seed=1)
    _disjoint(s)
    label = np.full(160, -1)
    for k, idx in enumerate((s.train, s.val, s.test)):
        label[idx] = k
    for i in range(159):
        if groups[i] == groups[i + 1] and label[i] >= 0 and label[i + 1] >= 0:
            assert label[i] == label[i + 1], f"clips {i} and {i + 1} are neighbours in different sets"
    # blocks are whole: the test set is made of runs of (up to) 10 clips, never a scattering
    runs = np.split(s.test, np.flatnonzero(np.diff(s.test) != 1) + 1)
    assert all(len(r) >= 8 for r in runs)  # 10 minus the gap at each end at most
    assert len(s.test) > 0 and len(s.val) > 0
    assert "blocked 80/10/10 block=10 gap=1" in s.name
    no_gap = blocked_split(160, block=10, gap=0, groups=groups, seed=1)
    _disjoint(no_gap, 160)


def test_until_time_split_intervals():
    starts = np.arange(20) * 0.64
    intervals = np.stack([starts, starts + 0.64], axis=1)
    s = until_time_split(intervals, 6.5, val_fraction=0.2)
    # clips ending by 6.5 s: starts 0 .. 5.12 (9 clips: end 5.76); the clip 5.76-6.40 also ends by 6.5
    assert s.train.tolist() + s.val.tolist() == list(range(10))
    assert s.val.tolist() == [8, 9]  # the latest annotated stretch validates
    assert s.test[0] == 11  # clip 10 (6.40-7.04) straddles T and is dropped
    assert "annotated until T=6.5 s" in s.name
    with pytest.raises(ParameterError, match="no clip starts at or after"):
        until_time_split(starts, 100.0)


def test_until_time_split_other_videos_train():
    starts = np.r_[np.arange(5), np.arange(5)] * 1.0
    ids = ["a"] * 5 + ["b"] * 5
    s = until_time_split(starts, 2.0, val_fraction=0.0, video_ids=ids, test_video="b")
    assert s.test.tolist() == [7, 8, 9] and s.train.tolist() == [0, 1, 2, 3, 4, 5, 6]
