"""Fusion vs video-only vs audio-only on synthetic data, for instrument recognition (003) and
piano skill assessment (004); optionally 004's video:audio feature-ratio study (Table 2).

Prints markdown tables (the ones in docs/instrument-skill.md) and, with --json, one JSON object.

    .venv/bin/python benchmarks/bench_tasks8.py                 # both tasks, default sizes
    .venv/bin/python benchmarks/bench_tasks8.py --task skill --ratios 128:128,1024:128,128:512
    .venv/bin/python benchmarks/bench_tasks8.py --quick         # minutes less, numbers noisier
    .venv/bin/python benchmarks/bench_tasks8.py --task memory --sets 8,40   # peak memory of skill training

Synthetic videos are written once to --data (default /tmp/musicperf_bench_tasks8) and reused.

``--write-docs`` also writes the tables into their blocks of docs/instrument-skill.md
(``benchmarks/docs_blocks.py``, under a line naming the command, the machine and the time):
``<!-- figures:tasks8-instrument -->`` and ``<!-- figures:tasks8-memory -->``. The skill table there
combines several runs (different ``--skills``, ``--camera-shake``, ``--ratios``), so a skill run
writes ``<!-- figures:tasks8-skill -->`` only where a page has that block, and says so otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import docs_blocks

DOCS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "instrument-skill.md"


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
    """Skill 0 vs 9 (levels 1 vs 10): per-video accuracy of each branch on held-out videos, for
    each video:audio feature ratio and training seed (the networks' initialisation and shuffling)."""
    from musicperf.tasks.skill import (SkillConfig, evaluate_skill, load_skill_inputs, read_skill_annotations,
                                       synth_skill_dataset, train_skill)
    from musicperf.train.loop import TrainConfig

    per_level, n_test = (8, 4) if args.quick else (14, 6)
    shake = args.camera_shake
    skills = tuple(int(x) for x in args.skills.split(","))
    tag = "" if skills == (0, 9) else "_skills" + "-".join(map(str, skills))
    root = Path(args.data) / f"skill_v2_{per_level}_shake{shake:g}{tag}"   # v2: the skill cue of synth/score.py
    ann = root / "annotations.csv"
    t0 = time.perf_counter()
    if not ann.is_file():
        synth_skill_dataset(root, skills=skills, per_level=per_level, seconds=3.0, size=(128, 96), seed=args.seed,
                            camera_shake=shake)
    items = read_skill_annotations(ann)
    out = {"n_videos": len(items), "camera_shake": shake, "skills": list(skills), "runs": []}
    train, test = _split(items, n_test)
    for ratio in ratios:
        v, a = (int(x) for x in ratio.split(":"))
        cfg = SkillConfig(clip_length=8, clip_stride=8, clip_size=(40, 40), max_clips=8, audio_seconds=1.5,
                          n_mels=48, n_fft=1024, width_factor=0.0625, audio_width_factor=0.0625,
                          video_features=v, audio_features=a)
        inputs = load_skill_inputs(items, cfg, cache_dir=root / "cache")
        out.setdefault("seconds_data", round(time.perf_counter() - t0, 1))
        for seed in (int(x) for x in args.seeds.split(",")):
            t1 = time.perf_counter()
            model = train_skill([items[i] for i in train], cfg,
                                TrainConfig(epochs=args.epochs or 16, batch_size=8, weight_decay=1e-4, patience=None,
                                            seed=seed),
                                val_fraction=0.0, inputs=[inputs[i] for i in train])
            rep = evaluate_skill(model, [items[i] for i in test], inputs=[inputs[i] for i in test])
            out["runs"].append({"ratio": ratio, "seed": seed, "n_train": len(train), "n_test": len(test),
                                "chance": rep["chance"], "seconds_train": round(time.perf_counter() - t1, 1),
                                "accuracy": {b: rep[b]["accuracy"] for b in ("video", "audio", "fusion")},
                                "final_train_loss": model.meta["training"]["history"][-1]["train_loss"]})
    return out


def _memory_child(args) -> None:
    """One skill training run (1 epoch) in this process; prints its peak resident memory."""
    import resource

    from musicperf.tasks.skill import SkillConfig, load_skill_inputs, read_skill_annotations, train_skill
    from musicperf.train.loop import TrainConfig

    items = read_skill_annotations(args.memory_child)
    cfg = SkillConfig(clip_length=16, clip_stride=8, clip_size=(96, 96), max_clips=32, audio_seconds=2.0, n_mels=64,
                      n_fft=1024, width_factor=0.0625, audio_width_factor=0.0625, video_features=16, audio_features=16)
    cache = None if args.mode == "memory" else Path(args.memory_child).parent / "cache"
    inputs = load_skill_inputs(items, cfg, cache_dir=cache)     # filled by the parent: no decoding here
    t0 = time.perf_counter()
    train_skill(items, cfg, TrainConfig(epochs=1, batch_size=16, weight_decay=1e-4, patience=None, seed=0),
                val_fraction=0.0, inputs=inputs)
    n_clips = sum(v.n_clips for v in inputs)
    print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "n_clips": n_clips,
                      "clip_mb": n_clips * 16 * 96 * 96 * 3 / 2**20, "seconds_train": round(time.perf_counter() - t0, 1)}))


