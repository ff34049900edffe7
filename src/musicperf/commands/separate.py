"""``musicperf separate MIXTURE --motion FILE_OR_VIDEO --regions ... -o DIR``: motion-informed separation.

Section VI-B of 002 (Equation 2): KL-NMF of the mixture sharing its activations with the
players' motion speeds. Without ``--motion`` the audio-only NMF baseline runs (``--sources N``).
Parses the arguments and calls :func:`musicperf.api.separate` (the pipeline is
:func:`musicperf.analysis.media.separate_mixture`). Heavy imports happen inside :func:`run` only.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "separate",
        help="separate a music mixture into players' sources using their motion (NMF, Equation 2 of 002)",
        description=(
            "Motion-informed source separation (002 Section VI-B, Equation 2): the mixture's magnitude "
            "spectrogram is factorised by KL-NMF whose activations also explain the average motion speed of "
            "each player's region (M ~ H^T A, L1 penalty on A, unit-norm bases); each basis goes to the "
            "player whose motion weights it most; soft masks and inverse STFT give one WAV per player. "
            "--motion is a video (speeds measured in --regions) or a .npy/.csv matrix of speeds (frames x "
            "clusters) at --motion-fps. Without --motion, the audio-only NMF baseline (bases clustered by "
            "timbre, source order arbitrary) runs with --sources."
        ),
        epilog=("example: musicperf separate duet.wav --motion duet.mp4 --regions 40,80,80,90 200,80,80,90 -o sep/\n"
                "         musicperf separate duet.mp4 --motion duet.mp4 --regions halves -o sep/"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("mixture", help="audio file or video with the mixture")
    p.add_argument("--motion", metavar="FILE_OR_VIDEO", help="video of the players, or a .npy/.csv speed matrix")
    p.add_argument("--regions", nargs="+", metavar="X,Y,W,H",
                   help="one region per player in the video's first frame (pixels), or 'halves' / 'thirds' "
                        "to split the picture into equal vertical strips")
    p.add_argument("--grid", type=int, default=1,
                   help="split each region into GRID x GRID motion clusters (default 1)")
    p.add_argument("--clusters", metavar="N[,N...]",
                   help="with a speed matrix: its columns per player (default one each)")
    p.add_argument("--motion-fps", type=float, help="frame rate of a speed matrix")
    p.add_argument("--playing", metavar="auto|PLAYING.json",
                   help="a player's motion counts only while they play (a resting player's idle motion asks for no "
                        "sound), in every other restart (the others keep the motion as measured, in case the "
                        "estimate is wrong): 'auto' estimates playing/non-playing from the video's regions and the "
                        "mixture, as 'musicperf playing' does; or the output of 'musicperf playing --json' (players "
                        "in order)")
    p.add_argument("--instruments", metavar="NAME[,NAME...]",
                   help="each player's instrument, in player order (e.g. violin,flute). When a string player plays "
                        "with a flute, piano or other instrument whose sound does not follow the hand's motion, the "
                        "audio-only timbre clusters are used, named by the string players' motion (Equation 2 if the "
                        "motion gives no evidence at all); otherwise Equation 2")
    p.add_argument("--restarts", type=int, default=5,
                   help="factorisations from different random starts whose masks are averaged (default 5; 1 = the "
                        "paper's single run)")
    p.add_argument("--sources", type=int, help="number of sources for the audio-only baseline")
    p.add_argument("--components", type=int, default=30, help="NMF bases (default 30)")
    p.add_argument("--iterations", type=int, default=100, help="NMF iterations (default 100)")
    p.add_argument("--lam", type=float, default=1.0, help="lambda of Equation 2 (default 1)")
    p.add_argument("--mu", type=float, default=0.1, help="mu of Equation 2 (default 0.1)")
    p.add_argument("--sr", type=int, default=16000, help="working sample rate (default 16000)")
    p.add_argument("--reference", nargs="+", metavar="WAV", help="true sources, in player order: print SDR/SIR/SAR")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder for source1.wav ...")
    p.add_argument("--json", action="store_true", help="print the result (files, metrics) as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from musicperf import api

    clusters = None
    if args.clusters:
        from musicperf.errors import ParameterError

        try:
            clusters = [int(c) for c in args.clusters.split(",")]
        except ValueError:
            raise ParameterError(f"--clusters must be integers separated by commas, got {args.clusters!r}") from None
    instruments = args.instruments.split(",") if args.instruments else None
    res = api.separate(args.mixture, args.output, motion=args.motion, motion_fps=args.motion_fps,
                       regions=args.regions, grid=args.grid, clusters=clusters, playing=args.playing,
                       instruments=instruments, n_sources=args.sources, sr=args.sr, n_components=args.components,
                       n_iter=args.iterations, lam=args.lam, mu=args.mu, restarts=args.restarts,
                       references=args.reference)
    if args.json:
        print(json.dumps(res.to_dict(), indent=1))
    else:
        if res.result.method == "timbre+motion":
            print(f"sources: timbre clusters named by the players' motion (margin {res.result.naming_margin:.2f})")
        elif res.result.naming_margin is not None:
            print(f"sources: Equation 2 (the motion could not name the timbre clusters: margin "
                  f"{res.result.naming_margin:.2f})")
        for f in res.files:
            print(f"wrote {f}")
        metrics = res.metrics
        if metrics:
            for j in range(len(res.files)):
                print(f"source{j + 1}: SDR {metrics['sdr'][j]:.2f} dB, SIR {metrics['sir'][j]:.2f} dB, "
                      f"SAR {metrics['sar'][j]:.2f} dB")
            print(f"mean SDR {metrics['sdr_mean']:.2f} dB")
    return 0
