"""Per-frame feature tracks of a video: one row per frame, for the frame labellers.

A *track* is a group of per-frame columns computed from one source. :func:`frame_tracks`
computes the tracks asked for in one streamed pass over the decoded frames (only the previous
frame is held: memory grows with the outputs, ``T x F`` floats, never with the pixels; the
landmarks are reduced to 222 float32 per frame as the workers produce them,
:func:`musicperf.features.landmark_rows.extract_landmark_rows`, never held as whole-video
``(T, 478, 3)`` arrays), caches
them per video and setting (:mod:`musicperf.features.cache`), and reports per track how often
its source was found (:attr:`FrameTracks.detection`), so ``train`` can say which were usable.

=============  ==============================================================================
track          columns (per frame)
=============  ==============================================================================
``landmarks``  MediaPipe Holistic (:func:`musicperf.features.landmarks.extract_landmarks`; where
               it finds no body, e.g. a top-down keyboard view, the stand-alone hand tracker,
               ``hands="fallback"``): the 32 gesture features of
               :mod:`musicperf.features.landmark_features`, 13 upper-body pose points (x, y in
               frame units) and their velocities, and per hand its centre, wrist, size and
               finger spread and the centre's velocity. Landmarks can run on every
               ``landmark_every``-th frame only, interpolated in between (~14 frames per CPU
               second for Holistic: every 2nd frame halves the cost).
``flow``       DIS optical flow (``cv2.DISOpticalFlow``, preset ultrafast) between consecutive
               frames at ``flow_width`` pixels wide: overall mean and 95th-percentile magnitude
               and mean direction; a 4 x 4 grid of mean magnitude and direction; the moving
               region (pixels above 1 px/frame: area fraction, centroid, spread); and per body
               region (left hand, right hand, head, boxes from the landmarks when that track is
               on) the mean magnitude and direction (NaN when the region is not found).
``grid``       the workflow's motion/colour grid per frame (:mod:`musicperf.tasks.clipfeatures`):
               mean absolute grey difference to the previous frame and mean colour in each
               cell of a ``grid`` x ``grid`` grid.
``audio``      when the video has sound: RMS (dB), spectral centroid, bandwidth, flatness,
               roll-off, zero-crossing rate, onset strength (mean positive log-mel flux) and
               13 MFCCs of a 2048-sample window centred on each frame (librosa's
               definitions, computed in numpy).
=============  ==============================================================================

Units: flow in pixels per frame at ``flow_width``; positions in frame fractions (0..1);
velocities per second. Missing values are NaN (the labellers standardise and zero them).

Imports numpy at module level; OpenCV, PyAV, mediapipe and scipy inside functions.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicperf.errors import ParameterError, require

__all__ = ["TRACKS", "FrameTracks", "frame_tracks", "TRACKS_VERSION"]

TRACKS = ("landmarks", "flow", "grid", "audio")
#: Part of every cache key: bumped whenever a column changes.
TRACKS_VERSION = "tracks-v1"

_POSE_POINTS = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24)
_POSE_NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
               "l_wrist", "r_wrist", "l_hip", "r_hip")
_FLOW_GRID = 4
_MOVING = 1.0  # px/frame at flow_width: a pixel "moves" above this


@dataclass
class FrameTracks:
    """Per-frame tracks of one video.

    Attributes
    ----------
    values : dict of str to ndarray
        Track name -> ``(T, F_track)`` float32 (NaN where missing).
    names : dict of str to list of str
        Track name -> its column names.
    times : ndarray, shape (T,)
        Seconds of each frame.
    fps : float
    detection : dict of str to float
        Track name -> fraction of frames where its source was found (landmarks: any body or
        hand; flow and grid: 1; audio: frames louder than -60 dBFS), plus ``pose``, ``face``,
        ``left_hand``, ``right_hand`` for the landmarks.
    meta : dict
        Settings, seconds taken per track, cache hits.
    """

    values: dict
    names: dict
    times: np.ndarray
    fps: float
    detection: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        # The tracks side by side in one array, ``values`` holding views of it: the feature set
        # of all tracks (what the labellers read) is then that array, not a copy of a long
        # video's tracks (docs/performance.md, memory on long videos). Only when every track is
        # (T, F) of one dtype; otherwise ``matrix`` concatenates.
        vals = list(self.values.values())
        self._packed = None
        if vals and all(np.ndim(v) == 2 for v in vals) and len({(len(v), np.asarray(v).dtype) for v in vals}) == 1:
            packed = np.concatenate(vals, axis=1)
            at = 0
            spans = {}
            for t, v in list(self.values.items()):
                w = np.shape(v)[1]
                self.values[t] = packed[:, at : at + w]
                spans[t] = (at, at + w)
                at += w
            self._packed = (packed, spans)

    def __len__(self) -> int:
        return int(len(self.times))

    def usable(self, *, min_rate: float = 0.2) -> list[str]:
        """Tracks whose detection rate is at least ``min_rate``."""
        return [t for t in self.values if self.detection.get(t, 0.0) >= min_rate]

    def matrix(self, tracks: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """The columns of ``tracks`` (default: all) side by side: ``(T, F)`` and the names."""
        tracks = list(self.values) if tracks is None else list(tracks)
        missing = [t for t in tracks if t not in self.values]
        if missing:
            raise ParameterError(f"track(s) {missing} not computed; computed: {list(self.values)}")
        if not tracks:
            raise ParameterError("no track chosen")
        cols = [self.values[t] for t in tracks]
        names = [f"{t}:{n}" for t in tracks for n in self.names[t]]
        if self._packed is not None:
            packed, spans = self._packed
            runs = [spans.get(t) for t in tracks]
            if (all(r is not None and self.values[t].base is packed for t, r in zip(tracks, runs))
                    and all(a[1] == b[0] for a, b in zip(runs, runs[1:]))):
                return packed[:, runs[0][0] : runs[-1][1]], names  # a view: no copy
        return np.concatenate(cols, axis=1), names

    def describe(self) -> str:
        """One line per track: columns and detection rate."""
        lines = []
        for t, v in self.values.items():
            rate = self.detection.get(t, 0.0)
            extra = ""
            if t == "landmarks":
                extra = " (" + ", ".join(f"{p} {self.detection.get(p, 0.0):.0%}"
                                         for p in ("pose", "face", "left_hand", "right_hand")) + ")"
            lines.append(f"{t}: {v.shape[1]} columns, found in {rate:.0%} of frames{extra}")
        return "\n".join(lines)


def _check_tracks(tracks) -> tuple[str, ...]:
    tracks = tuple(tracks)
    bad = [t for t in tracks if t not in TRACKS]
    if bad or not tracks:
        raise ParameterError(f"unknown track(s) {bad or tracks}; choose from {', '.join(TRACKS)}")
    return tracks


def frame_tracks(
    video: str | Path,
    *,
    tracks: Sequence[str] = TRACKS,
    landmark_every: int = 2,
    workers: int | None = 1,
    grid: int = 6,
    flow_width: int = 320,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> FrameTracks:
    """Compute (or read from the cache) the per-frame tracks of ``video``.

    Parameters
    ----------
    video : str or Path
    tracks : sequence of str
        Any of :data:`TRACKS`; ``audio`` is skipped (with detection 0) when the video is silent.
    landmark_every : int
        Run MediaPipe on every ``landmark_every``-th frame, interpolate in between.
    workers : int or None
        MediaPipe processes (see :func:`musicperf.features.landmarks.extract_landmarks`).
    grid : int
        Cells per side of the motion/colour grid.
    flow_width : int
        Width in pixels the frames are resized to for optical flow (the height keeps the aspect).
    cache, cache_dir
        Read/write the per-video cache.
    progress : bool

    Returns
    -------
    FrameTracks
    """
    from musicperf.features.cache import cached
    from musicperf.io.video import probe

    tracks = _check_tracks(tracks)
    for name, v in (("landmark_every", landmark_every), ("grid", grid), ("flow_width", flow_width)):
        if not (isinstance(v, (int, np.integer)) and v >= 1):
            raise ParameterError(f"{name} must be a positive integer, got {v!r}")
    video = Path(video)
    info = probe(video)
    values: dict = {}
    names: dict = {}
    detection: dict = {}
    meta: dict = {"video": str(video), "seconds": {}, "cache_hit": {}}
    lm = None  # (times, per-frame region extents) of the landmarks, for the flow's body regions
    if "landmarks" in tracks or "flow" in tracks:
        # Landmarks give the flow's body regions; extract_landmarks caches them itself.
        if "landmarks" in tracks:
            from musicperf.features.landmark_rows import extract_landmark_rows

            t0 = time.perf_counter()
            # Reduced to compact rows frame by frame in the workers: no whole-video landmark array.
            rows = extract_landmark_rows(video, every=int(landmark_every), workers=workers, hands="fallback",
                                         cache=cache, cache_dir=cache_dir, progress=progress)
            meta["seconds"]["landmarks"] = round(time.perf_counter() - t0, 2)
            meta["cache_hit"]["landmarks"] = bool(rows.meta.get("cache_hit"))
            v, n, det = _landmark_columns(rows)
            lm = (rows.times, rows.block("regions").copy())  # 60 bytes a frame; the rows are let go
            del rows
            values["landmarks"], names["landmarks"] = v, n
            detection.update(det)
    pixel = [t for t in ("flow", "grid") if t in tracks]
    if pixel:
        params = {"tracks": pixel, "grid": int(grid), "flow_width": int(flow_width),
                  "regions": None if lm is None else {"every": int(landmark_every), "workers": workers}}

        def compute():
            return _pixel_pass(video, info=info, want=pixel, grid=int(grid), flow_width=int(flow_width), lm=lm,
                               progress=progress)

        t0 = time.perf_counter()
        arrays, pmeta, hit = cached(video, extractor="frame-tracks-pixels", version=TRACKS_VERSION, params=params,
                                    compute=compute, cache_dir=cache_dir, use_cache=cache)
        meta["seconds"]["pixels"] = round(time.perf_counter() - t0, 2)
        meta["cache_hit"]["pixels"] = hit
        for t in pixel:
            values[t] = arrays[t]
            names[t] = list(pmeta["names"][t])
            detection[t] = 1.0
        times = arrays["times"]
    else:
        times = lm[0] if lm is not None else np.arange(info.n_frames) / info.fps
    if "audio" in tracks:
        if info.has_audio:
            params = {"n_frames": int(len(times)), "fps": float(info.fps)}

            def compute_audio():
                return _audio_columns(video, times=times, fps=float(info.fps))

            t0 = time.perf_counter()
            arrays, ameta, hit = cached(video, extractor="frame-tracks-audio", version=AUDIO_VERSION, params=params,
                                        compute=compute_audio, cache_dir=cache_dir, use_cache=cache)
            meta["seconds"]["audio"] = round(time.perf_counter() - t0, 2)
            meta["cache_hit"]["audio"] = hit
            values["audio"] = arrays["audio"]
            names["audio"] = list(ameta["names"])
            detection["audio"] = float(ameta["sounding"])
        else:
            detection["audio"] = 0.0
            meta["audio"] = "the video has no sound track"
    n = len(times)
    for t in list(values):
        values[t] = _fit_rows(values[t], n)
    meta.update({"landmark_every": int(landmark_every), "grid": int(grid), "flow_width": int(flow_width)})
    return FrameTracks(values=values, names=names, times=np.asarray(times, dtype=np.float64), fps=float(info.fps),
                       detection=detection, meta=meta)


def _fit_rows(x: np.ndarray, n: int) -> np.ndarray:
    """Pad (repeat the last row) or cut ``x`` to ``n`` rows: sources may differ by a frame."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) >= n:
        return x[:n]
    if len(x) == 0:
        return np.full((n, x.shape[1]), np.nan, np.float32)
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), axis=0)])


