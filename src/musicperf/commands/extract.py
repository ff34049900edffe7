"""``musicperf extract``: per-video features for training or labelling, on a process pool or Ray.

Also holds the engine options shared with ``musicperf label --engine`` and the printing of a
batch run's progress and summary. Heavy imports happen inside the functions.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "extract",
        help="compute and store the features a model needs, per video (resumable; local pool or Ray cluster)",
        description=(
            "Write OUT/<name>.features.npz per video: the clip features of the labelling workflow (those of "
            "MODEL_DIR with -m, or of --config settings), optionally timbral audio features (--audio) and "
            "MediaPipe landmarks (--landmarks, OUT/<name>.landmarks.npz). A rerun skips finished videos; a video "
            "that fails is retried, then listed in OUT/musicperf-failures.json while the others go on."
        ),
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="videos, folders of videos or a manifest.yaml")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (shared by all nodes on a cluster)")
    p.add_argument("-m", "--model", default=None, metavar="MODEL_DIR", help="compute the features this model needs")
    p.add_argument("--config", default=None, metavar="FILE", help="YAML GestureConfig settings (without -m)")
    p.add_argument("--stride", type=int, default=None, metavar="FRAMES",
                   help="frames between clip starts (default: the model's label stride, or the config's train stride)")
    p.add_argument("--until", type=float, default=None, metavar="SECONDS", help="only clips ending before SECONDS")
    p.add_argument("--audio", action="store_true", help="also store timbral audio features (paper 001) per clip")
    p.add_argument("--landmarks", action="store_true", help="also store MediaPipe landmarks per video")
    p.add_argument("--overwrite", action="store_true", help="redo videos whose outputs exist")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    add_engine_options(p, default="local")
    p.set_defaults(func=run)


def add_engine_options(p: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """``--engine/--address/--workers/--retries/--cpus-per-worker/--gpus-per-worker``."""
    g = p.add_argument_group("batch engine")
    g.add_argument("--engine", choices=("local", "ray"), default=default,
                   help="run on a process pool on this machine (local) or a Ray cluster (ray)"
                        + ("" if default else "; without it, videos are labelled one by one in this process"))
    g.add_argument("--address", default=None, metavar="ADDR",
                   help="Ray cluster to join ('auto', 'HOST:6379', 'ray://HOST:10001'); none: start a local Ray")
    g.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes / Ray actors (default: one per CPU); each loads the model once")
    g.add_argument("--retries", type=int, default=1, metavar="N",
                   help="extra attempts for a video that fails before it is reported as failed (default 1)")
    g.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C", help="Ray: CPUs reserved per actor")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="Ray: GPUs reserved per actor (e.g. 1, or 0.5 to share a GPU between two)")


def _progress_printer(quiet: bool):
    if quiet:
        return None

    def show(p) -> None:
        print(f"progress: {p.line()}", file=sys.stderr, flush=True)

    return show


def _print_summary(summary: dict, what: str) -> int:
    c = summary["counts"]
    print(f"{what}: {c['done']} done ({summary['skipped']} already done before), {c['failed']} failed, "
          f"{c['pending']} remaining; {summary['processed']} processed in {summary['seconds']:.1f} s "
          f"({summary['throughput']:.1f} videos/min) on the {summary['engine']} engine")
    for f in summary["failures"]:
        print(f"failed: {f['video']} after {f['attempts']} attempt(s): {f['error']}")
    if summary["failures_report"]:
        print(f"failures listed in {summary['failures_report']}")
    return 0 if not summary["failures"] and not c["pending"] else 1


def _engine_kwargs(args: argparse.Namespace) -> dict:
    return {"engine": args.engine, "address": args.address, "workers": args.workers, "retries": args.retries,
            "num_cpus": args.cpus_per_worker, "num_gpus": args.gpus_per_worker, "overwrite": args.overwrite,
            "on_progress": _progress_printer(args.quiet)}


def run(args: argparse.Namespace) -> int:
    from musicperf import api

    summary = api.extract(args.videos, args.output, model_dir=args.model, config=args.config, stride=args.stride,
                            until=args.until, audio=args.audio, landmarks=args.landmarks, **_engine_kwargs(args))
    return _print_summary(summary, "extract")


def run_engine_label(args: argparse.Namespace) -> int:
    """``musicperf label --engine ...``: the batch path of the label command."""
    from musicperf.distributed.label import label_batch

    summary = label_batch(args.videos, args.model, args.output, after=args.after, **_engine_kwargs(args))
    return _print_summary(summary, "label")
