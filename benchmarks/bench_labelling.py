"""End-to-end labelling time and peak memory of musicperf's fast path, one measurement per process.

Sub-commands (each prints one JSON line; run them in fresh processes so the peak resident
memory, ``ru_maxrss``, is that of one measurement):

``cnn VIDEO``
    Label a video with a 3D-ResNet workflow model through :func:`musicperf.tasks.gestures.label_video`
    (decode in a background thread -> resize -> batches of clips -> frozen 3D-ResNet in the
    numeric mode chosen on the first batch -> head -> per-frame probabilities -> EAF, CSV,
    JSON). Random weights: the backbone of the papers (ResNet-34, 512 features), the head of the
    workflow; speed does not depend on the weights. ``--stride 16`` labels non-overlapping
    clips, as the reference pipeline does (the workflow's default is 8).
``landmarks VIDEO``
    MediaPipe Holistic on every ``--every``-th frame, interpolated in between, in ``--workers``
    processes on stretches of the video (0: one per CPU;
    :func:`musicperf.features.fastpath.sampled_landmarks`); with ``--compare-seconds S`` also runs
    every frame on the first S seconds and reports the mean distance (pixels) between the two.
``motion VIDEO``
    :func:`musicperf.features.motion.motion_features` (quantity and centroid of motion,
    motiongrams) and :func:`~musicperf.features.motion.dense_flow`.
``decode VIDEO``
    Frames per second of decoding to 112 x 112 RGB with each conversion method.
``grid``
    Training time of the Table 7 experiment grid of paper 001 on synthetic clip features.

    .venv/bin/python benchmarks/bench_labelling.py cnn ../shared/data/video/pianist.avi --stride 16
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_mb() -> float:
    """Largest peak of the child processes waited for (the MediaPipe workers)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def make_cnn_model(video: Path, *, depth: int, stride: int, classes: int = 7, mode: str = "auto",
                   compile: bool = False, width_factor: float = 1.0):
    """An in-memory workflow model: random 3D-ResNet backbone + random head (no training)."""
    import numpy as np
    import torch

    from musicperf.labels import Taxonomy
    from musicperf.models import SingleModelHead, build_backbone, get_normalization
    from musicperf.tasks.gestures import FeatureExtractor, GestureModel, GestureConfig, video_fps

    torch.manual_seed(0)
    cfg = GestureConfig(size=(112, 112), roi="full", backbone=f"resnet{depth}", label_stride=stride, clip_length=16)
    net = build_backbone(f"resnet{depth}", n_classes=0, width_factor=width_factor).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    extractor = FeatureExtractor(cfg, net, get_normalization("hara2018"), backbone_mode=mode, compile=compile)
    head = SingleModelHead(extractor.n_features, classes, hidden=cfg.hidden, dropout=0.0).eval()
    names = [f"class{k}" for k in range(classes)]
    meta = {"classes": names, "fps": video_fps(video)[0], "thresholds": [0.5] * classes, "model_id": "bench"}
    tax = Taxonomy(tuple(names), {c: c for c in names})
    return GestureModel(path=Path("bench-model"), meta=meta, head=head, mean=np.zeros(extractor.n_features, np.float32),
                        std=np.ones(extractor.n_features, np.float32), extractor=extractor, taxonomy=tax)


def run_cnn(args) -> dict:
    import torch

    from musicperf.tasks.gestures import Item, label_video, video_fps

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = make_cnn_model(args.video, depth=args.depth, stride=args.stride, mode=args.mode, compile=args.compile,
                           width_factor=args.width_factor)
    t_build = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = label_video(model, Item(args.video), Path(out))
        seconds = time.perf_counter() - t0
    duration = video_fps(args.video)[1]
    return {"seconds": seconds, "video_s": duration, "rtf": seconds / duration, "peak_rss_mb": peak_mb(),
            "build_s": t_build, "stride": args.stride, "clips": (summary["n_frames"] - 16) // args.stride + 1,
            "backbone_mode": summary.get("backbone_mode"), "threads": torch.get_num_threads(),
            "compile_s": getattr(model.extractor.runner, "compile_seconds", None)}


def run_landmarks(args) -> dict:
    import numpy as np

    from musicperf.features.fastpath import sampled_landmarks
    from musicperf.tasks.gestures import video_fps

    duration = video_fps(args.video)[1]
    end = None if args.seconds is None else args.seconds
    t0 = time.perf_counter()
    lm = sampled_landmarks(args.video, every=args.every, end=end, workers=args.workers or None, parts=args.parts,
                           max_every=args.max_every, motion_threshold=args.motion_threshold)
    seconds = time.perf_counter() - t0
    span = duration if end is None else min(end, duration)
    out = {"seconds": seconds, "video_s": span, "rtf": seconds / span, "every": args.every,
           "max_every": args.max_every, "motion_threshold": args.motion_threshold if args.max_every else None,
           "parts": args.parts or "all", "frames": len(lm),
           "model_frames": lm.meta["model_frames"], "segments": lm.meta["segments"], "peak_rss_mb": peak_mb(),
           "workers_peak_rss_mb": children_peak_mb(),
           "pose_detected": float(np.isfinite(lm.pose[:, 0, 0]).mean())}
    if args.compare_seconds:
        t0 = time.perf_counter()
        ref = sampled_landmarks(args.video, every=1, end=args.compare_seconds, workers=1, parts=args.parts)
        out["every_frame_one_process_rtf"] = (time.perf_counter() - t0) / min(args.compare_seconds, duration)
        n = len(ref)
        scale = np.array([lm.width, lm.height], dtype=np.float64)
        for part in ("pose", "left_hand", "right_hand", "face"):
            a, b = getattr(lm, part)[:n, :, :2], getattr(ref, part)[:, :, :2]
            ok = np.isfinite(a).all(-1) & np.isfinite(b).all(-1)
            d = np.linalg.norm((a - b) * scale, axis=-1)[ok]
            # Every frame where both found the point: model frames (different only through the
            # tracking state and the stretch boundaries) and interpolated ones alike.
            out[f"{part}_mean_px_error"] = float(d.mean()) if d.size else None
            out[f"{part}_p95_px_error"] = float(np.percentile(d, 95)) if d.size else None
            # Frames where every-frame tracking found the part and the sampled result has it missing.
            found_ref = np.isfinite(b[..., 0]).any(-1)
            lost = found_ref & ~np.isfinite(a[..., 0]).any(-1)
            out[f"{part}_lost"] = float(lost.sum() / max(found_ref.sum(), 1))
        out["compare_seconds"] = args.compare_seconds
    return out


