"""The landmarks of the per-frame tracks are reduced to compact rows as they come: never held whole.

Synthetic model frames stand in for MediaPipe (no video, no model) in the structural tests; one
test runs MediaPipe on a second of pianist.avi.
"""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from musicperf.features import landmark_rows as R
from musicperf.features import landmarks as L
from musicperf.features.landmark_rows import (
    FOUND,
    LAYOUT,
    WIDTH,
    RowStream,
    reduce_frames,
    rows_from_landmarks,
)

FPS = 30.0
#: Frames of each synthetic stretch (the first even: a frame after its last model frame at every=2).
STRETCHES = (12, 9)


def _model_row(g: int, rng):
    """A runner row ``(pose, vis, face, left, right, source)`` for global frame ``g``, parts missing at times."""
    pts = lambda j: rng.uniform(0.1, 0.9, (j, 3)).astype(np.float32)  # noqa: E731
    pose = None if g % 5 == 3 else pts(33)
    vis = None if pose is None else rng.uniform(0, 1, 33).astype(np.float32)
    face = None if g % 4 == 2 else pts(478)
    left = None if g % 3 == 1 else pts(21)
    right = pts(21)
    if g == 6:  # one hand with a single finite point: the region falls back to the pose's points
        right = np.full((21, 3), np.nan, np.float32)
        right[0] = 0.5
    return pose, vis, face, left, right, [int(left is not None), int(right is not None)]


@pytest.fixture
def fake_mediapipe(monkeypatch):
    """``_model_frames`` over synthetic stretches; records weak references to each yielded face."""
    alive: list = []
    starts = np.cumsum((0,) + STRETCHES) / FPS

    def model_frames(video, params, start, end, every, progress, info_out):
        k = int(np.argmin(np.abs(starts - start)))
        first = int(round(starts[k] * FPS))
        rng = np.random.default_rng(first)
        info_out.update(fps=FPS, width=640, height=480)
        times = info_out.setdefault("times", [])
        for i in range(STRETCHES[k]):
            times.append((first + i) / FPS)
            if i % every == 0:
                row = _model_row(first + i, rng)
                if row[2] is not None:
                    alive.append((i, weakref.ref(row[2])))
                yield i, row

    def in_process(video, params, segments, every, *, rows=False):
        run = R._run_segment_rows if rows else L._run_segment
        return [run(str(video), params, a, b, every, False) for a, b in segments]

    monkeypatch.setattr(L, "_model_frames", model_frames)
    monkeypatch.setattr(L, "_run_segments_in_processes", in_process)
    return alive


def _segments():
    cuts = np.cumsum((0,) + STRETCHES) / FPS
    return [(float(cuts[0]), float(cuts[1])), (float(cuts[1]), None)]


PARAMS = {"hands": "fallback", "refine_face": True, "min_detection_confidence": 0.5,
          "min_tracking_confidence": 0.5, "start": 0.0, "end": None, "max_frames": None, "every": 2}


def test_row_layout_is_compact_float32():
    assert WIDTH == 222 and sum(w for _, w in LAYOUT.values()) == WIDTH
    n = 3
    nan = lambda j: np.full((n, j, 3), np.nan, np.float32)  # noqa: E731
    rows = reduce_frames(nan(33), nan(478), nan(21), nan(21))
    assert rows.shape == (n, WIDTH) and rows.dtype == np.float32
    c, w = LAYOUT["found"]
    assert (rows[:, c:c + w] == 0).all()  # nothing found
    c, _ = LAYOUT["regions"]
    assert (rows[:, c::5][:, :3] == 0).all()  # no region


