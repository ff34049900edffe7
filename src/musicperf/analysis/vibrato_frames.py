"""Frame-wise vibrato detection from a pitch contour (rate, extent and regularity per frame).

The pitch contour (cents, NaN where unvoiced) is analysed in a short sliding window, in the way
of the vibrato detectors of the literature (the windowed FDM of Yang, Rajab and Chew, 2017, and
the spectral measures before it): in every window the f0 modulation in the vibrato band is
measured, and a frame is vibrato when that modulation is wide enough and regular enough.

Steps (our choices where the literature leaves them open):

1. Short unvoiced gaps (<= :data:`MAX_GAP` s) are bridged by linear interpolation; pitch
   tracking drops a frame or two inside sustained notes.
2. The slow pitch movement (melody, note changes, intonation drift) is removed by subtracting a
   running median over :data:`TREND_WINDOW` s. A median keeps the steps of note changes (a
   moving average or a high-pass filter turns each one into a ramp or a ringing transient that
   looks like one half-cycle of vibrato), and over 0.3 s it covers at least 1.2 cycles of the
   slowest rate searched, so a vibrato oscillation is left in the residual.
3. In a Hann-tapered window of :data:`WINDOW` s centred on each frame:

   - **rate**: the largest peak of the residual's spectrum (zero padded to 0.1 Hz bins) in
     :data:`RATE_BAND`, refined by parabolic interpolation;
   - **regularity**: the share of the residual's (taper-weighted) variance in the window that
     a least-squares sinusoid at that rate explains (1 for a pure vibrato, low for jitter,
     glides and note changes). A fit needs no spectral resolution: in 0.5 s the Hann main lobe
     is +-4 Hz wide, and a band-energy ratio could not tell a sinusoid from jitter;
   - **extent**: twice the amplitude (peak to peak, cents) of the least-squares sinusoid at
     that rate fitted, together with a quadratic trend, to the gap-bridged pitch itself (the
     running median takes part of the oscillation with it: a 100-cent vibrato measured 82-128
     cents on the residual depending on its rate, 99.5-100.5 cents this way).

4. Extent and regularity are averaged over :data:`SMOOTH` s. A frame starts a vibrato area
   when at least :data:`MIN_VOICED` of its window is voiced, its extent is at least
   :data:`MIN_EXTENT` cents and its regularity at least :data:`MIN_REGULARITY`; the area grows
   over the neighbouring frames whose regularity is at least :data:`GROW_REGULARITY`
   (hysteresis). Areas separated by less than :data:`MAX_HOLE` s are joined, and areas shorter
   than :data:`MIN_DURATION` s are dropped.

5. :func:`detect_vibrato` (what ``musicperf vibrato`` uses) decides by a vote: 40 threshold
   settings (window, extent, regularity, hysteresis, smoothing), each deciding as in step 4,
   and a frame is vibrato when at least half of them say so. The settings are the 40 best of a
   216-point grid on the 11 annotated real recordings (``data/vibrato_ensemble.json``, written
   by ``benchmarks/bench_vibrato_real.py --write-ensemble``). By leave-one-recording-out the
   vote scores 0.77-0.80 mean frame F1 on the left-out recording against 0.765 for the single
   best setting chosen the same way (docs/vibrato.md). :func:`track_vibrato` is one setting;
   its defaults are the earlier single setting, hand-chosen on 8 of the recordings.

Imports numpy and scipy only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import numpy as np

from musicperf.errors import ParameterError
from musicperf.labels.intervals import true_runs

__all__ = ["VibratoTrack", "VibratoArea", "track_vibrato", "detect_vibrato", "ensemble_settings", "vibrato_areas",
           "frame_labels",
           "WINDOW", "RATE_BAND", "MIN_EXTENT", "MIN_REGULARITY", "MIN_DURATION", "write_frames_csv"]

#: Sliding window, seconds: 2.5 cycles at 5 Hz (short enough to place an area's boundary
#: within a quarter of a second, long enough for a sinusoid fit to tell vibrato from jitter).
WINDOW = 0.5
#: Vibrato rates searched, Hz (the 4-9 Hz band of string, wind and vocal vibrato).
RATE_BAND = (4.0, 9.0)
#: Running median removed from the pitch before the regularity is measured, seconds.
TREND_WINDOW = 0.3
#: A jump of the running median larger than this from one frame to the next is a note change,
#: cents (a 100-cent vibrato at 9 Hz moves the raw pitch at most 28 cents a frame, its median less).
STEP = 30.0
#: Longest unvoiced gap bridged inside a note, seconds.
MAX_GAP = 0.06
#: Share of the window that must be voiced.
MIN_VOICED = 0.8
#: Default thresholds of :func:`track_vibrato` (one setting; :func:`detect_vibrato` votes over
#: 40), set on the development split of the real recordings (9 of the 12
#: CMMSD recordings; the 3 held out were not used): a grid over window 0.3-0.9 s, smoothing
#: 0-0.4 s, extent 3-20 cents, regularity 0.3-0.85 with and without hysteresis. Real flute
#: and oboe vibrato is small in pitch (the annotated areas of these recordings are often 6-20
#: cents peak to peak), hence the low extent; the regularity does most of the work.
MIN_EXTENT = 6.0
MIN_REGULARITY = 0.7
GROW_REGULARITY = 0.5
SMOOTH = 0.4
MIN_DURATION = 0.25
#: Gaps between vibrato runs shorter than this are filled, seconds.
MAX_HOLE = 0.1


@dataclass
class VibratoTrack:
    """Per-frame vibrato measures of a pitch contour.

    Attributes
    ----------
    times : np.ndarray, shape (N,)
        Frame centres, seconds.
    cents : np.ndarray, shape (N,)
        Pitch in cents (``100 * MIDI`` in the pipeline); NaN where unvoiced.
    rate : np.ndarray, shape (N,)
        Modulation rate in the window, Hz (NaN where the window is not voiced enough).
    extent : np.ndarray, shape (N,)
        Peak-to-peak modulation at that rate, cents.
    regularity : np.ndarray, shape (N,)
        Share of the window's modulation energy at the rate, 0-1.
    vibrato : np.ndarray of bool, shape (N,)
        The decision after joining and the minimum duration.
    hop : float
        Seconds between frames.
    """

    times: np.ndarray
    cents: np.ndarray
    rate: np.ndarray
    extent: np.ndarray
    regularity: np.ndarray
    vibrato: np.ndarray
    hop: float

    def areas(self) -> list["VibratoArea"]:
        """The vibrato areas with their median rate and extent."""
        return vibrato_areas(self)


@dataclass
class VibratoArea:
    """One vibrato area: ``start``/``end`` seconds, median ``rate_hz`` and ``extent_cents``."""

    start: float
    end: float
    rate_hz: float
    extent_cents: float
    regularity: float

    def to_dict(self) -> dict:
        return dict(start=round(self.start, 3), end=round(self.end, 3), rate_hz=round(self.rate_hz, 3),
                    extent_cents=round(self.extent_cents, 2), regularity=round(self.regularity, 3))


def _bridge_gaps(c: np.ndarray, max_gap: int) -> np.ndarray:
    """Linear interpolation over NaN runs of at most ``max_gap`` frames between voiced frames."""
    c = c.copy()
    ok = np.isfinite(c)
    if ok.sum() < 2:
        return c
    idx = np.flatnonzero(ok)
    gaps = np.diff(idx) - 1
    for i in np.flatnonzero((gaps > 0) & (gaps <= max_gap)):
        a, b = idx[i], idx[i + 1]
        c[a + 1:b] = np.interp(np.arange(a + 1, b), [a, b], [c[a], c[b]])
    return c


def _residual(cents: np.ndarray, hop: float) -> np.ndarray:
    """Pitch minus its running median, per voiced run (NaN elsewhere)."""
    from scipy.ndimage import median_filter

    out = np.full_like(cents, np.nan)
    k = max(3, int(round(TREND_WINDOW / hop)) | 1)
    for a, b in true_runs(np.isfinite(cents)):
        seg = cents[a:b]
        out[a:b] = seg - median_filter(seg, size=k, mode="nearest")
    return out


def modulation(r: np.ndarray, hop: float, *, window: float = WINDOW, rate_band: tuple[float, float] = RATE_BAND,
               min_voiced: float = MIN_VOICED, order: int = 0, rates: np.ndarray | None = None):
    """Rate, peak-to-peak extent and regularity of the modulation of ``r`` in a window centred on every frame.

    Parameters
    ----------
    r : np.ndarray, shape (N,)
        A curve (cents; NaN where unvoiced) sampled every ``hop`` s.
    hop : float
        Seconds between samples.
    window, rate_band, min_voiced
        See :func:`track_vibrato`.
    order : int
        Polynomial trend removed from every window (weighted least squares) together with the
        sinusoid: 0 for a detrended residual, 2 for the pitch itself.
    rates : np.ndarray, shape (N,), optional
        Use these rates (Hz; NaN: search) instead of the spectral peak of each window.

    Returns
    -------
    rate, extent, regularity : np.ndarray, shape (N,)
        Hz, cents peak to peak, share of the window's (tapered, detrended) variance that the
        sinusoid explains; NaN where less than ``min_voiced`` of the window is voiced.
    use : np.ndarray of bool, shape (N,)
        Where the window is voiced enough.
    """
    n = len(r)
    nan = np.full(n, np.nan)
    lo, hi = rate_band
    w = max(8, int(round(window / hop)))
    half = w // 2
    fs = 1.0 / hop
    nfft = int(2 ** np.ceil(np.log2(max(w, fs / 0.1))))
    freqs = np.fft.rfftfreq(nfft, hop)
    band = (freqs >= lo) & (freqs <= hi)
    taper = np.hanning(w)
    # windows centred on every frame, over the residual padded with NaN (NaN = unvoiced)
    pad = np.concatenate([np.full(half, np.nan), r, np.full(w - half, np.nan)])
    frames = np.lib.stride_tricks.sliding_window_view(pad, w)[:n]
    vfrac = np.isfinite(frames).mean(1)
    use = vfrac >= min_voiced
    rate, extent, reg = nan.copy(), nan.copy(), nan.copy()
    if use.any():
        X = frames[use]
        # unvoiced samples at a window's edge (< 1 - min_voiced of it) are set to the window's mean
        X = np.where(np.isfinite(X), X, np.nanmean(X, axis=1, keepdims=True))
        X = X - X.mean(1, keepdims=True)
        P = np.abs(np.fft.rfft(X * taper, n=nfft, axis=1)) ** 2
        Pb = np.where(band, P, -1.0)
        k = np.argmax(Pb, axis=1)
        k = np.clip(k, 1, len(freqs) - 2)
        rows = np.arange(len(k))
        y0, y1, y2 = P[rows, k - 1], P[rows, k], P[rows, k + 1]
        den = y0 - 2 * y1 + y2
        delta = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1.0), 0.0)
        f = freqs[k] + np.clip(delta, -0.5, 0.5) * (freqs[1] - freqs[0])
        if rates is not None:
            given = np.asarray(rates, float)[use]
            f = np.where(np.isfinite(given), given, f)
        # weighted least-squares sinusoid at the rate (plus a constant) in every window: its
        # amplitude is the extent, the share of the window's (tapered) variance it explains the
        # regularity. A fit needs no spectral resolution: with 0.4 s the Hann main lobe is
        # +-5 Hz wide and band energies could not tell a sinusoid from jitter.
        tt = (np.arange(w) - (w - 1) / 2) * hop
        ph = 2 * np.pi * f[:, None] * tt[None, :]
        S, C = np.sin(ph), np.cos(ph)
        W = taper[None, :]
        # remove a polynomial trend of the given order by weighted least squares (order 0: the
        # weighted mean) from the window and from the sinusoids
        tn = tt / max(tt[-1], 1e-9)
        Q = np.stack([tn ** i for i in range(order + 1)], 1)
        Pm = Q @ np.linalg.solve(Q.T @ (taper[:, None] * Q), (Q * taper[:, None]).T)  # (w, w) projector
        Xc = X - X @ Pm.T
        Sc = S - S @ Pm.T
        Cc = C - C @ Pm.T
        a11, a22, a12 = (W * Sc * Sc).sum(1), (W * Cc * Cc).sum(1), (W * Sc * Cc).sum(1)
        b1, b2 = (W * Sc * Xc).sum(1), (W * Cc * Xc).sum(1)
        det = a11 * a22 - a12 ** 2
        det = np.where(np.abs(det) > 1e-12, det, np.inf)
        ca, cb = (a22 * b1 - a12 * b2) / det, (a11 * b2 - a12 * b1) / det
        fit = ca * b1 + cb * b2  # explained weighted sum of squares
        tot = (W * Xc * Xc).sum(1)
        rate[use] = f
        extent[use] = 2.0 * np.hypot(ca, cb)
        reg[use] = np.clip(np.divide(fit, tot, out=np.zeros_like(tot), where=tot > 0), 0.0, 1.0)
    return rate, extent, reg, use


def _without_steps(c: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The pitch with its note changes taken out: the running median's jumps of more than
    :data:`STEP` cents from one frame to the next are subtracted, so that a window across a
    note change sees one continuous curve (a quadratic trend cannot follow a step, and the
    fitted sinusoid would take the step for a large extent)."""
    trend = c - r
    d = np.diff(trend)
    d = np.where(np.isfinite(d) & (np.abs(d) > STEP), d, 0.0)
    return c - np.concatenate([[0.0], np.cumsum(d)])