def run_motion(args) -> dict:
    from musicperf.features.motion import dense_flow, motion_features
    from musicperf.tasks.gestures import video_fps

    duration = video_fps(args.video)[1]
    end = args.seconds
    span = duration if end is None else min(end, duration)
    out = {"video_s": span}
    t0 = time.perf_counter()
    m = motion_features(args.video, end=end)
    out["motion_s"] = time.perf_counter() - t0
    out["motion_frames"] = len(m)
    for method in args.flow:
        t0 = time.perf_counter()
        f = dense_flow(args.video, method=method, size=None if args.flow_native else (240, 320), end=end)
        out[f"flow_{method}_s"] = time.perf_counter() - t0
        out[f"flow_{method}_fps"] = len(f.times) / out[f"flow_{method}_s"]
    out["peak_rss_mb"] = peak_mb()
    return out


def run_decode(args) -> dict:
    from musicperf.features.fastpath import decode_frames

    out = {}
    for rep in range(args.repeats):
        for method in ("pyav", "opencv"):
            t0 = time.perf_counter()
            n = sum(1 for _ in decode_frames(args.video, size=(112, 112), end=args.seconds, method=method))
            out.setdefault(method, []).append(n / (time.perf_counter() - t0))
    return {f"{m}_fps": sorted(v)[len(v) // 2] for m, v in out.items()}


def run_grid(args) -> dict:
    """Table 7 of 001: {video 1, all videos} x {18, 7 classes} x {SM, SM+BB, SM+BB+TS, bimodal}.

    Synthetic clip features stand in for the 512 pooled 3D-ResNet features (and 28 x 108
    timbral features for the bimodal column): the time to train depends on their shapes, not
    their values. Sample counts are those of 001's Table 6 (video 1: 690, all: 2758); each
    cell trains the workflow's head (``fit_head``) for ``--epochs`` epochs with the cell's loss
    (MSE for SM, MSE + Dynamic Batch Balance for BB) and target (any-frame vs temporal
    smoothing for TS).
    """
    import numpy as np
    import torch

    from musicperf.tasks.gestures import GestureConfig, fit_head

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    cells = {}
    t_all = time.perf_counter()
    for data, n in (("video1", 690), ("all", 2758)):
        for k in (18, 7):
            for method in ("SM", "SM+BB", "SM+BB+TS", "Bimodal+SM+BB+TS"):
                f = 512 + (28 * 108 if method.startswith("Bimodal") else 0)
                X = rng.standard_normal((n, f)).astype(np.float32)
                Y = (rng.random((n, k)) < 0.15).astype(np.float32)
                if "TS" in method:  # temporal-smoothing targets are fractions, not 0/1
                    Y = Y * rng.uniform(0.3, 1.0, Y.shape).astype(np.float32)
                cfg = GestureConfig(loss="dbb" if "BB" in method else "mse", epochs=args.epochs)
                t0 = time.perf_counter()
                fit_head(X, Y, cfg, n_classes=k)
                cells[f"{data}/{k}/{method}"] = time.perf_counter() - t0
    return {"total_s": time.perf_counter() - t_all, "cells": cells, "epochs": args.epochs,
            "peak_rss_mb": peak_mb()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("cnn")
    p.add_argument("video", type=Path)
    p.add_argument("--depth", type=int, default=34)
    p.add_argument("--width-factor", type=float, default=1.0)
    p.add_argument("--stride", type=int, default=16)
    p.add_argument("--mode", default="auto")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=0)
    p = sub.add_parser("landmarks")
    p.add_argument("video", type=Path)
    p.add_argument("--every", type=int, default=2)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--compare-seconds", type=float, default=0.0)
    p.add_argument("--workers", type=int, default=0, help="MediaPipe processes (0: automatic, one per CPU)")
    p.add_argument("--parts", default=None, help="landmark groups, e.g. pose,hands (default: all, Holistic)")
    p.add_argument("--max-every", type=int, default=None, help="motion-driven sampling up to this many frames apart")
    p.add_argument("--motion-threshold", type=float, default=3.0, help="per cent of the performer's box that moved")
    p = sub.add_parser("motion")
    p.add_argument("video", type=Path)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--flow", nargs="*", default=["dis-fast"])
    p.add_argument("--flow-native", action="store_true")
    p = sub.add_parser("decode")
    p.add_argument("video", type=Path)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("grid")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    fn = {"cnn": run_cnn, "landmarks": run_landmarks, "motion": run_motion, "decode": run_decode,
          "grid": run_grid}[args.what]
    print(json.dumps(fn(args)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
