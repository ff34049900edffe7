"""Pitch contours and note segmentation from audio, and notes from a score file.

Pitch is estimated with librosa's probabilistic YIN (pYIN; no model weights). Notes come from
the audio (voiced runs split at pitch changes and at SuperFlux onsets, which are insensitive to
vibrato) or from a file: a Standard MIDI File (read by the small reader here, no dependency),
or a CSV/JSON list of ``onset, offset[, midi]`` in seconds.

librosa is imported inside the functions. Must not import torch, cv2 or matplotlib.
"""

from __future__ import annotations

import csv
import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from musicperf.errors import AnnotationError, ParameterError, require

__all__ = ["PitchContour", "estimate_pitch", "NoteEvent", "segment_notes", "read_notes", "read_midi"]


@dataclass
class PitchContour:
    """A monophonic pitch contour.

    Attributes
    ----------
    times : np.ndarray, shape (N,)
        Frame centres in seconds.
    midi : np.ndarray, shape (N,)
        Fractional MIDI note number; NaN where unvoiced.
    voiced_prob : np.ndarray, shape (N,)
        pYIN's voicing probability in [0, 1].
    rms : np.ndarray, shape (N,)
        Frame RMS of the signal (linear amplitude).
    hop : float
        Seconds between frames.
    """

    times: np.ndarray
    midi: np.ndarray
    voiced_prob: np.ndarray
    rms: np.ndarray
    hop: float


