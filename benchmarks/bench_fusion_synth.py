"""Video-only vs audio-only vs fused gesture classification on synthetic performances.

    .venv/bin/python benchmarks/bench_fusion_synth.py [--seconds 60] [--seeds 1,2,3,4,5,6]
                                                      [--work /tmp/musicperf-bench-fusion]

Prints per-class F1 for the ``modalities`` settings ``[video]``, ``[audio]``, ``[video, audio]``
(early fusion, 001 Figure 4b) and late fusion (learned per-class weights), plus timings.
The split is leave-one-performance-out over the seeds (like 001's "Leave Video" rows of
Table 6): each performance is the test set once, the model is trained on the others, and the
F1 is computed on the test predictions of all folds pooled. Nothing is asserted.

Pipeline (the real paths of the library, end to end):

1. ``musicperf.synth.synthesize`` writes ``performance.mp4`` (H.264 + AAC 48 kHz) and its
   ground truth for each seed; the gestures are restricted to two the sound carries (Vibrato:
   pitch modulation; Freeze: silence) and three it does not (Nodding, Lifting head, Frowning),
   at twice the papers' rates.
2. Video features per 16-frame sample: ``musicperf.tasks.clipfeatures.grid_features`` (motion
   energy and colour on a 6x6 grid of 96x128 frames) -- the workflow's default, a cheap stand-in
   for the 400 3D-ResNet features on CPU.
3. Audio features per sample: ``load_performance_audio`` (the mp4's AAC track, 22.05 kHz mono)
   then ``timbral_features`` (28 x 108).
4. Labels: ``synth.truth.frame_labels`` -> ``labels.samples.sample_labels`` (any-overlap).
5. ``build_fusion_model`` for each setting, Adam (lr 1e-3), BCE with logits weighted by the
   training negatives/positives ratio of each class (rare gestures would otherwise never reach
   the 0.5 threshold), fixed epochs, threshold 0.5.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

GESTURES = ["Vibrato", "Freeze", "Nodding", "Lifting head", "Frowning"]


def prepare(seed: int, work: Path, seconds: float) -> dict[str, np.ndarray]:
    """Synthesise one performance (cached) and return its per-sample features and labels."""
    from musicperf.features.audio import load_performance_audio, timbral_features
    from musicperf.io.video import VideoReader
    from musicperf.labels.samples import sample_labels, sample_starts
    from musicperf.synth import synthesize
    from musicperf.synth.truth import LABEL_NAMES, frame_labels
    from musicperf.tasks.clipfeatures import grid_features

    cache = work / f"seed{seed}.npz"
    if cache.exists():
        return dict(np.load(cache))
    out = work / f"seed{seed}"
    t0 = time.perf_counter()
    synthesize(out, seconds=seconds, seed=seed, gestures=GESTURES, ensure_all=True, gesture_rate=2.0)
    t1 = time.perf_counter()
    truth = json.loads((out / "truth.json").read_text())
    fps = float(truth["video"]["fps"])
    video_feats, starts = [], []
    with VideoReader(out / "performance.mp4", size=(96, 128)) as reader:
        for clip in reader.clips(16, 16):
            video_feats.append(grid_features(clip.frames[None], grid=6)[0])
            starts.append(clip.start_frame)
    t2 = time.perf_counter()
    starts = np.asarray(starts)
    pa = load_performance_audio(out / "performance.mp4", sr=22050)
    audio = timbral_features(pa.y, pa.sr, segment_starts=starts / fps, segment_duration=16 / fps)
    t3 = time.perf_counter()
    frames = frame_labels(truth)
    cols = [LABEL_NAMES.index(g) for g in GESTURES]
    y = sample_labels(frames[:, cols], starts, length=16)
    print(f"  seed {seed}: synth {t1 - t0:.1f} s, video features {t2 - t1:.1f} s, "
          f"audio decode+features {t3 - t2:.1f} s, {len(starts)} samples, positives "
          + ", ".join(f"{g} {int(n)}" for g, n in zip(GESTURES, y.sum(0))), flush=True)
    data = {"video": np.stack(video_feats).astype(np.float32), "audio": audio, "y": y}
    np.savez(cache, **data)
    return data


def f1_per_class(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    tp = (pred & (y > 0)).sum(0)
    fp = (pred & (y == 0)).sum(0)
    fn = (~pred & (y > 0)).sum(0)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), np.nan)


def train_and_test(setting: str, train: dict, test: dict, *, epochs: int, seed: int = 0) -> np.ndarray:
    import torch

    from musicperf.models.audio import AudioMLP
    from musicperf.models.fusion import build_fusion_model

    torch.manual_seed(seed)
    mods = ["video", "audio"] if setting in ("early", "late") else [setting]
    fusion = "late" if setting == "late" else "early"
    combine = "learned"
    mu, sd = train["video"].mean(0), train["video"].std(0) + 1e-6
    x_train = {"video": torch.from_numpy((train["video"] - mu) / sd), "audio": torch.from_numpy(train["audio"])}
    x_test = {"video": torch.from_numpy((test["video"] - mu) / sd), "audio": torch.from_numpy(test["audio"])}
    audio_enc = AudioMLP(hidden=(256, 128, 128), out_features=128, dropout=0.5)
    audio_enc.fit_normalization(x_train["audio"])
    n_video = x_train["video"].shape[1]
    model = build_fusion_model(modalities=mods, n_classes=len(GESTURES), fusion=fusion, combine=combine,
                               video_dim=n_video, audio_encoder=audio_enc, audio_dim=128,
                               hidden=(128, 64, 32), dropout=0.3)
    y = torch.from_numpy(train["y"])
    pos = y.sum(0).clamp_min(1)
    pos_weight = (len(y) - pos) / pos
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = len(y)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(n, generator=gen).split(32):
            opt.zero_grad()
            logits = model(**{m: x_train[m][idx] for m in model.modalities})
            torch.nn.functional.binary_cross_entropy_with_logits(logits, y[idx], pos_weight=pos_weight).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        prob = torch.sigmoid(model(**{m: x_test[m] for m in model.modalities})).numpy()
    return prob > 0.5


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--seeds", default="1,2,3,4,5,6", help="one synthetic performance per seed")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--work", type=Path, default=Path("/tmp/musicperf-bench-fusion"))
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    args.work.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"preparing {len(seeds)} synthetic performances of {args.seconds:g} s", flush=True)
    per_seed = {s: prepare(s, args.work, args.seconds) for s in seeds}

    def cat(group):
        return {k: np.concatenate([per_seed[s][k] for s in group]) for k in ("video", "audio", "y")}

    everything = cat(seeds)
    print(f"split: leave-one-performance-out over seeds {seeds} ({len(everything['y'])} samples of "
          f"16 frames); positives: " + ", ".join(f"{g} {int(n)}" for g, n in zip(GESTURES, everything["y"].sum(0))))
    names = {"video": "[video]", "audio": "[audio]", "early": "[video, audio] early",
             "late": "[video, audio] late (learned)"}
    rows = {}
    for setting in names:
        t = time.perf_counter()
        preds, truth = [], []
        for held in seeds:
            train = cat([s for s in seeds if s != held])
            test = per_seed[held]
            preds.append(train_and_test(setting, train, test, epochs=args.epochs))
            truth.append(test["y"])
        rows[setting] = f1_per_class(np.concatenate(truth), np.concatenate(preds))
        print(f"  {setting:5s}: {len(seeds)} folds in {time.perf_counter() - t:.1f} s", flush=True)
    # The reference every row must beat: a constant predictor that says "present" everywhere.
    y_all = np.concatenate([per_seed[s]["y"] for s in seeds])
    rows["constant"] = f1_per_class(y_all, np.ones_like(y_all, dtype=bool))
    names["constant"] = "constant 'always present'"
    print()
    print("| modalities | " + " | ".join(GESTURES) + " | macro F1 |")
    print("|---|" + "---|" * (len(GESTURES) + 1))
    for setting, f1 in rows.items():
        cells = " | ".join("n/a" if np.isnan(v) else f"{v:.2f}" for v in f1)
        print(f"| {names[setting]} | {cells} | {np.nanmean(f1):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
