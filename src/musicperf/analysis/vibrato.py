"""Audio-visual vibrato detection and analysis of string players (002 Section V-B, Figures 3-4).

Pipeline (Figure 3 of 002): the fingering hand's mean motion vector ``u(t)`` (dense optical flow
inside a KLT-tracked region, or key points) -> subtract its moving average (body sway) ->
``v(t)`` -> PCA principal direction -> 1-D velocity ``V(t)`` -> integrate -> hand displacement
``X(t)`` -> per note: vibrato detection by thresholding the autocorrelation of ``X(t)`` or by a
linear SVM on motion features; vibrato rate from the autocorrelation, refined by a
least-squares sinusoid fit near it (ours, :func:`refine_rate`); vibrato extent in cents by the
least-squares fit of Equation 1 to the pYIN pitch contour. The audio is analysed frame by frame
(:mod:`musicperf.analysis.vibrato_frames`: vibrato areas with rate and extent, 100 frames a
second) beside it and alone for an audio file; the earlier per-note audio analysis (rate from the
pitch autocorrelation, extent from a sinusoid fit, :func:`audio_vibrato`) remains available.
The hand region comes from the user, from MediaPipe landmarks
(:mod:`musicperf.analysis.hand`) or from a search for the most periodic image region.

Imports numpy and scipy; librosa and OpenCV only inside the functions that need them (through
:mod:`musicperf.analysis.pitch` and :mod:`musicperf.analysis.motion`). Must not import torch or
matplotlib.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from musicperf.analysis.vibrato_motion import (  # noqa: F401 - re-exported
    RATE_RANGE,
    SWAY_WINDOW,
    DisplacementCurve,
    _detrend,
    _sinusoid_fit,
    autocorrelation_rate,
    displacement_curve,
    refine_rate,
    vibrato_extent,
)
from musicperf.errors import ParameterError

logger = logging.getLogger(__name__)

__all__ = [
    "DisplacementCurve", "displacement_curve", "autocorrelation_rate", "vibrato_extent",
    "motion_features", "LinearSVM", "DEFAULT_SVM", "VibratoNote", "analyze_notes",
    "audio_vibrato", "VibratoResult", "analyze_media", "find_vibrato_region", "FEATURE_NAMES",
    "refine_rate", "SWAY_WINDOW", "HAND_MODES",
]

#: Smallest peak-to-peak extent (cents) the audio method calls vibrato: steady notes have pitch
#: jitter of a few cents whose autocorrelation can still peak.
MIN_EXTENT = 15.0



# --------------------------------------------------------------------------------------------
# SVM on motion features

FEATURE_NAMES = ("autocorr_peak", "band_energy_ratio", "log_relative_rms", "sinusoid_fit_r2")


def motion_features(X_note: np.ndarray, V_note: np.ndarray, fs: float, *, v_scale: float) -> np.ndarray:
    """Features of one note's hand motion for the SVM vibrato detector (002 V-B, method 1).

    Parameters
    ----------
    X_note : np.ndarray, shape (N,)
        Displacement curve over the note (pixels).
    V_note : np.ndarray, shape (N,)
        Velocity curve over the note (pixels per frame).
    fs : float
        Frame rate, Hz.
    v_scale : float
        RMS of ``V`` over the whole performance: makes the motion size relative, so the
        detector does not depend on the camera distance.

    Returns
    -------
    np.ndarray, shape (4,)
        See :data:`FEATURE_NAMES`: autocorrelation peak of ``X`` in the vibrato lag range
        (0 when none); share of the detrended ``X``'s spectral energy at 4-12 Hz;
        ``log(rms(V) / v_scale)``; R^2 of the best sinusoid fit at the autocorrelation rate.
    """
    X = _detrend(np.asarray(X_note, float))
    rate, peak = autocorrelation_rate(X, fs)
    peak = 0.0 if not np.isfinite(peak) else peak
    spec = np.abs(np.fft.rfft(X * np.hanning(len(X)))) ** 2 if len(X) > 2 else np.zeros(2)
    freqs = np.fft.rfftfreq(len(X), 1 / fs) if len(X) > 2 else np.zeros(2)
    band = (freqs >= RATE_RANGE[0]) & (freqs <= RATE_RANGE[1])
    ratio = float(spec[band].sum() / spec[1:].sum()) if spec[1:].sum() > 0 else 0.0
    rms = float(np.sqrt(np.mean(np.square(V_note)))) if len(V_note) else 0.0
    lrms = float(np.log((rms + 1e-6) / (v_scale + 1e-6)))
    r2 = 0.0
    if np.isfinite(rate) and len(X) >= 4 and X.var() > 0:
        amp = _sinusoid_fit(X, fs, rate)
        r2 = float(np.clip((amp / 2) ** 2 / 2 / X.var(), 0, 1))
    return np.array([peak, ratio, lrms, r2])


@dataclass
class LinearSVM:
    """A linear support vector machine (L2-regularised squared hinge loss), numpy + scipy.

    ``decision(x) = w . (x - mean) / scale + b``; positive means vibrato. scikit-learn is not a
    dependency; this is the model of its ``LinearSVC(loss="squared_hinge")``, fitted with
    L-BFGS on the standardised features.
    """

    w: np.ndarray
    b: float
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, *, C: float = 1.0) -> "LinearSVM":
        """Fit on features ``X`` (n, d) and labels ``y`` (n,) in {0, 1} (or {-1, 1})."""
        from scipy.optimize import minimize

        X = np.asarray(X, float)
        y = np.where(np.asarray(y) > 0, 1.0, -1.0)
        if X.ndim != 2 or len(X) != len(y) or len(X) < 2:
            raise ParameterError(f"LinearSVM.fit needs X (n >= 2, d) and y (n,), got {X.shape} and {y.shape}")
        if len(set(y.tolist())) < 2:
            raise ParameterError("LinearSVM.fit needs examples of both classes")
        mean, scale = X.mean(0), X.std(0)
        scale[scale == 0] = 1.0
        Z = (X - mean) / scale
        d = Z.shape[1]

        def f(p):
            w, b = p[:d], p[d]
            m = np.maximum(0.0, 1 - y * (Z @ w + b))
            loss = 0.5 * w @ w + C * np.sum(m ** 2)
            g = -2 * C * (m * y)
            return loss, np.concatenate([w + Z.T @ g, [g.sum()]])

        res = minimize(f, np.zeros(d + 1), jac=True, method="L-BFGS-B")
        return cls(w=res.x[:d], b=float(res.x[d]), mean=mean, scale=scale)

    def decision(self, X: np.ndarray) -> np.ndarray:
        """Signed distance-like score, shape (n,)."""
        return (np.atleast_2d(X) - self.mean) / self.scale @ self.w + self.b

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Boolean vibrato decision, shape (n,)."""
        return self.decision(X) > 0

    def to_dict(self) -> dict:
        return {k: (np.asarray(v).tolist()) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "LinearSVM":
        return cls(w=np.asarray(d["w"], float), b=float(d["b"]), mean=np.asarray(d["mean"], float),
                   scale=np.asarray(d["scale"], float))


#: Trained by ``benchmarks/bench_analyses.py`` (printed after the vibrato tables) on 8 synthetic
#: solos (violin and guitar, seeds 100-103, 12 s, 320x240, 25 fps), notes from the score, motion
#: from Farneback flow in the KLT-tracked box of the hand in its first frame (grown by a
#: quarter), 0.25 s sway window; features as :data:`FEATURE_NAMES`.
DEFAULT_SVM = LinearSVM(w=np.array([0.4785, 0.2133, 0.5398, -0.0423]), b=-0.4621708348354005,
                        mean=np.array([0.344, 0.6319, -0.5692, 0.4005]),
                        scale=np.array([0.3971, 0.2838, 0.7396, 0.3752]))

#: Autocorrelation thresholds: motion (flow is noisier than a pitch contour; 0.5 gives precision
#: 0.88-1.00 and recall 0.96-1.00 per instrument on the benchmark's two seed sets) and audio.
MOTION_THRESHOLD = 0.5
AUDIO_THRESHOLD = 0.6


# --------------------------------------------------------------------------------------------
# per-note analysis


@dataclass
class VibratoNote:
    """The analysis of one note.

    Attributes
    ----------
    onset, offset : float
        Seconds.
    midi : float
        Median pitch (NaN when unknown).
    vibrato : bool
        The decision of ``method``.
    method : str
        ``"motion-autocorr"``, ``"motion-svm"`` or ``"audio"``.
    rate_hz : float
        Vibrato rate from the autocorrelation (of ``X(t)``, or of the pitch for ``"audio"``).
    extent_cents : float
        Peak-to-peak extent: Equation 1 for the motion methods (NaN without a pitch contour),
        a sinusoid fit to the pitch for ``"audio"``.
    score : float
        The detection statistic: autocorrelation peak, or SVM decision value.
    """

    onset: float
    offset: float
    midi: float
    vibrato: bool
    method: str
    rate_hz: float
    extent_cents: float
    score: float

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else
                    (round(v, 4) if isinstance(v, float) else v)) for k, v in d.items()}