def estimate_pitch(y: np.ndarray, sr: int, *, fmin: float = 100.0, fmax: float = 2000.0,
                   hop_length: int | None = None, frame_length: int | None = None,
                   resolution: float = 0.1) -> PitchContour:
    """pYIN pitch contour of a monophonic signal (voicing and octave by pYIN, values by YIN).

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Audio samples (mono), any rate.
    sr : int
        Sample rate in Hz. The signal is resampled to 22050 Hz first (pYIN's cost grows with
        the rate and 22 kHz keeps every pitch of interest).
    fmin, fmax : float
        Pitch search range in Hz.
    hop_length, frame_length : int, optional
        At 22050 Hz; default 256 (11.6 ms: vibrato up to 10 Hz is sampled > 8 times a cycle) and
        1024 (46 ms; librosa's 2048 averages the pitch over most of a vibrato cycle and measured
        a 43-cent vibrato at 7.4 Hz as 16 cents).
    resolution : float
        pYIN's pitch grid in semitones (librosa's default 0.1). Only voicing and octave come
        from this grid (the values are YIN's, see below); its Viterbi search costs the square
        of the number of grid points, so 0.25 runs ~5x faster.

    Returns
    -------
    PitchContour
    """
    librosa = require("librosa", purpose="pitch estimation")
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ParameterError(f"estimate_pitch needs a non-empty mono signal, got shape {y.shape}")
    target = 22050
    if sr != target:
        y = librosa.resample(y, orig_sr=sr, target_sr=target, res_type="soxr_hq")
        sr = target
    hop = hop_length or 256
    fl = frame_length or 1024
    f0, _flag, prob = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=fl, hop_length=hop,
                                   center=True, resolution=resolution)
    # pYIN's Viterbi path is quantised to its pitch grid (10 cents by default; a finer grid costs
    # the square in time), which turns a 40-cent vibrato into a staircase. YIN's parabolic
    # interpolation is continuous: keep pYIN's voicing and octave, take YIN's value where the
    # two agree within a semitone.
    fy = librosa.yin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=fl, hop_length=hop, center=True)[: len(f0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = np.abs(12 * np.log2(fy / f0)) < 1.0
    f0 = np.where(agree, fy, f0)
    rms = librosa.feature.rms(y=y, frame_length=fl, hop_length=hop, center=True)[0][: len(f0)]
    with np.errstate(divide="ignore", invalid="ignore"):
        midi = 69.0 + 12.0 * np.log2(f0 / 440.0)
    times = np.arange(len(f0)) * hop / sr
    return PitchContour(times=times, midi=midi, voiced_prob=np.asarray(prob, float), rms=rms, hop=hop / sr)


@dataclass
class NoteEvent:
    """A note: ``onset``/``offset`` in seconds and a MIDI pitch (NaN when unknown)."""

    onset: float
    offset: float
    midi: float = float("nan")


def segment_notes(pitch: PitchContour, y: np.ndarray | None = None, sr: int | None = None, *,
                  min_duration: float = 0.12, split_semitones: float = 0.6) -> list[NoteEvent]:
    """Notes from a pitch contour (and onsets of the audio): voiced runs split at pitch changes.

    A run of voiced frames is one note until the pitch, median-filtered over 0.2 s (longer than
    a vibrato cycle, so vibrato never splits a note), moves more than ``split_semitones`` from
    the median of the note so far; when the audio is given, SuperFlux onsets (librosa's
    ``onset_strength`` with ``lag=2, max_size=3``, designed to ignore vibrato) also split it,
    which separates repeated notes of the same pitch.

    Parameters
    ----------
    pitch : PitchContour
    y : np.ndarray, shape (n,), optional
        The audio the contour came from.
    sr : int, optional
        Its sample rate.
    min_duration : float
        Shorter notes (seconds) are dropped.
    split_semitones : float
        Pitch change that starts a new note.

    Returns
    -------
    list of NoteEvent
    """
    from scipy.ndimage import median_filter

    midi = pitch.midi
    voiced = np.isfinite(midi)
    n = len(midi)
    k = max(3, int(round(0.2 / pitch.hop)) | 1)
    filled = np.where(voiced, midi, 0.0)
    smooth = median_filter(filled, size=k, mode="nearest")
    onset_frames = set()
    if y is not None and sr is not None:
        librosa = require("librosa", purpose="onset detection")
        yy = librosa.resample(np.asarray(y, np.float32), orig_sr=sr, target_sr=22050, res_type="soxr_hq")
        hop = int(round(pitch.hop * 22050))
        env = librosa.onset.onset_strength(y=yy, sr=22050, hop_length=hop, lag=2, max_size=3)
        on = librosa.onset.onset_detect(onset_envelope=env, sr=22050, hop_length=hop, units="frames",
                                        backtrack=False)
        onset_frames = {int(f) for f in on}
    notes = []
    i = 0
    while i < n:
        if not voiced[i]:
            i += 1
            continue
        start = i
        vals = [smooth[i]]
        i += 1
        while i < n and voiced[i]:
            ref = float(np.median(vals))
            if abs(smooth[i] - ref) > split_semitones and len(vals) * pitch.hop >= min_duration / 2:
                break
            if i in onset_frames and len(vals) * pitch.hop >= min_duration:
                break
            vals.append(smooth[i])
            i += 1
        on_t, off_t = float(pitch.times[start]), float(pitch.times[i - 1] + pitch.hop)
        if off_t - on_t >= min_duration:
            notes.append(NoteEvent(on_t, off_t, float(np.nanmedian(midi[start:i]))))
    return notes


def read_notes(path) -> list[NoteEvent]:
    """Notes from a score file: ``.mid``/``.midi`` (all tracks), ``.csv`` or ``.json``.

    CSV: rows ``onset,offset[,midi]`` in seconds (a header row is skipped). JSON: a list of
    objects with ``onset``, ``offset`` and optionally ``midi`` (the layout of the synthetic
    performer's ``notes``).
    """
    p = Path(path)
    if not p.is_file():
        raise ParameterError(f"notes file '{p}' does not exist")
    suf = p.suffix.lower()
    if suf in (".mid", ".midi"):
        return read_midi(p)
    try:
        if suf == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = data.get("notes", [])
            out = [NoteEvent(float(d["onset"]), float(d["offset"]), float(d.get("midi", "nan"))) for d in data]
        elif suf in (".csv", ".txt", ".tsv"):
            out = []
            delim = "\t" if suf == ".tsv" else ","
            for row in csv.reader(p.read_text(encoding="utf-8").splitlines(), delimiter=delim):
                if not row or row[0].strip().startswith("#"):
                    continue
                try:
                    vals = [float(v) for v in row[:3]]
                except ValueError:
                    if not out:
                        continue  # header
                    raise
                out.append(NoteEvent(vals[0], vals[1], vals[2] if len(vals) > 2 else float("nan")))
        else:
            raise AnnotationError(f"notes file '{p}': unknown format {suf!r} (use .mid, .csv or .json)")
    except (ValueError, KeyError, TypeError) as exc:
        raise AnnotationError(f"notes file '{p}' is malformed: {exc}") from None
    for e in out:
        if not e.offset > e.onset >= 0:
            raise AnnotationError(f"notes file '{p}': note {e.onset}-{e.offset} s has offset <= onset "
                                  "(are times in seconds?)")
    return sorted(out, key=lambda e: e.onset)


def read_midi(path) -> list[NoteEvent]:
    """Notes of a Standard MIDI File (format 0 or 1), times in seconds through the tempo map."""
    p = Path(path)
    data = p.read_bytes()
    if data[:4] != b"MThd":
        raise AnnotationError(f"'{p}' is not a Standard MIDI File (no MThd header)")
    try:
        _fmt, ntrk, div = struct.unpack(">HHH", data[8:14])
        if div & 0x8000:
            raise AnnotationError(f"'{p}': SMPTE time division is not supported")
        pos = 8 + struct.unpack(">I", data[4:8])[0]
        events = []  # (tick, kind, a, b)
        for _ in range(ntrk):
            if data[pos:pos + 4] != b"MTrk":
                raise AnnotationError(f"'{p}': expected a track chunk at byte {pos}")
            ln = struct.unpack(">I", data[pos + 4:pos + 8])[0]
            i, end, tick, status = pos + 8, pos + 8 + ln, 0, 0
            while i < end:
                dt, i = _vlq(data, i)
                tick += dt
                b = data[i]
                if b == 0xFF:
                    typ = data[i + 1]
                    ml, j = _vlq(data, i + 2)
                    if typ == 0x51:
                        events.append((tick, "tempo", int.from_bytes(data[j:j + 3], "big"), 0))
                    i = j + ml
                    continue
                if b in (0xF0, 0xF7):
                    ml, j = _vlq(data, i + 1)
                    i = j + ml
                    continue
                if b & 0x80:
                    status = b
                    i += 1
                hi = status & 0xF0
                nbytes = 1 if hi in (0xC0, 0xD0) else 2
                a = data[i]
                c = data[i + 1] if nbytes == 2 else 0
                i += nbytes
                if hi == 0x90 and c > 0:
                    events.append((tick, "on", (status & 0x0F) * 128 + a, c))
                elif hi == 0x80 or (hi == 0x90 and c == 0):
                    events.append((tick, "off", (status & 0x0F) * 128 + a, 0))
            pos = end
    except (IndexError, struct.error):
        raise AnnotationError(f"'{p}' is a truncated or malformed MIDI file") from None
    events.sort(key=lambda e: (e[0], e[1] != "tempo", e[1] == "on"))
    tempo, last_tick, sec = 500000, 0, 0.0
    open_notes: dict[int, list[float]] = {}
    out = []
    for tick, kind, a, _b in events:
        sec += (tick - last_tick) * tempo / 1e6 / div
        last_tick = tick
        if kind == "tempo":
            tempo = a
        elif kind == "on":
            open_notes.setdefault(a, []).append(sec)
        elif open_notes.get(a):
            on = open_notes[a].pop(0)
            if sec > on:
                out.append(NoteEvent(on, sec, float(a % 128)))
    return sorted(out, key=lambda e: e.onset)


def _vlq(data: bytes, i: int) -> tuple[int, int]:
    v = 0
    while True:
        b = data[i]
        i += 1
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            return v, i
