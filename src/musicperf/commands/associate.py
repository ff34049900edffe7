"""``musicperf associate VIDEO --tracks A.wav B.wav [--regions ...]``: which player plays which track.

002 Section V-A: each player's motion onsets (changes of the mean motion vector of their
bowing/strumming region) are correlated with each track's audio onsets (or a score part's note
onsets), and players are matched to tracks by the Hungarian algorithm. Parses the arguments and calls
:func:`musicperf.api.associate` (the pipeline is :func:`musicperf.analysis.media.associate_tracks`).
Heavy imports happen inside :func:`run` only.
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

    from musicperf import api

    res = api.associate(args.video, tracks=args.tracks, parts=args.parts, regions=args.regions, max_lag=args.max_lag)
    if args.json:
        print(json.dumps(res.to_dict(), indent=1))
    else:
        for i, t in enumerate(res.track_of_player):
            name = res.tracks[t] if t >= 0 else "(no track)"
            corr = f" (correlation {res.matrix[i, t]:.2f})" if t >= 0 else ""
            print(f"player {i + 1}: {name}{corr}")
    return 0
