"""Hand motion to displacement curve, and the rate and extent of an oscillation (002 Section V-B).

The lower half of :mod:`musicperf.analysis.vibrato` (which re-exports every name): the fingering
hand's mean motion vector ``u(t)`` -> body sway removed -> principal direction -> velocity ->
displacement ``X(t)`` (:func:`displacement_curve`); the vibrato rate of a curve from its
autocorrelation (:func:`autocorrelation_rate`), refined by a least-squares sinusoid
(:func:`refine_rate`); the extent in cents by Equation 1 (:func:`vibrato_extent`).
Imports numpy and scipy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicperf.errors import ParameterError

#: Vibrato rates searched, Hz (002: "a rate between 5-10 Hz"; widened by 1-2 Hz for safety).
RATE_RANGE = (4.0, 12.0)

#: Length in seconds of the moving average subtracted from ``u(t)`` (body sway; 002 gives no
#: length): one period of the slowest rate searched (4 Hz). Any window of at least one period
#: keeps 78-122 % of a vibrato oscillation (the moving average of a sinusoid is the sinusoid
#: scaled by ``sinc(rate * window)``); a short one keeps the artefact of a hand shift between
#: notes (a step in ``X``, which the subtraction turns into a ramp of the window's length)
#: within half a window of the shift. Chosen on training seeds 100-103 of the benchmark
#: (guitar F1 0.87 at 0.25 s, 0.73 at 0.3 s, 0.74 at 0.4 s, the previous default).
SWAY_WINDOW = 0.25


# --------------------------------------------------------------------------------------------
# motion -> displacement curve


@dataclass
class DisplacementCurve:
    """The 1-D hand motion of 002 Section V-B.

    Attributes
    ----------
    times : np.ndarray, shape (T,)
        Seconds.
    refined : np.ndarray, shape (T, 2)
        ``v(t) = u(t) - moving_average(u)(t)``, pixels per frame.
    direction : np.ndarray, shape (2,)
        Unit principal direction of ``v`` (PCA), oriented with a non-negative x component
        (the sign of a principal axis is arbitrary).
    velocity : np.ndarray, shape (T,)
        ``V(t) = v(t) . direction``, pixels per frame.
    displacement : np.ndarray, shape (T,)
        ``X(t) = sum_{tau <= t} V(tau)``: the integral of ``V`` over frames, pixels.
    fps : float
    """

    times: np.ndarray
    refined: np.ndarray
    direction: np.ndarray
    velocity: np.ndarray
    displacement: np.ndarray
    fps: float


def displacement_curve(u: np.ndarray, fps: float, *, sway_window: float = SWAY_WINDOW) -> DisplacementCurve:
    """Hand displacement curve ``X(t)`` from mean motion vectors ``u(t)`` (002 Section V-B).

    Parameters
    ----------
    u : np.ndarray, shape (T, 2)
        Mean motion vector per frame (pixels per frame), e.g. ``RegionMotion.velocity[:, 0]``
        or :func:`~musicperf.analysis.motion.keypoint_velocity`.
    fps : float
        Frame rate in Hz.
    sway_window : float
        Length in seconds of the centred moving average subtracted to remove body sway (the
        paper gives no length; see :data:`SWAY_WINDOW`).

    Returns
    -------
    DisplacementCurve
    """
    from scipy.ndimage import uniform_filter1d

    u = np.asarray(u, dtype=float)
    if u.ndim != 2 or u.shape[1] != 2 or len(u) < 3:
        raise ParameterError(f"u must have shape (T >= 3, 2), got {u.shape}")
    if not fps > 0:
        raise ParameterError(f"fps must be > 0, got {fps}")
    u = np.nan_to_num(u)
    win = max(1, int(round(sway_window * fps)))
    v = u - uniform_filter1d(u, size=win, axis=0, mode="nearest")
    c = v - v.mean(0)
    cov = c.T @ c / max(len(c) - 1, 1)
    w, vecs = np.linalg.eigh(cov)
    d = vecs[:, int(np.argmax(w))]
    if d[0] < 0 or (d[0] == 0 and d[1] < 0):
        d = -d
    V = v @ d
    X = np.cumsum(V)
    return DisplacementCurve(times=np.arange(len(u)) / fps, refined=v, direction=d, velocity=V,
                             displacement=X, fps=float(fps))


def _detrend(x: np.ndarray) -> np.ndarray:
    n = len(x)
    if n < 2:
        return x - x.mean() if n else x
    t = np.arange(n, dtype=float)
    a, b = np.polyfit(t, x, 1)
    return x - (a * t + b)


def autocorrelation_rate(x: np.ndarray, fs: float, *, rate_range: tuple[float, float] = RATE_RANGE,
                         upsample_to: float = 200.0) -> tuple[float, float]:
    """Vibrato rate and strength from the autocorrelation of a (displacement or pitch) curve.

    The curve is linearly detrended, interpolated to at least ``upsample_to`` Hz (cubic
    spline: at 25 fps one frame of lag is 20 % of a 7 Hz period, too coarse for a 0.3 Hz
    accuracy), and its normalised autocorrelation ``r(k) = sum x[n] x[n+k] /
    sqrt(sum x[n]^2 sum x[n+k]^2)`` (each sum over the overlap) is searched for its first
    strong peak at lags ``1/rate_range[1] .. 1/rate_range[0]`` s. The peak lag is refined by
    parabolic interpolation; the rate is its inverse.

    Parameters
    ----------
    x : np.ndarray, shape (N,)
        Curve sampled at ``fs`` Hz over one note.
    fs : float
        Sample rate of ``x`` in Hz.
    rate_range : (float, float)
        Rates searched, Hz.
    upsample_to : float
        Minimum sample rate for the autocorrelation, Hz.

    Returns
    -------
    rate : float
        Hz; NaN when no peak exists at a lag of at most half the note (two periods must fit).
    strength : float
        ``r`` at the peak, in [-1, 1] (NaN with the rate): the detection statistic.
    """
    from scipy.interpolate import CubicSpline

    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)] if not np.isfinite(x).all() else x
    lo, hi = rate_range
    if len(x) < 4 or len(x) / fs < 1.5 / hi:
        return float("nan"), float("nan")
    x = _detrend(x)
    up = max(1, int(np.ceil(upsample_to / fs)))
    if up > 1:
        t = np.arange(len(x))
        tt = np.arange((len(x) - 1) * up + 1) / up
        x = CubicSpline(t, x)(tt)
    f = fs * up
    kmin = max(1, int(np.floor(f / hi)))
    # at least two periods inside the note: longer lags rest on less than half of the samples
    kmax = min(len(x) // 2, int(np.ceil(f / lo)))
    if kmax <= kmin + 1:
        return float("nan"), float("nan")
    n = len(x)
    ks = np.arange(kmax + 2)
    num = np.correlate(x, x, mode="full")[n - 1:n + kmax + 1]
    cs = np.concatenate([[0.0], np.cumsum(x * x)])
    den = np.sqrt(cs[n - ks] * (cs[n] - cs[ks]))
    r = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    peaks = [k for k in range(kmin, kmax + 1) if r[k] >= r[k - 1] and r[k] >= r[k + 1]]
    if not peaks:
        return float("nan"), float("nan")
    best = max(r[k] for k in peaks)
    # the first peak close to the best one: avoids picking a multiple of the period
    k = next(k for k in peaks if r[k] >= best - 0.1 * abs(best))
    y0, y1, y2 = r[k - 1], r[k], r[k + 1]
    den = y0 - 2 * y1 + y2
    delta = 0.5 * (y0 - y2) / den if den < 0 else 0.0
    lag = (k + float(np.clip(delta, -0.5, 0.5))) / f
    return float(1.0 / lag), float(y1)


def refine_rate(x: np.ndarray, fs: float, rate: float, *, span: float = 0.15, step: float = 0.01) -> float:
    """Refine an autocorrelation rate by a least-squares sinusoid fit near it (ours, not 002's).

    The autocorrelation peak of a short noisy note is biased: with 6-10 cycles, one irregular
    cycle or a hand shift at the note's start moves the peak lag, and the parabolic
    interpolation of an asymmetric peak adds to it (on the benchmark's guitar notes, where the
    hand is small in its box, a fifth of the rates were 0.4-0.6 Hz off with the peak still at
    the right period). The frequency ``f`` in ``rate * (1 +- span)`` that minimises the
    residual of the least-squares fit ``x(t) ~ a sin(2 pi f t) + b cos(2 pi f t) + c + d t``
    uses every sample of the note, not one lag; the autocorrelation still chooses the period
    (which multiple of it), so harmonics and sub-harmonics cannot be picked here.

    Parameters
    ----------
    x : np.ndarray, shape (N,)
        The curve over one note, sampled at ``fs`` Hz (NaN-free).
    fs : float
        Sample rate, Hz.
    rate : float
        Autocorrelation rate, Hz; NaN is returned unchanged.
    span : float
        Relative half-width of the search (0.15: +-1 Hz at 7 Hz).
    step : float
        Frequency step, Hz.

    Returns
    -------
    float
        Refined rate in Hz.
    """
    x = np.asarray(x, dtype=float)
    if not np.isfinite(rate) or len(x) < 6 or not np.isfinite(x).all():
        return float(rate)
    t = np.arange(len(x)) / fs
    freqs = np.arange(rate * (1 - span), rate * (1 + span) + step / 2, step)
    base = np.stack([np.ones_like(t), t - t.mean()], 1)
    best, best_f = np.inf, float(rate)
    for f in freqs:
        A = np.concatenate([base, np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], 1)], 1)
        coef, *_ = np.linalg.lstsq(A, x, rcond=None)
        err = float(np.sum((A @ coef - x) ** 2))
        if err < best:
            best, best_f = err, float(f)
    return best_f


def vibrato_extent(pitch_midi: np.ndarray, displacement: np.ndarray, *, fs: float | None = None,
                   rate: float | None = None) -> float:
    """Vibrato extent in cents by the least-squares fit of Equation 1 of 002.

    ``v_e = argmin sum_t |100 F(t) - v_e X(t) / w_e|^2`` where ``F`` is the pitch contour in
    MIDI numbers minus its DC component, ``X`` the hand displacement on the same time grid and
    ``w_e`` its dynamic range (max - min). The closed form is ``v_e = sum(100 F x) / sum(x^2)``
    with ``x = X / w_e``. Integration drift is removed from ``X`` first: with ``fs`` and ``rate``
    known, by subtracting its moving average over one vibrato period (which leaves the
    oscillation intact); otherwise by a linear detrend (which leaks a little of the oscillation
    into the trend and widens ``w_e`` by a few per cent). The absolute value is returned, because the sign of the principal direction (and so of ``X``) is
    arbitrary. The result is peak to peak: a sinusoidal ``X`` scaled to range 1 by ``w_e``
    matches a pitch oscillation of peak-to-peak ``v_e`` cents.

    Parameters
    ----------
    pitch_midi : np.ndarray, shape (N,)
        Pitch contour of the note in MIDI numbers; NaN (unvoiced) samples are ignored.
    displacement : np.ndarray, shape (N,)
        ``X(t)`` resampled to the pitch contour's times.
    fs : float, optional
        Sample rate of both curves, Hz.
    rate : float, optional
        Vibrato rate, Hz.

    Returns
    -------
    float
        Extent in cents (NaN when fewer than 4 voiced samples or ``X`` is flat).
    """
    F = np.asarray(pitch_midi, dtype=float)
    X = np.asarray(displacement, dtype=float)
    if F.shape != X.shape:
        raise ParameterError(f"pitch and displacement must have the same shape, got {F.shape} and {X.shape}")
    ok = np.isfinite(F) & np.isfinite(X)
    if ok.sum() < 4:
        return float("nan")
    if fs and rate and np.isfinite(rate) and rate > 0:
        from scipy.ndimage import uniform_filter1d

        X = np.interp(np.arange(len(X)), np.flatnonzero(np.isfinite(X)), X[np.isfinite(X)])
        X = X - uniform_filter1d(X, max(1, int(round(fs / rate))), mode="nearest")
        F, X = F[ok], X[ok]
    else:
        F, X = F[ok], _detrend(X[ok])
    F = F - F.mean()
    w = X.max() - X.min()
    if not w > 0:
        return float("nan")
    x = X / w
    return float(abs(np.dot(100.0 * F, x) / np.dot(x, x)))


def _sinusoid_fit(x: np.ndarray, fs: float, rate: float) -> float:
    """Peak-to-peak amplitude of the least-squares sinusoid at ``rate`` Hz (plus a line)."""
    t = np.arange(len(x)) / fs
    A = np.stack([np.sin(2 * np.pi * rate * t), np.cos(2 * np.pi * rate * t), np.ones_like(t), t], 1)
    coef, *_ = np.linalg.lstsq(A, x, rcond=None)
    return float(2 * np.hypot(coef[0], coef[1]))