def bench_memory(args) -> dict:
    """Peak memory of skill training on a small and a larger synthetic set, inputs held in memory
    vs cached on disk and read memory-mapped per batch (each run in its own process)."""
    import subprocess
    import sys

    from musicperf.tasks.skill import SkillConfig, load_skill_inputs, read_skill_annotations, synth_skill_dataset

    out = {}
    for n in (int(v) for v in args.sets.split(",")):
        root = Path(args.data) / f"memory_{n}"
        ann = root / "annotations.csv"
        if not ann.is_file():
            synth_skill_dataset(root, skills=(0, 9), per_level=n // 2, seconds=4.0, size=(128, 96), seed=args.seed)
        cfg = SkillConfig(clip_length=16, clip_stride=8, clip_size=(96, 96), max_clips=32, audio_seconds=2.0, n_mels=64,
                          n_fft=1024)
        load_skill_inputs(read_skill_annotations(ann), cfg, cache_dir=root / "cache")
        for mode in ("memory", "disk"):
            res = subprocess.run([sys.executable, __file__, "--memory-child", str(ann), "--mode", mode,
                                  "--threads", str(args.threads)], capture_output=True, text=True, check=True)
            out[f"{n}/{mode}"] = {"videos": n, "mode": mode, **json.loads(res.stdout.strip().splitlines()[-1])}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=("instrument", "skill", "both", "memory"), default="both")
    ap.add_argument("--sets", default="8,40", help="--task memory: collection sizes (videos) to compare")
    ap.add_argument("--memory-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="disk", help=argparse.SUPPRESS)
    ap.add_argument("--data", default="/tmp/musicperf_bench_tasks8")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--audio-net", default="choi", choices=("han", "choi", "xception"))
    ap.add_argument("--ratios", default="128:128", help="video:audio feature sizes for the skill task, comma-separated")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", default="0,1,2", help="skill: training seeds, each a run")
    ap.add_argument("--epochs", type=int, default=None, help="skill: epochs (default 16)")
    ap.add_argument("--camera-shake", type=float, default=0.0, help="skill: camera shake of the synthetic videos")
    ap.add_argument("--skills", default="0,9", help="skill: synthetic skills compared (level = skill + 1)")
    ap.add_argument("--json", action="store_true")
    docs_blocks.add_write_docs_option(ap, DOCS_PAGE)
    args = ap.parse_args()
    if args.write_docs and args.json:
        ap.error("--write-docs writes the tables, which --json leaves out: use one or the other")
    blocks = {}  # task -> docs block written after the run
    if args.write_docs and not args.memory_child:
        tasks = {"both": ("instrument", "skill")}.get(args.task, (args.task,))
        try:
            for task in tasks:
                if task == "skill" and "tasks8-skill" not in docs_blocks.blocks_of(args.write_docs):
                    print(f"note: {args.write_docs} has no block 'tasks8-skill' (its skill table combines several "
                          "runs); the skill table is printed only", file=sys.stderr)
                    continue
                docs_blocks.check_block(args.write_docs, f"tasks8-{task}")  # fail now, not after the run
                blocks[task] = f"tasks8-{task}"
        except docs_blocks.DocsBlockError as exc:
            docs_blocks.fail(exc)
    printed = {}
    import torch

    torch.set_num_threads(args.threads)
    if args.memory_child:
        _memory_child(args)
        return 0
    res = {}
    if args.task == "memory":
        r = bench_memory(args)
        res["memory"] = r
        if not args.json:
            with docs_blocks.captured_stdout() as printed["memory"]:
                print("## Peak memory of skill training (1 epoch), synthetic 4 s videos, 16 x 96 x 96 clips, 32 per video")
                print("| videos | clips | clip data (MB) | inputs in memory: peak RSS (MB) | cached on disk: peak RSS (MB) |")
                print("|---|---|---|---|---|")
                for n in (int(v) for v in args.sets.split(",")):
                    a, b = r[f"{n}/memory"], r[f"{n}/disk"]
                    print(f"| {n} | {a['n_clips']} | {a['clip_mb']:.0f} | {a['peak_rss_mb']:.0f} | {b['peak_rss_mb']:.0f} |")
    if args.task in ("instrument", "both"):
        r = bench_instrument(args)
        res["instrument"] = r
        if not args.json:
            with docs_blocks.captured_stdout() as printed["instrument"]:
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
            with docs_blocks.captured_stdout() as printed["skill"]:
                run0 = r["runs"][0]
                lv = " vs ".join(str(x + 1) for x in r["skills"])
                print(f"## Skill assessment (004), synthetic piano, skills {' vs '.join(map(str, r['skills']))} (levels {lv}), camera shake "
                      f"{r['camera_shake']:g}: {run0['n_train']} training / {run0['n_test']} test videos, chance {run0['chance']:.2f}")
                print("| V:A features | seed | video only | audio only | fusion |\n|---|---|---|---|---|")
                for run in r["runs"]:
                    a = run["accuracy"]
                    print(f"| {run['ratio']} | {run['seed']} | {a['video']:.2f} | {a['audio']:.2f} | {a['fusion']:.2f} |")
                for ratio in dict.fromkeys(run["ratio"] for run in r["runs"]):
                    runs = [run["accuracy"] for run in r["runs"] if run["ratio"] == ratio]
                    mean = {b: sum(x[b] for x in runs) / len(runs) for b in ("video", "audio", "fusion")}
                    print(f"| {ratio} | mean | {mean['video']:.2f} | {mean['audio']:.2f} | {mean['fusion']:.2f} |")
                print(f"(data {r.get('seconds_data')} s, training {[run['seconds_train'] for run in r['runs']]} s)")
    if args.json:
        print(json.dumps(res, indent=2))
    for task, block in blocks.items():
        docs_blocks.write_figures(args.write_docs, block, docs_text(printed[task].getvalue()),
                                  command=docs_blocks.command_line(__file__))
    return 0


def docs_text(printed: str) -> str:
    """A task's printed table as a docs block: the heading in italics (the page has its own headings),
    a blank line before the table."""
    lines = printed.strip("\n").splitlines()
    if lines and lines[0].startswith("## "):
        lines[0:1] = [f"*{lines[0][3:]}*", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
