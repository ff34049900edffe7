"""``musicperf associate VIDEO --tracks A.wav B.wav [--regions ...]``: which player plays which track.

002 Section V-A: each player's motion onsets (changes of the mean motion vector of their
bowing/strumming region) are correlated with each track's audio onsets (or a score part's note
onsets), and players are matched to tracks by the Hungarian algorithm. Heavy imports happen
inside :func:`run` only.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "associate",
        help="match players in a video to audio tracks or score parts by onset correlation",
        description=(
            "Player-to-track association (002 Section V-A): the motion onsets of each player's region "
            "(bow changes, strums, strikes) are correlated with the onsets of each audio track (--tracks) "
            "or score part (--parts: .mid, .csv or .json notes), allowing +-2 frames of offset; players are "
            "assigned to tracks maximising the total correlation."
        ),
        epilog="example: musicperf associate duet.mp4 --tracks stems/performer1.wav stems/performer2.wav --regions halves",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("video")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--tracks", nargs="+", metavar="AUDIO", help="one audio file per track")
    src.add_argument("--parts", nargs="+", metavar="NOTES", help="one score part per track (.mid, .csv, .json)")
    p.add_argument("--regions", nargs="+", metavar="X,Y,W,H",
                   help="each player's bowing/strumming region, or 'halves'/'thirds' (default: the upper body "
                        "below each face found in the first second, else halves)")
    p.add_argument("--max-lag", type=int, default=2, help="frames of audio-video offset tolerated (default 2)")
    p.add_argument("--json", action="store_true", help="print the assignment and correlation matrix as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from musicperf.analysis import association as AS
    from musicperf.analysis.motion import auto_downscale, region_motion
    from musicperf.commands.separate import _regions
    from musicperf.io.video import VideoReader

    with VideoReader(args.video) as reader:
        fps = reader.info.fps
        W, H = reader.info.width, reader.info.height
        if args.regions:
            regions = _regions(args.regions, W, H)
        else:
            from musicperf.analysis import playing as PL
            from musicperf.commands.playing import _face_regions
            from musicperf.errors import ParameterError

            head = [f for _t, f in reader.frames(0.0, 1.0)]
            try:
                regions = _face_regions(PL, head, fps, W, H)
            except ParameterError:
                regions = _regions(["halves"], W, H)
            del head
        m = region_motion((f for _t, f in reader), regions, fps=fps, compensate=True, downscale=auto_downscale(H))
    T = len(m.speed)
    motion = AS.motion_onset_strength(m.velocity)
    if args.tracks:
        from musicperf.io.audio import load_audio

        names = list(args.tracks)
        tracks = np.stack([AS.audio_onset_strength(load_audio(t, sr=22050)[0], 22050, fps, T) for t in names], 1)
    else:
        from musicperf.analysis.pitch import read_notes

        names = list(args.parts)
        tracks = np.stack([AS.onsets_to_envelope([n.onset for n in read_notes(p)], fps, T) for p in names], 1)
    res = AS.associate(motion, tracks, max_lag=args.max_lag)
    if args.json:
        d = res.to_dict()
        d.update(video=str(args.video), tracks=names,
                 regions=[[round(r.x, 1), round(r.y, 1), round(r.w, 1), round(r.h, 1)] for r in regions])
        print(json.dumps(d, indent=1))
    else:
        for i, t in enumerate(res.track_of_player):
            name = names[t] if t >= 0 else "(no track)"
            corr = f" (correlation {res.matrix[i, t]:.2f})" if t >= 0 else ""
            print(f"player {i + 1}: {name}{corr}")
    return 0