def track_vibrato(times: np.ndarray, cents: np.ndarray, *, min_extent: float = MIN_EXTENT,
                  min_regularity: float = MIN_REGULARITY, grow_regularity: float | None = GROW_REGULARITY,
                  min_duration: float = MIN_DURATION, window: float = WINDOW,
                  rate_band: tuple[float, float] = RATE_BAND, smooth: float = SMOOTH,
                  min_voiced: float = MIN_VOICED) -> VibratoTrack:
    """Frame-wise vibrato rate, extent, regularity and decision of a pitch contour.

    Parameters
    ----------
    times : np.ndarray, shape (N,)
        Evenly spaced frame times, seconds (at least 50 frames a second: 100 Hz or finer is
        meant).
    cents : np.ndarray, shape (N,)
        Pitch in cents (any reference, e.g. ``100 * MIDI``); NaN where unvoiced.
    min_extent : float
        Smallest peak-to-peak extent called vibrato, cents.
    min_regularity : float
        Regularity a frame needs to start an area.
    grow_regularity : float or None
        Regularity that keeps a frame inside an area started by a stronger one (hysteresis);
        None: no hysteresis.
    min_duration : float
        Shortest area kept, seconds.
    window : float
        Analysis window, seconds.
    rate_band : (float, float)
        Rates searched, Hz.
    smooth : float
        Extent and regularity are averaged over this many seconds before the decision (0: not).
    min_voiced : float
        Share of the window that must be voiced.

    Returns
    -------
    VibratoTrack
        ``rate``, ``extent`` and ``regularity`` are the unsmoothed per-frame values.
    """
    times, cents, hop = _check(times, cents, rate_band)
    n = len(times)
    if hop is None:
        nan = np.full(n, np.nan)
        return VibratoTrack(times, cents, nan, nan.copy(), nan.copy(), np.zeros(n, bool), 0.01)
    rate, extent, reg, use, voiced = _measures(cents, hop, window, rate_band, min_voiced)
    vib = _decide(extent, reg, use, voiced, hop, min_extent=min_extent, min_regularity=min_regularity,
                  grow_regularity=grow_regularity, smooth=smooth, min_duration=min_duration)
    return VibratoTrack(times=times, cents=cents, rate=rate, extent=extent, regularity=reg, vibrato=vib, hop=hop)


