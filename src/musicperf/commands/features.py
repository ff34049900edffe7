"""``musicperf features KIND ...``: compute per-sample features of a performance and save them.

Kinds are sub-sub-commands. ``audio`` lives here; a sibling kind (e.g. ``landmarks``) can be
added without editing this file, as a module ``musicperf/commands/_features_<kind>.py`` that
defines ``register(subparsers)`` like a top-level command (the leading underscore keeps the
main CLI from registering it twice).

``musicperf features audio MEDIA -o FILE.npy [--json]`` writes the timbral features of paper 001,
one ``(28, 108)`` matrix per video sample of ``--clip-frames`` frames: shape
``(n_segments, 28, 108)``. ``--kind mel`` writes log-mel patches instead. Calls
:func:`musicperf.api.features`. Heavy imports happen inside :func:`run_audio` only.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "features",
        help="compute per-sample features (audio, ...) of a performance and save them",
        description="Compute features aligned with the video samples of a performance.",
    )
    kinds = p.add_subparsers(dest="feature", metavar="KIND")
    _register_audio(kinds)
    import musicperf.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_features_"):
            importlib.import_module(f"musicperf.commands.{info.name}").register(kinds)
    p.set_defaults(func=lambda args: _no_kind(p))


def _no_kind(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


def _register_audio(kinds) -> None:
    p = kinds.add_parser(
        "audio",
        help="timbral features (001) or log-mel patches of a video's sound or an audio file",
        description=(
            "Write the audio features of MEDIA (a video with sound, or an audio file) as a .npy "
            "array with one row per video sample of --clip-frames frames (16 frames = 0.64 s at "
            "25 fps). --kind timbral (default): paper 001's 28 windows x 108 timbral features "
            "(20 MFCC, centroid, bandwidth, roll-off, flatness, contrast, ZCR, RMS and their "
            "1st-3rd derivatives): shape (n_segments, 28, 108). --kind mel: log-mel patches in "
            "dB, shape (n_segments, n_mels, n_frames)."
        ),
    )
    p.add_argument("media", help="video with an audio track, or an audio file")
    p.add_argument("-o", "--output", required=True, help="output .npy file")
    p.add_argument("--json", action="store_true",
                   help="print a JSON description (shape, feature names, segment times) instead of text")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT if it exists")
    p.add_argument("--kind", choices=("timbral", "mel"), default="timbral",
                   help="timbral features of 001 (default) or log-mel patches of 003/004")
    p.add_argument("--audio", metavar="FILE",
                   help="separate recording to use instead of the video's own track (e.g. a contact microphone)")
    p.add_argument("--offset", type=float, default=0.0, metavar="SECONDS",
                   help="video time of the recording's first sample: positive if the recorder "
                        "started after the camera, negative if before (default 0)")
    p.add_argument("--sr", type=int, default=22050, metavar="HZ",
                   help="resample to this rate: 22050 (default) or 48000")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate that defines the samples (default: the video's; 25 for an audio file)")
    p.add_argument("--clip-frames", type=int, default=16,
                   help="frames per video sample (default 16, i.e. 0.64 s at 25 fps)")
    p.add_argument("--n-windows", type=int, default=28, help="timbral: windows per sample (default 28)")
    p.add_argument("--n-fft", type=int, default=2048, help="window size in samples (default 2048)")
    p.add_argument("--hop-length", type=int, default=None,
                   help="hop in samples (timbral default: sample length / n-windows; mel default 512)")
    p.add_argument("--contrast", choices=("mean", "bands"), default="mean",
                   help="timbral: one averaged spectral contrast (108 features, default) or all 7 bands (132)")
    p.add_argument("--n-mels", type=int, default=128, help="mel: number of mel bands (default 128)")
    p.set_defaults(func=run_audio)


def run_audio(args: argparse.Namespace) -> int:
    import json

    from musicperf import api

    res = api.features(args.media, args.output, kind=args.kind, audio=args.audio, offset=args.offset, sr=args.sr,
                       fps=args.fps, clip_frames=args.clip_frames, n_windows=args.n_windows, n_fft=args.n_fft,
                       hop_length=args.hop_length, contrast=args.contrast, n_mels=args.n_mels,
                       overwrite=args.overwrite)
    info = res.info
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        what = "timbral features" if args.kind == "timbral" else "log-mel patches"
        n_samples = len(info["segment_starts_s"])
        print(f"{info['output']}: {what} {tuple(res.array.shape)} from {info['source']} "
              f"({n_samples} samples of {info['segment_s']:.3f} s at {info['sr']} Hz)")
    return 0