def _velocity(x: np.ndarray, fps: float) -> np.ndarray:
    """Central-difference velocity per second along axis 0 (NaN-preserving)."""
    v = np.full_like(x, np.nan)
    if len(x) >= 3:
        v[1:-1] = (x[2:] - x[:-2]) * (fps / 2.0)
        v[0] = v[1]
        v[-1] = v[-2]
    return v


def _landmark_columns(rows) -> tuple[np.ndarray, list[str], dict]:
    """The landmark track of :func:`frame_tracks` from compact rows
    (:class:`musicperf.features.landmark_rows.LandmarkRows`)."""
    from musicperf.features.landmark_features import gesture_features_from_points, interpolate_gaps

    fps = float(rows.fps)
    points = {p: rows.block(p) for p in ("pose", "face", "left_hand", "right_hand")}  # float32 views
    gf = gesture_features_from_points(points, rows.found("face_x"), fps=fps, width=rows.width, height=rows.height,
                                      source=rows.meta.get("extractor"))
    cols = [gf.values.astype(np.float32)]
    names = list(gf.names)
    gap = max(1, int(round(0.2 * fps)))
    n = len(rows)
    pose = interpolate_gaps(rows.block("pose")[:, list(_POSE_POINTS)].reshape(n, -1).astype(np.float64), gap)
    cols += [pose, _velocity(pose, fps)]
    names += [f"{p}_{c}" for p in _POSE_NAMES for c in "xy"]
    names += [f"{p}_{c}_vel" for p in _POSE_NAMES for c in "xy"]
    for side in ("left", "right"):
        h = rows.block(f"{side}_hand").astype(np.float64)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                centre = np.nanmean(h, axis=1)
                size = np.nanmax(np.linalg.norm(h - h[:, :1], axis=2), axis=1)
                tips = h[:, [4, 8, 12, 16, 20]]
                spread = np.nanstd(tips[:, :, 0], axis=1) + np.nanstd(tips[:, :, 1], axis=1)
        wrist = h[:, 0]
        block = np.column_stack([centre, wrist, size, spread])
        block = interpolate_gaps(block, gap)
        cols += [block, _velocity(block[:, :2], fps)]
        names += [f"{side}_hand_{n}" for n in ("cx", "cy", "wrist_x", "wrist_y", "size", "spread", "cx_vel", "cy_vel")]
    values = np.concatenate(cols, axis=1).astype(np.float32)
    det = {p: float(rows.found(p).mean()) if n else 0.0 for p in ("pose", "face", "left_hand", "right_hand")}
    anything = rows.found("pose") | rows.found("left_hand") | rows.found("right_hand") | rows.found("face")
    det["landmarks"] = float(anything.mean()) if n else 0.0
    return values, names, det


