"""The gesture vocabulary of the synthetic performer and its seeded event scheduler.

The 17 expressive gestures are those of Table 2 of 001 (plus "Normal play" = no other gesture).
Rates and mean durations are derived from Tables 2 and 3 of 001 (frames / occurrences over the
four videos, 2206 s in total), so the generated class imbalance resembles the paper's. The
co-occurrence rules follow the remarks on Figure 1 of 001. Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicperf.errors import ParameterError
# The 17 gesture classes in the order of Table 2 of 001 (exact strings: the tier names) and the
# 18th class, "Normal play" (frames where none of them is present; never a tier): one definition,
# shared with the taxonomies.
from musicperf.labels.taxonomy import GESTURES17 as GESTURES
from musicperf.labels.taxonomy import NORMAL_PLAY

INSTRUMENTS: tuple[str, ...] = ("guitar", "violin", "flute", "drums", "piano")

# Table 2 (frames, summed over the 4 videos) and Table 3 (occurrences, summed) of 001.
_TABLE2_FRAMES = {
    "Facial expression": 9422, "Nodding": 4444, "Right hand round": 4238,
    "Expressive shoulder movement": 10018, "Left hand gesture": 3775, "Lifting head": 6740,
    "Minimal movement": 12414, "Eyes closed": 3889, "Vibrato": 2108,
    "Expressive preparation": 2734, "Freeze": 4823, "Expressive head movement": 1462,
    "Frowning": 13587, "Physical energy": 1102, "Upbeat in head movement": 298,
    "Repositioning guitar": 2243, "Sympathetic body movement": 0,
}
_TABLE3_OCCURRENCES = {
    "Facial expression": 86, "Nodding": 188, "Right hand round": 69,
    "Expressive shoulder movement": 99, "Left hand gesture": 61, "Lifting head": 88,
    "Minimal movement": 39, "Eyes closed": 55, "Vibrato": 75, "Expressive preparation": 44,
    "Freeze": 70, "Expressive head movement": 27, "Frowning": 203, "Physical energy": 30,
    "Upbeat in head movement": 12, "Repositioning guitar": 40, "Sympathetic body movement": 0,
}
_TABLE_SECONDS = 480.55 + 434.28 + 662.29 + 628.93
_FPS_001 = 25.0

#: Gestures that exclude every other gesture (except the companions in :data:`_COMPANIONS`):
#: whole-body states of 001 ("minimal movement is anti-correlated with most of the gestures").
EXCLUSIVE = ("Freeze", "Minimal movement", "Repositioning guitar", "Expressive preparation")
# Gestures allowed to overlap an exclusive one (Figure 1 of 001: eyes closed, freeze and
# lifting head often appear together). They must cover the whole exclusive interval, because
# a freeze holds the pose of its first frame.
_COMPANIONS = {"Freeze": ("Eyes closed", "Lifting head")}
# Pairs that use the same limb in incompatible ways and therefore never overlap.
_CONFLICTS = {
    frozenset(("Vibrato", "Left hand gesture")),
    frozenset(("Right hand round", "Left hand gesture")),
    frozenset(("Nodding", "Upbeat in head movement")),
    frozenset(("Lifting head", "Upbeat in head movement")),
    frozenset(("Vibrato", "Physical energy")),
    frozenset(("Right hand round", "Vibrato")),
}
# Gestures that stop new note onsets (the hand that plays is busy elsewhere).
NO_ONSETS = ("Freeze", "Repositioning guitar", "Expressive preparation", "Right hand round",
             "Left hand gesture")
# Gestures that exist only for some instruments (see the module docs of figure.py).
_APPLIES = {
    "Vibrato": ("guitar", "violin"),
    "Repositioning guitar": ("guitar", "violin", "flute"),
    "Left hand gesture": ("guitar", "violin", "flute", "piano", "drums"),
}

# companion -> [(gesture that brings it, probability)], used by schedule_gestures and to
# correct the base rates in gesture_stats
_COMPANION_RATES = {
    "Eyes closed": [("Freeze", 0.5)],
    "Lifting head": [("Freeze", 0.5), ("Eyes closed", 0.6)],
}  # Facial expression with Frowning (p = 0.3) is not subtracted: it often finds no room

MIN_DURATION = 0.3
MAX_DURATION = 6.0


@dataclass(frozen=True)
class GestureStats:
    """Per-gesture scheduling statistics derived from Tables 2-3 of 001.

    Attributes
    ----------
    rate : float
        Occurrences per second of performance.
    mean_duration : float
        Mean interval length in seconds, clipped to [0.3, 6] s.
    """

    rate: float
    mean_duration: float


def gesture_stats() -> dict[str, GestureStats]:
    """Rates and mean durations of every gesture, from Tables 2 and 3 of 001.

    "Sympathetic body movement" never occurs in the four videos; it gets a small rate (one per
    four minutes) and a 3 s duration so long synthetic videos contain it occasionally.
    "Minimal movement" lasts 12.7 s on average in the paper; it is clipped to 6 s like every
    gesture (the issue asks for 0.3-6 s) and its rate raised so that its share of frames stays
    that of Table 2. The rates of the gestures that also come as companions (Eyes closed and
    Lifting head around a Freeze, Lifting head with Eyes closed) are lowered by the expected
    number of companions, so that the totals match.
    """
    out = {}
    for name in GESTURES:
        occ = _TABLE3_OCCURRENCES[name]
        if occ == 0:
            out[name] = GestureStats(rate=1 / 240.0, mean_duration=3.0)
            continue
        dur = _TABLE2_FRAMES[name] / occ / _FPS_001
        used = float(np.clip(dur, MIN_DURATION + 0.2, MAX_DURATION - 1.0))
        share = _TABLE2_FRAMES[name] / (_TABLE_SECONDS * _FPS_001)
        out[name] = GestureStats(rate=share / used, mean_duration=used)
    for name, adds in _COMPANION_RATES.items():
        extra = sum(p * out[src].rate for src, p in adds)
        out[name] = GestureStats(rate=max(out[name].rate - extra, 0.15 * out[name].rate),
                                 mean_duration=out[name].mean_duration)
    return out


def applicable_gestures(instrument: str) -> tuple[str, ...]:
    """The gestures that make sense for ``instrument`` (all 17 for the guitar)."""
    if instrument not in INSTRUMENTS:
        raise ParameterError(f"unknown instrument {instrument!r}; choose one of {', '.join(INSTRUMENTS)}")
    return tuple(g for g in GESTURES if instrument in _APPLIES.get(g, INSTRUMENTS))


def parse_gestures(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Turn ``"all"``, ``None``, a comma-separated string or a list into gesture names.

    Returns None for "all"/None (= every applicable gesture). Raises :class:`ParameterError`
    naming an unknown gesture.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec.strip().lower() == "all":
            return None
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    lower = {g.lower(): g for g in GESTURES}
    out = []
    for s in spec:
        if s.lower() not in lower:
            raise ParameterError(f"unknown gesture {s!r}; gestures are: {', '.join(GESTURES)}")
        out.append(lower[s.lower()])
    return tuple(out)


def _overlaps(a0: float, a1: float, b0: float, b1: float, margin: float = 0.0) -> bool:
    return a0 < b1 + margin and b0 < a1 + margin


class _Timeline:
    """Placed intervals with the scheduling constraints of the module docstring."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.items: list[tuple[str, float, float]] = []

    def fits(self, name: str, s: float, e: float) -> bool:
        if s < 0.05 or e > self.seconds - 0.05 or e - s < MIN_DURATION - 1e-9:
            return False
        for g, s2, e2 in self.items:
            if g == name and _overlaps(s, e, s2, e2, 0.3):
                return False
            if not _overlaps(s, e, s2, e2, 0.25):
                continue
            if g in EXCLUSIVE or name in EXCLUSIVE:
                ex, other, (xs, xe), (os_, oe) = (g, name, (s2, e2), (s, e)) if g in EXCLUSIVE else (name, g, (s, e), (s2, e2))
                if other in EXCLUSIVE or other not in _COMPANIONS.get(ex, ()):
                    return False
                # a companion must cover the exclusive interval with room to ramp in and out
                if not (os_ <= xs - 0.3 and oe >= xe + 0.1):
                    return False
                continue
            if frozenset((g, name)) in _CONFLICTS:
                return False
        return True

    def add(self, name: str, s: float, e: float) -> None:
        self.items.append((name, round(s, 3), round(e, 3)))