def _check(times, cents, rate_band) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Validated ``(times, cents, hop)``; hop None for fewer than two frames."""
    times = np.asarray(times, float)
    cents = np.asarray(cents, float)
    if times.ndim != 1 or times.shape != cents.shape:
        raise ParameterError(f"times and cents must be 1-D arrays of the same length, got {times.shape} "
                             f"and {cents.shape}")
    if len(times) < 2:
        return times, cents, None
    hop = float(np.median(np.diff(times)))
    if not hop > 0 or hop > 0.02:
        raise ParameterError(f"the pitch contour needs at least 50 frames a second, got a hop of {hop:.4f} s")
    lo, hi = rate_band
    if not 0 < lo < hi:
        raise ParameterError(f"rate_band must be (low, high) with 0 < low < high, got {rate_band}")
    return times, cents, hop


def _measures(cents: np.ndarray, hop: float, window: float, rate_band, min_voiced: float):
    """Per-frame ``rate, extent, regularity, use`` (window voiced enough) and ``voiced`` (after
    bridging gaps) of a contour, for one window length."""
    c = _bridge_gaps(cents, int(round(MAX_GAP / hop)))
    r = _residual(c, hop)
    # regularity and rate from the residual; the extent from the pitch itself (module docstring)
    rate, _ext, reg, use = modulation(r, hop, window=window, rate_band=rate_band, min_voiced=min_voiced)
    _rate, extent, _reg, _use = modulation(_without_steps(c, r), hop, window=window, rate_band=rate_band,
                                           min_voiced=min_voiced, order=2, rates=rate)
    return rate, extent, reg, use, np.isfinite(r)


def _decide(extent, reg, use, voiced, hop, *, min_extent, min_regularity, grow_regularity, smooth,
            min_duration) -> np.ndarray:
    """The vibrato decision of one threshold setting (step 4 of the module docstring)."""
    ext_d, reg_d = extent, reg
    if smooth > 0:
        from scipy.ndimage import uniform_filter1d

        k = max(1, int(round(smooth / hop)))
        wt = uniform_filter1d(use.astype(float), k, mode="constant")
        ext_d = uniform_filter1d(np.nan_to_num(extent), k, mode="constant") / np.maximum(wt, 1e-9)
        reg_d = uniform_filter1d(np.nan_to_num(reg), k, mode="constant") / np.maximum(wt, 1e-9)
    with np.errstate(invalid="ignore"):
        raw = use & (ext_d >= min_extent) & (reg_d >= min_regularity)
        if grow_regularity is not None:
            weak = use & (ext_d >= min_extent) & (reg_d >= grow_regularity)
            # hysteresis: keep the weak runs that contain a strong frame
            keep = np.zeros_like(raw)
            for a, b in true_runs(weak | raw):
                if raw[a:b].any():
                    keep[a:b] = True
            raw = keep
    return _clean(raw & voiced, hop, min_duration)


_ENSEMBLE: dict | None = None


def ensemble_settings() -> dict:
    """The shipped threshold ensemble (``musicperf/data/vibrato_ensemble.json``): ``configs``, a
    list of threshold settings (keywords of :func:`track_vibrato`), and ``vote``, the share of
    them that must call a frame vibrato. Written by ``benchmarks/bench_vibrato_real.py
    --write-ensemble`` from the real recordings (docs/vibrato.md)."""
    global _ENSEMBLE
    if _ENSEMBLE is None:
        import json
        from importlib import resources

        from musicperf.errors import MusicperfError

        res = resources.files("musicperf").joinpath("data/vibrato_ensemble.json")
        try:
            data = json.loads(res.read_text(encoding="utf-8"))
            cfgs = [dict(window=float(c["window"]), min_extent=float(c["min_extent"]),
                         min_regularity=float(c["min_regularity"]),
                         grow_regularity=None if c["grow_regularity"] is None else float(c["grow_regularity"]),
                         smooth=float(c["smooth"])) for c in data["configs"]]
            vote = float(data["vote"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MusicperfError(f"{res}: unreadable vibrato ensemble ({exc})") from exc
        if not cfgs or not 0 < vote <= 1:
            raise MusicperfError(f"{res}: the vibrato ensemble needs configs and a vote share in (0, 1]")
        _ENSEMBLE = dict(configs=cfgs, vote=vote)
    return _ENSEMBLE


def detect_vibrato(times: np.ndarray, cents: np.ndarray, *, configs: list[dict] | None = None,
                   vote: float | None = None, rate_band: tuple[float, float] = RATE_BAND,
                   min_voiced: float = MIN_VOICED, min_duration: float = MIN_DURATION) -> VibratoTrack:
    """Frame-wise vibrato by the vote of several threshold settings (what ``musicperf vibrato`` uses).

    Every setting of ``configs`` (keywords ``window``, ``min_extent``, ``min_regularity``,
    ``grow_regularity``, ``smooth`` of :func:`track_vibrato`) decides every frame as
    :func:`track_vibrato` would; a frame is vibrato when at least ``vote`` of them say so, and
    the result is cleaned as one setting's (holes under :data:`MAX_HOLE` s filled, areas under
    ``min_duration`` dropped). The default is the shipped ensemble (:func:`ensemble_settings`):
    the 40 settings of a 216-point grid with the best mean F1 on the 11 annotated real
    recordings, majority vote. One setting chosen on a set of recordings fits that set; a vote
    of the good ones generalises better (leave-one-recording-out mean F1 0.78-0.80 against
    0.765 for the single best setting, and no false area on the recording without vibrato:
    docs/vibrato.md).

    Returns
    -------
    VibratoTrack
        ``rate``, ``extent`` and ``regularity`` are those of the :data:`WINDOW` s window.
    """
    times, cents, hop = _check(times, cents, rate_band)
    n = len(times)
    if hop is None:
        nan = np.full(n, np.nan)
        return VibratoTrack(times, cents, nan, nan.copy(), nan.copy(), np.zeros(n, bool), 0.01)
    if configs is None or vote is None:
        ens = ensemble_settings()
        configs = ens["configs"] if configs is None else configs
        vote = ens["vote"] if vote is None else vote
    if not configs:
        raise ParameterError("detect_vibrato needs at least one threshold setting")
    meas = {}
    for w in sorted({float(c.get("window", WINDOW)) for c in configs} | {WINDOW}):
        meas[w] = _measures(cents, hop, w, rate_band, min_voiced)
    votes = np.zeros(n)
    for c in configs:
        rate, extent, reg, use, voiced = meas[float(c.get("window", WINDOW))]
        votes += _decide(extent, reg, use, voiced, hop, min_extent=c.get("min_extent", MIN_EXTENT),
                         min_regularity=c.get("min_regularity", MIN_REGULARITY),
                         grow_regularity=c.get("grow_regularity", GROW_REGULARITY),
                         smooth=c.get("smooth", SMOOTH), min_duration=min_duration)
    rate, extent, reg, _use, voiced = meas[WINDOW]
    vib = _clean((votes >= vote * len(configs) - 1e-9) & voiced, hop, min_duration)
    return VibratoTrack(times=times, cents=cents, rate=rate, extent=extent, regularity=reg, vibrato=vib, hop=hop)


def _clean(raw: np.ndarray, hop: float, min_duration: float) -> np.ndarray:
    """Join runs separated by short holes, then drop runs shorter than ``min_duration``."""
    vib = raw.copy()
    runs = true_runs(vib)
    hole = int(round(MAX_HOLE / hop))
    for (a0, b0), (a1, _b1) in zip(runs, runs[1:]):
        if a1 - b0 <= hole:
            vib[b0:a1] = True
    for a, b in true_runs(vib):
        if (b - a) * hop < min_duration:
            vib[a:b] = False
    return vib


def vibrato_areas(track: VibratoTrack) -> list[VibratoArea]:
    """The vibrato areas of a track, with the median rate, extent and regularity of each."""
    out = []
    for a, b in true_runs(track.vibrato):
        out.append(VibratoArea(start=float(track.times[a] - track.hop / 2),
                               end=float(track.times[b - 1] + track.hop / 2),
                               rate_hz=float(np.nanmedian(track.rate[a:b])),
                               extent_cents=float(np.nanmedian(track.extent[a:b])),
                               regularity=float(np.nanmedian(track.regularity[a:b]))))
    return out


def frame_labels(areas, duration: float, *, rate: float = 100.0) -> np.ndarray:
    """Boolean frames at ``rate`` Hz (frame ``i`` at ``i / rate`` s) inside any ``(start, end)`` area."""
    n = int(np.floor(duration * rate + 1e-9))
    t = np.arange(n) / rate
    out = np.zeros(n, bool)
    for a in areas:
        s, e = (a.start, a.end) if hasattr(a, "start") else (a[0], a[1])
        out |= (t >= s) & (t < e)
    return out


def write_frames_csv(track: VibratoTrack, path) -> None:
    """The per-frame track as CSV: time_s, f0_cents, voiced, rate_hz, extent_cents, regularity, vibrato."""
    from musicperf._util import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["time_s", "f0_cents", "voiced", "rate_hz", "extent_cents", "regularity", "vibrato"])
        for i in range(len(track.times)):
            vals = (track.cents[i], track.rate[i], track.extent[i], track.regularity[i])
            f = ["" if not np.isfinite(v) else f"{v:.{d}f}" for v, d in zip(vals, (1, 3, 2, 3))]
            w.writerow([f"{track.times[i]:.4f}", f[0], int(np.isfinite(track.cents[i])), f[1], f[2], f[3],
                        int(track.vibrato[i])])