_MARGIN = {"left_hand": 0.5, "right_hand": 0.5, "head": 0.2}


def _boxes(regions: np.ndarray, w: int, h: int) -> dict:
    """Pixel boxes ``(x0, y0, x1, y1)`` of the left hand, right hand and head in one frame, from
    the frame's ``(3, 5)`` region extents (:data:`musicperf.features.landmark_rows.REGIONS`):
    the extent of the region's points widened by half its size (head: a fifth), or of the pose
    points standing in for them widened by its whole size."""
    from musicperf.features.landmark_rows import REGIONS

    out = {}
    for k, name in enumerate(REGIONS):
        src = regions[k, 0]
        if not src > 0:
            continue
        margin = _MARGIN[name] if src == 1 else 1.0
        x0, y0 = regions[k, 1:3] * (w, h)
        x1, y1 = regions[k, 3:5] * (w, h)
        mx = max(margin * (x1 - x0), 4.0)
        my = max(margin * (y1 - y0), 4.0)
        box = (int(max(0, x0 - mx)), int(max(0, y0 - my)), int(min(w, x1 + mx + 1)), int(min(h, y1 + my + 1)))
        if box[2] > box[0] and box[3] > box[1]:
            out[name] = box
    return out


class _RowBuffer:
    """Float32 rows appended into one preallocated array, doubled when the expected count was short."""

    def __init__(self, width: int, capacity: int):
        self.a = np.empty((max(1, int(capacity)), width), np.float32)
        self.n = 0

    def append(self, row) -> None:
        if self.n == len(self.a):
            self.a = np.concatenate([self.a, np.empty_like(self.a)])
        self.a[self.n] = row
        self.n += 1

    def array(self) -> np.ndarray:
        return self.a[: self.n]  # the unused end was never written: no memory behind it