def _note_slice(times: np.ndarray, onset: float, offset: float, trim: float) -> slice:
    a = int(np.searchsorted(times, onset + trim, side="left"))
    b = int(np.searchsorted(times, offset - trim, side="right"))
    return slice(a, max(a, b))


def analyze_notes(notes, *, curve: DisplacementCurve | None = None, pitch=None,
                  method: str = "autocorr", threshold: float | None = None, svm: LinearSVM | None = None,
                  trim: float = 0.05, refine: bool = True) -> list[VibratoNote]:
    """Detect vibrato per note and estimate its rate and extent (002 Section V-B).

    Parameters
    ----------
    notes : sequence of objects with ``onset``, ``offset`` (seconds) and ``midi``
        E.g. :class:`~musicperf.analysis.pitch.NoteEvent` from the audio or a score.
    curve : DisplacementCurve, optional
        The hand motion; without it only the audio method runs (``method`` is ignored).
    pitch : PitchContour, optional
        Pitch contour for the extent (Equation 1) and the audio method.
    method : {"autocorr", "svm", "audio"}
        Motion detector: threshold on the autocorrelation peak of ``X(t)``, or the linear SVM on
        :func:`motion_features`; ``"audio"`` uses the pitch contour only.
    threshold : float, optional
        Autocorrelation peak above which a note has vibrato (``"autocorr"`` and ``"audio"``);
        default :data:`MOTION_THRESHOLD` or :data:`AUDIO_THRESHOLD`.
    svm : LinearSVM, optional
        Defaults to :data:`DEFAULT_SVM`.
    trim : float
        Seconds ignored at both ends of each note (attack and release transients).
    refine : bool
        Refine each autocorrelation rate with :func:`refine_rate` (ours); False gives the
        paper's rate, the inverse of the autocorrelation's peak lag.

    Returns
    -------
    list of VibratoNote
        One per note long enough to measure (at least 1.5 cycles of the slowest rate).
    """
    if method not in ("autocorr", "svm", "audio"):
        raise ParameterError(f"method must be 'autocorr', 'svm' or 'audio', got {method!r}")
    if curve is None and method != "audio":
        if pitch is None:
            raise ParameterError("analyze_notes needs a displacement curve or a pitch contour")
        method = "audio"
    if method == "audio" and pitch is None:
        raise ParameterError("the audio method needs a pitch contour")
    out = []
    if method == "audio":
        threshold = AUDIO_THRESHOLD if threshold is None else threshold
        for n in notes:
            r = audio_vibrato(pitch, n.onset, n.offset, threshold=threshold, trim=trim, refine=refine)
            if r is not None:
                out.append(r)
        return out
    threshold = MOTION_THRESHOLD if threshold is None else threshold
    svm = svm or DEFAULT_SVM
    v_scale = float(np.sqrt(np.mean(curve.velocity ** 2)))
    for n in notes:
        sl = _note_slice(curve.times, n.onset, n.offset, trim)
        X = curve.displacement[sl]
        if len(X) < 4 or len(X) / curve.fps < 1.5 / RATE_RANGE[0] * 0.75:
            continue
        rate, peak = autocorrelation_rate(X, curve.fps)
        if refine:
            rate = refine_rate(_detrend(X), curve.fps, rate)
        if method == "autocorr":
            score = peak if np.isfinite(peak) else 0.0
            is_vib = bool(score > threshold and np.isfinite(rate))
        else:
            feats = motion_features(X, curve.velocity[sl], curve.fps, v_scale=v_scale)
            score = float(svm.decision(feats)[0])
            is_vib = bool(score > 0 and np.isfinite(rate))
        extent = float("nan")
        if pitch is not None and is_vib:
            ps = _note_slice(pitch.times, n.onset, n.offset, trim)
            if ps.stop - ps.start >= 4:
                Xi = np.interp(pitch.times[ps], curve.times, curve.displacement)
                extent = vibrato_extent(pitch.midi[ps], Xi, fs=1.0 / pitch.hop, rate=rate)
        out.append(VibratoNote(onset=float(n.onset), offset=float(n.offset), midi=float(getattr(n, "midi", np.nan)),
                               vibrato=is_vib, method=f"motion-{method}", rate_hz=float(rate),
                               extent_cents=extent, score=float(score)))
    return out


