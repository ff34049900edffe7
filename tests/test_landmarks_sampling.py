"""Landmark part selection (only the MediaPipe graphs a model needs) and motion-driven sampling.

The sampling tests run on a tiny video made from the project's synthetic performer with a
still stretch and a fast pan, and replace the MediaPipe graph by a stand-in that reports a
point derived from the frame's pixels (MediaPipe does not take the drawn performer for a
person): they test which frames reach the model and how the others are filled, on any CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.features import landmarks as L

STILL = range(10, 30)  # frames 10-29 repeat frame 10
PAN = range(30, 50)  # frames 30-49 pan 8 pixels per frame


@pytest.fixture(scope="module")
def still_and_pan(tmp_path_factory):
    import av

    from musicperf.io.video import VideoReader
    from musicperf.synth import synthesize

    d = tmp_path_factory.mktemp("synth")
    res = synthesize(d / "s", seconds=2, seed=1, size=(96, 72), supersample=1, audio=False, camera_shake=0.0,
                     noise=0.0)
    with VideoReader(res.video) as r:
        src = [f for _, f in r.frames()]
    frames = src[:10] + [src[10]] * len(STILL) + [np.roll(src[30 + k], 8 * (k + 1), axis=1) for k in range(len(PAN))]
    path = d / "still-and-pan.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25)
        s.height, s.width, s.pix_fmt = 72, 96, "yuv420p"
        s.options = {"qp": "0", "preset": "ultrafast"}
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


class _Standin:
    """Records the frames it sees; pose point 0 at x = :meth:`code` of the frame (the left
    half's mean brightness / 255: a panned frame has its own, a repeated frame the same)."""

    seen: list = []
    made: list = []

    def __init__(self, params):
        self.params = params
        _Standin.made.append(params.get("parts"))

    @staticmethod
    def code(frame) -> float:
        return float(frame[:, : frame.shape[1] // 2].mean() / 255)

    def __call__(self, frame):
        _Standin.seen.append(self.code(frame))
        pose = np.full((33, 3), np.nan, np.float32)
        pose[:, 0] = np.linspace(0.05, 0.95, 33)
        pose[:, 1] = np.linspace(0.05, 0.95, 33)
        pose[0, 0] = self.code(frame)
        return pose, np.ones(33, np.float32), None, None, None, [L.SOURCE_NONE, L.SOURCE_NONE]

    def close(self):
        pass


@pytest.fixture
def standin(monkeypatch):
    _Standin.seen, _Standin.made = [], []
    monkeypatch.setattr(L, "_make_runner", _Standin)
    monkeypatch.setattr(L, "_mediapipe", lambda: None)
    return _Standin


def _codes(video):
    """The stand-in's code of every frame of ``video`` (see :class:`_Standin`)."""
    from musicperf.io.video import VideoReader

    with VideoReader(video) as r:
        return np.array([_Standin.code(f) for _, f in r.frames()])


def test_motion_driven_sampling_skips_still_frames_and_interpolates(still_and_pan, standin, tmp_path):
    lm = L.extract_landmarks(still_and_pan, every=1, max_every=8, motion_threshold=1.0, cache_dir=tmp_path)
    assert len(lm) == 50 and lm.meta["params"]["max_every"] == 8
    codes, seen = _codes(still_and_pan), np.array(standin.seen)
    assert lm.meta["model_frames"] == len(seen) < 40
    # Still frames reach the model only when max_every frames have passed (frames 10-29 are one
    # picture: at most 1 + 20 / 8 of them); every panned frame does; the last frame does.
    assert np.isclose(seen, codes[STILL[0]]).sum() <= 1 + -(-len(STILL) // 8)
    assert all(np.isclose(seen, codes[i]).any() for i in PAN)
    assert np.isclose(seen[-1], codes[-1]) and np.isclose(seen[0], codes[0])
    # Skipped still frames between two still model frames get exactly their (shared) value; the
    # ones next to moving frames are interpolated towards those.
    x = lm.pose[:, 0, 0]
    assert np.isclose(x[list(STILL)], codes[STILL[0]], atol=1e-6).sum() >= 8
    # Against the model on every frame: identical on model frames, close elsewhere.
    standin.seen = []
    full = L.extract_landmarks(still_and_pan, cache=False)
    assert len(standin.seen) == 50
    np.testing.assert_allclose(full.pose[:, 0, 0], codes, atol=1e-6)
    assert np.abs(full.pose[:, 0, 0] - x).max() < 0.01
    assert np.array_equal(full.times, lm.times)
    # Cached under its own key; fixed sampling is another entry.
    standin.seen = []
    again = L.extract_landmarks(still_and_pan, every=1, max_every=8, motion_threshold=1.0, cache_dir=tmp_path)
    assert again.meta["cache_hit"] and not standin.seen
    fixed = L.extract_landmarks(still_and_pan, every=2, cache_dir=tmp_path)
    assert not fixed.meta["cache_hit"] and fixed.meta["model_frames"] == 25


def test_a_threshold_of_100_percent_samples_every_max_every_frames(still_and_pan, standin):
    lm = L.extract_landmarks(still_and_pan, every=2, max_every=5, motion_threshold=100.0, cache=False)
    assert lm.meta["model_frames"] == len(range(0, 50, 5)) + 1  # 0, 5, ..., 45 and the last frame, 49


def test_motion_sampler_follows_the_performer():
    s = L.MotionSampler(every=1, max_every=10, threshold=5.0, step=1)
    a = np.zeros((40, 40), np.int16)
    assert s.wants(0, a)
    s.ran(0, a, np.array([[0.1, 0.1], [0.3, 0.3], [np.nan, np.nan]]))
    assert s.roi == (2, 14, 2, 14)  # the box 0.1-0.3 widened by a quarter of its size: 0.05-0.35
    outside = a.copy()
    outside[30:, 30:] = 200  # the background changes, far from the performer: not motion
    assert s.motion(outside) == 0.0 and not s.wants(1, outside)
    inside = a.copy()
    inside[5:10, 5:10] = 200
    assert s.motion(inside) > 5.0 and s.wants(1, inside)
    assert s.wants(10, a)  # max_every
    s.ran(3, a, None)  # nothing found: the whole picture counts
    assert s.roi is None and s.wants(4, outside)
    with pytest.raises(ParameterError, match="max_every"):
        L.MotionSampler(every=3, max_every=2, threshold=1.0)


def test_parts_option_runs_only_the_graphs_asked_for(still_and_pan, standin, tmp_path):
    lm = L.extract_landmarks(still_and_pan, max_frames=3, parts="hands,pose", cache_dir=tmp_path)
    assert standin.made == [["pose", "hands"]] and lm.meta["params"]["parts"] == ["pose", "hands"]
    everything = L.extract_landmarks(still_and_pan, max_frames=3, parts=["face", "hands", "pose"], cache_dir=tmp_path)
    assert standin.made[-1] is None and "parts" not in everything.meta["params"]  # all = Holistic, the old key
    with pytest.raises(ParameterError, match="landmark parts must be some of pose, face, hands"):
        L.extract_landmarks(still_and_pan, parts="pose,feet")
    with pytest.raises(ParameterError, match="max_every"):
        L.extract_landmarks(still_and_pan, every=3, max_every=2)
    with pytest.raises(ParameterError, match="motion_threshold"):
        L.extract_landmarks(still_and_pan, max_every=4, motion_threshold=-1)


def test_make_runner_picks_holistic_or_the_part_graphs(monkeypatch):
    made = []
    monkeypatch.setattr(L, "_HolisticRunner", lambda **kw: made.append(("holistic", kw["hands"])))
    monkeypatch.setattr(L, "_PartsRunner", lambda parts, **kw: made.append(("parts", parts)))
    base = {"hands": "fallback", "refine_face": True, "min_detection_confidence": 0.5, "min_tracking_confidence": 0.5}
    L._make_runner(base)
    L._make_runner({**base, "parts": ["pose"]})
    L._make_runner({**base, "parts": ["pose", "hands"]})
    face = L._make_runner({**base, "parts": ["pose", "face"]})  # the face: Holistic, hands dropped
    assert made == [("holistic", "fallback"), ("parts", ("pose",)), ("parts", ("pose", "hands")),
                    ("holistic", "never")]
    assert isinstance(face, L._Only) and face.parts == ("pose", "face")
    hand = np.zeros((21, 3), np.float32)
    face.runner = lambda frame: ("p", "v", "f", hand, hand, [1, 1])
    assert face(None) == ("p", "v", "f", None, None, [0, 0])


def test_parse_parts_and_the_parts_trained_classes_need():
    assert L.parse_parts(None) is None and L.parse_parts("all") is None
    assert L.parse_parts("pose, face,hands") is None  # every group: Holistic
    assert L.parse_parts(["right_hand", "pose"]) == ("pose", "hands")
    assert L.parse_parts("Face") == ("face",)
    with pytest.raises(ParameterError, match="got none"):
        L.parse_parts("")
    assert L.parts_for_classes(["Vibrato", "Normal play"]) == ("pose", "hands")
    assert L.parts_for_classes(["Eyes closed", "Freeze"]) == ("pose", "face")
    assert L.parts_for_classes(["minimal_movement", "Expressive shoulder movement"]) == ("pose",)
    assert L.parts_for_classes(["Nodding", "Vibrato"]) is None
    assert L.parts_for_classes(["Strumming"]) is None  # unknown class: everything
    from musicperf.labels.taxonomy import GESTURES18, SUPERCLASSES7

    from musicperf.labels.taxonomy import normalize_name

    # Every built-in class is in the table (none falls back to "everything" by a typo).
    assert {normalize_name(c) for c in GESTURES18 + SUPERCLASSES7} <= set(L.GESTURE_PARTS)


def test_part_graphs_on_real_frames(shared_data):
    """Pose-only (the pose graph) and pose+face (Holistic) on three frames of pianist.avi: the
    groups asked for are found, the others are all-NaN."""
    pytest.importorskip("mediapipe")
    video = shared_data / "video" / "pianist.avi"
    pose = L.extract_landmarks(video, max_frames=3, parts="pose", cache=False)
    assert pose.detected("pose").all() and np.isfinite(pose.pose_visibility).all()
    assert np.isnan(pose.face).all() and np.isnan(pose.left_hand).all() and np.isnan(pose.right_hand).all()
    face = L.extract_landmarks(video, max_frames=3, parts="pose,face", cache=False)
    assert face.detected("face").all() and face.detected("pose").all()
    assert np.isfinite(face.face[:, 468:, 0]).all()  # refined: the iris points, as Holistic's
    assert np.isnan(face.left_hand).all()
    holistic = L.extract_landmarks(video, max_frames=3, cache=False)
    # The same body from either graph.
    d = np.linalg.norm((pose.pose[:, :25, :2] - holistic.pose[:, :25, :2]) * [640, 480], axis=-1)
    assert np.nanmedian(d) < 8
    d = np.linalg.norm((face.face[:, :, :2] - holistic.face[:, :, :2]) * [640, 480], axis=-1)
    assert np.nanmedian(d) < 8