def _pixel_pass(video: Path, *, info, want: list[str], grid: int, flow_width: int, lm, progress: bool):
    """One streamed pass: motion/colour grid and optical-flow statistics per frame (``lm``: None,
    or the landmarks' times and ``(T, 3, 5)`` region extents, see :func:`_boxes`)."""
    from musicperf.features.fastpath import decode_frames
    from musicperf.features.clipfeatures import _cell_means

    cv2 = require("cv2", extra="analysis", purpose="optical flow", package="opencv-contrib-python")
    w = int(flow_width)
    h = max(2, int(round(info.height * w / info.width / 2)) * 2)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST) if "flow" in want else None
    regions = ("left_hand", "right_hand", "head")
    flow_names = (["mag_mean", "mag_p95", "dx_mean", "dy_mean"]
                  + [f"cell{r}{c}_{q}" for r in range(_FLOW_GRID) for c in range(_FLOW_GRID) for q in ("mag", "dx", "dy")]
                  + ["moving_area", "moving_cx", "moving_cy", "moving_sx", "moving_sy"]
                  + [f"{r}_{q}" for r in regions for q in ("mag", "dx", "dy")])
    grid_names = ([f"motion{r}{c}" for r in range(grid) for c in range(grid)]
                  + [f"colour{r}{c}_{ch}" for r in range(grid) for c in range(grid) for ch in "rgb"])
    # Rows go straight into float32 arrays of the announced frame count (no list of row arrays).
    rows_flow = _RowBuffer(len(flow_names), info.n_frames) if dis is not None else None
    rows_grid = _RowBuffer(len(grid_names), info.n_frames) if "grid" in want else None
    times = []
    extents = None if lm is None else lm[1]
    prev = None
    ys, xs = np.mgrid[0:h, 0:w]
    t0 = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=info.n_frames, unit="frame", desc="tracks", leave=False)
    for i, (t, frame) in enumerate(decode_frames(video, size=(h, w))):
        times.append(t)
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if "grid" in want:
            g = grey.astype(np.float32) / 255.0
            motion = (np.zeros((grid, grid), np.float32) if prev is None
                      else _cell_means(np.abs(g - prev.astype(np.float32) / 255.0), grid))
            colour = _cell_means((frame.astype(np.float32) / 255.0).transpose(2, 0, 1), grid)  # (3, g, g)
            rows_grid.append(np.concatenate([motion.ravel(), colour.transpose(1, 2, 0).ravel()]))
        if dis is not None:
            row = np.full(len(flow_names), np.nan, np.float32)
            if prev is None:
                row[: 4 + 3 * _FLOW_GRID**2 + 5] = 0.0
            else:
                f = dis.calc(prev, grey, None)
                dx, dy = f[..., 0], f[..., 1]
                mag = np.sqrt(dx * dx + dy * dy)
                vals = [mag.mean(), np.percentile(mag, 95), dx.mean(), dy.mean()]
                cells = np.stack([_cell_means(a, _FLOW_GRID) for a in (mag, dx, dy)], axis=-1)
                vals += list(cells.ravel())
                moving = mag > _MOVING
                area = moving.mean()
                if area > 0:
                    wts = mag * moving
                    s = wts.sum()
                    cx = (wts * xs).sum() / s
                    cy = (wts * ys).sum() / s
                    sx = np.sqrt((wts * (xs - cx) ** 2).sum() / s)
                    sy = np.sqrt((wts * (ys - cy) ** 2).sum() / s)
                    vals += [area, cx / w, cy / h, sx / w, sy / h]
                else:
                    vals += [0.0, 0.5, 0.5, 0.0, 0.0]
                row[: len(vals)] = vals
                if extents is not None and i < len(extents):
                    boxes = _boxes(extents[i], w, h)
                    for k, r in enumerate(regions):
                        if r in boxes:
                            x0, y0, x1, y1 = boxes[r]
                            j = len(vals) + 3 * k
                            row[j] = mag[y0:y1, x0:x1].mean()
                            row[j + 1] = dx[y0:y1, x0:x1].mean()
                            row[j + 2] = dy[y0:y1, x0:x1].mean()
            rows_flow.append(row)
        prev = grey
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    arrays = {"times": np.asarray(times, np.float64)}
    names = {}
    if "flow" in want:
        arrays["flow"] = rows_flow.array()
        names["flow"] = flow_names
    if "grid" in want:
        arrays["grid"] = rows_grid.array()
        names["grid"] = grid_names
    secs = time.perf_counter() - t0
    return arrays, {"names": names, "seconds": round(secs, 2), "frames": len(times),
                    "size": [h, w], "flow": "DIS ultrafast"}