def audio_vibrato(pitch, onset: float, offset: float, *, threshold: float = AUDIO_THRESHOLD,
                  trim: float = 0.05, min_extent: float = MIN_EXTENT, refine: bool = True) -> VibratoNote | None:
    """Audio-only vibrato analysis of one note from its pitch contour.

    Rate from the autocorrelation of the detrended pitch (cents), refined by
    :func:`refine_rate` unless ``refine`` is False, extent as the peak-to-peak
    amplitude of the least-squares sinusoid at that rate. Returns None when the note has too
    few voiced frames. The decision thresholds the autocorrelation peak, like the motion method,
    and also asks for ``min_extent`` cents peak to peak (steady notes have a few cents of jitter).
    """
    ps = _note_slice(pitch.times, onset, offset, trim)
    F = pitch.midi[ps]
    ok = np.isfinite(F)
    if ok.sum() < max(8, 0.75 * len(F)) or len(F) * pitch.hop < 1.5 / RATE_RANGE[0] * 0.75:
        return None
    t = np.arange(len(F))
    F = np.interp(t, t[ok], F[ok]) * 100.0
    rate, peak = autocorrelation_rate(F, 1.0 / pitch.hop)
    if refine:
        rate = refine_rate(_detrend(F), 1.0 / pitch.hop, rate)
    score = peak if np.isfinite(peak) else 0.0
    is_vib = bool(score > threshold and np.isfinite(rate))
    extent = _sinusoid_fit(_detrend(F), 1.0 / pitch.hop, rate) if np.isfinite(rate) else float("nan")
    is_vib = is_vib and extent >= min_extent
    return VibratoNote(onset=float(onset), offset=float(offset), midi=float(np.median(F) / 100), vibrato=is_vib,
                       method="audio", rate_hz=float(rate), extent_cents=float(extent), score=float(score))


