"""``musicperf instrument train|predict|evaluate|synth``: instrument recognition (paper 003).

Heavy imports (torch, the task module) happen inside the command functions only.
"""

from __future__ import annotations

import argparse
import json
import sys


def _size(text: str) -> tuple[int, int]:
    try:
        a, b = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 299x299, got {text!r}") from None
    return a, b


def _progress(i: int, n: int, path) -> None:
    print(f"reading {i + 1}/{n}: {path}", file=sys.stderr)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "instrument", help="recognise the instrument played in a video (frames + soundtrack, late fusion; paper 003)",
        description="Instrument recognition after 003: k frames per video through a 2-D CNN, mel spectrogram "
                    "patches through an audio CNN, and a late-fusion network over their (k+1, n) penultimate features.")
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])

    t = sub.add_parser("train", help="train on a labelled dataset and write a model folder")
    t.add_argument("dataset", help="CSV of path,label, or a folder with one sub-folder per class")
    t.add_argument("-o", "--output", required=True, help="model folder to write")
    t.add_argument("--frames", type=int, default=30, help="frames sampled per video, k (003: 20, 30, 50, 100; default 30)")
    t.add_argument("--frame-backbone", default="inception_v3", choices=("inception_v3", "resnet18", "resnet34", "resnet50"))
    t.add_argument("--frame-size", type=_size, default=None, metavar="HxW",
                   help="frame size fed to the CNN (default 299x299 for inception_v3, 224x224 for ResNets)")
    t.add_argument("--frame-weights", default=None, metavar="PTH",
                   help="torchvision inception_v3/resnet state dict to start from (default: random initialisation)")
    t.add_argument("--audio-net", default="choi", choices=("han", "choi", "xception"))
    t.add_argument("--n-mels", type=int, default=96)
    t.add_argument("--audio-seconds", type=float, default=3.0, help="length of each mel patch (default 3 s)")
    t.add_argument("--embed-dim", type=int, default=1024, help="penultimate size n of both networks (default 1024)")
    t.add_argument("--width-factor", type=float, default=1.0, help="channel scale of the frame CNN (small for quick tests)")
    t.add_argument("--audio-width-factor", type=float, default=1.0, help="channel scale of the audio CNN")
    t.add_argument("--augment", default="flip", choices=("none", "flip", "flip+color"))
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--fusion-epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--val-fraction", type=float, default=0.2, help="share of each class held out for model selection")
    t.add_argument("--patience", type=int, default=10)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--cache", default=None, metavar="DIR",
                   help="keep sampled frames and mel patches here as .npy files and train from them memory-mapped "
                        "(default: OUTPUT/cache; 'none' holds them in memory)")
    t.add_argument("--fresh", action="store_true",
                   help="ignore OUTPUT/train_state.*.safetensors (by default an interrupted run resumes from them)")
    t.set_defaults(func=run_train)

    pr = sub.add_parser("predict", help="say which instrument each video shows")
    pr.add_argument("videos", nargs="+")
    pr.add_argument("-m", "--model", required=True)
    pr.add_argument("--top", type=int, default=3, help="classes listed per video (default 3)")
    pr.add_argument("--json", action="store_true", help="one JSON object per video")
    pr.set_defaults(func=run_predict)

    ev = sub.add_parser("evaluate", help="Hit@1, Hit@3 and F1 of video-only, audio-only and fused predictions")
    ev.add_argument("dataset")
    ev.add_argument("-m", "--model", required=True)
    ev.add_argument("--json", action="store_true")
    ev.add_argument("--cache", default=None, metavar="DIR")
    ev.set_defaults(func=run_evaluate)

    sy = sub.add_parser("synth", help="write a synthetic labelled dataset (musicperf synth per instrument) and labels.csv")
    sy.add_argument("out_dir")
    sy.add_argument("--instruments", default="guitar,violin,flute,drums,piano")
    sy.add_argument("--per-class", type=int, default=4)
    sy.add_argument("--seconds", type=float, default=3.0)
    sy.add_argument("--size", type=_size, default=(128, 96), metavar="WxH")
    sy.add_argument("--seed", type=int, default=0)
    sy.set_defaults(func=run_synth)


