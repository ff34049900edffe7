"""``musicperf train``: train a gesture labeller on annotated videos."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a gesture labeller on annotated videos (e.g. the annotated first part)",
        description=(
            "Train a model that labels the tiers (or annotation values) of ELAN files. DATA are "
            "VIDEO=ANNOTATIONS pairs, folders of videos with same-named .eaf files, YAML manifests, or "
            "videos with a same-named .eaf beside them. Any tier names work. With --until T only the "
            "first T seconds of each video are used: annotate the start, train, then 'musicperf label "
            "--from T' the rest."
        ),
    )
    p.add_argument("data", nargs="+", metavar="DATA", help="VIDEO=ANNOTATIONS, a folder, a manifest.yaml or a video")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", help="model directory to write")
    p.add_argument("--until", type=float, default=None, metavar="SECONDS",
                   help="train on the first SECONDS of each video only (the annotated part)")
    p.add_argument("--config", default=None, metavar="FILE", help="YAML file of training settings (GestureConfig; flat, or by section)")
    p.add_argument("--taxonomy", default=None, metavar="FILE|NAME",
                   help="classes: a YAML mapping file, or gestures18 / superclasses7 (default: one class per tier)")
    # One option per setting that GestureConfig marks for the command line (--by, --backbone, --epochs, ...).
    from musicperf.tasks.gestures.config import add_cli_options

    add_cli_options(p)
    f = p.add_argument_group("labeller (see docs/labelling-real.md)")
    f.add_argument("--labeller", choices=("clip", "frame"), default="clip",
                   help="clip: a head on clip features (default); frame: per-frame tracks, MS-TCN / LightGBM / "
                        "constants chosen per class by blocked cross-validation")
    f.add_argument("--tiers", default=None, metavar="A,B",
                   help="frame: the tiers to learn (default: every tier but predictions, the 'annotated' spans tier "
                        "and free-text tiers)")
    f.add_argument("--annotated", default=None, metavar="START-END[,START-END...]",
                   help="frame: the spans (seconds) where absence of an annotation means absent (default: --until, "
                        "else a tier named 'annotated', else up to the last annotation)")
    f.add_argument("--tracks", default=None, metavar="T,U",
                   help="frame: per-frame tracks to compute (landmarks, flow, grid, audio; default all)")
    f.add_argument("--sets", default=None, metavar="S,T",
                   help="frame: feature sets to compare (all, landmarks, pixels, landmarks+flow; default all,landmarks,pixels)")
    f.add_argument("--candidates", default=None, metavar="M,N",
                   help="frame: models to compare (mstcn, linear, lightgbm, cliphead and the means mstcn+lightgbm, "
                        "linear+lightgbm, mstcn+linear, mstcn+linear+lightgbm; default all) besides the constants")
    p.add_argument("--overwrite", action="store_true", help="replace MODEL_DIR if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    g = p.add_argument_group("distributed training (start with torchrun)")
    g.add_argument("--distributed", action="store_true",
                   help="train with DistributedDataParallel, one process per torchrun rank (gloo on CPU, nccl on GPU)")
    g.add_argument("--features", default=None, metavar="DIR",
                   help="with --distributed: read clip features written by 'musicperf extract' from DIR when they match")
    g.add_argument("--backend", choices=("auto", "gloo", "nccl"), default="auto", help="process-group backend")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace):
    """The GestureConfig of ``--config`` with the command-line overrides applied."""
    from musicperf.tasks.gestures.config import config_from_args as derive

    return derive(args)


def _names(text):
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def run_frame(args: argparse.Namespace) -> int:
    from musicperf.api import train
    from musicperf.errors import ParameterError

    if args.distributed or args.features:
        raise ParameterError("--distributed and --features are for the clip labeller")
    if args.taxonomy:
        raise ParameterError("--taxonomy is for the clip labeller; choose the frame labeller's classes with --tiers")
    doc = train(args.data, args.output, until=args.until, annotated=args.annotated, config=config_from_args(args),
                overwrite=args.overwrite, progress=not args.quiet, labeller="frame", tiers=_names(args.tiers),
                tracks=_names(args.tracks), sets=_names(args.sets), candidates=_names(args.candidates), say=print)
    tr = doc["training"]
    print(f"trained on {sum(v['annotated_frames'] for v in tr['videos'])} annotated frames of {len(tr['videos'])} "
          f"video(s) in {tr['seconds_total']:.1f} s (cross-validation {tr['seconds']['cross_validation']:.1f} s)")
    print(f"model written to {args.output}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.labeller == "frame":
        return run_frame(args)
    for opt in ("tiers", "annotated", "tracks", "sets", "candidates"):
        if getattr(args, opt) is not None:
            from musicperf.errors import ParameterError

            raise ParameterError(f"--{opt} is an option of the frame labeller: add --labeller frame")
    if args.distributed:
        from musicperf.distributed.ddp import train_distributed

        meta = train_distributed(args.data, args.output, until=args.until, config=config_from_args(args),
                                 taxonomy=args.taxonomy, overwrite=args.overwrite, progress=not args.quiet,
                                 features_dir=args.features, backend=args.backend)
        if meta["training"]["distributed"]["rank"] != 0:
            return 0  # rank 0 reports
    else:
        if args.features:
            from musicperf.errors import ParameterError

            raise ParameterError("--features is for --distributed training")
        from musicperf.api import train

        meta = train(args.data, args.output, until=args.until, config=config_from_args(args), taxonomy=args.taxonomy,
                     overwrite=args.overwrite, progress=not args.quiet)
    tr = meta["training"]
    print(f"trained on {tr['n_train']} clips of {len(tr['videos'])} video(s) in {tr['seconds_total']:.1f} s; "
          f"thresholds from {tr['folds']}-fold blocked cross-validation")
    cfg = meta.get("config", {})
    if cfg.get("frame_features", "grid") != "grid" or list(cfg.get("modalities", ["video"])) != ["video"]:
        temporal = f" ({cfg.get('temporal')})" if "landmarks" in cfg.get("frame_features", "") else ""
        print(f"features: {cfg.get('frame_features')}{temporal}, modalities: {', '.join(cfg.get('modalities', []))}")
    for v in tr["videos"]:
        if v["resampled_from_fps"]:
            print(f"note: '{v['video']}' was resampled from {v['resampled_from_fps']:g} to {meta['fps']:g} fps")
    val = tr.get("validation") or {}
    per = val.get("per_class", {})
    print(f"{'class':<30} threshold  cross-validated F1 (frames)")
    for c, t in zip(meta["classes"], meta["thresholds"]):
        f1 = per.get(c, {}).get("f1")
        shown = "never predicted" if t > 1 else format(t, "9.3f")
        print(f"{c:<30} {shown:>9}  {'-' if f1 is None else format(f1, '.3f')}")
    print(f"model written to {args.output}")
    return 0