# --------------------------------------------------------------------------------------------
# media pipeline


@dataclass
class VibratoResult:
    """Everything :func:`analyze_media` computed (the command prints it and plots it).

    Attributes
    ----------
    notes : list of NoteEvent
        The notes analysed (from audio or a score file).
    motion : list of VibratoNote
        Motion-based analysis per note (empty for audio files).
    audio : list of VibratoNote
        Per-note audio analysis (only with ``analyze_media(per_note_audio=True)``).
    curve : DisplacementCurve or None
    pitch : PitchContour or None
    region : Region or None
        The (initial) hand region.
    boxes : np.ndarray or None, shape (T, 4)
        The tracked region per frame, ``(x0, y0, x1, y1)`` pixels.
    media : str
    region_source : str
        How ``region`` was found (see :func:`analyze_media`); empty for an audio file.
    track : VibratoTrack or None
        The frame-wise audio analysis (:func:`musicperf.analysis.vibrato_frames.detect_vibrato`).
    scale : float
        Factor by which the video frames were shrunk for the motion analysis (1: not).
    """

    notes: list
    motion: list = field(default_factory=list)
    audio: list = field(default_factory=list)
    curve: DisplacementCurve | None = None
    pitch: object | None = None
    region: object | None = None
    boxes: np.ndarray | None = None
    media: str = ""
    region_source: str = ""
    track: object | None = None
    scale: float = 1.0

    @property
    def areas(self) -> list:
        """The audio vibrato areas of the frame-wise detector (:mod:`musicperf.analysis.vibrato_frames`)."""
        return self.track.areas() if self.track is not None else []

    def segments(self) -> list[dict]:
        """Detected vibrato segments of every method: start, end, rate_hz, extent_cents, method, score.

        Motion: the vibrato notes of the hand motion (``motion-autocorr``/``motion-svm``, score
        the autocorrelation peak or SVM decision). Audio: the areas of the frame-wise detector
        (``audio``, score the median regularity). The per-note audio analysis (``self.audio``)
        is kept for the API but no longer decides: on real recordings it found 0.24 frame F1.
        """
        out = []
        for r in self.motion:
            if r.vibrato:
                d = r.to_dict()
                out.append(dict(start=d["onset"], end=d["offset"], rate_hz=d["rate_hz"],
                                extent_cents=d["extent_cents"], method=d["method"], score=d["score"]))
        for a in self.areas:
            d = a.to_dict()
            out.append(dict(start=d["start"], end=d["end"], rate_hz=d["rate_hz"], extent_cents=d["extent_cents"],
                            method="audio", score=d["regularity"]))
        return sorted(out, key=lambda d: (d["start"], d["method"]))

    def agreement(self) -> dict | None:
        """How far the motion's vibrato notes and the audio's vibrato areas agree (None without both).

        Returns ``motion_s`` and ``audio_s`` (seconds of vibrato each found), ``both_s`` (their
        overlap), ``motion_covered`` (share of the motion's vibrato time inside audio areas) and
        ``audio_covered`` (the converse); the shares are None where a side found nothing.
        """
        if self.curve is None or self.track is None:
            return None
        segs = self.segments()
        mot = [(s["start"], s["end"]) for s in segs if s["method"].startswith("motion")]
        aud = [(s["start"], s["end"]) for s in segs if s["method"] == "audio"]
        end = max([e for _s, e in mot + aud] + [0.0]) + 1.0
        t = np.arange(0.0, end, 0.01)

        def mask(iv):
            m = np.zeros(len(t), bool)
            for a, b in iv:
                m |= (t >= a) & (t < b)
            return m

        m, a = mask(mot), mask(aud)
        both = float((m & a).sum() * 0.01)
        return dict(motion_s=round(float(m.sum() * 0.01), 2), audio_s=round(float(a.sum() * 0.01), 2),
                    both_s=round(both, 2),
                    motion_covered=round(both / (m.sum() * 0.01), 3) if m.any() else None,
                    audio_covered=round(both / (a.sum() * 0.01), 3) if a.any() else None)


