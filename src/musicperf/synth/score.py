"""A simple generated score and its performance (timing, dynamics, wrong notes) for one performer.

Notes are placed on an eighth-note grid inside phrases separated by short rests. Gestures shape
the score: no sound during Freeze, Repositioning guitar and Expressive preparation (non-play);
no new onsets while a hand is busy (Right hand round, Left hand gesture); a Vibrato interval is
one sustained note carrying the vibrato; Physical energy plays denser and louder; Minimal
movement plays softer.

Skill (``skill`` 0..9, 9 = expert; see :func:`generate_score`): below 9 the performance departs
from the score the way a weaker pianist's does (the cues PISA's graders and ``004`` rely on):
unsteady timing (onset jitter, a drifting tempo, hesitations: brief unwritten stops, half of
them followed by a restart a few notes back), uneven dynamics, wrong notes, and tense strikes
(``Note.tension``: :func:`musicperf.synth.figure.compute_states` lifts the hand before the key
and strikes harder). At ``skill=9`` none of this is drawn, so expert performances are
unchanged. Imports numpy only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from musicperf.synth.gestures import NO_ONSETS

SILENT = ("Freeze", "Repositioning guitar", "Expressive preparation")

#: Playable MIDI range per instrument (drums: General MIDI percussion keys).
RANGES = {"guitar": (52, 76), "violin": (57, 88), "flute": (62, 93), "piano": (45, 84)}
DRUM_KEYS = (36, 38, 42, 45, 49)  # kick, snare, closed hi-hat, tom, crash
_SCALE = (0, 2, 4, 5, 7, 9, 11)


@dataclass
class Note:
    """One performed note.

    Attributes
    ----------
    onset, offset : float
        Performed start and end of the sound in seconds (offset is where the sound is damped).
    score_onset : float
        Onset on the score grid in seconds (before timing jitter).
    midi, score_midi : int
        Played and written MIDI pitch (they differ for a wrong note).
    wrong : bool
        The played pitch is not the written one (low skill).
    velocity : float
        Loudness in (0, 1].
    vibrato_rate : float or None
        Vibrato rate in Hz when the note carries vibrato.
    vibrato_extent : float or None
        Vibrato extent in cents, peak to peak (the "dynamic range of the pitch contour" of
        Section V-B of 002).
    vibrato_start : float or None
        Time in seconds at which the vibrato (and the hand oscillation) starts; phase 0 there.
    vibrato_end : float or None
    tension : float
        0 (relaxed, expert) to 1: how far the hand lifts before the key and how hard it strikes
        (low skill). Written to the truth only when non-zero.
    hesitation : float
        Seconds of unwritten pause before this note (low skill: a brief stop, perhaps a restart).
        Written to the truth only when non-zero.
    swell : (float, float, float) or None
        Bowed notes with motion-driven dynamics (:func:`couple_dynamics`): the loudness at the
        note's start, middle and end relative to ``velocity`` (piecewise linear in between);
        the bow's speed follows the same curve. None otherwise (and then not written).
    bow : float or None
        The bow stroke of such a note, in stroke units (the whole bow is -0.9..0.9): positive
        down-bow, negative up-bow. None otherwise (and then not written).
    """

    onset: float
    offset: float
    score_onset: float
    midi: int
    score_midi: int
    wrong: bool = False
    velocity: float = 0.7
    vibrato_rate: float | None = None
    vibrato_extent: float | None = None
    vibrato_start: float | None = None
    vibrato_end: float | None = None
    tension: float = 0.0
    hesitation: float = 0.0
    swell: tuple | None = None
    bow: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        # the skill and dynamics fields appeared later: absent when unset so that truth files
        # of the default rendering are unchanged
        for k in ("tension", "hesitation"):
            if not d[k]:
                del d[k]
        for k in ("swell", "bow"):
            if d[k] is None:
                del d[k]
        for k, v in d.items():
            if isinstance(v, float):
                d[k] = round(v, 5)
            elif k == "swell":
                d[k] = [round(float(x), 5) for x in v]
        return d

    def swell_at(self, x: np.ndarray) -> np.ndarray:
        """Relative loudness (and bow speed) at note fractions ``x`` in [0, 1]; ones without a swell."""
        x = np.asarray(x, dtype=float)
        if self.swell is None:
            return np.ones_like(x)
        return np.interp(x, [0.0, 0.5, 1.0], list(self.swell))


def _in_any(t: float, ivs, pad0: float = 0.0, pad1: float = 0.0) -> tuple[float, float] | None:
    for s, e in ivs:
        if s - pad0 <= t < e + pad1:
            return (s, e)
    return None


def generate_score(
    seconds: float,
    schedule: dict[str, list[tuple[float, float]]],
    rng: np.random.Generator,
    *,
    instrument: str = "guitar",
    tempo: float = 90.0,
    skill: int = 9,
    key: int = 0,
) -> list[Note]:
    """Generate and "perform" the notes of one performer.

    Parameters
    ----------
    seconds : float
        Length of the performance in seconds.
    schedule : dict of str to list of (start, end)
        Gesture intervals of this performer (see :func:`~musicperf.synth.gestures.schedule_gestures`).
    rng : numpy.random.Generator
    instrument : str
    tempo : float
        Beats per minute; the grid is the eighth note.
    skill : int
        0 (beginner) to 9 (expert). With ``u = (9 - skill) / 9``:

        * onset jitter with standard deviation ``5 + 12 * (9 - skill)`` ms;
        * a wrong note (a semitone or two off the written pitch) with probability
          ``0.035 * (9 - skill)``;
        * tempo drift: note lengths scaled by ``exp(d)``, ``d`` an AR(1) process
          (``d <- 0.85 d + N(0, 0.12 u)``, about +-25 % at skill 0);
        * hesitations: before a note, with probability ``0.12 u``, an unwritten stop of
          0.35-0.9 s (``Note.hesitation``); half of them restart three notes back (the pitches
          are replayed);
        * uneven dynamics: velocity scaled by ``exp(N(0, 0.5 u))`` (clipped to [0.08, 1]);
        * tense strikes: ``Note.tension = u * U(0.5, 1)`` (hand motion, see the module
          docstring).

        At ``skill=9`` (``u = 0``) none of the last four is drawn: expert output is the same as
        before they existed. The extra draws come from a generator spawned off ``rng`` (the
        score's own draws are not shifted by them).
    key : int
        Pitch class of the tonic (0 = C).

    Returns
    -------
    list of Note
        Sorted by onset; notes never sound inside a silent gesture (Freeze, Repositioning
        guitar, Expressive preparation) and never start while a hand is busy.
    """
    grid = 60.0 / tempo / 2.0
    silent = sorted(iv for g in SILENT for iv in schedule.get(g, []))
    busy = sorted(iv for g in NO_ONSETS for iv in schedule.get(g, []))
    vib = sorted(schedule.get("Vibrato", []))
    energy = schedule.get("Physical energy", [])
    minimal = schedule.get("Minimal movement", [])
    jitter = 0.005 + 0.012 * (9 - skill)
    p_wrong = 0.035 * (9 - skill)
    u = (9 - skill) / 9.0
    # the skill cue's draws (never made at skill 9, so expert output does not change)
    srng = rng.spawn(1)[0] if u > 0 else None
    drift = 0.0
    history: list[int] = []   # pitch indices played, for restarts
    replay: list[int] = []    # pitch indices still to replay after a restart
    pause = 0.0               # unwritten stop before the next note (0: none pending)

    if instrument == "drums":
        pitches = None
    else:
        lo, hi = RANGES[instrument]
        pitches = [m for m in range(lo, hi + 1) if (m - key) % 12 in _SCALE]
    idx = len(pitches) // 2 if pitches else 0

    # phrase structure: rests between phrases are non-play too (never inside a vibrato)
    rests = []
    t = float(rng.uniform(0.1, 0.5))
    while t < seconds:
        t += float(rng.uniform(4.0, 10.0))
        r = float(rng.uniform(0.4, 1.0))
        hit = _in_any(t, vib, 0.3, 0.3)
        if hit:
            t = hit[1] + 0.35
        if t + r < seconds - 0.5:
            rests.append((t, t + r))
        t += r

    notes: list[Note] = []
    t = grid * np.ceil(0.1 / grid)
    vib_iter = iter(vib)
    next_vib = next(vib_iter, None)
    while t < seconds - 0.15:
        if next_vib is not None and t >= next_vib[0] - 1e-9:
            t = grid * np.ceil((next_vib[1] + 0.05) / grid)
            next_vib = next(vib_iter, None)
            continue
        blocked = _in_any(t, silent, 0.02, 0.0) or _in_any(t, busy, 0.05, 0.0) or _in_any(t, rests)
        if blocked:
            t = grid * np.ceil((blocked[1] + 1e-6) / grid)
            continue
        if srng is not None and notes and not pause and srng.random() < 0.12 * u:
            # a brief stop; the loop then checks the new time against gestures and rests
            pause = float(srng.uniform(0.35, 0.9))
            if srng.random() < 0.5 and len(history) >= 3:
                replay = history[-3:]  # restart: replay the last three pitches
            t += pause
            continue
        if _in_any(t, energy):
            steps = int(rng.choice([1, 1, 2]))
            vel = float(rng.uniform(0.85, 1.0))
            sub = 0.5 if rng.random() < 0.5 else 1.0
            dur = grid * steps * sub
        else:
            steps = int(rng.choice([1, 1, 1, 2, 2, 3, 4]))
            vel = float(rng.uniform(0.5, 0.75))
            dur = grid * steps
        if _in_any(t, minimal):
            vel *= 0.6
        tension = 0.0
        dur_sound = dur
        if srng is not None:
            drift = 0.85 * drift + float(srng.normal(0.0, 0.12 * u))
            dur *= float(np.exp(drift))
            vel = float(np.clip(vel * np.exp(srng.normal(0.0, 0.5 * u)), 0.08, 1.0))
            tension = u * float(srng.uniform(0.5, 1.0))
            # choppy articulation: the key is released early, leaving a gap before the next note
            dur_sound = dur * (1.0 - u * float(srng.uniform(0.3, 0.7)))
        if pitches is None:
            score_midi = int(rng.choice(DRUM_KEYS, p=[0.3, 0.25, 0.3, 0.1, 0.05]))
            played, wrong = score_midi, False
            if rng.random() < p_wrong:
                played, wrong = int(rng.choice([k for k in DRUM_KEYS if k != score_midi])), True
        else:
            idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pitches) - 1))
            if replay:
                idx = replay.pop(0)
            history.append(idx)
            score_midi = pitches[idx]
            played, wrong = score_midi, False
            if rng.random() < p_wrong:
                played = int(np.clip(score_midi + rng.choice([-2, -1, 1, 2]), 0, 127))
                wrong = played != score_midi
        onset = float(t + rng.normal(0, jitter))
        onset = max(onset, 0.02)
        notes.append(Note(onset=onset, offset=onset + dur_sound, score_onset=float(t), midi=played,
                          score_midi=score_midi, wrong=wrong, velocity=vel, tension=tension, hesitation=pause))
        pause = 0.0
        t += dur

    for s, e in vib:
        if pitches is None:
            continue
        idx = int(np.clip(idx + rng.choice([-1, 0, 1]), 0, len(pitches) - 1))
        rate = float(rng.uniform(5.0, 8.0))
        extent = float(rng.uniform(40.0, 90.0) if instrument == "violin" else rng.uniform(30.0, 60.0))
        notes.append(Note(onset=s, offset=e, score_onset=s, midi=pitches[idx], score_midi=pitches[idx],
                          velocity=float(rng.uniform(0.65, 0.8)), vibrato_rate=rate,
                          vibrato_extent=extent, vibrato_start=s, vibrato_end=e))

    notes.sort(key=lambda n: n.onset)
    # offsets: damped by the next onset (monophonic line) and cut before silent gestures/rests
    stops = sorted(silent + rests)
    for i, n in enumerate(notes):
        end = n.offset
        if i + 1 < len(notes):
            end = min(end, notes[i + 1].onset) if n.vibrato_rate is None else min(end, max(notes[i + 1].onset, n.onset + 0.1))
        for s, e in stops:
            if s > n.onset:
                end = min(end, s)
                break
        end = min(end, seconds)
        n.offset = float(max(end, n.onset + 0.03))
    return [n for n in notes if n.onset < seconds - 0.05]

#: Bow speed, in stroke units per second, of a note of velocity 1 (motion-driven dynamics).
BOW_SPEED = 3.4
#: Shortest and longest bow strokes (stroke units; the whole bow is 1.8).
BOW_MIN, BOW_MAX = 0.2, 1.8


def couple_dynamics(notes: list[Note], instrument: str, rng: np.random.Generator) -> list[Note]:
    """Make a bowed performance's loudness follow its bow speed (the synth's ``motion_dynamics``).

    002 (Section VI-B) rests motion-informed separation on "the characteristics of a sound
    event [being] highly correlated with the speed of sound-producing motion": a violin's
    loudness follows the bow's speed. The plain synthetic violin does not model it (a note's
    loudness is its velocity; the bow crosses its stroke at whatever speed the note's length
    gives). Here each violin note gets

    * a loudness shape within the note (``Note.swell``: flat, crescendo, diminuendo or a swell,
      levels at start, middle and end, from ``rng``);
    * a bow stroke (``Note.bow``) whose length the player plans from the note's velocity and
      length, ``L = velocity * BOW_SPEED * duration * mean(swell)``, kept between
      ``BOW_MIN`` and the bow left in the stroke's direction (strokes alternate down and up);
    * the velocity that stroke produces: ``L / (BOW_SPEED * duration * mean(swell))``, so that
      the sound's amplitude is ``BOW_SPEED``-proportional to the bow's speed at every instant
      (a long note that runs out of bow is softer, a short soft one that needs the minimum
      stroke louder).

    :func:`musicperf.synth.figure.compute_states` moves the bow accordingly and
    :func:`musicperf.synth.audio.render_note` shapes the sound. Other instruments are returned
    unchanged (their strike or strum speed follows ``velocity`` in ``compute_states``).

    Parameters
    ----------
    notes : list of Note
        Sorted by onset; modified in place.
    instrument : str
    rng : numpy.random.Generator

    Returns
    -------
    list of Note
    """
    if instrument != "violin":
        return notes
    shapes = ((1.0, 1.0, 1.0), (0.45, 0.75, 1.0), (1.0, 0.75, 0.45), (0.45, 1.0, 0.55))
    pos, direction = -0.9, 1.0
    for n in notes:
        dur = max(n.offset - n.onset, 0.05)
        base = shapes[int(rng.choice(4, p=[0.3, 0.25, 0.25, 0.2]))]
        swell = tuple(float(np.clip(v * rng.uniform(0.85, 1.15), 0.3, 1.0)) for v in base)
        mean = (swell[0] + 2 * swell[1] + swell[2]) / 4.0
        room = 0.9 - pos if direction > 0 else pos + 0.9
        length = float(np.clip(n.velocity * BOW_SPEED * dur * mean, BOW_MIN, max(min(room, BOW_MAX), BOW_MIN)))
        n.velocity = float(length / (BOW_SPEED * dur * mean))
        n.swell, n.bow = swell, direction * length
        pos = float(np.clip(pos + direction * length, -0.9, 0.9))
        direction = -direction
    return notes


def play_intervals(notes: list[Note], seconds: float, *, merge_gap: float = 0.25) -> list[tuple[float, float]]:
    """Play intervals: the union of sounding notes, merging gaps shorter than ``merge_gap`` s.

    Returns
    -------
    list of (start, end)
        In seconds, sorted; the complement within ``[0, seconds]`` is non-play.
    """
    out: list[list[float]] = []
    for n in sorted(notes, key=lambda n: n.onset):
        if out and n.onset - out[-1][1] < merge_gap:
            out[-1][1] = max(out[-1][1], n.offset)
        else:
            out.append([n.onset, n.offset])
    return [(round(s, 4), round(min(e, seconds), 4)) for s, e in out]


def complement(intervals: list[tuple[float, float]], seconds: float) -> list[tuple[float, float]]:
    """The parts of ``[0, seconds]`` not covered by sorted, disjoint ``intervals``."""
    out, t = [], 0.0
    for s, e in intervals:
        if s > t + 1e-6:
            out.append((round(t, 4), round(s, 4)))
        t = max(t, e)
    if t < seconds - 1e-6:
        out.append((round(t, 4), round(seconds, 4)))
    return out
