"""Instrument sound synthesis for the synthetic performer (48 kHz mono stems).

Guitar: Karplus-Strong plucked string (computed block-wise, one delay line length per block),
tuned and vibrato-modulated by resampling along a warped time axis, so the instantaneous
frequency is exactly ``f0 * 2 ** (cents(t) / 1200)``. Violin: band-limited sawtooth with a bow
envelope (shaped by ``Note.swell`` with motion-driven dynamics, so that it follows the bow's
speed). Flute: breathy sine with weak harmonics. Piano: decaying, slightly inharmonic
partials. Drums: noise bursts and pitch-dropping membranes. Imports numpy only.
"""

from __future__ import annotations

import numpy as np

from musicperf.synth.score import Note

SR = 48000


def midi_to_hz(midi: float) -> float:
    """Equal-tempered frequency in Hz of a MIDI pitch (A4 = 69 = 440 Hz)."""
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def vibrato_cents(t: np.ndarray, note: Note) -> np.ndarray:
    """Pitch deviation in cents of ``note`` at absolute times ``t`` (seconds).

    ``extent / 2 * sin(2 pi rate (t - vibrato_start))`` with a 80 ms fade-in and fade-out, so the
    peak-to-peak range equals ``vibrato_extent``. Zero for notes without vibrato.
    """
    t = np.asarray(t, dtype=float)
    if note.vibrato_rate is None:
        return np.zeros_like(t)
    s, e = note.vibrato_start, note.vibrato_end
    ramp = np.clip(np.minimum(t - s, e - t) / 0.08, 0.0, 1.0)
    return 0.5 * note.vibrato_extent * ramp * np.sin(2 * np.pi * note.vibrato_rate * (t - s))


def _envelope(n: int, attack: int, release: int) -> np.ndarray:
    env = np.ones(n)
    a = min(attack, n)
    if a > 0:
        env[:a] = np.linspace(0.0, 1.0, a, endpoint=False)
    r = min(release, n)
    if r > 0:
        env[n - r:] *= np.linspace(1.0, 0.0, r)
    return env


def _karplus_strong(n_out: int, period: int, rng: np.random.Generator, *, loss: float, brightness: float) -> np.ndarray:
    """Plucked string: a noise-filled delay line of ``period`` samples, averaged each pass."""
    period = max(int(period), 2)
    buf = rng.uniform(-1.0, 1.0, period)
    # a softer pluck: low-pass the excitation once per (1 - brightness)
    if brightness < 1.0:
        buf = brightness * buf + (1 - brightness) * 0.5 * (buf + np.roll(buf, 1))
    buf -= buf.mean()
    n_blocks = n_out // period + 2
    out = np.empty(n_blocks * period)
    prev_last = 0.0
    for k in range(n_blocks):
        out[k * period:(k + 1) * period] = buf
        shifted = np.empty(period)
        shifted[0] = prev_last
        shifted[1:] = buf[:-1]
        prev_last = buf[-1]
        buf = loss * 0.5 * (buf + shifted)
    return out[:n_out]


def _phase(f: np.ndarray, sr: int) -> np.ndarray:
    return 2 * np.pi * np.cumsum(f) / sr