def find_vibrato_region(frames, *, fps: float, grid: int = 8, max_frames: int = 750):
    """Find the image cell whose motion oscillates most in the vibrato band (4-12 Hz).

    Used with ``hand="search"``, or by ``"auto"`` when MediaPipe is missing or finds no hand
    (:func:`analyze_media`): dense flow over a ``grid x grid`` partition, each cell's
    mean velocity (minus the median of all cells: camera shake) turned into a displacement
    curve; the cell whose 1 s windows most often show a strong autocorrelation peak at a
    vibrato period (summed excess of the peak over 0.6) is returned,
    grown by half a cell on every side. This search needs no model and finds the vibrating hand
    whenever one vibrates; on a video without vibrato it finds whatever oscillates most.

    Parameters
    ----------
    frames : sequence of np.ndarray, shape (H, W, 3)
        The frames (a list: they are read twice by the caller).
    fps : float
    grid : int
    max_frames : int
        Frames used for the search (30 s at 25 fps).

    Returns
    -------
    Region
    """
    from musicperf.analysis.motion import Region, region_motion, split_region

    H, W = frames[0].shape[:2]
    cells = split_region(Region(0, 0, W, H), grid)
    m = region_motion(frames[:max_frames], cells, fps=fps)
    # camera shake moves every edge in the picture: remove the median cell motion first
    vel = m.velocity - np.median(m.velocity, axis=1, keepdims=True)
    scores = []
    win, hop = int(round(fps)), max(1, int(round(fps / 2)))
    for c in range(len(cells)):
        X = displacement_curve(vel[:, c], fps).displacement
        # pixel noise has much 4-12 Hz energy but no periodicity: count 1 s windows whose
        # autocorrelation shows a clear vibrato-like period
        st = [autocorrelation_rate(X[i:i + win], fps)[1] for i in range(0, max(1, len(X) - win + 1), hop)]
        st = np.nan_to_num(np.asarray(st, float))
        scores.append(float(np.sum(np.clip(st - 0.6, 0, None))))
    best = int(np.argmax(scores))
    cw, ch = W / grid, H / grid
    bx, by = best % grid, best // grid
    # the best cell grown by half a cell on every side: the hand may straddle cells, and a
    # larger box dilutes its motion with still background
    x0, y0 = max(0.0, (bx - 0.5) * cw), max(0.0, (by - 0.5) * ch)
    return Region(x0, y0, min(2 * cw, W - x0), min(2 * ch, H - y0))


