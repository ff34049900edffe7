"""``musicperf separate MIXTURE --motion FILE_OR_VIDEO --regions ... -o DIR``: motion-informed separation.

Section VI-B of 002 (Equation 2): KL-NMF of the mixture sharing its activations with the
players' motion speeds. Without ``--motion`` the audio-only NMF baseline runs (``--sources N``).
Heavy imports happen inside :func:`run` only.
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
    from pathlib import Path

    import numpy as np

    from musicperf.analysis.separation import evaluate, separate
    from musicperf.errors import ParameterError
    from musicperf.io.audio import load_audio

    y, sr = load_audio(args.mixture, sr=args.sr)
    motion, fps, clusters = None, None, None
    if args.motion:
        mpath = Path(args.motion)
        if mpath.suffix.lower() in (".npy", ".csv", ".txt"):
            motion = np.load(mpath) if mpath.suffix.lower() == ".npy" else np.loadtxt(mpath, delimiter=",", ndmin=2)
            if not args.motion_fps:
                raise ParameterError(f"--motion-fps is needed with the speed matrix '{mpath}'")
            fps = args.motion_fps
            clusters = [int(c) for c in args.clusters.split(",")] if args.clusters else None
            if args.playing == "auto":
                raise ParameterError("--playing auto needs --motion to be a video (it watches the players' regions)")
        else:
            from musicperf.analysis.motion import auto_downscale, region_motion, split_region
            from musicperf.io.video import VideoReader

            auto = args.playing == "auto"
            thumbs = []
            with VideoReader(mpath) as reader:
                fps = reader.info.fps
                W, H = reader.info.width, reader.info.height
                regions = _regions(args.regions, W, H)
                cells = [c for r in regions for c in split_region(r, args.grid)]
                frames = (f for _t, f in reader)
                if auto:  # resting-posture thumbnails in the same pass as the motion
                    from musicperf.analysis.playing import thumbnail_tap

                    frames = thumbnail_tap(frames, regions, thumbs)
                # with a grid, the players' whole regions go along (for playing/non-playing)
                extra = regions if auto and args.grid > 1 else []
                m = region_motion(frames, cells + extra, fps=fps, compensate=True, downscale=auto_downscale(H))
            motion = m.speed[:, :len(cells)]
            clusters = [args.grid ** 2] * len(regions)
    elif not args.sources:
        raise ParameterError("give --motion (motion-informed) or --sources N (audio-only baseline)")
    instruments = None
    if args.instruments:
        if motion is None:
            raise ParameterError("--instruments needs --motion (the players' motion names the sources)")
        instruments = [i.strip() for i in args.instruments.split(",") if i.strip()]  # one per player: separate() checks
    playing = None
    if args.playing:
        if motion is None:
            raise ParameterError("--playing needs --motion (it gates each player's motion)")
        if args.playing == "auto":
            from musicperf.analysis.playing import playing_decision

            cols = slice(len(cells), None) if args.grid > 1 else slice(None)  # the players' whole regions
            playing = playing_decision(m.velocity[:, cols], fps, y=y, sr=sr, speed=m.speed[:, cols], thumbs=thumbs)
        else:
            playing = _playing_mask(args.playing, len(motion), fps, len(clusters) if clusters else np.shape(motion)[1])
    res = separate(y, sr, motion=motion, motion_fps=fps, clusters=clusters, n_sources=args.sources,
                   n_components=args.components, lam=args.lam, mu=args.mu, n_iter=args.iterations,
                   playing=playing, restarts=args.restarts, instruments=instruments)
    import soundfile as sf

    from musicperf._util import atomic_path

    out = Path(args.output)
    files = []
    for j, s in enumerate(res.sources):
        path = out / f"source{j + 1}.wav"
        with atomic_path(path) as tmp:
            sf.write(tmp, s.astype(np.float32), sr, subtype="FLOAT", format="WAV")
        files.append(str(path))
    metrics = None
    if args.reference:
        refs = np.stack([load_audio(r, sr=sr)[0][: len(y)] for r in args.reference])
        if len(refs) != len(res.sources):
            raise ParameterError(f"{len(refs)} references for {len(res.sources)} separated sources")
        n = min(refs.shape[1], res.sources.shape[1])
        metrics = evaluate(refs[:, :n], res.sources[:, :n], permute=motion is None)
    if args.json:
        method = {"motion": "motion-nmf", "audio": "audio-nmf", "timbre+motion": "timbre-nmf-named-by-motion"}[res.method]
        print(json.dumps(dict(mixture=str(args.mixture), method=method, naming_margin=res.naming_margin,
                              sources=files, metrics=metrics), indent=1))
    else:
        if res.method == "timbre+motion":
            print(f"sources: timbre clusters named by the players' motion (margin {res.naming_margin:.2f})")
        elif res.naming_margin is not None:
            print(f"sources: Equation 2 (the motion could not name the timbre clusters: margin "
                  f"{res.naming_margin:.2f})")
        for f in files:
            print(f"wrote {f}")
        if metrics:
            for j in range(len(files)):
                print(f"source{j + 1}: SDR {metrics['sdr'][j]:.2f} dB, SIR {metrics['sir'][j]:.2f} dB, "
                      f"SAR {metrics['sar'][j]:.2f} dB")
            print(f"mean SDR {metrics['sdr_mean']:.2f} dB")
    return 0


def _playing_mask(path, n_frames: int, fps: float, n_players: int):
    """(frames, players) playing mask from the JSON that ``musicperf playing --json`` prints."""
    import json
    from pathlib import Path

    from musicperf.analysis.playing import mask_from_intervals
    from musicperf.errors import AnnotationError

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        perf = list(data["performers"].values())
        mask = [mask_from_intervals(p["playing"], fps, n_frames) for p in perf]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AnnotationError(f"'{path}' is not the output of 'musicperf playing --json': {exc}") from None
    if len(mask) != n_players:
        raise AnnotationError(f"'{path}' has {len(mask)} performers but the motion has {n_players} players")
    import numpy as np

    return np.stack(mask, 1)


def _regions(spec, W: int, H: int):
    from musicperf.analysis.motion import Region, parse_region
    from musicperf.errors import ParameterError

    if not spec:
        raise ParameterError("--regions is needed with a video: one X,Y,W,H per player, or 'halves'")
    if len(spec) == 1 and spec[0] in ("halves", "thirds", "quarters"):
        n = {"halves": 2, "thirds": 3, "quarters": 4}[spec[0]]
        return [Region(i * W / n, 0, W / n, H) for i in range(n)]
    return [parse_region(s) for s in spec]
