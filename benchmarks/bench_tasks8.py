"""Fusion vs video-only vs audio-only on synthetic data, for instrument recognition (003) and
piano skill assessment (004); optionally 004's video:audio feature-ratio study (Table 2).

Prints markdown tables (the ones in README.md (section 'Instrument recognition and piano skill assessment')) and, with --json, one JSON object.

    .venv/bin/python benchmarks/bench_tasks8.py                 # both tasks, default sizes
    .venv/bin/python benchmarks/bench_tasks8.py --task skill --ratios 128:128,1024:128,128:512
    .venv/bin/python benchmarks/bench_tasks8.py --quick         # minutes less, numbers noisier

Synthetic videos are written once to --data (default /tmp/musicperf_bench_tasks8) and reused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _split(items, test_per_class):
    by = {}
    for i, it in enumerate(items):
        by.setdefault(it.label, []).append(i)
    test = sorted(i for idx in by.values() for i in idx[-test_per_class:])
    train = sorted(set(range(len(items))) - set(test))
    return train, test


def bench_instrument(args) -> dict:
    from musicperf.tasks.instrument import (InstrumentConfig, evaluate_instrument, load_inputs,
                                            read_labelled_videos, synth_instrument_dataset, train_instrument)
    from musicperf.train.loop import TrainConfig

    per_class = 5 if args.quick else 10
    root = Path(args.data) / f"instrument_{per_class}"
    csv = root / "labels.csv"
    t0 = time.perf_counter()
    if not csv.is_file():
        synth_instrument_dataset(root, per_class=per_class, seconds=3.0, size=(128, 96), seed=args.seed)
    items = read_labelled_videos(csv)
    cfg = InstrumentConfig(k_frames=10, frame_backbone="resnet18", frame_size=(96, 128), audio_network=args.audio_net,
                           n_mels=64, audio_seconds=1.0, embed_dim=64, fusion_hidden=128, width_factor=0.25,
                           audio_width_factor=0.25, augment="flip+color")
    inputs = load_inputs(items, cfg, cache_dir=root / "cache")
    t_data = time.perf_counter() - t0
    train, test = _split(items, 2 if args.quick else 3)
    t0 = time.perf_counter()
    model = train_instrument([items[i] for i in train], cfg,
                             TrainConfig(epochs=15 if args.quick else 25, batch_size=32, weight_decay=1e-4, patience=None,
                                         seed=args.seed),
                             val_fraction=0.0, fusion_epochs=150, inputs=[inputs[i] for i in train])
    t_train = time.perf_counter() - t0
    rep = evaluate_instrument(model, [items[i] for i in test], inputs=[inputs[i] for i in test])
    return {"classes": model.classes, "n_train": len(train), "n_test": len(test), "chance": rep["chance"],
            "seconds_data": round(t_data, 1), "seconds_train": round(t_train, 1),
            "results": {b: {k: rep[b][k] for k in ("accuracy", "hit@1", "hit@3", "f1_macro")} for b in ("video", "audio", "fusion")},
            "config": cfg.to_dict()}


def bench_skill(args, ratios) -> dict:
    from musicperf.tasks.skill import (SkillConfig, evaluate_skill, load_skill_inputs, read_skill_annotations,
                                       synth_skill_dataset, train_skill)
    from musicperf.train.loop import TrainConfig

    per_level = 6 if args.quick else 12
    root = Path(args.data) / f"skill_{per_level}"
    ann = root / "annotations.csv"
    t0 = time.perf_counter()
    if not ann.is_file():
        synth_skill_dataset(root, skills=(0, 9), per_level=per_level, seconds=8.0, size=(160, 120), seed=args.seed)
    items = read_skill_annotations(ann)
    out = {"n_videos": len(items), "runs": []}
    inputs = None
    for ratio in ratios:
        v, a = (int(x) for x in ratio.split(":"))
        cfg = SkillConfig(clip_length=8, clip_stride=4, clip_size=(64, 64), max_clips=16, audio_seconds=3.0,
                          n_mels=64, n_fft=1024, width_factor=0.25, audio_width_factor=0.25,
                          video_features=v, audio_features=a)
        if inputs is None:
            inputs = load_skill_inputs(items, cfg)
            out["seconds_data"] = round(time.perf_counter() - t0, 1)
        train, test = _split(items, 2 if args.quick else 4)
        t1 = time.perf_counter()
        model = train_skill([items[i] for i in train], cfg,
                            TrainConfig(epochs=8 if args.quick else 12, batch_size=32, weight_decay=1e-4, patience=None,
                                        seed=args.seed),
                            val_fraction=0.0, inputs=[inputs[i] for i in train])
        rep = evaluate_skill(model, [items[i] for i in test], inputs=[inputs[i] for i in test])
        out["runs"].append({"ratio": ratio, "n_train": len(train), "n_test": len(test), "chance": rep["chance"],
                            "seconds_train": round(time.perf_counter() - t1, 1),
                            "accuracy": {b: rep[b]["accuracy"] for b in ("video", "audio", "fusion")},
                            "final_train_loss": model.meta["training"]["history"][-1]["train_loss"]})
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=("instrument", "skill", "both"), default="both")
    ap.add_argument("--data", default="/tmp/musicperf_bench_tasks8")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--audio-net", default="choi", choices=("han", "choi", "xception"))
    ap.add_argument("--ratios", default="128:128", help="video:audio feature sizes for the skill task, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    res = {}
    if args.task in ("instrument", "both"):
        r = bench_instrument(args)
        res["instrument"] = r
        if not args.json:
            print(f"## Instrument recognition (003), synthetic: {len(r['classes'])} classes, "
                  f"{r['n_train']} training / {r['n_test']} test videos, chance {r['chance']:.2f}")
            print("| modality | Hit@1 | Hit@3 | F1 (macro) |\n|---|---|---|---|")
            for b, name in (("video", "video only (k frames)"), ("audio", "audio only"), ("fusion", "late fusion")):
                m = r["results"][b]
                print(f"| {name} | {m['hit@1']:.2f} | {m['hit@3']:.2f} | {m['f1_macro']:.2f} |")
            print(f"(data {r['seconds_data']} s, training {r['seconds_train']} s)\n")
    if args.task in ("skill", "both"):
        r = bench_skill(args, args.ratios.split(","))
        res["skill"] = r
        if not args.json:
            run0 = r["runs"][0]
            print(f"## Skill assessment (004), synthetic piano, skill 0 vs 9 (levels 1 vs 10): "
                  f"{run0['n_train']} training / {run0['n_test']} test videos, chance {run0['chance']:.2f}")
            print("| V:A features | video only | audio only | fusion |\n|---|---|---|---|")
            for run in r["runs"]:
                a = run["accuracy"]
                print(f"| {run['ratio']} | {a['video']:.2f} | {a['audio']:.2f} | {a['fusion']:.2f} |")
            print(f"(data {r.get('seconds_data')} s, training {[run['seconds_train'] for run in r['runs']]} s)")
    if args.json:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