#: Values of ``hand`` in :func:`analyze_media` besides a :class:`~musicperf.analysis.motion.Region`.
HAND_MODES = ("auto", "landmarks", "search")


def _find_region(media: Path, hand, *, side: str, fps: float, frames_head, n_frames: int):
    """The hand region and how it was found (see :func:`analyze_media`)."""
    from musicperf.analysis.motion import Region
    from musicperf.errors import MissingDependencyError

    if isinstance(hand, Region):
        return hand, "given"
    if hand not in HAND_MODES:
        raise ParameterError(f"hand must be one of {', '.join(HAND_MODES)} or a Region, got {hand!r}")
    if hand in ("auto", "landmarks"):
        from musicperf.analysis.hand import detect_hand_region

        try:
            det = detect_hand_region(media, side=side, n_frames=n_frames)
        except MissingDependencyError as exc:
            if hand == "landmarks":
                raise
            logger.warning("%s; searching the most periodic region of '%s' instead", exc, media)
        else:
            if det.region is not None:
                return det.region, det.source
            if hand == "landmarks":
                raise ParameterError(f"MediaPipe found no {side} hand or body in the first {det.frames} frames of "
                                     f"'{media}'; give the hand's box (--hand X,Y,W,H) or use --hand search")
            logger.warning("MediaPipe found no %s hand in the first %d frames of '%s'; searching the most periodic "
                           "region instead", side, det.frames, media)
    head = frames_head()
    if len(head) < 3:
        raise ParameterError(f"'{media}' has fewer than 3 video frames")
    return find_vibrato_region(head, fps=fps), "motion search"