#: Version of the audio columns (bumped on its own: the pixel and landmark caches stay valid).
#: a2: octave-band energies added; computed in blocks of frames (memory flat in the length).
AUDIO_VERSION = "tracks-audio-a2"

#: Lower edges of the octave bands of the audio track, Hz: A0 (27.5 Hz, the piano's lowest key)
#: doubling up to 7040 Hz, plus everything above.
OCTAVE_EDGES = tuple(27.5 * 2.0**k for k in range(9))


def _audio_columns(video: Path, *, times: np.ndarray, fps: float, block: int = 512, piece: float = 30.0):
    """Audio descriptors of a 2048-sample window centred on each frame (22.05 kHz), numpy only.

    Per frame: RMS dB, spectral centroid, bandwidth, flatness, roll-off, zero-crossing rate,
    onset strength, 13 MFCCs, and the energy of each octave band from 27.5 Hz (A0) relative to
    the frame's total, in dB (``band27``, ``band55``, ... ``band7040``: where in the range the
    sound is; the register of a piano passage). The sound is decoded ``piece`` seconds at a time
    (:func:`musicperf.io.audio.load_audio` with ``start``/``duration``; each piece decodes one
    second before it for the resampler to settle) and the frames are processed ``block`` at a
    time, so memory does not grow with the length beyond the output rows.
    """
    from scipy.fft import dct

    from musicperf.features.audio import mel_filterbank
    from musicperf.io.audio import load_audio

    sr = 22050
    n_fft = 2048
    pad = n_fft // 2
    centres = ((np.asarray(times) + 0.5 / fps) * sr).astype(int)
    window = np.hanning(n_fft).astype(np.float32)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sr)[:, None]
    fb = mel_filterbank(sr, n_fft, 40)
    edges = list(OCTAVE_EDGES) + [sr / 2.0 + 1.0]
    bands = [(freqs[:, 0] >= lo) & (freqs[:, 0] < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    span = max(block, int(piece * fps) // block * block)  # frames per decoded piece
    cols, logmels = [], []
    for f0 in range(0, len(centres), span):
        c = centres[f0 : f0 + span]
        s0 = max(0, int(c.min()) - pad)
        s1 = max(s0 + 1, int(c.max()) + pad + n_fft)
        y, _ = load_audio(video, sr=sr, start=s0 / sr, duration=(s1 - s0) / sr)
        y = np.asarray(y, dtype=np.float32)
        for b0 in range(0, len(c), block):
            # Window of centre k: samples k - 1024 ... k + 1023 of the sound; zero outside it
            # (before its start, and after its end: a frame past the sound is silent).
            idx = np.maximum(c[b0 : b0 + block], 0)[:, None] - pad + np.arange(n_fft)[None, :] - s0
            ok = (idx >= 0) & (idx < len(y))
            raw = (np.where(ok, y[np.clip(idx, 0, len(y) - 1)], 0.0) if len(y) else np.zeros(idx.shape)).astype(np.float32)
            S = np.abs(np.fft.rfft(raw * window[None, :], axis=1)).T  # (bins, frames)
            rms = np.sqrt(np.mean(raw**2, axis=1))
            db = 20 * np.log10(np.maximum(rms, 1e-6))
            # The spectral descriptors in numpy (librosa's definitions); librosa's feature
            # functions would JIT-compile on first use, seconds per process for a few lines.
            total = np.maximum(S.sum(axis=0), 1e-10)
            centroid = (freqs * S).sum(axis=0) / total
            bandwidth = np.sqrt(((freqs - centroid) ** 2 * S).sum(axis=0) / total)
            power = np.maximum(S**2, 1e-10)
            flatness = np.exp(np.log(power).mean(axis=0)) / power.mean(axis=0)
            cum = np.cumsum(S, axis=0)
            rolloff = freqs[np.argmax(cum >= 0.85 * cum[-1:], axis=0), 0]
            zcr = np.mean(np.abs(np.diff(np.sign(raw), axis=1)) > 0, axis=1)
            energy = S**2
            all_e = np.maximum(energy.sum(axis=0), 1e-20)
            band_db = np.stack([10 * np.log10(np.maximum(energy[m].sum(axis=0), 1e-20) / all_e) for m in bands],
                               axis=1)
            logmels.append(10 * np.log10(np.maximum(fb @ energy, 1e-10)))
            cols.append(np.column_stack([db, centroid, bandwidth, flatness, rolloff, zcr, band_db]))
    logmel = np.concatenate(logmels, axis=1) if logmels else np.zeros((40, 0))
    stats = np.concatenate(cols) if cols else np.zeros((0, 6 + len(bands)))
    mfcc = dct(logmel, axis=0, type=2, norm="ortho")[:13]
    onset = np.concatenate([[0.0], np.maximum(0.0, np.diff(logmel, axis=1)).mean(axis=0)])[: logmel.shape[1]]
    out = np.column_stack([stats[:, :6], onset, mfcc.T, stats[:, 6:]]).astype(np.float32)
    names = (["rms_db", "centroid", "bandwidth", "flatness", "rolloff", "zcr", "onset"] + [f"mfcc{i}" for i in range(13)]
             + [f"band{int(e)}" for e in OCTAVE_EDGES])
    return {"audio": out}, {"names": names, "sounding": float((stats[:, 0] > -60).mean()) if len(stats) else 0.0}
