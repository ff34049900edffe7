"""``musicperf features KIND ...``: compute per-sample features of a performance and save them.

Kinds are sub-sub-commands. ``audio`` lives here; a sibling kind (e.g. ``landmarks``) can be
added without editing this file, as a module ``musicperf/commands/_features_<kind>.py`` that
defines ``register(subparsers)`` like a top-level command (the leading underscore keeps the
main CLI from registering it twice).

``musicperf features audio MEDIA -o FILE.npy [--json]`` writes the timbral features of paper 001,
one ``(28, 108)`` matrix per video sample of ``--clip-frames`` frames: shape
``(n_segments, 28, 108)``. ``--kind mel`` writes log-mel patches instead. Heavy imports happen
inside :func:`run_audio` only.
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
    from pathlib import Path

    import numpy as np

    from musicperf._util import atomic_path
    from musicperf.errors import DecodeError, ParameterError
    from musicperf.features import audio as fa

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise ParameterError(f"'{out}' already exists; pass --overwrite to replace it")
    if args.clip_frames < 1:
        raise ParameterError(f"--clip-frames must be >= 1, got {args.clip_frames}")
    if args.fps is not None and args.fps <= 0:
        raise ParameterError(f"--fps must be > 0, got {args.fps}")

    media = Path(args.media)
    fps, n_samples = _sample_grid(media, args.fps, args.clip_frames)
    if fps is None and args.audio is not None:
        raise DecodeError(f"'{media}' has no video stream; --audio is only for videos")
    fps = fps or args.fps or 25.0
    seg = args.clip_frames / fps
    if n_samples == 0:
        raise ParameterError(
            f"video '{media}' is shorter than one sample of {args.clip_frames} frames ({seg:.3f} s)"
        )
    duration = None if n_samples is None else n_samples * seg
    pa = fa.load_performance_audio(media, audio=args.audio, offset=args.offset, sr=args.sr,
                                   duration=duration)
    if n_samples is None:  # an audio file: as many whole samples as it holds
        n_samples = int(len(pa.y) // int(round(seg * pa.sr)))
    if n_samples < 1:
        raise ParameterError(
            f"'{pa.source}' holds {pa.duration:.3f} s of audio, less than one sample of "
            f"{args.clip_frames} frames ({seg:.3f} s)"
        )
    starts = np.arange(n_samples) * seg
    if args.kind == "timbral":
        arr = fa.timbral_features(pa.y, pa.sr, segment_starts=starts, segment_duration=seg,
                                  n_windows=args.n_windows, n_fft=args.n_fft,
                                  hop_length=args.hop_length, contrast=args.contrast)
        names = fa.timbral_feature_names(contrast=args.contrast)
        hop = args.hop_length or fa.default_hop_length(pa.sr, seg, args.n_windows)
    else:
        hop = args.hop_length or 512
        arr = fa.mel_patches(pa.y, pa.sr, starts, duration=seg, n_mels=args.n_mels,
                             n_fft=args.n_fft, hop_length=hop)
        names = None
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)

    info = {
        "output": str(out),
        "kind": args.kind,
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "source": str(pa.source),
        "media": str(media),
        "offset_s": pa.offset,
        "sr": pa.sr,
        "fps": fps,
        "clip_frames": args.clip_frames,
        "segment_s": seg,
        "segment_starts_s": [round(float(t), 6) for t in starts],
        "n_fft": args.n_fft,
        "hop_length": hop,
    }
    if names is not None:
        info["feature_names"] = names
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        what = "timbral features" if args.kind == "timbral" else "log-mel patches"
        print(f"{out}: {what} {tuple(arr.shape)} from {pa.source} "
              f"({n_samples} samples of {seg:.3f} s at {pa.sr} Hz)")
    return 0


def _sample_grid(media, fps_override: float | None, clip_frames: int):
    """``(fps, n_samples)`` of a video, or ``(None, None)`` for a file without a video stream."""
    from musicperf.io.video import open_container, probe

    container = open_container(media)
    try:
        is_video = bool(container.streams.video)
    finally:
        container.close()
    if not is_video:
        return None, None
    info = probe(media)
    fps = fps_override or info.fps
    # Samples are whole, non-overlapping runs of clip_frames frames (001, section 5.1).
    n_frames = info.n_frames if fps_override is None else int(info.duration * fps)
    return fps, n_frames // clip_frames