def test_stretch_holds_at_most_two_model_frames_and_returns_only_rows(fake_mediapipe, monkeypatch):
    """The worker's result is rows (and the first/last model frame), and while it streams every
    model frame's face mesh but the first and the previous one is already freed: holding the
    whole video's landmarks again (a list of rows, an array per frame) fails here."""
    held_back = []
    stream_add = RowStream.add

    def add(self, index, frame):
        stream_add(self, index, frame)
        # After model frame `index` went in, faces older than the previous model frame are gone
        # (the first is kept for the previous stretch's tail).
        held_back.append([i for i, ref in fake_mediapipe if 0 < i < index - 2 and ref() is not None])

    monkeypatch.setattr(RowStream, "add", add)
    out = R._run_segment_rows("v.mp4", PARAMS, 0.0, STRETCHES[0] / FPS, 2, False)
    assert len(held_back) == 6 and all(not h for h in held_back), held_back
    assert sum(1 for i, _ in fake_mediapipe if 0 < i < 8) == 1  # the check above saw a face to free
    # Rows up to the last model frame (10); frame 11 waits for the next stretch's first model frame.
    assert out["last_index"] == 10 and len(out["times"]) == STRETCHES[0]
    assert out["rows"].dtype == np.float32 and out["rows"].shape == (11, WIDTH)
    whole = [k for k, v in out.items() if isinstance(v, np.ndarray) and v.ndim >= 2 and v.shape[-2:] == (478, 3)]
    assert sorted(whole) == ["first_face", "last_face"]  # one frame each, not (T, 478, 3)
    assert all(out[k].shape == (478, 3) for k in whole)


@pytest.mark.parametrize("every", [1, 2, 3])
def test_rows_equal_the_whole_landmarks_reduced(fake_mediapipe, every):
    """Two stretches, frames after a stretch's last model frame interpolated towards the next
    stretch's first: the same values as interpolating the whole video's landmarks, then reducing."""
    params = dict(PARAMS, every=every, segments=2)
    whole = L._extract_segments("v.mp4", params=params, segments=_segments(), every=every, progress=False)
    rows = R._extract_rows("v.mp4", params=params, segments=_segments(), every=every, progress=False)
    ref = rows_from_landmarks(whole)
    assert rows.values.shape == (sum(STRETCHES), WIDTH) and rows.values.dtype == np.float32
    np.testing.assert_array_equal(rows.values, ref.values)
    np.testing.assert_array_equal(rows.times, whole.times)
    assert rows.meta["model_frames"] == whole.meta["model_frames"]
    for name in FOUND[:4]:
        np.testing.assert_array_equal(rows.found(name), whole.detected(name) if name != "face"
                                      else np.isfinite(whole.face.reshape(len(whole), -1)).any(axis=1))


def test_landmark_track_and_flow_regions_from_rows_match_the_whole_landmarks(fake_mediapipe):
    """The landmark track computed from the rows equals the gesture features of the whole landmarks."""
    from musicperf.features.landmark_features import gesture_features
    from musicperf.features.tracks import _landmark_columns

    params = dict(PARAMS, segments=2)
    whole = L._extract_segments("v.mp4", params=params, segments=_segments(), every=2, progress=False)
    rows = R._extract_rows("v.mp4", params=params, segments=_segments(), every=2, progress=False)
    values, names, det = _landmark_columns(rows)
    gf = gesture_features(whole)
    np.testing.assert_array_equal(values[:, :len(gf.names)], gf.values)
    assert values.dtype == np.float32 and len(names) == values.shape[1]
    assert det["pose"] == pytest.approx(float(whole.detected("pose").mean()))


def test_extract_landmark_rows_on_a_real_second_matches_extract_landmarks(shared_data, tmp_path):
    pytest.importorskip("mediapipe")
    video = shared_data / "video" / "pianist.avi"
    whole = L.extract_landmarks(video, end=1.0, every=2, workers=2, cache_dir=tmp_path)
    rows = R.extract_landmark_rows(video, end=1.0, every=2, workers=2, cache=False)
    np.testing.assert_array_equal(rows.values, rows_from_landmarks(whole).values)
    assert rows.values.dtype == np.float32 and rows.values.shape == (len(whole), WIDTH)
    # With the whole landmarks of the same settings in the cache, they are reduced, not recomputed.
    again = R.extract_landmark_rows(video, end=1.0, every=2, workers=2, cache_dir=tmp_path)
    assert "from_cache" in again.meta and not again.meta["cache_hit"]
    np.testing.assert_array_equal(again.values, rows.values)
    assert R.extract_landmark_rows(video, end=1.0, every=2, workers=2, cache_dir=tmp_path).meta["cache_hit"]
