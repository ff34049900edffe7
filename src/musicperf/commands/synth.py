"""``musicperf synth OUT_DIR --seconds N --seed S [options]``: write a synthetic performance.

Writes ``performance.mp4``, ``performance.eaf``, ``truth.json`` (and ``stems/`` for two
performers, ``contact_sheets/`` with ``--contact-sheet``). Heavy imports happen inside
:func:`run` only.
"""

from __future__ import annotations

import argparse

_INSTRUMENTS = ("guitar", "violin", "flute", "drums", "piano")
_BACKGROUNDS = ("plain", "textured", "cluttered")


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 320x240, got {text!r}") from None
    return w, h


def _instrument(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    for p in parts:
        if p not in _INSTRUMENTS:
            raise argparse.ArgumentTypeError(f"unknown instrument {p!r}; choose from {', '.join(_INSTRUMENTS)}")
    return parts


def _rest(text: str) -> tuple[int, float, float]:
    try:
        who, span = text.split(":", 1) if ":" in text else ("1", text)
        a, b = span.split("-", 1)
        return int(who), float(a), float(b)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a rest looks like [PERFORMER:]START-END in seconds (e.g. 2:3.5-6), "
                                         f"got {text!r}") from None


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate a synthetic music-performance video with exact ground truth",
        description=(
            "Generate a synthetic performance: a seated performer drawn as an articulated figure "
            "performing the 17 expressive gestures of Table 2 of 001 while playing a generated "
            "score. Writes performance.mp4 (H.264 + AAC 48 kHz), performance.eaf (one tier per "
            "gesture) and truth.json (intervals, per-frame key points in MediaPipe layouts, "
            "vibrato rate/extent per note, play/non-play intervals). The same seed and options "
            "give identical files."
        ),
    )
    p.add_argument("out_dir", help="output folder (created)")
    p.add_argument("--seconds", type=float, default=20.0, help="duration in seconds (default 20)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--fps", type=float, default=25.0, help="frame rate (default 25)")
    p.add_argument("--size", type=_size, default=(320, 240), metavar="WxH", help="frame size (default 320x240)")
    p.add_argument("--background", choices=_BACKGROUNDS, default="plain",
                   help="plain, textured, or cluttered with walking distractors (default plain)")
    p.add_argument("--performers", type=int, choices=(1, 2), default=1, help="one or two performers side by side")
    p.add_argument("--instrument", type=_instrument, default=["guitar"], metavar="NAME[,NAME]",
                   help=f"one of {', '.join(_INSTRUMENTS)}, or one per performer (default guitar)")
    p.add_argument("--skill", type=int, default=9, choices=range(10), metavar="0..9",
                   help="9 = expert; lower adds timing jitter and wrong notes (default 9)")
    p.add_argument("--gestures", default="all",
                   help="'all' or a comma-separated list of gesture names the scheduler may use")
    p.add_argument("--ensure-all", action="store_true",
                   help="place every selected gesture at least once (needs about 1.5 s per gesture)")
    p.add_argument("--gesture-rate", type=float, default=1.0,
                   help="multiply the gesture rates of Tables 2-3 of 001 (default 1)")
    p.add_argument("--camera-shake", type=float, default=0.6, help="RMS camera shake in pixels (default 0.6)")
    p.add_argument("--noise", type=float, default=2.0, help="pixel noise standard deviation (default 2)")
    p.add_argument("--supersample", type=int, default=2, choices=(1, 2, 3, 4),
                   help="anti-aliasing factor (default 2)")
    p.add_argument("--rest", type=_rest, action="append", metavar="[P:]START-END",
                   help="performer P (default 1) rests from START to END s: silent but moving (instrument or bow "
                        "lowered, breathing, sway, head turns); repeat for more rests")
    p.add_argument("--motion-dynamics", action="store_true",
                   help="loudness follows the speed of the sound-producing motion (violin notes swell with the bow's "
                        "speed, louder strums swing wider, louder piano notes strike deeper; 002 VI-B's assumption)")
    p.add_argument("--contact-sheet", action="store_true",
                   help="also write contact_sheets/<gesture>.png: frames of each gesture above normal play")
    p.add_argument("--no-audio", action="store_true", help="video without an audio track")
    p.add_argument("--threads", type=int, default=1,
                   help="x264 threads (default 1: reproducible bytes; more is faster but not reproducible)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicperf import api
    from musicperf.errors import ParameterError

    instrument = args.instrument[0] if len(args.instrument) == 1 else args.instrument
    rests = None
    if args.rest:
        rests = [[] for _ in range(args.performers)]
        for who, a, b in args.rest:
            if not 1 <= who <= args.performers:
                raise ParameterError(f"--rest {who}:{a:g}-{b:g}: there are {args.performers} performer(s)")
            rests[who - 1].append((a, b))
    res = api.synth(
        args.out_dir, seconds=args.seconds, seed=args.seed, fps=args.fps, size=args.size,
        background=args.background, performers=args.performers, instrument=instrument, skill=args.skill,
        gestures=args.gestures, ensure_all=args.ensure_all, gesture_rate=args.gesture_rate, camera_shake=args.camera_shake, noise=args.noise,
        supersample=args.supersample, contact_sheet=args.contact_sheet, audio=not args.no_audio,
        threads=args.threads, rests=rests, motion_dynamics=args.motion_dynamics,
    )
    t = res.truth
    print(f"wrote {res.video} ({t['video']['n_frames']} frames, {t['video']['width']}x{t['video']['height']} "
          f"@ {t['video']['fps']:g} fps)")
    print(f"wrote {res.eaf}")
    print(f"wrote {res.truth_path}")
    for s in res.stems:
        print(f"wrote {s}")
    if res.contact_sheets:
        print(f"wrote {len(res.contact_sheets)} contact sheets in {res.out_dir / 'contact_sheets'}")
    for pf in t["performers"]:
        counts = {g: len(v) for g, v in pf["gestures"].items() if v}
        listed = ", ".join(f"{g} x{n}" for g, n in counts.items()) or "none"
        rest = "".join(f", rests {a:g}-{b:g} s" for a, b in pf.get("rests", []))
        print(f"{pf['id']} ({pf['instrument']}): {sum(counts.values())} gesture intervals: {listed}; "
              f"{len(pf['notes'])} notes, {len(pf['vibrato'])} vibrato notes{rest}")
    return 0