def schedule_gestures(
    seconds: float,
    rng: np.random.Generator,
    *,
    instrument: str = "guitar",
    gestures: tuple[str, ...] | None = None,
    ensure_all: bool = False,
    rate_scale: float = 1.0,
) -> dict[str, list[tuple[float, float]]]:
    """Draw gesture intervals for one performer.

    Counts are Poisson with the rates of :func:`gesture_stats` (times ``rate_scale``); durations
    are log-normal around the mean duration, clipped to [0.3, 6] s. Exclusive gestures
    (:data:`EXCLUSIVE`) are placed first, then the rest where the constraints allow. Co-occurrence
    rules (Figure 1 of 001): a Freeze brings Eyes closed and Lifting head around it with
    probability 0.5 each; Eyes closed brings Lifting head with probability 0.6; Frowning brings
    Facial expression with probability 0.3.

    Parameters
    ----------
    seconds : float
        Length of the performance in seconds.
    rng : numpy.random.Generator
    instrument : str
        Restricts the gestures to :func:`applicable_gestures`.
    gestures : tuple of str or None
        Only these gestures (None: all applicable ones).
    ensure_all : bool
        Place at least one interval of every selected gesture where the length allows
        (about 1.5 s of performance per gesture is needed).
    rate_scale : float
        Multiplies every rate (more events per second).

    Returns
    -------
    dict of str to list of (start, end)
        Every name of :data:`GESTURES` (empty lists for absent ones), intervals in seconds,
        sorted by start.
    """
    allowed = applicable_gestures(instrument)
    chosen = allowed if gestures is None else tuple(g for g in gestures if g in allowed)
    if gestures is not None:
        bad = [g for g in gestures if g not in allowed]
        if bad:
            raise ParameterError(f"gesture(s) {', '.join(bad)} do not apply to the {instrument}")
    stats = gesture_stats()
    tl = _Timeline(seconds)

    def duration(name: str) -> float:
        mu = stats[name].mean_duration
        return float(np.clip(mu * np.exp(rng.normal(-0.08, 0.4)), MIN_DURATION, MAX_DURATION))

    def place(name: str, dur: float, tries: int = 60) -> tuple[float, float] | None:
        dur = min(dur, max(MIN_DURATION, seconds / 4))
        for _ in range(tries):
            s = float(rng.uniform(0.1, max(0.11, seconds - dur - 0.1)))
            if tl.fits(name, s, s + dur):
                tl.add(name, s, s + dur)
                return s, s + dur
        return None

    def place_around(name: str, s: float, e: float, before: float, after: float) -> bool:
        s2, e2 = s - before, e + after
        if name in chosen and e2 - s2 <= MAX_DURATION and tl.fits(name, s2, e2):
            tl.add(name, s2, e2)
            return True
        return False

    counts = {g: int(rng.poisson(stats[g].rate * seconds * rate_scale)) for g in chosen}
    if ensure_all:
        for g in chosen:
            counts[g] = max(counts[g], 1)
    # rare classes first so that ensure_all finds them room
    order = [g for g in EXCLUSIVE if g in chosen] + sorted(
        (g for g in chosen if g not in EXCLUSIVE), key=lambda g: stats[g].rate)
    for g in order:
        for _ in range(counts[g]):
            iv = place(g, duration(g))
            if iv is None:
                continue
            s, e = iv
            if g == "Freeze":
                if rng.random() < 0.5:
                    place_around("Eyes closed", s, e, float(rng.uniform(0.35, 0.8)), float(rng.uniform(0.15, 0.5)))
                if rng.random() < 0.5:
                    place_around("Lifting head", s, e, float(rng.uniform(0.4, 0.9)), float(rng.uniform(0.15, 0.6)))
            elif g == "Eyes closed" and rng.random() < 0.6:
                place_around("Lifting head", s, e, float(rng.uniform(-0.1, 0.4)), float(rng.uniform(-0.1, 0.4)))
            elif g == "Frowning" and rng.random() < 0.3:
                place_around("Facial expression", s, e, float(rng.uniform(-0.2, 0.5)), float(rng.uniform(-0.2, 0.8)))
    out: dict[str, list[tuple[float, float]]] = {g: [] for g in GESTURES}
    for g, s, e in tl.items:
        out[g].append((s, e))
    for g in out:
        out[g].sort()
    return out


def validate_schedule(schedule: dict, seconds: float, instrument: str = "guitar") -> dict[str, list[tuple[float, float]]]:
    """Check a user-given schedule (gesture -> intervals) and return it complete and sorted.

    Raises :class:`ParameterError` for unknown gestures, inapplicable ones, intervals outside
    ``[0, seconds]`` or shorter than 0.1 s. Constraints between gestures are not enforced: a
    hand-written schedule is trusted (tests use it to place one gesture exactly).
    """
    allowed = applicable_gestures(instrument)
    out: dict[str, list[tuple[float, float]]] = {g: [] for g in GESTURES}
    for name, ivs in schedule.items():
        if name not in GESTURES:
            raise ParameterError(f"unknown gesture {name!r} in schedule; gestures are: {', '.join(GESTURES)}")
        if ivs and name not in allowed:
            raise ParameterError(f"gesture {name!r} does not apply to the {instrument}")
        for s, e in ivs:
            if not (0.0 <= s < e <= seconds) or e - s < 0.1:
                raise ParameterError(
                    f"schedule interval ({s}, {e}) of {name!r} must lie in [0, {seconds}] s and last >= 0.1 s")
            out[name].append((float(s), float(e)))
        out[name].sort()
    return out
