"""The articulated 2-D performer: appearance, per-frame skeletal state, geometry, key points.

The figure is described in "figure units" (about one pixel of a 320x240 frame at zoom 1), y
pointing down, with the middle of the hips at the origin; points are complex numbers
``x + 1j * y``. :func:`compute_states` turns a gesture schedule and the performed notes into
per-frame state arrays (head pitch/yaw/roll, eyelids, brows, mouth, shoulders, torso, hands,
instrument pose); :func:`geometry` turns one frame's state into named points; :func:`musicperf.synth.drawing.draw_figure`
draws them with Pillow; :func:`keypoints` maps them onto MediaPipe's pose (33), face-mesh (468)
and hand (21) index layouts. The performer's anatomical left is on the image right (the
performer faces the camera), as in MediaPipe.

Instruments (right-handed player): guitar on the lap, neck to the image right; violin on the
left shoulder, bow in the right hand; flute held to the image left at the mouth; drums (hi-hat,
snare, tom, crash, kick) with sticks; piano keyboard across the lap. Imports numpy only (Pillow
is imported by the renderer that calls :func:`~musicperf.synth.drawing.draw_figure`).
"""

from __future__ import annotations

import cmath
import math
from dataclasses import dataclass

import numpy as np

from musicperf.synth.score import RANGES, Note

# ---------------------------------------------------------------------------------------------
# appearance


@dataclass(frozen=True)
class Appearance:
    """Seeded look and proportions of one performer (colours are RGB tuples)."""

    skin: tuple
    hair: tuple
    shirt: tuple
    trousers: tuple
    instrument: tuple
    instrument_dark: tuple
    chair: tuple
    eye: tuple
    lips: tuple
    long_sleeves: bool
    hair_style: int  # 0 short, 1 long, 2 bald-ish
    shoulder_w: float
    torso_len: float
    head_rx: float
    head_ry: float
    upper_arm: float
    forearm: float
    hand: float


def _jit(rng, c, amount=20):
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in c)


def random_appearance(rng: np.random.Generator, instrument: str = "guitar") -> Appearance:
    """Draw an :class:`Appearance` (body proportions within +-10 %, colours from palettes)."""
    skins = [(241, 194, 160), (224, 172, 135), (198, 134, 96), (141, 85, 56), (96, 60, 40), (255, 220, 190)]
    hairs = [(30, 25, 20), (80, 50, 30), (150, 110, 60), (200, 170, 110), (120, 120, 120), (60, 20, 10)]
    shirts = [(40, 60, 140), (150, 30, 40), (30, 110, 70), (60, 60, 60), (230, 230, 225), (120, 80, 150), (200, 140, 40)]
    trousers = [(30, 30, 40), (50, 60, 90), (80, 70, 60), (20, 20, 20), (110, 100, 90)]
    woods = {"guitar": [(190, 120, 50), (150, 80, 30), (220, 170, 100), (90, 40, 20)],
             "violin": [(160, 70, 20), (130, 50, 15), (180, 90, 30)],
             "flute": [(200, 200, 210), (180, 170, 120)],
             "drums": [(180, 30, 30), (30, 60, 160), (220, 220, 220), (20, 20, 20)],
             "piano": [(15, 15, 15), (60, 35, 20)]}
    chairs = [(90, 60, 40), (40, 40, 45), (120, 30, 30), (70, 90, 110)]
    inst = woods[instrument][rng.integers(len(woods[instrument]))]
    b = rng.uniform(0.9, 1.1, 6)
    return Appearance(
        skin=_jit(rng, skins[rng.integers(len(skins))], 12),
        hair=_jit(rng, hairs[rng.integers(len(hairs))], 12),
        shirt=_jit(rng, shirts[rng.integers(len(shirts))], 20),
        trousers=_jit(rng, trousers[rng.integers(len(trousers))], 10),
        instrument=_jit(rng, inst, 12),
        instrument_dark=tuple(int(v * 0.45) for v in inst),
        chair=_jit(rng, chairs[rng.integers(len(chairs))], 10),
        eye=(40, 30, 25) if rng.random() < 0.7 else (60, 90, 130),
        lips=(170, 80, 80),
        long_sleeves=bool(rng.random() < 0.5),
        hair_style=int(rng.choice([0, 0, 1, 1, 2])),
        shoulder_w=28.0 * b[0], torso_len=60.0 * b[1], head_rx=15.0 * b[2], head_ry=17.5 * b[2],
        upper_arm=27.0 * b[3], forearm=25.0 * b[4], hand=8.5 * b[5],
    )


# ---------------------------------------------------------------------------------------------
# per-frame state

STATE_KEYS = (
    "sway", "bob", "lean", "raise_l", "raise_r", "pitch", "yaw", "roll", "head_dy",
    "eye_open", "brow_raise", "frown", "mouth_open", "smile",
    "stroke", "stroke_amp", "fret", "vib", "lh_lift", "lh_wave", "rh_round", "rh_phase",
    "prep", "inst_dx", "inst_dy", "inst_rot", "key", "stick_l", "stick_r", "target_l", "target_r",
    "foot", "press", "rest", "rest_x", "rest_y",
)