def analyze_media(media, *, audio=None, region=None, hand="auto", side: str = "left", notes_file=None,
                  method: str = "autocorr", threshold: float | None = None, track: bool = True,
                  max_seconds: float | None = None, hand_frames: int = 20,
                  per_note_audio: bool = False) -> VibratoResult:
    """Run the vibrato analysis of 002 V-B on a video (motion + audio) or an audio file.

    Parameters
    ----------
    media : str or Path
        A video (its audio track is used unless ``audio`` is given) or an audio file (then only
        the audio method runs).
    audio : str or Path, optional
        A separate audio file for the pitch contour (e.g. the player's own microphone).
    region : Region, optional
        The fingering hand in the first frame, pixels (same as ``hand=region``).
    hand : {"auto", "landmarks", "search"} or Region
        How the fingering hand's region in the first frame is found when ``region`` is None:
        ``"landmarks"``: MediaPipe on the first ``hand_frames`` frames
        (:func:`musicperf.analysis.hand.detect_hand_region`; an error when mediapipe is missing
        or sees no hand or body); ``"search"``: the image region whose motion oscillates most
        at vibrato rates in the first 10 s (:func:`find_vibrato_region`); ``"auto"``:
        landmarks, falling back to the search (with a logged warning) when mediapipe is
        missing or finds nothing.
    side : {"left", "right"}
        The fingering hand (the performer's anatomical side) for the landmark detector.
    notes_file : str or Path, optional
        Notes from a score (``.mid``, ``.csv``, ``.json``); otherwise from the audio.
    method : {"autocorr", "svm"}
        Motion detector.
    threshold : float, optional
        Autocorrelation threshold of the motion method (default :data:`MOTION_THRESHOLD`); the
        audio method keeps :data:`AUDIO_THRESHOLD`.
    track : bool
        KLT-track the region.
    max_seconds : float, optional
        Analyse only the beginning.
    hand_frames : int
        Frames MediaPipe examines.
    per_note_audio : bool
        Also run the per-note audio analysis of the pitch (:func:`audio_vibrato`, into
        ``audio``); the audio areas come from the frame-wise detector either way (``track``,
        ``areas``).

    Returns
    -------
    VibratoResult
        ``region_source`` says how the region was found: ``"given"``, ``"hand landmarks"``,
        ``"pose wrist"`` or ``"motion search"``.
    """
    from musicperf.analysis.pitch import estimate_pitch, read_notes, segment_notes
    from musicperf.analysis.vibrato_frames import detect_vibrato
    from musicperf.errors import NoAudioError
    from musicperf.io.audio import has_audio, load_audio

    media = Path(media)
    if not media.is_file():
        raise ParameterError(f"media file '{media}' does not exist")
    if region is not None:
        hand = region
    if isinstance(hand, str) and hand not in HAND_MODES:
        raise ParameterError(f"hand must be one of {', '.join(HAND_MODES)} or a Region, got {hand!r}")
    if side not in ("left", "right"):
        raise ParameterError(f"side must be 'left' or 'right', got {side!r}")
    is_video = _is_video(media)
    res = VibratoResult(notes=[], media=str(media))
    if is_video and audio is None and notes_file is None and not has_audio(media):
        raise NoAudioError(f"'{media}' has no audio stream: the vibrato analysis needs the sound (give --audio "
                           "FILE, or --notes FILE for the hand motion alone)")
    if is_video:
        _motion_of_video(res, media, hand=hand, side=side, track=track, max_seconds=max_seconds,
                         hand_frames=hand_frames)
    y = None
    src = Path(audio) if audio is not None else (media if (not is_video or has_audio(media)) else None)
    if src is not None:
        y, sr = load_audio(src, sr=22050, duration=max_seconds)
        if y.size == 0:
            y = None
    if y is not None and np.max(np.abs(y)) > 0:
        # 100 frames a second (hop 220 at 22050 Hz) for the frame-wise detector; pYIN's grid at
        # 0.25 semitone (voicing and octave only, the values are YIN's): 7x faster than 0.1 and
        # within 0.01 frame F1 on the real recordings (docs/vibrato.md)
        res.pitch = estimate_pitch(y, 22050, hop_length=PITCH_HOP, resolution=PITCH_RESOLUTION)
        res.track = detect_vibrato(res.pitch.times, 100.0 * res.pitch.midi)
    if notes_file is not None:
        res.notes = read_notes(notes_file)
    elif res.pitch is not None:
        res.notes = segment_notes(res.pitch, y, 22050)
    if res.curve is not None and res.notes:
        res.motion = analyze_notes(res.notes, curve=res.curve, pitch=res.pitch, method=method, threshold=threshold)
    if per_note_audio and res.pitch is not None and res.notes:
        res.audio = analyze_notes(res.notes, pitch=res.pitch, method="audio")
    if src is not None and res.pitch is None:
        logger.warning("'%s' is silent: no pitch, no audio vibrato", src)
    elif not res.notes and res.curve is not None:
        logger.warning("no notes found in '%s' (silent or unpitched audio, and no --notes file)", media)
    return res