def render_note(note: Note, instrument: str, rng: np.random.Generator, sr: int = SR) -> tuple[int, np.ndarray]:
    """Synthesize one note.

    Returns
    -------
    start : int
        Sample index of the onset.
    y : numpy.ndarray
        ``(n,)`` float64 samples, zero after ``note.offset`` (the last 12 ms fade out, so a note
        cut by a freeze is silent from the freeze on).
    """
    start = int(round(note.onset * sr))
    stop = int(round(note.offset * sr))
    n = max(stop - start, 16)
    t = note.onset + np.arange(n) / sr
    f0 = midi_to_hz(note.midi)
    f = f0 * 2.0 ** (vibrato_cents(t, note) / 1200.0)
    release = int(0.012 * sr)
    if instrument == "guitar":
        period = int(round(sr / f0 - 0.5))
        f_ks = sr / (period + 0.5)  # the averaging filter adds half a sample of delay
        pos = np.concatenate([[0.0], np.cumsum(f / f_ks)[:-1]])
        raw = _karplus_strong(int(pos[-1]) + 3, period, rng, loss=0.997, brightness=0.7)
        y = np.interp(pos, np.arange(raw.size), raw)
        y *= _envelope(n, int(0.002 * sr), release)
        y *= 0.8
    elif instrument == "violin":
        ph = _phase(f, sr)
        y = np.zeros(n)
        for k in range(1, 16):
            if k * f0 > sr / 2.2:
                break
            y += np.sin(k * ph) / k
        y = 0.35 * y + 0.01 * rng.standard_normal(n)
        if note.swell is not None:  # motion-driven dynamics: the loudness follows the bow speed
            y *= note.swell_at(np.arange(n) / n)
        y *= _envelope(n, int(0.06 * sr), max(release, int(0.05 * sr)))
    elif instrument == "flute":
        ph = _phase(f, sr)
        y = np.sin(ph) + 0.25 * np.sin(2 * ph) + 0.08 * np.sin(3 * ph)
        breath = rng.standard_normal(n)
        breath = np.convolve(breath, np.ones(8) / 8, mode="same")
        y = 0.6 * y + 0.12 * breath * (0.5 + 0.5 * np.abs(np.sin(ph / 2)))
        y *= _envelope(n, int(0.05 * sr), max(release, int(0.04 * sr)))
    elif instrument == "piano":
        ph = _phase(f, sr)
        tt = np.arange(n) / sr
        y = np.zeros(n)
        b = 0.0004
        for k in range(1, 11):
            fk = k * np.sqrt(1 + b * k * k)
            if fk * f0 > sr / 2.2:
                break
            y += np.sin(fk * ph) * np.exp(-tt * (1.2 + 0.9 * k)) / k ** 1.3
        y *= 0.6 * _envelope(n, int(0.003 * sr), release)
    elif instrument == "drums":
        tt = np.arange(n) / sr
        noise = rng.uniform(-1, 1, n)
        key = note.midi
        if key == 36:  # kick: membrane with a pitch drop
            fk = 50 + 90 * np.exp(-tt / 0.03)
            y = np.sin(_phase(fk, sr)) * np.exp(-tt / 0.18) + 0.2 * noise * np.exp(-tt / 0.005)
        elif key == 38:  # snare: membrane + noise
            y = 0.5 * np.sin(2 * np.pi * 185 * tt) * np.exp(-tt / 0.06) + 0.6 * noise * np.exp(-tt / 0.09)
        elif key == 42:  # closed hi-hat: high-passed noise
            y = 0.5 * np.diff(noise, prepend=0.0) * np.exp(-tt / 0.03)
        elif key == 45:  # tom
            fk = 110 + 40 * np.exp(-tt / 0.05)
            y = np.sin(_phase(fk, sr)) * np.exp(-tt / 0.25) + 0.1 * noise * np.exp(-tt / 0.01)
        else:  # crash
            y = 0.4 * np.diff(noise, prepend=0.0) * np.exp(-tt / 0.6)
        y *= _envelope(n, 8, release)
    else:  # pragma: no cover - instruments are validated at the entry point
        raise ValueError(instrument)
    return start, y * note.velocity


def render_stem(notes: list[Note], instrument: str, seconds: float, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """Synthesize all ``notes`` of one performer.

    Returns
    -------
    numpy.ndarray
        ``(round(seconds * sr),)`` float64 samples (not normalised).
    """
    n_total = int(round(seconds * sr))
    out = np.zeros(n_total)
    for note in notes:
        start, y = render_note(note, instrument, rng, sr)
        end = min(start + y.size, n_total)
        if end > start:
            out[start:end] += y[: end - start]
    return out