def _env(t: np.ndarray, s: float, e: float, ramp: float = 0.15) -> np.ndarray:
    """Smooth 0-1-0 envelope over [s, e] with raised-cosine ramps of ``ramp`` seconds."""
    r = max(1e-3, min(ramp, (e - s) / 3))
    x = np.clip(np.minimum(t - s, e - t) / r, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _idle(t: np.ndarray, rng: np.random.Generator, amp: float, fmin: float = 0.08, fmax: float = 0.5) -> np.ndarray:
    f = rng.uniform(fmin, fmax, 4)
    ph = rng.uniform(0, 2 * np.pi, 4)
    a = rng.uniform(0.5, 1.0, 4)
    y = sum(a[i] * np.sin(2 * np.pi * f[i] * t + ph[i]) for i in range(4))
    return amp * y / a.sum()


def _pitch_pos(midi: float, instrument: str) -> float:
    lo, hi = RANGES.get(instrument, (48, 84))
    return float(np.clip((midi - lo) / max(hi - lo, 1), 0.0, 1.0))


def compute_states(
    times: np.ndarray,
    schedule: dict[str, list[tuple[float, float]]],
    notes: list[Note],
    rng: np.random.Generator,
    *,
    instrument: str = "guitar",
    tempo: float = 90.0,
    motion_dynamics: bool = False,
) -> dict[str, np.ndarray]:
    """Per-frame skeletal state of one performer.

    Parameters
    ----------
    times : numpy.ndarray
        ``(T,)`` frame times in seconds.
    schedule : dict of str to list of (start, end)
        Gesture intervals in seconds.
    notes : list of Note
        The performed notes (strokes, bowing, fretting and strikes follow their onsets).
    rng : numpy.random.Generator
    instrument : str
    tempo : float
        Beats per minute (Sympathetic body movement sways with it).
    motion_dynamics : bool
        The sound-producing motion follows the loudness (see
        :func:`musicperf.synth.score.couple_dynamics`): the bow follows each violin note's
        planned stroke (``Note.bow``) at a speed shaped like its loudness (``Note.swell``); a
        guitar stroke's swing and a piano strike's depth scale with the note's velocity
        (relative to 0.625, the mean velocity of ordinary notes). False leaves the motion as
        before the option existed.

    Returns
    -------
    dict of str to numpy.ndarray
        One ``(T,)`` float array per name in :data:`STATE_KEYS`. Units: figure units for
        displacements, radians for angles, 0-1 for eyelids/brows/mouth/blends.
    """
    t = np.asarray(times, dtype=float)
    T = t.size
    z = np.zeros(T)
    st = {k: z.copy() for k in STATE_KEYS}
    env = {g: sum((_env(t, s, e) for s, e in ivs), z.copy()) for g, ivs in schedule.items()}
    g = lambda name: np.clip(env.get(name, z), 0, 1)  # noqa: E731

    energy, minimal = g("Physical energy"), g("Minimal movement")
    idle_gain = (1 + 1.6 * energy) * (1 - 0.85 * minimal)
    st["sway"] = _idle(t, rng, 2.0) * idle_gain
    st["bob"] = _idle(t, rng, 0.8, 0.2, 0.6) * idle_gain
    st["lean"] = _idle(t, rng, 0.03) * idle_gain
    breath = 0.6 * np.sin(2 * np.pi * 0.25 * t + rng.uniform(0, 6.28))
    st["raise_l"] = breath * (1 - minimal)
    st["raise_r"] = breath.copy() * (1 - minimal)
    st["pitch"] = _idle(t, rng, 0.05) * idle_gain
    st["yaw"] = _idle(t, rng, 0.08) * idle_gain
    st["roll"] = _idle(t, rng, 0.03) * idle_gain
    st["eye_open"] = np.ones(T)
    st["smile"] = np.full(T, rng.uniform(-0.2, 0.3))
    # blinks (0.1 s, every 3-7 s) are normal play, far shorter than any "Eyes closed"
    tb = float(rng.uniform(1, 4))
    while tb < t[-1] + 1 if T else False:
        st["eye_open"] *= 1 - _env(t, tb, tb + 0.12, 0.04)
        tb += float(rng.uniform(3, 7))
    # physical energy: bobbing with the beat
    beat = tempo / 60.0
    st["bob"] += energy * 2.5 * np.sin(2 * np.pi * beat * t)
    st["lean"] += energy * 0.05 * np.sin(np.pi * beat * t)

    for s, e in schedule.get("Nodding", []):
        f = float(rng.uniform(1.5, 2.5))
        st["pitch"] += _env(t, s, e, 0.08) * 0.6 * (0.5 - 0.5 * np.cos(2 * np.pi * f * (t - s)))
    for s, e in schedule.get("Upbeat in head movement", []):
        # lift the head (an inhale), then drop it onto the beat and come back: continuous keyframes
        x = np.clip((t - s) / (e - s), 0, 1)
        st["pitch"] += np.interp(x, [0, 0.45, 0.8, 1.0], [0, -0.6, 0.45, 0])
        st["head_dy"] += np.interp(x, [0, 0.45, 0.8, 1.0], [0, -4.5, 1.0, 0])
    lift = g("Lifting head")
    st["pitch"] -= 0.55 * lift
    st["head_dy"] -= 3.0 * lift
    for s, e in schedule.get("Expressive head movement", []):
        en = _env(t, s, e, 0.3)
        st["roll"] += en * 0.3 * np.sin(2 * np.pi * 0.55 * (t - s))
        st["yaw"] += en * 0.7 * np.sin(2 * np.pi * 0.4 * (t - s) + 1.0)
        st["pitch"] += en * 0.15 * np.sin(2 * np.pi * 0.7 * (t - s))
    st["eye_open"] *= 1 - np.clip(sum((_env(t, s, e, 0.08) for s, e in schedule.get("Eyes closed", [])), z), 0, 1)
    st["frown"] = g("Frowning")
    for s, e in schedule.get("Facial expression", []):
        en = _env(t, s, e, 0.2)
        st["mouth_open"] += en * (0.65 + 0.35 * np.sin(2 * np.pi * 0.6 * (t - s)))
        st["brow_raise"] += en * 0.9
        st["smile"] += en * 0.6 * np.sin(2 * np.pi * 0.35 * (t - s) + 1.5)
    for s, e in schedule.get("Expressive shoulder movement", []):
        en = _env(t, s, e, 0.25)
        w = 2 * np.pi * 0.7 * (t - s)
        st["raise_l"] += en * (4.0 + 3.5 * np.sin(w))
        st["raise_r"] += en * (4.0 + 3.5 * np.sin(w + np.pi))
        st["lean"] += en * 0.04 * np.sin(w)
    for s, e in schedule.get("Sympathetic body movement", []):
        en = _env(t, s, e, 0.3)
        st["sway"] += en * 9.0 * np.sin(np.pi * beat * (t - s))
        st["lean"] += en * 0.12 * np.sin(np.pi * beat * (t - s))
        st["roll"] += en * 0.08 * np.sin(np.pi * beat * (t - s))
    st["rh_round"] = g("Right hand round")
    for s, e in schedule.get("Right hand round", []):
        turns = max(1.0, round((e - s) / 1.1))
        st["rh_phase"] += (t >= s) * (t <= e) * 2 * np.pi * turns * np.clip((t - s) / (e - s), 0, 1)
    st["lh_lift"] = g("Left hand gesture")
    st["lh_wave"] = np.sin(2 * np.pi * 0.8 * t)
    prep = g("Expressive preparation")
    for s, e in schedule.get("Expressive preparation", []):
        # rise and breathe in, then come down onto the first note at the end
        x = np.clip((t - s) / (e - s), 0, 1)
        shape = np.where(x < 0.75, _smoothstep(x / 0.6), 1 - _smoothstep((x - 0.75) / 0.25))
        shape = shape * (t >= s) * (t <= e)
        st["prep"] = np.maximum(st["prep"], shape)
    st["lean"] -= 0.1 * st["prep"]
    st["raise_l"] += 4.0 * st["prep"]
    st["raise_r"] += 4.0 * st["prep"]
    st["pitch"] -= 0.2 * st["prep"]
    st["brow_raise"] += 0.5 * prep

    # repositioning: the instrument moves to a new rest pose (persistent), the body follows
    dx = dy = rot = 0.0
    for s, e in schedule.get("Repositioning guitar", []):
        ndx, ndy, nrot = [float(v) for v in rng.uniform([-5, -4, -0.09], [5, 4, 0.09])]
        x = _smoothstep((t - s) / (e - s))
        bump = np.sin(np.pi * np.clip((t - s) / (e - s), 0, 1))
        st["inst_dx"] += (t >= s) * ((dx + (ndx - dx) * x) - st["inst_dx"]) + bump * 3.0 * np.sin(2 * np.pi * (t - s) / (e - s))
        st["inst_dy"] += (t >= s) * ((dy + (ndy - dy) * x) - st["inst_dy"]) - bump * 13.0
        st["inst_rot"] += (t >= s) * ((rot + (nrot - rot) * x) - st["inst_rot"]) + bump * 0.2
        st["lean"] += bump * 0.06
        st["pitch"] += bump * 0.25
        dx, dy, rot = ndx, ndy, nrot

    # playing motion from the notes
    stroke_amp = (1 + 0.7 * energy) * (1 - 0.6 * minimal)
    st["stroke_amp"] = stroke_amp
    onsets = np.array([n.onset for n in notes]) if notes else np.zeros(0)
    if notes:
        k = np.searchsorted(onsets, t, side="right") - 1
        if instrument in ("guitar",):
            side = np.where(np.arange(len(notes)) % 2 == 0, 1.0, -1.0)
            prev = np.where(k >= 1, side[np.maximum(k - 1, 0)], -1.0)
            cur = np.where(k >= 0, side[np.maximum(k, 0)], -1.0)
            if motion_dynamics:  # a louder strum swings further in the same 0.06 s: faster
                gain = np.clip(np.array([n.velocity for n in notes]) / 0.625, 0.5, 1.5)
                prev = prev * np.where(k >= 1, gain[np.maximum(k - 1, 0)], 1.0)
                cur = cur * np.where(k >= 0, gain[np.maximum(k, 0)], 1.0)
            p = _smoothstep((t - onsets[np.maximum(k, 0)]) / 0.06) * (k >= 0)
            st["stroke"] = prev + (cur - prev) * p
        elif instrument == "violin" and motion_dynamics and all(n.bow is not None for n in notes):
            st["stroke"] = _bow_positions(t, notes)
        elif instrument == "violin":
            xs, ys, pos = [], [], -0.9
            for n in notes:
                xs += [n.onset, max(n.offset, n.onset + 0.05)]
                end = 0.9 if pos < 0 else -0.9
                ys += [pos, end]
                pos = end
            xs, ys = np.array(xs), np.array(ys)
            order = np.argsort(xs, kind="stable")
            xs, ys = np.maximum.accumulate(xs[order]), ys[order]
            st["stroke"] = np.interp(t, xs, ys)
        if instrument in ("guitar", "violin", "flute", "piano"):
            xs = np.repeat(onsets, 2) + np.tile([-0.08, 0.0], len(notes))
            vals = np.array([_pitch_pos(n.midi, instrument) for n in notes])
            ys = np.repeat(np.concatenate([[vals[0]], vals[:-1]]), 2)
            ys[1::2] = vals
            xs = np.maximum.accumulate(xs)
            st["fret"] = np.interp(t, xs, ys)
            st["key"] = np.array([notes[i].midi if i >= 0 else notes[0].midi for i in k], dtype=float)
        if instrument == "piano":
            depth = [n.velocity / 0.625 if motion_dynamics else 1.0 for n in notes]
            st["press"] = sum((d * np.exp(-np.clip(t - o, 0, None) / 0.08) * (t >= o) * (t < o + 0.4)
                               for o, d in zip(onsets, depth)), z)
            tense = [n for n in notes if n.tension > 0]
            for n in tense:
                # low skill (score.py): a tense, jerky strike -- the hand jumps up in the
                # 0.15 s before the key, then hits it about four times as hard
                up = np.clip((t - (n.onset - 0.15)) / 0.15, 0, 1) * (t < n.onset)
                hit = np.exp(-np.clip(t - n.onset, 0, None) / 0.08) * (t >= n.onset) * (t < n.onset + 0.4)
                st["press"] += n.tension * (3.0 * hit - 10.0 * up)
            if tense and T:
                # and the tense hand never settles: jerks (held 0.04-0.16 s) all along, from
                # a generator spawned off rng (rng's own draws, hence the rest, are unchanged)
                jr = rng.spawn(1)[0]
                amp = 8.0 * float(np.mean([n.tension for n in tense]))
                knots = np.cumsum(jr.uniform(0.04, 0.16, int(t[-1] / 0.04) + 2)) + t[0] - 0.1
                vals = jr.normal(0.0, amp, knots.size)
                st["press"] += vals[np.clip(np.searchsorted(knots, t), 0, knots.size - 1)]
        if instrument == "drums":
            _drum_motion(t, notes, st)
    for n in notes:
        if n.vibrato_rate is not None:
            from musicperf.synth.audio import vibrato_cents

            # the hand moves with the pitch: 2.5 figure units per 50 cents (002 Section V-B:
            # the hand displacement curve corresponds to the pitch fluctuation)
            sel = (t >= n.vibrato_start) & (t <= n.vibrato_end)
            st["vib"][sel] += vibrato_cents(t[sel], n) / 20.0
    # freeze: hold every state at the freeze's first frame, then ease back into the live motion
    # over 0.12 s (no jump when the performer moves again)
    for s, e in schedule.get("Freeze", []):
        idx = np.nonzero((t >= s) & (t < e))[0]
        if idx.size:
            after = np.nonzero((t >= e) & (t < e + 0.12))[0]
            w = _smoothstep((t[after] - e) / 0.12)
            for key in STATE_KEYS:
                held = st[key][idx[0]]
                st[key][idx] = held
                st[key][after] = held + (st[key][after] - held) * w
    return st


def _bow_positions(t: np.ndarray, notes: list[Note]) -> np.ndarray:
    """Bow position (stroke units) at times ``t`` for notes with planned strokes (``Note.bow``).

    Within a note the bow moves by ``Note.bow`` at a speed proportional to ``Note.swell`` (the
    position is the swell's running integral, scaled to the stroke); between notes it stays.
    """
    xs, ys, pos = [], [], -0.9
    frac = np.linspace(0.0, 1.0, 33)
    for n in notes:
        g = n.swell_at(frac)
        cum = np.concatenate([[0.0], np.cumsum((g[1:] + g[:-1]) / 2)])
        cum /= cum[-1]
        xs.append(n.onset + frac * (max(n.offset, n.onset + 0.05) - n.onset))
        ys.append(pos + n.bow * cum)
        pos = float(ys[-1][-1])
    xs, ys = np.concatenate(xs), np.concatenate(ys)
    order = np.argsort(xs, kind="stable")
    return np.interp(t, np.maximum.accumulate(xs[order]), ys[order])


def add_rest_motion(st: dict, times: np.ndarray, rests, rng: np.random.Generator, *, instrument: str = "guitar",
                    look: float = 0.0) -> None:
    """Turn the rests of a performer into a realistic, moving rest (in place).

    During a rest the performer does not play but keeps moving, as real players do: the
    sound-producing hand (bow hand, strumming hand, sticks; both hands at the piano) or the
    flute is lowered within 0.35 s and raised again over the last 0.35 s; the lowered hands
    drift slowly (0.15-0.6 Hz, a few figure units) and fidget (a 0.4-0.8 s move of up to 8
    units every 2.5 s or so); breathing deepens; the head looks down a little and turns now and
    then (0.7-1.5 s) towards the partner (``look`` +1: to the image right, -1: left, 0: a
    random side). Idle sway, blinks and the rest of the body's idle motion continue as during
    play. Sets ``rest`` (0-1 blend), ``rest_x``/``rest_y`` (hand offsets, figure units) and
    adds to ``yaw``, ``pitch``, ``raise_l``/``raise_r`` and (flute) ``inst_dx``/``inst_dy``/
    ``inst_rot``; :func:`geometry` moves the hands.

    Parameters
    ----------
    st : dict of str to numpy.ndarray
        :func:`compute_states` output, ``(T,)`` arrays.
    times : numpy.ndarray
        ``(T,)`` frame times in seconds.
    rests : list of (start, end)
        Seconds; each at least 0.8 s long.
    rng : numpy.random.Generator
        Used for the rest motion only.
    instrument : str
    look : float
        Direction of the partner (see above).
    """
    t = np.asarray(times, dtype=float)
    z = np.zeros(t.size)
    en = np.clip(sum((_env(t, s, e, 0.35) for s, e in rests), z.copy()), 0, 1)
    dx = _idle(t, rng, 3.0, 0.15, 0.6)
    dy = _idle(t, rng, 2.0, 0.15, 0.6)
    turn = z.copy()
    for s, e in rests:
        for _ in range(max(1, int((e - s) / 2.5))):
            d = float(rng.uniform(0.4, 0.8))
            a = float(rng.uniform(s + 0.4, max(s + 0.45, e - 0.4 - d)))
            bump = _env(t, a, a + d, d / 3)
            dx += bump * float(rng.uniform(-8, 8))
            dy += bump * float(rng.uniform(-6, 2))
        for _ in range(max(1, int((e - s) / 2.0))):
            d = float(rng.uniform(0.7, 1.5))
            a = float(rng.uniform(s + 0.3, max(s + 0.35, e - 0.3 - d)))
            side = look if look else float(rng.choice([-1.0, 1.0]))
            turn += _env(t, a, a + d, 0.25) * side * float(rng.uniform(0.35, 0.6))
    st["rest"] = en
    st["rest_x"] = en * dx
    st["rest_y"] = en * dy
    st["yaw"] = st["yaw"] + en * turn
    st["pitch"] = st["pitch"] + en * 0.12
    breath = 1.2 * np.sin(2 * np.pi * 0.3 * t + float(rng.uniform(0, 6.28)))
    st["raise_l"] = st["raise_l"] + en * breath
    st["raise_r"] = st["raise_r"] + en * breath
    if instrument == "flute":
        # the flute comes down from the mouth and points to the floor; the hands hold it
        st["inst_dy"] = st["inst_dy"] + en * 20.0 + 0.5 * st["rest_y"]
        st["inst_dx"] = st["inst_dx"] + 0.5 * st["rest_x"]
        st["inst_rot"] = st["inst_rot"] - en * 0.55
    elif instrument == "violin":
        st["inst_rot"] = st["inst_rot"] + en * 0.12


def _rest_hands(G: dict, s: dict, inst: dict, instrument: str, wrist_r: complex, wrist_l: complex):
    """Hands (and bow, sticks) of a resting performer: see :func:`add_rest_motion`."""
    r = s["rest"]
    hip = G["hip"]
    drift = complex(s["rest_x"], s["rest_y"])
    if instrument == "flute":
        return wrist_r, wrist_l
    # the right (image-left) hand comes down beside or onto the right thigh
    home_r = hip + complex(-28 if instrument != "piano" else -18, -6 if instrument != "piano" else 4) + drift
    move_r = (home_r - wrist_r) * r
    wrist_r = wrist_r + move_r
    if instrument == "violin":
        frog, tip = inst["bow"]
        v0, v1 = tip - frog, 72.0 * _r(math.pi / 2 + 0.35)  # the bow hangs down from the hand
        v = v0 + (v1 - v0) * r
        frog = frog + move_r
        inst["bow"] = (frog, frog + v / max(abs(v), 1e-6) * 72.0)
    move_l = 0j
    if instrument in ("piano", "drums"):
        home_l = hip + complex(18 if instrument == "piano" else 26, 4 if instrument == "piano" else -6) + 0.6 * drift
        move_l = (home_l - wrist_l) * r
        wrist_l = wrist_l + move_l
    if instrument == "drums":
        (wl, tl), (wr, tr) = inst["sticks"]
        inst["sticks"] = [(wl + move_l, tl + move_l), (wr + move_r, tr + move_r)]
    return wrist_r, wrist_l


_DRUM_POS = {42: -34.0, 38: -10.0, 45: 22.0, 49: 40.0}


def _drum_motion(t: np.ndarray, notes: list[Note], st: dict) -> None:
    """Stick heights (1 raised, 0 striking) and target drum per hand from the hits."""
    hands = {"l": [], "r": []}
    alt = 0
    for n in notes:
        if n.midi == 36:
            st["foot"] += np.exp(-np.clip(t - n.onset, 0, None) / 0.07) * (t >= n.onset - 1e-9) * (t < n.onset + 0.3)
            continue
        if n.midi in (42, 49):
            hand = "r"
        elif n.midi == 45:
            hand = "l"
        else:
            hand = "l" if alt % 2 == 0 else "r"
            alt += 1
        hands[hand].append((n.onset, _DRUM_POS[n.midi]))
    for h, hits in hands.items():
        home = -10.0 if h == "l" else -26.0
        if not hits:
            st["stick_" + h] = np.full(t.size, 0.6)
            st["target_" + h] = np.full(t.size, home)
            continue
        xs, hs, ps = [0.0], [0.6], [hits[0][1]]
        for o, x in hits:
            raise_t = max(o - 0.12, xs[-1] + 0.01)
            xs += [raise_t, o, o + 0.1]
            hs += [1.0, 0.0, 0.55]
            ps += [x, x, x]
        xs = np.maximum.accumulate(np.array(xs))
        st["stick_" + h] = np.interp(t, xs, hs)
        st["target_" + h] = np.interp(t, xs, ps)


# ---------------------------------------------------------------------------------------------
# geometry

def _r(a: float) -> complex:
    return cmath.exp(1j * a)


def _ik(s: complex, w: complex, a: float, b: float, bend: float) -> tuple[complex, complex]:
    """Two-link arm: shoulder ``s``, wrist target ``w``, lengths ``a``, ``b``; returns (elbow, wrist)."""
    d = w - s
    dist = abs(d)
    reach = a + b - 0.5
    if dist > reach:
        w = s + d / dist * reach
        d = w - s
        dist = reach
    dist = max(dist, abs(a - b) + 0.5)
    cosang = (a * a + dist * dist - b * b) / (2 * a * dist)
    ang = math.acos(max(-1.0, min(1.0, cosang)))
    base = cmath.phase(d)
    return s + a * _r(base + bend * ang), w


def _hand(w: complex, direction: float, size: float, curl: float, mirror: float, spread: float = 0.22) -> list[complex]:
    """21 hand points in MediaPipe order: wrist, thumb 1-4, index 5-8, middle 9-12, ring 13-16,
    pinky 17-20. ``direction`` is the wrist-to-middle-finger angle (radians), ``mirror`` +-1
    puts the thumb on one side or the other."""
    rot = _r(direction)
    pts = [w]
    # thumb: CMC, MCP, IP, TIP
    for fx, fy in ((0.25, 0.32), (0.5, 0.55), (0.72, 0.68), (0.92, 0.74)):
        pts.append(w + rot * complex(fx * size, mirror * fy * size) * (1 - 0.25 * curl))
    lat = (0.28, 0.09, -0.1, -0.28)
    lens = ((0.48, 0.3, 0.24), (0.52, 0.33, 0.25), (0.5, 0.31, 0.24), (0.4, 0.25, 0.2))
    for i in range(4):
        mcp = w + rot * complex((0.95 - 0.07 * abs(i - 1.2)) * size, mirror * lat[i] * size)
        pts.append(mcp)
        ang = direction + mirror * spread * (lat[i] / 0.28) * 0.5
        p = mcp
        for j, ln in enumerate(lens[i]):
            ang += -mirror * curl * (0.5 + 0.25 * j)
            p = p + _r(ang) * ln * size
            pts.append(p)
    return pts


def geometry(s: dict, app: Appearance, instrument: str) -> dict:
    """Named points (complex, figure units) and shapes of one frame.

    Parameters
    ----------
    s : dict of str to float
        One frame of :func:`compute_states`.
    app : Appearance
    instrument : str

    Returns
    -------
    dict
        Keys include ``hip_l/hip_r``, ``neck``, ``shoulder_l/r``, ``elbow_l/r``, ``head``, face
        points (``eye_l_outer`` ...), ``hand_l``/``hand_r`` (21 points each), ``inst`` (a dict
        of instrument shapes), legs and chair points.
    """
    G: dict = {}
    sway, lean = s["sway"], s["lean"]
    hip = complex(0.3 * sway, 0.5 * s["bob"])
    up = _r(lean) * -1j
    neck = hip + up * app.torso_len + complex(0.7 * sway, s["bob"])
    side = _r(lean)
    G["hip"] = hip
    G["hip_l"], G["hip_r"] = hip + complex(16, 0), hip + complex(-16, 0)
    G["neck"] = neck
    G["shoulder_l"] = neck + side * complex(app.shoulder_w, 5 - s["raise_l"])
    G["shoulder_r"] = neck + side * complex(-app.shoulder_w, 5 - s["raise_r"])
    head = neck + up * (7 + app.head_ry) + complex(0, s["head_dy"] + 2.0 * s["pitch"])
    G["head"] = head
    roll, yaw, pitch = s["roll"], s["yaw"], s["pitch"]
    rr = _r(roll + 0.3 * lean)
    fx = lambda x, y: head + rr * complex(x * (1 - 0.15 * abs(yaw)) + 7.0 * yaw, y + 6.0 * pitch)  # noqa: E731
    G["head_rot"] = rr
    eo = max(0.0, min(1.0, s["eye_open"]))
    for nm, sgn in (("l", 1.0), ("r", -1.0)):
        G[f"eye_{nm}"] = fx(sgn * 6, -2)
        G[f"eye_{nm}_outer"] = fx(sgn * 9.3, -2)
        G[f"eye_{nm}_inner"] = fx(sgn * 2.8, -2)
        G[f"eye_{nm}_top"] = fx(sgn * 6, -2 - 1.9 * eo)
        G[f"eye_{nm}_bottom"] = fx(sgn * 6, -2 + 1.5 * eo)
        by = -7.0 - 2.2 * s["brow_raise"]
        G[f"brow_{nm}_outer"] = fx(sgn * 10, by + 0.5)
        G[f"brow_{nm}_mid"] = fx(sgn * 6.3, by - 0.8 + 0.8 * s["frown"])
        G[f"brow_{nm}_inner"] = fx(sgn * (2.6 - 0.9 * s["frown"]), by + 2.6 * s["frown"])
        G[f"ear_{nm}"] = head + rr * complex(sgn * (app.head_rx + 0.5) - 3.0 * yaw, 1 + 2.0 * pitch)
        G[f"mouth_{nm}"] = fx(sgn * (5.0 + 0.6 * s["mouth_open"]), 9 - 1.6 * s["smile"])
        G[f"face_edge_{nm}"] = head + rr * complex(sgn * app.head_rx, 1)
    mo = max(0.0, s["mouth_open"])
    G["nose_tip"] = fx(0, 4)
    G["nose_top"] = fx(0, -1)
    G["lip_top_in"] = fx(0, 9 - 0.3 - 1.4 * mo)
    G["lip_bottom_in"] = fx(0, 9 + 0.3 + 2.6 * mo)
    G["lip_top"] = fx(0, 9 - 1.1 - 1.4 * mo)
    G["lip_bottom"] = fx(0, 9 + 1.2 + 2.6 * mo)
    G["chin"] = fx(0, app.head_ry - 1.0)
    G["forehead"] = fx(0, -app.head_ry + 3.0)
    G["hair_line"] = -app.head_ry * 0.45 + 6.0 * pitch  # head-frame y of the hair line

    # legs (seated, seen from the front: thighs come towards the camera)
    for nm, sgn in (("l", 1.0), ("r", -1.0)):
        foot = s["foot"] if nm == "r" else 0.0
        knee = complex(sgn * 21, 22) + complex(0, -3 * foot)
        ankle = complex(sgn * 23, 64) + complex(0, -5 * foot)
        G[f"knee_{nm}"], G[f"ankle_{nm}"] = knee, ankle
        G[f"heel_{nm}"] = ankle + complex(0, 4)
        G[f"foot_{nm}"] = ankle + complex(sgn * 6, 7)
    _instrument_and_arms(G, s, app, instrument)
    return G


def _instrument_and_arms(G: dict, s: dict, app: Appearance, instrument: str) -> None:
    hip, lean = G["hip"], s["lean"]
    inst: dict = {}
    off = complex(s["inst_dx"], s["inst_dy"])
    sl, sr = G["shoulder_l"], G["shoulder_r"]
    size = app.hand
    rr_round = s["rh_round"]
    # right hand round: the hand leaves the strings and circles outwards (image left) and up
    circle = (cmath.exp(1j * s["rh_phase"]) - 1) * 13.0 * rr_round  # 0 at the start of each turn
    circle = complex(circle.real - 10 * rr_round, -abs(circle.imag) - 12 * rr_round)
    prep = s["prep"]
    lh_up = s["lh_lift"]
    if instrument == "guitar":
        a = -0.38 + s["inst_rot"] + 0.5 * lean
        d = _r(a)
        perp = d * 1j
        c = hip + complex(-12, -14) + off + complex(0.2 * s["sway"], 0)
        inst["body"] = [(c - d * 7, 23, 19, a), (c + d * 13, 16, 14, a)]
        inst["hole"] = (c + d * 5, 5.0)
        n0, n1 = c + d * 26, c + d * 96
        inst["neck"] = [n0 + perp * 3, n1 + perp * 2.5, n1 - perp * 2.5, n0 - perp * 3]
        inst["head"] = [n1 + perp * 3, n1 + d * 13 + perp * 4.5, n1 + d * 13 - perp * 4.5, n1 - perp * 3]
        bridge = c - d * 13
        inst["strings"] = [(bridge + perp * k, n1 + perp * k * 0.8) for k in (-2.0, -0.7, 0.7, 2.0)]
        inst["bridge"] = [bridge + perp * 4 - d, bridge + perp * 4 + d * 1.5, bridge - perp * 4 + d * 1.5, bridge - perp * 4 - d]
        inst["occluders"] = [[c - d * 7 + 23 * math.cos(k / 9 * math.pi) * d + 19 * math.sin(k / 9 * math.pi) * perp for k in range(18)]]
        # right hand: fingertips cross the strings at the sound hole on each stroke
        amp = 7.0 * s["stroke_amp"]
        tips = c + d * 5 + perp * (s["stroke"] * amp) + circle + complex(-14, -40) * prep
        wrist_r = tips + _r(-1.9) * size * 1.6
        hand_dir_r = cmath.phase(tips - wrist_r)
        curl_r = 0.5
        # left hand: on the neck at the fret, vibrato moves it along the neck
        p = n1 - d * (8 + 50 * s["fret"]) + d * s["vib"]
        on_neck_w = p + perp * 7
        gest = sl + complex(24 + 4 * s["lh_wave"], -18 - 6 * s["lh_wave"])
        wrist_l = on_neck_w + (gest - on_neck_w) * lh_up
        hand_dir_l = (1 - lh_up) * cmath.phase(-perp) + lh_up * (-1.2)
        curl_l = 1.1 * (1 - lh_up) + 0.1
        bend_r, bend_l = 1.0, -1.0
        mir_r, mir_l = 1.0, -1.0
    elif instrument == "violin":
        a = 0.35 + s["inst_rot"] + 0.5 * lean
        d = _r(a)
        perp = d * 1j
        c = sl + complex(-4, 14) + off
        inst["body"] = [(c - d * 2, 11, 8, a), (c + d * 9, 8, 6.5, a)]
        n0, n1 = c + d * 16, c + d * 45
        inst["neck"] = [n0 + perp * 1.8, n1 + perp * 1.4, n1 - perp * 1.4, n0 - perp * 1.8]
        inst["head"] = [n1 + perp * 2, n1 + d * 6 + perp * 2.5, n1 + d * 6 - perp * 2.5, n1 - perp * 2]
        inst["strings"] = [(c - d * 8 + perp * k, n1 + perp * k * 0.6) for k in (-1.0, 1.0)]
        inst["occluders"] = []
        contact = c + d * 1
        # seen from the front the bow crosses the strings roughly horizontally, frog in the hand
        bow_dir = _r(math.pi - 0.2 + 0.3 * s["inst_rot"])
        bow_pos = s["stroke"] * 22.0 * s["stroke_amp"]
        frog = contact + bow_dir * (bow_pos + 32) + circle * 0.5
        inst["bow"] = (frog, frog - bow_dir * 72)
        wrist_r = frog + complex(-3, 4) + complex(-6, -20) * prep
        tips = frog + bow_dir * 3
        hand_dir_r = cmath.phase(tips - wrist_r) + 0.4
        curl_r = 0.6
        p = n1 - d * (3 + 22 * s["fret"]) + d * s["vib"]
        on_neck_w = p + perp * 8
        gest = sl + complex(28 + 4 * s["lh_wave"], -12 - 6 * s["lh_wave"])
        wrist_l = on_neck_w + (gest - on_neck_w) * lh_up
        hand_dir_l = (1 - lh_up) * cmath.phase(-perp) + lh_up * (-1.2)
        curl_l = 0.8 * (1 - lh_up) + 0.1
        bend_r, bend_l = 1.0, -1.0
        mir_r, mir_l = 1.0, -1.0
    elif instrument == "flute":
        a = math.pi + 0.12 + s["inst_rot"] + 0.3 * lean
        d = _r(a)
        perp = d * 1j
        mouth = (G["mouth_l"] + G["mouth_r"]) / 2 + complex(0, 3)
        c = mouth + d * -8 + off
        tail = c + d * 95
        inst["tube"] = [c + perp * 1.8, tail + perp * 1.8, tail - perp * 1.8, c - perp * 1.8]
        inst["keys"] = [(c + d * (30 + 8 * k), 1.3) for k in range(6)]
        inst["occluders"] = []
        lift = (int(s["key"]) % 7) / 7.0
        wrist_l = c + d * 10 + perp * -8 + (sl + complex(20, -16) - (c + d * 10)) * lh_up
        wrist_r = c + d * 62 + perp * -10 + circle + complex(-4, -20) * prep
        hand_dir_l = cmath.phase(perp) + lh_up * -1.0
        hand_dir_r = cmath.phase(perp)
        curl_l, curl_r = 0.6 + 0.3 * lift, 0.9 - 0.3 * lift
        bend_r, bend_l = -1.0, 1.0
        mir_r, mir_l = -1.0, -1.0
    elif instrument == "drums":
        y0 = hip + complex(0, 6)
        inst["drums"] = [(complex(_DRUM_POS[42], -4) + y0, 13, 2.5, "cymbal"),
                         (complex(_DRUM_POS[38], 10) + y0, 15, 5, "snare"),
                         (complex(_DRUM_POS[45], 2) + y0, 12, 4.5, "tom"),
                         (complex(_DRUM_POS[49], -36) + y0, 17, 3, "cymbal")]
        inst["kick"] = (complex(0, 44) + y0, 24)
        inst["occluders"] = [[complex(0, 44) + y0 + 24 * _r(k / 9 * math.pi) for k in range(18)]]
        sticks = {}
        for h in ("l", "r"):
            tx = s["target_" + h]
            height = s["stick_" + h]
            tip = y0 + complex(tx, -2 - 26 * height)
            wrist = tip + complex(-8 if h == "r" else 8, 14 + 6 * height)
            sticks[h] = (wrist, tip)
        wrist_l = sticks["l"][0] + (sl + complex(22, -20) - sticks["l"][0]) * lh_up
        wrist_r = sticks["r"][0] + circle
        inst["sticks"] = [(wrist_l, wrist_l + (sticks["l"][1] - sticks["l"][0]) * 1.6 * (1 - lh_up) + lh_up * complex(0, -25)),
                          (wrist_r, wrist_r + (sticks["r"][1] - sticks["r"][0]) * 1.6)]
        hand_dir_l = cmath.phase(inst["sticks"][0][1] - wrist_l)
        hand_dir_r = cmath.phase(inst["sticks"][1][1] - wrist_r)
        curl_l = curl_r = 1.0
        bend_r, bend_l = 1.0, -1.0
        mir_r, mir_l = 1.0, -1.0
    else:  # piano
        y0 = hip + complex(0, -4)
        inst["keyboard"] = (y0 + complex(-62, 0), y0 + complex(62, 12))
        inst["occluders"] = [[y0 + complex(-62, 0), y0 + complex(62, 0), y0 + complex(62, 40), y0 + complex(-62, 40)]]
        k = s["key"]
        x = -50 + 100 * _pitch_pos(k, "piano")
        # the hand whose side the note is on plays it; the other rests
        right_plays = x < 5
        press = 1.5 * s["press"] * s["stroke_amp"]
        xr = x if right_plays else -30.0
        xl = x if not right_plays else 30.0
        wrist_r = y0 + complex(xr - 4, -12 + (press if right_plays else 0)) + circle + complex(-4, -24) * prep
        wrist_l = y0 + complex(xl + 4, -12 + (press if not right_plays else 0))
        wrist_l = wrist_l + (sl + complex(22, -18) - wrist_l) * lh_up
        hand_dir_r = hand_dir_l = math.pi / 2 - 0.15
        hand_dir_l = hand_dir_l + 0.3 - lh_up * 2.5
        curl_l = curl_r = 0.45
        bend_r, bend_l = 1.0, -1.0
        mir_r, mir_l = 1.0, -1.0
    if s["rest"] > 0:
        wrist_r, wrist_l = _rest_hands(G, s, inst, instrument, wrist_r, wrist_l)
    G["inst"] = inst
    G["elbow_r"], G["wrist_r"] = _ik(sr, wrist_r, app.upper_arm, app.forearm, bend_r)
    G["elbow_l"], G["wrist_l"] = _ik(sl, wrist_l, app.upper_arm, app.forearm, bend_l)
    G["hand_r"] = _hand(G["wrist_r"], hand_dir_r, size, curl_r, mir_r)
    G["hand_l"] = _hand(G["wrist_l"], hand_dir_l, size, curl_l, mir_l)


# ---------------------------------------------------------------------------------------------
# key points

#: Face-mesh indices given in the truth (points that exist on the figure), with geometry names.
FACE_POINTS = {
    1: "nose_tip", 10: "forehead", 152: "chin", 234: "face_edge_r", 454: "face_edge_l",
    33: "eye_r_outer", 133: "eye_r_inner", 159: "eye_r_top", 145: "eye_r_bottom",
    263: "eye_l_outer", 362: "eye_l_inner", 386: "eye_l_top", 374: "eye_l_bottom",
    70: "brow_r_outer", 105: "brow_r_mid", 107: "brow_r_inner",
    300: "brow_l_outer", 334: "brow_l_mid", 336: "brow_l_inner",
    61: "mouth_r", 291: "mouth_l", 13: "lip_top_in", 14: "lip_bottom_in", 0: "lip_top", 17: "lip_bottom",
    168: "nose_top",
}
FACE_INDEX = tuple(sorted(FACE_POINTS))

#: MediaPipe pose landmark -> geometry name (or ("hand_l", i) for a hand point).
POSE_POINTS = {
    0: "nose_tip", 1: "eye_l_inner", 2: "eye_l", 3: "eye_l_outer", 4: "eye_r_inner", 5: "eye_r",
    6: "eye_r_outer", 7: "ear_l", 8: "ear_r", 9: "mouth_l", 10: "mouth_r", 11: "shoulder_l",
    12: "shoulder_r", 13: "elbow_l", 14: "elbow_r", 15: "wrist_l", 16: "wrist_r",
    17: ("hand_l", 17), 18: ("hand_r", 17), 19: ("hand_l", 5), 20: ("hand_r", 5),
    21: ("hand_l", 2), 22: ("hand_r", 2), 23: "hip_l", 24: "hip_r", 25: "knee_l", 26: "knee_r",
    27: "ankle_l", 28: "ankle_r", 29: "heel_l", 30: "heel_r", 31: "foot_l", 32: "foot_r",
}


def keypoints(G: dict) -> tuple[list[complex], list[complex], list[complex], list[complex]]:
    """Pose (33), face subset (:data:`FACE_INDEX` order), left hand (21), right hand (21)
    points of one frame, in figure units (complex)."""
    pose = []
    for i in range(33):
        ref = POSE_POINTS[i]
        pose.append(G[ref[0]][ref[1]] if isinstance(ref, tuple) else G[ref])
    face = [G[FACE_POINTS[i]] for i in FACE_INDEX]
    return pose, face, list(G["hand_l"]), list(G["hand_r"])


# indices of the pose points that the instrument can hide (hips, legs)
OCCLUDABLE_POSE = tuple(range(23, 33))


def point_in_polygon(p: complex, poly: list[complex]) -> bool:
    """Even-odd rule test of one point against a polygon (complex vertices)."""
    inside = False
    n = len(poly)
    x, y = p.real, p.imag
    for i in range(n):
        a, b = poly[i], poly[i - 1]
        if (a.imag > y) != (b.imag > y):
            xc = a.real + (y - a.imag) * (b.real - a.real) / (b.imag - a.imag)
            if x < xc:
                inside = not inside
    return inside
