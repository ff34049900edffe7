"""``musicperf skill train|predict|evaluate|synth``: piano performance skill assessment (paper 004).

Heavy imports (torch, the task module) happen inside the command functions only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _size(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 112x112, got {text!r}") from None
    return a, b


def _ratio(text: str) -> tuple[int, int]:
    try:
        v, a = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"features must look like 128:128 (video:audio), got {text!r}") from None
    return v, a


def _progress(i: int, n: int, path) -> None:
    print(f"reading {i + 1}/{n}: {path}", file=sys.stderr)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "skill", help="grade a pianist's skill from hands/keyboard video and sound (paper 004)",
        description="Skill assessment after 004: a 3-D ResNet-18 over clips of the hands-and-keyboard region and a "
                    "2-D ResNet-18 over the mel spectrogram (dB), each reduced to 128 features, per-modality heads and "
                    "a fusion head that does not back-propagate into the backbones; clips averaged per video.")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])

    t = sub.add_parser("train", help="train on PISA-style annotations (video id -> level)")
    t.add_argument("annotations", help="CSV/TSV/text: video id and player level per line (PISA style)")
    t.add_argument("--videos", default=None, metavar="DIR", help="folder of the videos (default: the annotation file's)")
    t.add_argument("-o", "--output", required=True, help="model folder to write")
    t.add_argument("--roi", default="auto", help="auto (hand landmarks), full, or x0,y0,x1,y1 in pixels")
    t.add_argument("--clip-length", type=int, default=16)
    t.add_argument("--clip-stride", type=int, default=16)
    t.add_argument("--clip-size", type=_size, default=(112, 112), metavar="HxW")
    t.add_argument("--max-clips", type=int, default=32, help="clips per video at most, spread evenly (default 32)")
    t.add_argument("--audio-seconds", type=float, default=None,
                   help="mel window per clip, centred on it (default: the clip's own span)")
    t.add_argument("--n-mels", type=int, default=128)
    t.add_argument("--features", type=_ratio, default=(128, 128), metavar="V:A",
                   help="video:audio feature sizes after the linear reductions (004: 128:128; Table 2 varies it)")
    t.add_argument("--video-backbone", default="resnet18", choices=("resnet10", "resnet18", "resnet34", "resnet50", "r3d_18"))
    t.add_argument("--video-weights", default=None, metavar="PTH", help="Hara or torchvision 3-D ResNet checkpoint")
    t.add_argument("--audio-backbone", default="resnet18", choices=("resnet18", "resnet34", "resnet50"))
    t.add_argument("--width-factor", type=float, default=1.0, help="channel scale of the 3-D ResNet")
    t.add_argument("--audio-width-factor", type=float, default=1.0, help="channel scale of the 2-D ResNet")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--val-fraction", type=float, default=0.2)
    t.add_argument("--patience", type=int, default=10)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--modality-dropout", type=float, default=0.3,
                   help="training only: drop the fusion head's video or audio input with this probability each "
                        "(our addition; 0 = 004's plain fusion)")
    t.add_argument("--augment", default="flip+color", choices=("none", "flip", "flip+color"),
                   help="training-time clip augmentation (our addition): random flips, and colour-channel "
                        "permutations so that players' clothes do not identify them (default flip+color)")
    t.add_argument("--cache", default=None, metavar="DIR",
                   help="keep each video's clips and mel windows here as .npy files and train from them "
                        "memory-mapped (default: OUTPUT/cache; 'none' holds them in memory)")
    t.add_argument("--fresh", action="store_true",
                   help="ignore OUTPUT/train_state.safetensors (by default an interrupted run resumes from it)")
    t.set_defaults(func=run_train)

    pr = sub.add_parser("predict", help="say which level each video shows")
    pr.add_argument("videos", nargs="+")
    pr.add_argument("-m", "--model", required=True)
    pr.add_argument("--roi", default=None, help="override the model's region of interest: auto, full or x0,y0,x1,y1")
    pr.add_argument("--max-seconds", type=float, default=None, help="only look at the first N seconds")
    pr.add_argument("--json", action="store_true", help="one JSON object per video")
    pr.set_defaults(func=run_predict)

    ev = sub.add_parser("evaluate", help="per-video accuracy of the video, audio and fusion branches")
    ev.add_argument("annotations")
    ev.add_argument("--videos", default=None, metavar="DIR")
    ev.add_argument("-m", "--model", required=True)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=run_evaluate)

    sy = sub.add_parser("synth", help="write synthetic piano performances per skill (musicperf synth --skill) and annotations.csv")
    sy.add_argument("out_dir")
    sy.add_argument("--skills", default="0,9", help="synthetic skills 0..9 (level = skill + 1), comma-separated")
    sy.add_argument("--per-level", type=int, default=4)
    sy.add_argument("--seconds", type=float, default=6.0)
    sy.add_argument("--size", type=_size, default=(128, 96), metavar="WxH")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--camera-shake", type=float, default=0.0,
                    help="camera shake of the synthesizer (default 0: a fixed camera, as in PISA)")
    sy.set_defaults(func=run_synth)


def run_train(args) -> int:
    from musicperf import api
    from musicperf.tasks.skill import SkillConfig, parse_roi
    from musicperf.train.loop import TrainConfig

    cfg = SkillConfig(clip_length=args.clip_length, clip_stride=args.clip_stride, clip_size=args.clip_size,
                      max_clips=args.max_clips, roi=parse_roi(args.roi), audio_seconds=args.audio_seconds,
                      n_mels=args.n_mels, video_features=args.features[0], audio_features=args.features[1],
                      video_backbone=args.video_backbone, video_weights=args.video_weights,
                      audio_backbone=args.audio_backbone, width_factor=args.width_factor,
                      audio_width_factor=args.audio_width_factor, modality_dropout=args.modality_dropout,
                      augment=args.augment)
    tc = TrainConfig(lr=args.lr, weight_decay=1e-4, batch_size=args.batch_size, epochs=args.epochs,
                     patience=args.patience, seed=args.seed)
    out = Path(args.output)
    model = api.skill_train(args.annotations, out, videos=args.videos, config=cfg, train_config=tc,
                            val_fraction=args.val_fraction, cache=args.cache, resume=not args.fresh,
                            progress=_progress)
    h = model.meta["training"]
    acc = h["best_accuracy"]
    if h["resumed_from"]:
        print(f"resumed from the checkpoint after epoch {h['resumed_from']} ({out / 'train_state.safetensors'})")
    print(f"trained on {len(model.meta['split']['train'])} videos, levels {', '.join(model.classes)}; "
          f"best epoch {h['best_epoch']}" + ("" if acc != acc else f", validation clip accuracy (fusion) {acc:.3f}"))
    print(f"wrote {args.output}")
    return 0


def run_predict(args) -> int:
    import numpy as np

    from musicperf import api

    for r in api.skill_predict(args.videos, args.model, roi=args.roi, max_seconds=args.max_seconds):
        p, classes, best = r["probabilities"], r["levels"], r["prediction"]
        if args.json:
            # the branches' probabilities follow the path under the same key "video" (kept as it was)
            print(json.dumps({"video": r["video"], "levels": classes, "prediction": best, **p,
                              "roi": r["roi"], "roi_source": r["roi_source"], "n_clips": r["n_clips"]}))
            continue
        probs = ", ".join(f"{c} {x:.2f}" for c, x in zip(classes, p["fusion"]))
        print(f"{r['video']}: level {best} (fusion: {probs}; video only: {classes[int(np.argmax(p['video']))]}, "
              f"audio only: {classes[int(np.argmax(p['audio']))]}; {r['n_clips']} clips, "
              f"region {tuple(r['roi'])} from {r['roi_source']})")
    return 0


def run_evaluate(args) -> int:
    from musicperf import api
    from musicperf.tasks.skill import SkillModel

    model = SkillModel.load(args.model)
    rep = api.skill_evaluate(args.annotations, model, videos=args.videos, progress=_progress)
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"{rep['n_videos']} videos, levels {', '.join(model.classes)}; most-frequent-level accuracy {rep['chance']:.3f}")
    for b in ("video", "audio", "fusion"):
        print(f"{b:8s} accuracy {rep[b]['accuracy']:.3f}  macro F1 {rep[b]['f1_macro']:.3f}")
    return 0


def run_synth(args) -> int:
    from musicperf import api

    try:
        skills = [int(s) for s in args.skills.split(",") if s.strip()]
    except ValueError:
        from musicperf.errors import ParameterError

        raise ParameterError(f"--skills must be integers 0..9 separated by commas, got {args.skills!r}") from None
    path = api.skill_synth(args.out_dir, skills=skills, per_level=args.per_level, seconds=args.seconds,
                           size=args.size, seed=args.seed, camera_shake=args.camera_shake)
    print(f"wrote {len(skills) * args.per_level} videos and {path}")
    return 0