#: Longest side, pixels, at which video frames are analysed: larger frames are shrunk (area
#: averaging by the decoder) before the hand search and the optical flow, which bounds the
#: memory (an 8192x8192 video took 7.1 GB at full size) and keeps a 1080p video untouched.
#: Rate and Equation 1's extent do not depend on the picture's scale.
MAX_FRAME_SIDE = 1920

#: Frame rates outside this range are implausible (a broken header, a slide show): the motion
#: analysis is skipped with a warning, the audio analysis runs.
FPS_RANGE = (1.0, 1000.0)

#: Pitch frames of the frame-wise detector: 220 samples at 22050 Hz (9.98 ms).
PITCH_HOP = 220
#: pYIN's pitch grid, semitones (see :func:`musicperf.analysis.pitch.estimate_pitch`).
PITCH_RESOLUTION = 0.25


def _motion_of_video(res: VibratoResult, media: Path, *, hand, side, track, max_seconds, hand_frames) -> None:
    """The hand region, its motion and displacement curve of a video, into ``res``."""
    import itertools

    from musicperf.analysis.motion import Region, region_motion
    from musicperf.io.video import VideoReader, probe

    info = probe(media)
    fps = float(info.fps)
    if not (FPS_RANGE[0] <= fps <= FPS_RANGE[1]):
        logger.warning("'%s' announces %.4g frames a second, outside %g-%g: no motion analysis (vibrato at "
                       "4-9 Hz cannot be measured from it); the audio is analysed alone", media, fps, *FPS_RANGE)
        return
    if fps < 2 * RATE_RANGE[1]:
        logger.warning("'%s' has %.3g frames a second: hand vibrato faster than %.1f Hz cannot be seen in it",
                       media, fps, fps / 2)
    W, H = int(info.width), int(info.height)
    scale = min(1.0, MAX_FRAME_SIDE / max(W, H, 1))
    size = None
    if scale < 1.0:
        size = (max(2, int(round(H * scale))), max(2, int(round(W * scale))))
        scale = size[1] / W
        logger.warning("'%s' is %dx%d: analysing its frames at %dx%d", media, W, H, size[1], size[0])
    res.scale = scale
    if isinstance(hand, Region) and scale < 1.0:
        hand = Region(hand.x * scale, hand.y * scale, hand.w * scale, hand.h * scale)
    # the region first: a missing hand fails before minutes of pitch tracking. Streamed: a
    # long video never sits in memory (only the first 10 s for the region search)
    with VideoReader(media, size=size) as reader:

        def head():
            return list(itertools.islice((f for _t, f in reader.frames(0.0, max_seconds)), int(10 * fps)))

        region, res.region_source = _find_region(media, hand, side=side, fps=fps, frames_head=head,
                                                 n_frames=hand_frames)
        if scale < 1.0 and res.region_source not in ("given", "motion search"):
            # MediaPipe reads the file itself, at its own size
            region = Region(region.x * scale, region.y * scale, region.w * scale, region.h * scale)
        m = region_motion((f for _t, f in reader.frames(0.0, max_seconds)), region, fps=fps, track=track,
                          winsize=5)
    if len(m.velocity) < 3:
        raise ParameterError(f"'{media}' has fewer than 3 video frames")
    # regions and boxes are reported in the video's own pixels; the motion stays in analysed
    # pixels (its size never matters: rate and Equation 1 are scale-free)
    inv = 1.0 / scale
    res.region = Region(region.x * inv, region.y * inv, region.w * inv, region.h * inv)
    res.boxes = m.boxes[:, 0] * inv
    res.curve = displacement_curve(m.velocity[:, 0], fps)


def _is_video(path: Path) -> bool:
    from musicperf.io.video import probe
    from musicperf.errors import DecodeError

    try:
        probe(path)
    except DecodeError:
        return False
    return True
