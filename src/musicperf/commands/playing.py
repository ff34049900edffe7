"""``musicperf playing VIDEO [--json]``: playing / non-playing per performer over time (002 IV-B).

Default: motion and posture in each performer's region (given, or the upper body under each face
MediaPipe finds) with the audio activity (:func:`~musicperf.analysis.playing.playing_audio_visual`
and :func:`~musicperf.analysis.playing.rest_postures`). ``--ensemble``: the clustering pipeline
of Figure 2 with a scriptable labelling step (``--write-labels`` writes the sub-clusters to
label, ``--labels`` applies them). Parses the arguments and calls :func:`musicperf.api.playing`
(the pipeline is :func:`musicperf.analysis.media.detect_playing`). Heavy imports happen inside
:func:`run` only.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "playing",
        help="per performer, whether they are playing over time (motion + audio, or Figure 2 clustering)",
        description=(
            "Playing/non-playing detection (002 Section IV-B). Default: one region per performer (--regions, "
            "else the upper body below each face found in the first second). A soloist plays while the "
            "region's smoothed motion exceeds a share of its own high level (--threshold) and the audio is "
            "not silent. With several performers, everyone plays while the audio sounds, except a performer "
            "whose region stays still for a second or more (below 0.3 of their own usual motion) or who holds "
            "a rare posture for 1.5 s or more (bow, flute or hands lowered); where the audio sounds but "
            "nobody is left playing, the performer most active for their own level plays. --ensemble runs the "
            "clustering pipeline of Figure 2: key frames, faces, upper bodies, musicians by clustering, "
            "sub-clusters per musician, then a labelling step: --write-labels FILE.json writes every "
            "sub-cluster (and a contact sheet FILE.png) for a person to mark playing / non-playing / reject, "
            "--labels FILE.json applies the marks."
        ),
        epilog=("example: musicperf playing duet.mp4 --regions halves --json\n"
                "         musicperf playing concert.mp4 --ensemble --write-labels labels.json   # then edit it\n"
                "         musicperf playing concert.mp4 --ensemble --labels labels.json --json"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("video")
    p.add_argument("--regions", nargs="+", metavar="X,Y,W,H", help="one region per performer, or 'halves'/'thirds'")
    p.add_argument("--threshold", type=float, default=0.3,
                   help="share of a performer's 95th-percentile motion activity that counts as playing, for a "
                        "soloist or without audio (default 0.3)")
    p.add_argument("--no-audio", action="store_true", help="ignore the audio track")
    p.add_argument("--faces", choices=("auto", "mediapipe", "haar"), default="auto",
                   help="face detector: MediaPipe's full-range model (auto, when installed) or OpenCV's Haar cascade")
    p.add_argument("--ensemble", action="store_true", help="the face/upper-body clustering pipeline of Figure 2")
    p.add_argument("--musicians", type=int, help="number of musicians (default: chosen by silhouette)")
    p.add_argument("--subclusters", type=int, default=4, help="sub-clusters per musician (default 4)")
    p.add_argument("--step", type=float, default=0.5, help="seconds between key frames (default 0.5)")
    p.add_argument("--write-labels", metavar="FILE.json", help="write the sub-clusters to label and stop")
    p.add_argument("--labels", metavar="FILE.json", help="sub-cluster labels: playing / non-playing / reject")
    p.add_argument("--max-seconds", type=float, metavar="S", help="analyse only the first S seconds")
    p.add_argument("--plot", metavar="PNG", help="write the timeline as a figure")
    p.add_argument("--json", action="store_true", help="print playing intervals per performer as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from musicperf import api

    if args.ensemble and (args.write_labels or not args.labels):
        path = args.write_labels or str(args.video) + ".clusters.json"
        res = api.playing(args.video, ensemble=True, musicians=args.musicians, subclusters=args.subclusters,
                          step=args.step, faces=args.faces, max_seconds=args.max_seconds, write_labels=path)
        print(f"{len(res.observations)} faces, {res.n_musicians} musicians; wrote {path} (and its .png contact "
              "sheet): mark each sub-cluster playing / non-playing / reject, then rerun with --labels")
        return 0
    res = api.playing(args.video, regions=args.regions, threshold=args.threshold, audio=not args.no_audio,
                      faces=args.faces, ensemble=args.ensemble, musicians=args.musicians,
                      subclusters=args.subclusters, step=args.step, labels=args.labels,
                      max_seconds=args.max_seconds, plot=args.plot)
    if args.json:
        print(json.dumps(res.to_dict(), indent=1))
    else:
        for name, r in res.performers().items():
            spans = ", ".join(f"{s:.1f}-{e:.1f}" for s, e in r["playing"]) or "never"
            print(f"{name}: plays {100 * r['playing_share']:.0f} % of the time: {spans} s")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0