def run_train(args) -> int:
    from musicperf import api
    from musicperf.tasks.instrument import InstrumentConfig
    from musicperf.train.loop import TrainConfig

    size = args.frame_size or ((299, 299) if args.frame_backbone == "inception_v3" else (224, 224))
    cfg = InstrumentConfig(k_frames=args.frames, frame_backbone=args.frame_backbone, frame_size=size,
                           frame_weights=args.frame_weights, audio_network=args.audio_net, n_mels=args.n_mels,
                           audio_seconds=args.audio_seconds, embed_dim=args.embed_dim, width_factor=args.width_factor,
                           audio_width_factor=args.audio_width_factor, augment=args.augment)
    tc = TrainConfig(lr=args.lr, weight_decay=1e-4, batch_size=args.batch_size, epochs=args.epochs,
                     patience=args.patience, seed=args.seed)
    model = api.instrument_train(args.dataset, args.output, config=cfg, train_config=tc,
                                 val_fraction=args.val_fraction, fusion_epochs=args.fusion_epochs, cache=args.cache,
                                 resume=not args.fresh, progress=_progress)
    tr = model.meta["training"]
    done = {s: tr[s]["resumed_from"] for s in ("frame", "audio", "fusion") if tr[s]["resumed_from"]}
    if done:
        print("resumed from the checkpoints (" + ", ".join(f"{s} after epoch {e}" for s, e in done.items()) + ")")
    print(f"trained on {len(model.meta['split']['train'])} videos ({', '.join(model.classes)}); "
          f"validated on {len(model.meta['split']['val'])}")
    for stage in ("frame", "audio", "fusion"):
        h = tr[stage]
        acc = h["best_accuracy"]
        print(f"  {stage:6s}: best epoch {h['best_epoch']}" + ("" if acc != acc else f", validation accuracy {acc:.3f}"))
    print(f"wrote {args.output}")
    return 0


def run_predict(args) -> int:
    import numpy as np

    from musicperf import api

    for r in api.instrument_predict(args.videos, args.model):
        p, classes = r["probabilities"], r["classes"]
        if args.json:
            # the branches' probabilities follow the path under the same key "video" (kept as it was)
            print(json.dumps({"video": r["video"], "classes": classes, **p, "prediction": r["prediction"]}))
            continue
        fusion = np.asarray(p["fusion"])
        order = fusion.argsort()[::-1][: max(1, args.top)]
        best = ", ".join(f"{classes[i]} {fusion[i]:.2f}" for i in order)
        print(f"{r['video']}: {classes[order[0]]} (fusion: {best}; video only: {classes[int(np.argmax(p['video']))]}, "
              f"audio only: {classes[int(np.argmax(p['audio']))]})")
    return 0


def run_evaluate(args) -> int:
    from musicperf import api
    from musicperf.tasks.instrument import InstrumentModel

    model = InstrumentModel.load(args.model)
    rep = api.instrument_evaluate(args.dataset, model, cache=args.cache, progress=_progress)
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"{rep['n_videos']} videos, {len(model.classes)} classes; most-frequent-class accuracy {rep['chance']:.3f}")
    print(f"{'modality':8s} {'Hit@1':>6s} {'Hit@3':>6s} {'F1':>6s}")
    for b in ("video", "audio", "fusion"):
        r = rep[b]
        print(f"{b:8s} {r['hit@1']:6.3f} {r['hit@3']:6.3f} {r['f1_macro']:6.3f}")
    return 0


def run_synth(args) -> int:
    from musicperf import api

    instruments = [s.strip() for s in args.instruments.split(",") if s.strip()]
    path = api.instrument_synth(args.out_dir, instruments=instruments, per_class=args.per_class,
                                seconds=args.seconds, size=args.size, seed=args.seed)
    print(f"wrote {len(instruments) * args.per_class} videos and {path}")
    return 0
