"""Render and write synthetic music-performance videos with exact ground truth.

:func:`render` builds everything in memory (a frame iterator, the audio mix and stems, the truth
dictionary); :func:`synthesize` writes ``performance.mp4`` (H.264 + AAC 48 kHz),
``performance.eaf`` (one tier per gesture), ``truth.json``, ``stems/performerN.wav`` (two or
more performers) and optionally ``contact_sheets/<gesture>.png``. Pillow is imported when
frames are drawn, PyAV and soundfile when files are written; never at import time.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from musicperf._util import atomic_path, write_text_atomic
from musicperf.errors import ParameterError
from musicperf.synth import audio as _audio
from musicperf.synth import drawing as _draw
from musicperf.synth import figure as _fig
from musicperf.synth import scene as _scene
from musicperf.synth.gestures import (
    GESTURES,
    INSTRUMENTS,
    NORMAL_PLAY,
    applicable_gestures,
    parse_gestures,
    schedule_gestures,
    validate_schedule,
)
from musicperf.synth.score import complement, couple_dynamics, generate_score, play_intervals

TRUTH_FORMAT = "musicperf-synth-truth"
TRUTH_VERSION = 1

_TRUTH_DOC = (
    "Ground truth of a synthetic performance written by musicperf synth. Times in seconds from "
    "the first video frame (frame i shows time i / fps); audio sample j is at time j / sr. "
    "performers[p].gestures maps each of the 17 gesture names of Table 2 of "
    "Simistira Liwicki et al. (001) to its [start, end] intervals; 'Normal play' (the 18th class) "
    "is every frame where none of them is present and is not listed. play / non_play: "
    "intervals where the performer's instrument sounds / is silent. notes: performed notes "
    "(onset/offset performed, score_onset/score_midi written; wrong = wrong note). vibrato: "
    "per vibrato note, rate_hz and extent_cents (peak-to-peak pitch range in cents, the "
    "'dynamic range of the pitch contour' of 002 Section V-B). keypoints: per frame, in "
    "MediaPipe index layouts (pose 33, face mesh 468, hands 21); for each part 'index' lists "
    "the landmark indices given (others do not exist on the figure and are null), 'pixels' is "
    "(T, len(index), 2) x, y in output pixels (pixel (i, j) covers [i, i+1) x [j, j+1)), "
    "'normalized' is pixels / (width, height) like MediaPipe, 'visible' is 1 where the point is "
    "drawn, inside the image and not hidden by the instrument. left/right are the performer's "
    "anatomical sides (the left hand appears on the image right). Load with "
    "musicperf.synth.load_truth to get full (T, 33|468|21, 2) arrays with NaN for null. "
    "background.walkers (cluttered): a walker's centre is at x(t) = (x0 + speed t) mod (width + "
    "2 height) - height output pixels, feet at feet_y, plus the camera shake. Contact sheets show "
    "performer 1."
)


def gesture_slug(name: str) -> str:
    """File-name form of a gesture: ``"Eyes closed"`` -> ``"eyes_closed"``."""
    return name.lower().replace(" ", "_")


@dataclass
class Rendering:
    """An in-memory synthetic performance (see :func:`render`).

    Attributes
    ----------
    fps : float
    size : tuple of int
        (width, height) in pixels.
    n_frames : int
    sr : int
        Audio sample rate (48000).
    audio : numpy.ndarray
        ``(n,)`` float32 mix in [-1, 1], ``n = round(seconds * sr)``.
    stems : numpy.ndarray
        ``(performers, n)`` float32; they sum to ``audio``.
    truth : dict
        The content of ``truth.json``.
    """

    fps: float
    size: tuple
    n_frames: int
    sr: int
    audio: np.ndarray
    stems: np.ndarray
    truth: dict
    _frame_fn: object = field(repr=False, default=None)
    _background_fn: object = field(repr=False, default=None)

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield frames ``start..stop-1`` as ``(H, W, 3)`` uint8 RGB arrays."""
        stop = self.n_frames if stop is None else min(stop, self.n_frames)
        for i in range(start, stop):
            yield self._frame_fn(i)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as an ``(H, W, 3)`` uint8 RGB array."""
        if not 0 <= i < self.n_frames:
            raise ParameterError(f"frame {i} out of range 0..{self.n_frames - 1}")
        return self._frame_fn(i)

    def background(self, i: int) -> np.ndarray:
        """Frame ``i`` without the performers (background, distractors, shake; no noise)."""
        return self._background_fn(i)


def _check(seconds, fps, size, background, performers, instruments, skill, supersample):
    if not (isinstance(seconds, (int, float)) and 0.5 <= seconds <= 3600):
        raise ParameterError(f"seconds must be between 0.5 and 3600, got {seconds!r}")
    if not (1 <= fps <= 120):
        raise ParameterError(f"fps must be between 1 and 120, got {fps!r}")
    w, h = size
    if not (32 <= w <= 3840 and 32 <= h <= 2160) or w % 2 or h % 2:
        raise ParameterError(f"size must be even and between 32x32 and 3840x2160, got {w}x{h}")
    if background not in _scene.BACKGROUNDS:
        raise ParameterError(f"unknown background {background!r}; choose one of {', '.join(_scene.BACKGROUNDS)}")
    if performers not in (1, 2):
        raise ParameterError(f"performers must be 1 or 2, got {performers!r}")
    for ins in instruments:
        if ins not in INSTRUMENTS:
            raise ParameterError(f"unknown instrument {ins!r}; choose one of {', '.join(INSTRUMENTS)}")
    if len(instruments) not in (1, performers):
        raise ParameterError(f"give one instrument or one per performer, got {len(instruments)} for {performers} performers")
    if not (isinstance(skill, (int, np.integer)) and 0 <= skill <= 9):
        raise ParameterError(f"skill must be an integer 0..9, got {skill!r}")
    if supersample not in (1, 2, 3, 4):
        raise ParameterError(f"supersample must be 1..4, got {supersample!r}")


def _rng(seed: int, *path: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *path])


def render(
    *,
    seconds: float,
    seed: int,
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    background: str = "plain",
    performers: int = 1,
    instrument: str | list[str] = "guitar",
    skill: int = 9,
    gestures: str | list[str] | None = None,
    ensure_all: bool = False,
    schedule: dict | list[dict] | None = None,
    camera_shake: float = 0.6,
    noise: float = 2.0,
    supersample: int = 2,
    tempo: float | None = None,
    gesture_rate: float = 1.0,
    rests: list | None = None,
    motion_dynamics: bool = False,
) -> Rendering:
    """Build a synthetic performance in memory.

    Parameters
    ----------
    seconds : float
        Duration in seconds.
    seed : int
        Seeds everything (appearance, camera, background, schedule, score, sound); the same
        seed and options give identical output.
    fps : float
        Frame rate (25 like the videos of 001).
    size : (int, int)
        (width, height) in pixels, even numbers.
    background : {"plain", "textured", "cluttered"}
    performers : {1, 2}
        Two performers play side by side, each with its own schedule, stem and play intervals.
    instrument : str or list of str
        One of ``guitar, violin, flute, drums, piano``, or one per performer.
    skill : int
        0-9; 9 is an expert (see :func:`~musicperf.synth.score.generate_score`).
    gestures : "all", comma-separated str, list of str or None
        Gestures the scheduler may place (default all that apply to the instrument).
    ensure_all : bool
        At least one interval of each selected gesture (when the duration allows).
    schedule : dict or list of dict, optional
        Exact gesture intervals ``{name: [(start, end), ...]}`` (one dict per performer)
        instead of the scheduler.
    camera_shake : float
        RMS camera translation in pixels.
    noise : float
        Standard deviation of the Gaussian pixel noise (grey levels).
    supersample : int
        Anti-aliasing factor: frames are drawn this many times larger and box-filtered down.
    tempo : float, optional
        Beats per minute (seeded between 72 and 112 when None).
    gesture_rate : float
        Multiplies the per-gesture rates of Tables 2-3 of 001 (more gestures per minute, same
        proportions), e.g. for training data.
    rests : list, optional
        Realistic rests: one list of ``(start, end)`` seconds per performer (a flat list of
        pairs with one performer). During a rest the performer is silent (no note sounds in
        it: notes starting inside are dropped, notes sounding into it are cut at its start)
        but not still: the bow, the strumming or striking hand or the flute is lowered within
        0.35 s, the hands drift and fidget, breathing and sway go on and the head turns
        towards the partner (or the side, solo) now and then; everything comes back into
        playing position over the last 0.35 s. Gesture intervals overlapping a rest are
        removed from the schedule (the truth stays exact); ``truth.json`` then lists each
        performer's ``rests`` and ``play`` / ``non_play`` exclude them. None (the default)
        leaves the output byte-identical to renderings made before the option existed.
    motion_dynamics : bool
        Sound follows the speed of the sound-producing motion, the assumption of 002's
        motion-informed separation (Section VI-B): a violin note's loudness follows the bow's
        speed through the note (each note gets a loudness shape and a planned bow stroke, see
        :func:`~musicperf.synth.score.couple_dynamics`); a louder guitar note is strummed with
        a wider, faster swing and a louder piano note struck deeper. Flute and drums are
        unchanged (a flute's breath is not visible). False (the default) leaves the output
        byte-identical to renderings made before the option existed; True adds the notes'
        ``swell`` and ``bow`` and ``options.motion_dynamics`` to the truth.

    Returns
    -------
    Rendering
    """
    instruments = [instrument] if isinstance(instrument, str) else list(instrument)
    _check(seconds, fps, tuple(size), background, performers, instruments, skill, supersample)
    if len(instruments) == 1:
        instruments = instruments * performers
    if not gesture_rate > 0:
        raise ParameterError(f"gesture_rate must be > 0, got {gesture_rate}")
    if camera_shake < 0 or noise < 0:
        raise ParameterError(f"camera_shake and noise must be >= 0, got {camera_shake} and {noise}")
    sel = parse_gestures(gestures)
    if schedule is not None:
        schedules_in = [schedule] if isinstance(schedule, dict) else list(schedule)
        if len(schedules_in) != performers:
            raise ParameterError(f"schedule: give one dict per performer ({performers}), got {len(schedules_in)}")
    rest_ivs = _check_rests(rests, performers, seconds)
    w, h = int(size[0]), int(size[1])
    fps = float(fps)
    ss = int(supersample)
    n_frames = int(math.floor(seconds * fps + 1e-9))
    times = np.arange(n_frames) / fps
    sr = _audio.SR
    tempo = float(_rng(seed, 0).uniform(72, 112)) if tempo is None else float(tempo)
    key = int(_rng(seed, 1).integers(0, 12))

    perf = []
    for p in range(performers):
        ins = instruments[p]
        if schedule is not None:
            sched = validate_schedule(schedules_in[p], seconds, ins)
        else:
            if sel is not None:
                bad = [g for g in sel if g not in applicable_gestures(ins)]
                if bad:
                    raise ParameterError(f"gesture(s) {', '.join(bad)} do not apply to the {ins}")
            sched = schedule_gestures(seconds, _rng(seed, 10, p), instrument=ins, gestures=sel, ensure_all=ensure_all,
                                     rate_scale=gesture_rate)
        if rest_ivs is not None and rest_ivs[p]:
            sched = _clear_rests(sched, rest_ivs[p])
        notes = generate_score(seconds, sched, _rng(seed, 11, p), instrument=ins, tempo=tempo, skill=skill, key=key)
        if rest_ivs is not None and rest_ivs[p]:
            notes = _silence_rests(notes, rest_ivs[p])
        if motion_dynamics:  # its own generator: the other random streams are untouched
            notes = couple_dynamics(notes, ins, _rng(seed, 16, p))
        app = _fig.random_appearance(_rng(seed, 12, p), ins)
        states = _fig.compute_states(times, sched, notes, _rng(seed, 13, p), instrument=ins, tempo=tempo,
                                     motion_dynamics=bool(motion_dynamics))
        if rest_ivs is not None and rest_ivs[p]:
            # a separate generator: the default rendering's random streams are untouched
            _fig.add_rest_motion(states, times, rest_ivs[p], _rng(seed, 15, p), instrument=ins,
                                 look=(1.0 if p == 0 else -1.0) if performers > 1 else 0.0)
        stem = _audio.render_stem(notes, ins, seconds, _rng(seed, 14, p), sr)
        perf.append(dict(instrument=ins, schedule=sched, notes=notes, app=app, states=states, stem=stem))

    # audio: one gain for all stems so that they still sum to the mix
    stems = np.stack([p["stem"] for p in perf])
    peak = float(np.max(np.abs(stems.sum(0)))) if stems.size else 0.0
    gain = 0.8 / peak if peak > 0 else 1.0
    stems = (stems * gain).astype(np.float32)
    mix = stems.sum(0, dtype=np.float64).astype(np.float32)

    cam = _scene.make_camera(n_frames, fps, _rng(seed, 2), shake=camera_shake, noise=noise, size=(w, h), supersample=ss)
    margin = int(math.ceil(4 * camera_shake + 2))
    bg_img = _scene.make_background(background, (w, h), margin, ss, _rng(seed, 3))
    walkers = _scene.make_walkers((w, h), _rng(seed, 4)) if background == "cluttered" else []
    noise_rng = _rng(seed, 5)
    bank = [np.round(noise_rng.normal(0, noise, (h, w, 3))).astype(np.int16) for _ in range(12)] if noise > 0 else []
    noise_idx = noise_rng.integers(0, 12, n_frames)

    # figure placement: anchor (hips) and scale in output pixels
    unit = h / 240.0 * 1.3 * cam.zoom
    if performers == 1:
        anchors = [(w / 2 + cam.offset[0], h * 0.74 + cam.offset[1])]
        scales = [unit]
    else:
        anchors = [(w * 0.27 + cam.offset[0] * 0.5, h * 0.7 + cam.offset[1]), (w * 0.73 + cam.offset[0] * 0.5, h * 0.7 + cam.offset[1])]
        scales = [unit * 0.62, unit * 0.62]

    # key points of every frame; the geometry itself (0.1 ms a frame) is recomputed when a frame
    # is drawn rather than kept, so that long videos do not hold it in memory
    state_cols = []
    kp = []
    for p, pf in enumerate(perf):
        st = pf["states"]
        cols = {k: st[k].tolist() for k in _fig.STATE_KEYS}
        state_cols.append(cols)
        pose = np.zeros((n_frames, 33, 2))
        face = np.zeros((n_frames, len(_fig.FACE_INDEX), 2))
        lh = np.zeros((n_frames, 21, 2))
        rh = np.zeros((n_frames, 21, 2))
        vis_pose = np.ones((n_frames, 33), dtype=bool)
        ax, ay = anchors[p]
        sc = scales[p]
        for i in range(n_frames):
            s = {k: cols[k][i] for k in _fig.STATE_KEYS}
            G = _fig.geometry(s, pf["app"], pf["instrument"])
            po, fa, l_, r_ = _fig.keypoints(G)
            ox, oy = ax + cam.shake[i, 0], ay + cam.shake[i, 1]
            pose[i] = [(ox + sc * q.real, oy + sc * q.imag) for q in po]
            face[i] = [(ox + sc * q.real, oy + sc * q.imag) for q in fa]
            lh[i] = [(ox + sc * q.real, oy + sc * q.imag) for q in l_]
            rh[i] = [(ox + sc * q.real, oy + sc * q.imag) for q in r_]
            for occ in G["inst"].get("occluders", []):
                for j in _fig.OCCLUDABLE_POSE:
                    if vis_pose[i, j] and _fig.point_in_polygon(po[j], occ):
                        vis_pose[i, j] = False
        kp.append(dict(pose=pose, face=face, left_hand=lh, right_hand=rh, vis_pose=vis_pose))

    def inside(a):
        return (a[..., 0] >= 0) & (a[..., 0] < w) & (a[..., 1] >= 0) & (a[..., 1] < h)

    truth_perf = []
    for p, pf in enumerate(perf):
        k = kp[p]
        play = play_intervals(pf["notes"], seconds)
        vib = [dict(start=round(n.vibrato_start, 4), end=round(n.vibrato_end, 4), rate_hz=round(n.vibrato_rate, 5),
                    extent_cents=round(n.vibrato_extent, 4), midi=n.midi) for n in pf["notes"] if n.vibrato_rate is not None]
        parts = {}
        for name, arr, index, vis in (
            ("pose", k["pose"], list(range(33)), k["vis_pose"] & inside(k["pose"])),
            ("face", k["face"], list(_fig.FACE_INDEX), inside(k["face"])),
            ("left_hand", k["left_hand"], list(range(21)), inside(k["left_hand"])),
            ("right_hand", k["right_hand"], list(range(21)), inside(k["right_hand"])),
        ):
            parts[name] = dict(index=index, pixels=np.round(arr, 2).tolist(),
                               normalized=np.round(arr / [w, h], 5).tolist(), visible=vis.astype(int).tolist())
        truth_perf.append(dict(
            id=f"performer{p + 1}", instrument=pf["instrument"], skill=int(skill),
            tier_prefix="" if p == 0 else f"performer{p + 1}/",
            anchor_px=[round(anchors[p][0], 3), round(anchors[p][1], 3)], scale_px_per_unit=round(scales[p], 6),
            gestures={g: [[round(s, 4), round(e, 4)] for s, e in pf["schedule"][g]] for g in GESTURES},
            play=[list(iv) for iv in play], non_play=[list(iv) for iv in complement(play, seconds)],
            notes=[n.to_dict() for n in pf["notes"]], vibrato=vib,
            stem=f"stems/performer{p + 1}.wav" if performers > 1 else None,
            keypoints=parts,
        ))
        if rest_ivs is not None:
            truth_perf[-1]["rests"] = [[round(a, 4), round(b, 4)] for a, b in rest_ivs[p]]
    truth = dict(
        format=TRUTH_FORMAT, version=TRUTH_VERSION, doc=_TRUTH_DOC,
        gesture_names=list(GESTURES), normal_play=NORMAL_PLAY,
        options=dict(seconds=seconds, seed=int(seed), fps=fps, size=[w, h], background=background,
                     performers=performers, instrument=instruments, skill=int(skill),
                     gestures=None if sel is None else list(sel), ensure_all=bool(ensure_all),
                     scheduled=schedule is None, gesture_rate=gesture_rate, camera_shake=camera_shake, noise=noise,
                     supersample=ss),
        video=dict(path="performance.mp4", fps=fps, width=w, height=h, n_frames=n_frames, duration=n_frames / fps),
        audio=dict(sr=sr, n_samples=int(mix.size), gain=round(gain, 8),
                   stems=[f"stems/performer{p + 1}.wav" for p in range(performers)] if performers > 1 else []),
        tempo_bpm=round(tempo, 4), key=key,
        camera=dict(zoom=round(cam.zoom, 5), offset_px=[round(v, 3) for v in cam.offset],
                    shake_px=np.round(cam.shake, 3).tolist(), noise=noise),
        background=dict(kind=background, walkers=[dict(x0=round(wk.x0, 3), speed=round(wk.speed, 3), feet_y=round(wk.feet_y, 3),
                                                       height=round(wk.height, 3)) for wk in walkers]),
        performers=truth_perf,
    )

    def background_at(i: int):
        from PIL import ImageDraw

        sx = margin * ss - int(round(cam.shake[i, 0] * ss))
        sy = margin * ss - int(round(cam.shake[i, 1] * ss))
        img = bg_img.crop((sx, sy, sx + w * ss, sy + h * ss))
        if walkers:
            d = ImageDraw.Draw(img)
            for wk in walkers:
                _scene.draw_walker(d, wk, times[i], w, ss, (cam.shake[i, 0], cam.shake[i, 1]))
        return img

    def frame_at(i: int) -> np.ndarray:
        from PIL import ImageDraw

        img = background_at(i)
        d = ImageDraw.Draw(img)
        for p, pf in enumerate(perf):
            ax, ay = anchors[p]
            ox, oy = (ax + cam.shake[i, 0]) * ss, (ay + cam.shake[i, 1]) * ss
            k = scales[p] * ss

            def to_px(q, ox=ox, oy=oy, k=k):
                return (ox + k * q.real, oy + k * q.imag)

            G = _fig.geometry({key: state_cols[p][key][i] for key in _fig.STATE_KEYS}, pf["app"], pf["instrument"])
            _draw.draw_figure(d, G, pf["app"], pf["instrument"], to_px, k)
        if ss > 1:
            img = img.reduce(ss)
        arr = np.asarray(img)
        if bank:
            arr = np.clip(arr + bank[noise_idx[i]], 0, 255).astype(np.uint8)
        return arr

    def background_frame(i: int) -> np.ndarray:
        img = background_at(i)
        return np.asarray(img.reduce(ss) if ss > 1 else img)

    if rest_ivs is not None:
        truth["options"]["rests"] = [[[round(a, 4), round(b, 4)] for a, b in ivs] for ivs in rest_ivs]
        truth["doc"] = truth["doc"] + _REST_DOC
    if motion_dynamics:
        truth["options"]["motion_dynamics"] = True
        truth["doc"] = truth["doc"] + _DYNAMICS_DOC
    return Rendering(fps=fps, size=(w, h), n_frames=n_frames, sr=sr, audio=mix, stems=stems, truth=truth,
                     _frame_fn=frame_at, _background_fn=background_frame)


_REST_DOC = (
    " performers[p].rests (written only when rests were asked for): [start, end] intervals in "
    "which the performer rests: silent (they are non_play) but moving (instrument, bow or hands "
    "lowered, breathing, sway, head turns)."
)


_DYNAMICS_DOC = (
    " performers[p].notes[i].swell and .bow (written only with motion_dynamics, violin notes): the "
    "note's loudness at its start, middle and end relative to velocity (the bow's speed follows "
    "it), and its bow stroke in stroke units (the whole bow is -0.9..0.9; positive down-bow)."
)


def _check_rests(rests, performers: int, seconds: float) -> list[list[tuple[float, float]]] | None:
    """Validate ``rests`` of :func:`render`: one sorted, disjoint list of intervals per performer."""
    if rests is None:
        return None
    items = list(rests)
    # one performer may give a flat list of pairs
    if performers == 1 and items and all(isinstance(x, (list, tuple)) and len(x) == 2
                                         and all(isinstance(y, (int, float, np.integer, np.floating)) for y in x)
                                         for x in items):
        items = [items]
    if len(items) != performers:
        raise ParameterError(f"rests: give one list of (start, end) per performer ({performers}), got {len(items)}")
    out = []
    for p, ivs in enumerate(items):
        cur = []
        for iv in ivs:
            try:
                s, e = (float(v) for v in iv)
            except (TypeError, ValueError):
                raise ParameterError(f"rests of performer {p + 1}: {iv!r} is not a (start, end) pair of seconds") from None
            if not (0.0 <= s < e <= seconds) or e - s < 0.8:
                raise ParameterError(f"rest ({s}, {e}) of performer {p + 1} must lie in [0, {seconds}] s "
                                     f"and last >= 0.8 s (lowering and raising take 0.35 s each)")
            cur.append((s, e))
        cur.sort()
        for (s0, e0), (s1, _e1) in zip(cur, cur[1:]):
            if s1 < e0:
                raise ParameterError(f"rests of performer {p + 1} overlap: ({s0}, {e0}) and ({s1}, {_e1})")
        out.append(cur)
    return out


def _clear_rests(sched: dict, rests) -> dict:
    """The schedule without the gesture intervals that overlap a rest (a resting player does
    not play vibrato, freeze or reposition; keeping them would make the truth wrong)."""
    return {g: [(s, e) for s, e in ivs if not any(s < b and e > a for a, b in rests)] for g, ivs in sched.items()}


def _silence_rests(notes, rests):
    """Drop notes starting in a rest (or 50 ms before it) and cut notes sounding into it."""
    out = []
    for n in notes:
        if any(a - 0.05 <= n.onset < b for a, b in rests):
            continue
        for a, _b in rests:
            if n.onset < a < n.offset:
                n.offset = float(a)
                if n.vibrato_end is not None:
                    n.vibrato_end = min(n.vibrato_end, float(a))
        out.append(n)
    return out


# ---------------------------------------------------------------------------------------------
# writing


@dataclass
class SynthResult:
    """What :func:`synthesize` wrote.

    Attributes
    ----------
    out_dir : Path
    video : Path
        ``performance.mp4``.
    eaf : Path
        ``performance.eaf``.
    truth_path : Path
        ``truth.json``.
    stems : list of Path
        ``stems/performerN.wav`` (empty for one performer).
    contact_sheets : dict of str to Path
        Gesture name -> PNG (empty unless asked for).
    truth : dict
        The content of ``truth.json``.
    """

    out_dir: Path
    video: Path
    eaf: Path
    truth_path: Path
    stems: list
    contact_sheets: dict
    truth: dict


def annotation_set(truth: dict):
    """The gesture tiers of ``truth`` as an :class:`~musicperf.io.annotations.AnnotationSet`.

    One tier per gesture (all 17, empty ones included) per performer; the first performer's tiers
    carry the plain gesture names of Table 2 of 001, the second's are prefixed ``performer2/``.
    The annotation value is the gesture name; ``participant`` is the performer id; every tier
    uses the controlled vocabulary ``gestures`` (the 17 names), so ELAN offers them in a list.
    """
    from musicperf.io.annotations import Annotation, AnnotationSet, Tier

    aset = AnnotationSet(vocabularies={"gestures": list(GESTURES)})
    for pf in truth["performers"]:
        for g in GESTURES:
            anns = [Annotation(float(s), float(e), g) for s, e in pf["gestures"][g]]
            aset.add_tier(Tier(name=pf["tier_prefix"] + g, annotations=anns, participant=pf["id"],
                               annotator="musicperf synth", linguistic_type="gesture", vocabulary="gestures"))
    return aset


def _write_eaf(truth: dict, path: Path, media: Path) -> None:
    from musicperf.io.elan import write_eaf

    # a fixed creation date keeps the output byte-identical for the same seed and options
    write_eaf(annotation_set(truth), path, media=media, date="2000-01-01T00:00:00+00:00")


def encode_mp4(path: Path, frames: Iterator[np.ndarray], audio: np.ndarray | None, *, fps: float, size: tuple[int, int],
               sr: int = 48000, crf: int = 18, preset: str = "veryfast", threads: int = 1, on_frame=None) -> int:
    """Encode RGB frames (H.264, yuv420p) and mono float audio (AAC) into an MP4, atomically.

    With ``threads=1`` the bytes are reproducible (x264 is deterministic single-threaded and no
    creation date is written). ``on_frame(i, frame)`` is called for every frame. Returns the
    number of frames written.
    """
    import fractions

    import av

    w, h = size
    rate = fractions.Fraction(fps).limit_denominator(1001)
    n = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
            # mbtree=0: with macroblock-tree rate control, x264's assembly gave different bytes
            # from run to run for frame heights that are not a multiple of 16 (72, 240+8k...)
            # on an AVX-512 CPU, so synthetic data and every figure made from it varied.
            vs.options = {"crf": str(crf), "preset": preset,
                          "x264-params": f"threads={threads}:lookahead-threads=1:sliced-threads=0:mbtree=0"}
            vs.codec_context.thread_count = threads
            aus = None
            if audio is not None:
                aus = out.add_stream("aac", rate=sr)
                aus.layout = "mono"
                aus.options = {"b": "128k"}
            a_pos = 0
            chunk = 1024
            a32 = None if audio is None else np.ascontiguousarray(audio, dtype=np.float32)

            def push_audio(until: int):
                nonlocal a_pos
                while a32 is not None and a_pos < min(until, a32.size):
                    block = a32[a_pos:a_pos + chunk]
                    if block.size < chunk and a_pos + chunk <= a32.size:
                        break
                    af = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
                    af.sample_rate = sr
                    af.pts = a_pos
                    out.mux(aus.encode(af))
                    a_pos += block.size

            for i, fr in enumerate(frames):
                if on_frame is not None:
                    on_frame(i, fr)
                vf = av.VideoFrame.from_ndarray(fr, format="rgb24")
                vf.pts = i
                out.mux(vs.encode(vf))
                n += 1
                push_audio(int((i + 1) / fps * sr))
            out.mux(vs.encode(None))
            if a32 is not None:
                push_audio(a32.size + chunk)
                out.mux(aus.encode(None))
    return n


def _contact_sheet_plan(truth: dict, n_frames: int, fps: float, per_row: int = 6) -> dict[str, list[int]]:
    """Frame indices to show per gesture (evenly over its longest interval) and for normal play."""
    pf = truth["performers"][0]
    t = np.arange(n_frames) / fps
    active = np.zeros(n_frames, dtype=bool)
    plan = {}
    for g in GESTURES:
        ivs = pf["gestures"][g]
        for s, e in ivs:
            active |= (t + 1 / fps > s) & (t < e)
        if ivs:
            s, e = max(ivs, key=lambda iv: iv[1] - iv[0])
            idx = np.unique(np.clip(np.round(np.linspace(s * fps + 1, e * fps - 1, per_row)).astype(int), 0, n_frames - 1))
            plan[g] = idx.tolist()
    normal = np.nonzero(~active)[0]
    if normal.size:
        plan[NORMAL_PLAY] = normal[np.round(np.linspace(0, normal.size - 1, per_row)).astype(int)].tolist()
    return plan


_FACE_GESTURES = {"Eyes closed", "Frowning", "Facial expression", "Nodding", "Lifting head",
                  "Upbeat in head movement", "Expressive head movement"}


def _write_contact_sheets(out_dir: Path, truth: dict, plan: dict, frames: dict, fps: float) -> dict[str, Path]:
    from PIL import Image, ImageDraw

    w, h = truth["video"]["width"], truth["video"]["height"]
    pf = truth["performers"][0]
    pose = np.asarray(pf["keypoints"]["pose"]["pixels"])
    normal = plan.get(NORMAL_PLAY, [])
    out = {}
    label_h = 16
    for g in GESTURES:
        rows = []
        idx = plan.get(g, [])
        rows.append((f"{g}" if idx else f"{g}: not present in this video", idx))
        rows.append((f"{NORMAL_PLAY} (for comparison)", normal))
        cols = max(6, max((len(r[1]) for r in rows), default=0))
        sheet = Image.new("RGB", (cols * w, 2 * len(rows) * (h + label_h)), (255, 255, 255))
        d = ImageDraw.Draw(sheet)
        y = 0
        for title, ids in rows:
            # one crop for the whole row, so the motion of the body within it stays visible
            if ids:
                pts = pose[ids].mean(axis=0)
                if g in _FACE_GESTURES:
                    cx, cy = pts[0]
                    half = 0.17 * h
                else:
                    cx, cy = pts[[11, 12, 23, 24], 0].mean(), pts[[0, 11, 12, 23, 24], 1].mean()
                    half = 0.36 * h
                box = (cx - half * w / h, cy - half, cx + half * w / h, cy + half)
            for zoomed in (False, True):
                d.text((4, y + 2), title + (" - zoom" if zoomed else ""), fill=(0, 0, 0))
                for c, i in enumerate(ids):
                    im = Image.fromarray(frames[i])
                    if zoomed:
                        im = im.resize((w, h), Image.BICUBIC, box=box)
                    sheet.paste(im, (c * w, y + label_h))
                    d.text((c * w + 4, y + label_h + 2), f"t={i / fps:.2f}s", fill=(255, 255, 0))
                y += h + label_h
        path = out_dir / "contact_sheets" / f"{gesture_slug(g)}.png"
        with atomic_path(path) as tmp:
            sheet.save(tmp, format="PNG", compress_level=1)
        out[g] = path
    return out


def synthesize(
    out_dir: str | Path,
    *,
    seconds: float,
    seed: int,
    fps: float = 25.0,
    size: tuple[int, int] = (320, 240),
    background: str = "plain",
    performers: int = 1,
    instrument: str | list[str] = "guitar",
    skill: int = 9,
    gestures: str | list[str] | None = None,
    ensure_all: bool = False,
    schedule: dict | list[dict] | None = None,
    camera_shake: float = 0.6,
    noise: float = 2.0,
    supersample: int = 2,
    tempo: float | None = None,
    gesture_rate: float = 1.0,
    rests: list | None = None,
    motion_dynamics: bool = False,
    contact_sheet: bool = False,
    audio: bool = True,
    threads: int = 1,
    crf: int = 18,
    preset: str = "veryfast",
) -> SynthResult:
    """Write a synthetic performance to ``out_dir``.

    Writes ``performance.mp4`` (H.264 yuv420p + AAC 48 kHz mono unless ``audio=False``),
    ``performance.eaf`` (one tier per gesture, see :func:`annotation_set`), ``truth.json``
    (see :func:`render` and :func:`~musicperf.synth.truth.load_truth`), ``stems/performerN.wav``
    (IEEE float32, 48 kHz) when there are two performers, and with ``contact_sheet=True`` one PNG per
    gesture in ``contact_sheets/`` (frames within the gesture's longest interval above
    normal-play frames, each with a zoomed view). Every file is written atomically. The other
    parameters are those of :func:`render`; ``threads``, ``crf`` and ``preset`` go to x264
    (``threads=1`` keeps the bytes reproducible).

    Returns
    -------
    SynthResult
    """
    if threads < 1:
        raise ParameterError(f"threads must be >= 1, got {threads}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ParameterError(f"output '{out_dir}' exists and is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    r = render(seconds=seconds, seed=seed, fps=fps, size=size, background=background, performers=performers,
               instrument=instrument, skill=skill, gestures=gestures, ensure_all=ensure_all, schedule=schedule,
               camera_shake=camera_shake, noise=noise, supersample=supersample, tempo=tempo,
               gesture_rate=gesture_rate, rests=rests, motion_dynamics=motion_dynamics)
    video = out_dir / "performance.mp4"
    plan = _contact_sheet_plan(r.truth, r.n_frames, r.fps) if contact_sheet else {}
    wanted = {i for ids in plan.values() for i in ids}
    kept: dict[int, np.ndarray] = {}

    def keep(i, fr):
        if i in wanted:
            kept[i] = fr

    encode_mp4(video, r.frames(), r.audio if audio else None, fps=r.fps, size=r.size, sr=r.sr, crf=crf,
               preset=preset, threads=threads, on_frame=keep if wanted else None)
    truth = r.truth
    if not audio:
        truth["audio"]["in_video"] = False
    stems = []
    if performers > 1:
        # scipy writes a plain IEEE-float WAV; libsndfile would add a PEAK chunk with a timestamp
        from scipy.io import wavfile

        for p in range(performers):
            path = out_dir / "stems" / f"performer{p + 1}.wav"
            with atomic_path(path) as tmp:
                wavfile.write(str(tmp), r.sr, np.ascontiguousarray(r.stems[p], dtype=np.float32))
            stems.append(path)
    truth_path = out_dir / "truth.json"
    write_text_atomic(truth_path, json.dumps(truth, separators=(",", ":")))
    eaf = out_dir / "performance.eaf"
    _write_eaf(truth, eaf, video)
    sheets = _write_contact_sheets(out_dir, truth, plan, kept, r.fps) if contact_sheet else {}
    return SynthResult(out_dir=out_dir, video=video, eaf=eaf, truth_path=truth_path, stems=stems,
                       contact_sheets=sheets, truth=truth)
