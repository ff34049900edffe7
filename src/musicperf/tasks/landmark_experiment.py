"""Landmark gesture models: per-video features, window samples, training, and the
leave-one-video-out comparison with the 3D-CNN on synthetic cluttered videos.

Entry points for the gesture workflow (``musicperf train``):

* :class:`LandmarkFeatures` (registered in :data:`FRAME_FEATURES` as ``"landmarks"``) turns a
  video into per-frame features ``(T, F)`` (MediaPipe landmarks -> gesture features), with a
  name and version for the model file;
* :func:`windows` cuts ``(N, L, F)`` samples at the workflow's clip starts;
* :func:`train_temporal` trains a :mod:`musicperf.models.temporal` model on them with the
  papers' losses (:func:`musicperf.train.loop.fit`), returning the model and the
  standardisation to save with it.

:func:`run_comparison` is the experiment: N synthetic cluttered-background videos; the
landmark model reads the generator's ground-truth key points in the MediaPipe layout with
detector-like noise, jitter and dropped detections (:func:`~musicperf.synth.landmarks.from_truth`),
because MediaPipe does not detect the drawn performer; the 3D-CNN reads the pixels. Same
16-frame non-overlapping samples (Section 5.1 of ``001``), same leave-one-video-out splits
(Table 8 of ``001``), same loss (MSE with Dynamic Batch Balance, Section 4.2), same metric
(macro F1 over classes present in the test video, thresholds tuned per class on validation).

Imports numpy at module level; torch and the synthesiser inside functions.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from musicperf._util import write_text_atomic
from musicperf.errors import ParameterError
from musicperf.features.landmark_features import FRAME_FEATURES, LandmarkFeatures, windows  # noqa: F401

log = logging.getLogger(__name__)

__all__ = ["LandmarkFeatures", "FRAME_FEATURES", "windows", "train_temporal", "predict_windows",
           "run_comparison", "comparison_table"]


# --------------------------------------------------------------------------- workflow entry points
# LandmarkFeatures, FRAME_FEATURES and windows live in musicperf.features.landmark_features (the
# workflow's frame features use them; an experiment module is no place for them); imported above.


def train_temporal(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
    *,
    model: str = "tcn",
    model_kwargs: dict | None = None,
    epochs: int = 60,
    patience: int | None = 15,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    loss: str = "mse",
    dbb: bool = True,
    seed: int = 0,
    progress: bool = False,
):
    """Train a temporal model on windows of per-frame features with the papers' training loop.

    Parameters
    ----------
    x_train : np.ndarray, shape (N, L, F)
        Standardised windows (:func:`musicperf.features.landmark_features.feature_matrix`).
    y_train : np.ndarray, shape (N, K)
        Targets in [0, 1] (temporal smoothing, Equation 6 of ``001``, or any-presence).
    x_val, y_val : optional
        Validation windows for early stopping on macro F1.
    model : {"tcn", "gru", "fusion"}
    model_kwargs : dict
        Extra hyper-parameters (``fusion`` needs ``n_temporal``; ``n_other`` is inferred).
    epochs, patience, batch_size, lr, weight_decay, loss, dbb, seed
        :class:`musicperf.train.loop.TrainConfig` (``dbb``: Dynamic Batch Balance, Section 4.2 of 001).

    Returns
    -------
    model : torch.nn.Module
        Best epoch's weights, eval mode.
    result : musicperf.train.loop.TrainResult
    """
    import torch
    from torch.utils.data import TensorDataset

    from musicperf.models.temporal import build_temporal_model
    from musicperf.train.loop import TrainConfig, fit

    if x_train.ndim != 3 or len(x_train) != len(y_train):
        raise ParameterError(f"x_train must be (N, L, F) with one target row each; got {x_train.shape} and {y_train.shape}")
    kw = dict(model_kwargs or {})
    n_classes = y_train.shape[1]
    if model == "fusion":
        if "n_temporal" not in kw:
            raise ParameterError("the fusion model needs model_kwargs['n_temporal'] (landmark feature columns)")
        kw.setdefault("n_other", x_train.shape[2] - kw["n_temporal"])
    else:
        kw.setdefault("n_features", x_train.shape[2])
    torch.manual_seed(seed)
    net = build_temporal_model(model, n_classes=n_classes, **kw)
    cfg = TrainConfig(lr=lr, weight_decay=weight_decay, batch_size=batch_size, epochs=epochs,
                      patience=patience if x_val is not None else None, seed=seed, loss=loss, dbb=dbb, ts=True,
                      monitor="val_f1")
    tr = TensorDataset(torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32)),
                       torch.from_numpy(np.asarray(y_train, dtype=np.float32)))
    tr.targets = np.asarray(y_train, dtype=np.float32)
    va = None
    if x_val is not None and len(x_val):
        va = TensorDataset(torch.from_numpy(np.ascontiguousarray(x_val, dtype=np.float32)),
                           torch.from_numpy(np.asarray(y_val, dtype=np.float32)))
    result = fit(net, tr, va, cfg, progress=progress)
    net.eval()
    return net, result


def predict_windows(model, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Presence probabilities ``(N, K)`` of a trained model for inputs ``x`` (``(N, L, F)`` or ``(N, F)``)."""
    import torch

    from musicperf.models.gesturenet import scores_from_logits

    model.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(x), batch_size):
            out.append(scores_from_logits(model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size], dtype=np.float32)))))
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


# --------------------------------------------------------------------------- the experiment
def _prepare_video(folder: Path, *, seconds: float, seed: int, length: int, backbone: str, cnn_size: int,
                   noise_seed: int) -> dict:
    from musicperf.features.landmark_features import gesture_features
    from musicperf.synth.landmarks import from_truth
    from musicperf.labels import sample_labels, sample_starts
    from musicperf.synth import frame_labels, load_truth, synthesize

    if not (folder / "truth.json").is_file():
        synthesize(folder, seconds=seconds, seed=seed, background="cluttered", ensure_all=True)
    truth = load_truth(folder / "truth.json")
    labels = frame_labels(truth).astype(np.float32)
    lm = from_truth(truth, seed=noise_seed)
    feats = gesture_features(lm).values
    T = min(len(labels), len(feats))
    starts = sample_starts(T, length=length, stride=length)
    out = {"labels": labels[:T], "features": feats[:T], "starts": starts,
           "y_any": sample_labels(labels[:T], starts, length=length, how="any"),
           "y_ts": sample_labels(labels[:T], starts, length=length, how="ts"),
           "detection": lm.detection_rates()}
    out["grid"] = _grid_features(folder / "performance.mp4", starts, length=length, cache=folder / f"grid8_{length}.npy")
    out["audio"] = _audio_features(folder / "performance.mp4", starts, fps=lm.fps, length=length,
                                   cache=folder / f"timbral_{length}.npy")
    from musicperf.features.flow import flow_features

    fl = flow_features(folder / "performance.mp4", size=(120, 160), cache_dir=folder / "flow_cache").values
    if len(fl) < T:  # the decoder may deliver a frame less than the truth has
        fl = np.concatenate([fl, np.repeat(fl[-1:], T - len(fl), axis=0)])
    out["flow"] = fl[:T]
    if backbone != "none":
        out["cnn"] = _cnn_features(folder / "performance.mp4", starts, length=length, backbone=backbone, size=cnn_size,
                                   cache=folder / f"cnn_{backbone}_{cnn_size}_{length}.npy")
    return out


def _cnn_features(video: Path, starts: np.ndarray, *, length: int, backbone: str, size: int, cache: Path) -> np.ndarray:
    """Pooled features of a frozen 3D ResNet for the clips at ``starts`` (``(N, 512)``), cached as .npy."""
    import torch

    from musicperf.models import build_backbone, get_normalization

    torch.manual_seed(0)
    net = build_backbone(backbone, n_classes=0).eval()
    norm = get_normalization("hara2018")

    def fn(clips):
        x = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() / 255.0
        with torch.inference_mode():
            return net.forward_features(norm.apply(x)).numpy()

    return _clip_features(video, starts, length=length, size=(size, size), fn=fn, cache=cache)


def _grid_features(video: Path, starts: np.ndarray, *, length: int, cache: Path) -> np.ndarray:
    """The workflow's default clip features (motion/appearance grid, 8 x 8 at 96 x 128) at ``starts``."""
    from musicperf.tasks.clipfeatures import grid_features

    return _clip_features(video, starts, length=length, size=(96, 128), fn=lambda c: grid_features(c, grid=8), cache=cache)


def _clip_features(video: Path, starts: np.ndarray, *, length: int, size, fn, cache: Path) -> np.ndarray:
    if cache.is_file():
        arr = np.load(cache)
        if len(arr) == len(starts):
            return arr
    from musicperf._util import atomic_path
    from musicperf.io.video import VideoReader

    want = {int(s) for s in starts}
    feats = {}
    batch, ids = [], []

    def flush():
        for i, v in zip(ids, fn(np.stack(batch))):
            feats[i] = v
        batch.clear()
        ids.clear()

    with VideoReader(video, size=size) as reader:
        for clip in reader.clips(length, length):
            if clip.start_frame in want:
                batch.append(clip.frames)
                ids.append(clip.start_frame)
                if len(batch) == 8:
                    flush()
    if batch:
        flush()
    missing = want - set(feats)
    if missing:
        raise ParameterError(f"'{video}' decoded fewer frames than its labels: no clip at {sorted(missing)[:5]}")
    arr = np.stack([feats[int(s)] for s in starts]).astype(np.float32)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)
    return arr


def _audio_features(video: Path, starts: np.ndarray, *, fps: float, length: int, cache: Path) -> np.ndarray:
    """Timbral texture features of 001 (Section 4.4) per sample, summarised as mean and standard
    deviation over the 28 windows: ``(N, 216)``, cached as .npy."""
    if cache.is_file():
        arr = np.load(cache)
        if len(arr) == len(starts):
            return arr
    from musicperf._util import atomic_path
    from musicperf.features.audio import load_performance_audio, timbral_features

    pa = load_performance_audio(video)
    f = timbral_features(pa.y, pa.sr, segment_starts=np.asarray(starts) / fps, segment_duration=length / fps)
    arr = np.concatenate([f.mean(axis=1), f.std(axis=1)], axis=1).astype(np.float32)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)
    return arr


def _standardise(train: np.ndarray, *others: np.ndarray):
    mean = train.reshape(-1, train.shape[-1]).mean(axis=0)
    std = train.reshape(-1, train.shape[-1]).std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)
    return [((a - mean) / std).astype(np.float32) for a in (train, *others)]


def run_comparison(
    work_dir: str | Path,
    *,
    n_videos: int = 4,
    seconds: float = 48.0,
    seed: int = 0,
    length: int = 16,
    backbone: str = "resnet10",
    cnn_size: int = 112,
    epochs: int = 60,
    patience: int = 15,
    val_fraction: float = 0.2,
    models: tuple[str, ...] = ("landmarks", "cnn", "grid", "flow", "fusion", "fusion_audio", "constant"),
    progress: bool = False,
) -> dict:
    """Leave-one-video-out macro F1 of the landmark, 3D-CNN and fused models on synthetic videos.

    Parameters
    ----------
    work_dir : str or Path
        Where the videos (``video<i>/``), CNN feature caches and ``results.json`` go; videos
        already there are reused.
    n_videos, seconds, seed
        Synthetic cluttered-background guitar performances with every gesture (seeds
        ``seed .. seed + n_videos - 1``).
    length : int
        Frames per sample (16: 0.64 s at 25 fps), non-overlapping.
    backbone : str
        The 3D ResNet whose frozen pooled features feed the CNN head (random initialisation:
        no pretrained weights ship with musicperf; ``"none"`` skips the CNN and fusion).
    cnn_size : int
        Square frame size of the CNN's input (112 as in the papers).
    epochs, patience, val_fraction
        Training; the validation set is a random ``val_fraction`` of the training videos'
        samples (``leave_one_video_out``), used for early stopping and per-class thresholds.
    models : tuple of str
        Any of ``"landmarks"``, ``"cnn"``, ``"grid"`` (the workflow's default motion/appearance
        grid features with the same head), ``"flow"`` (the TCN on Farneback flow features at
        160 x 120), ``"fusion"`` (landmarks + CNN), ``"fusion_audio"`` (landmarks + the timbral
        features of 001, mean and deviation over each sample's 28 windows), ``"constant"`` (the
        training prevalence of each class as its score).

    Returns
    -------
    dict
        ``folds``: per test video, macro F1 (and precision/recall) of each model;
        ``mean``: mean over folds; plus the settings and timings. Also written to
        ``work_dir/results.json``.
    """
    from musicperf.evaluate.metrics import multilabel_report, tune_thresholds
    from musicperf.synth import LABEL_NAMES
    from musicperf.train.splits import leave_one_video_out

    if n_videos < 2:
        raise ParameterError(f"leave-one-video-out needs at least 2 videos, got {n_videos}")
    unknown = set(models) - {"landmarks", "cnn", "grid", "flow", "fusion", "fusion_audio", "constant"}
    if unknown:
        raise ParameterError(f"unknown model(s) {', '.join(sorted(unknown))}")
    if backbone == "none":
        models = tuple(m for m in models if m not in ("cnn", "fusion"))
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    per = []
    for i in range(n_videos):
        per.append(_prepare_video(work / f"video{i}", seconds=seconds, seed=seed + i, length=length,
                                  backbone=backbone, cnn_size=cnn_size, noise_seed=1000 + seed + i))
        log.info("video %d prepared (%.1f s)", i, time.perf_counter() - t0)
    t_prep = time.perf_counter() - t0
    vid = np.concatenate([np.full(len(p["starts"]), i) for i, p in enumerate(per)])
    lw = np.concatenate([windows(p["features"], p["starts"], length=length) for p in per])
    y_any = np.concatenate([p["y_any"] for p in per])
    y_ts = np.concatenate([p["y_ts"] for p in per])
    cnn = np.concatenate([p["cnn"] for p in per]) if "cnn" in per[0] else None
    grid = np.concatenate([p["grid"] for p in per])
    audio = np.concatenate([p["audio"] for p in per])
    fw = np.concatenate([windows(p["flow"], p["starts"], length=length) for p in per])
    classes = list(LABEL_NAMES)
    folds = []
    for split in leave_one_video_out(vid, val_fraction=val_fraction, seed=seed):
        tr, va, te = split.train, split.val, split.test
        fold = {"test_video": int(vid[te[0]]), "split": split.name, "sizes": list(split.sizes), "models": {}}
        inputs = {}
        if "landmarks" in models or "fusion" in models or "fusion_audio" in models:
            from musicperf.features.landmark_features import feature_matrix

            _, mean, std = feature_matrix(lw[tr].reshape(-1, lw.shape[-1]))
            lx = feature_matrix(lw.reshape(-1, lw.shape[-1]), mean, std)[0].reshape(lw.shape)
            inputs["landmarks"] = ("tcn", lx, {})
        if cnn is not None and ("cnn" in models or "fusion" in models):
            cx = np.nan_to_num(np.concatenate(_standardise(cnn[tr], cnn))[len(tr):])
            # The CNN head is the papers' single-model MLP on pooled 3D-CNN features; it is fed
            # as a window of one frame so the same training call serves every model.
            inputs["cnn"] = ("cnn", cx[:, None, :], {})
            if "fusion" in models and "landmarks" in inputs:
                fx = np.concatenate([lx, np.repeat(cx[:, None, :], length, axis=1)], axis=2)
                inputs["fusion"] = ("fusion", fx, {"n_temporal": lx.shape[2]})
        if "fusion_audio" in models:
            ax = np.nan_to_num(np.concatenate(_standardise(audio[tr], audio))[len(tr):])
            fx = np.concatenate([lx, np.repeat(ax[:, None, :], length, axis=1)], axis=2)
            inputs["fusion_audio"] = ("fusion", fx, {"n_temporal": lx.shape[2]})
        if "flow" in models:
            from musicperf.features.landmark_features import feature_matrix

            _, fmean, fstd = feature_matrix(fw[tr].reshape(-1, fw.shape[-1]))
            inputs["flow"] = ("tcn", feature_matrix(fw.reshape(-1, fw.shape[-1]), fmean, fstd)[0].reshape(fw.shape), {})
        if "grid" in models:
            gx = np.nan_to_num(np.concatenate(_standardise(grid[tr], grid))[len(tr):])
            inputs["grid"] = ("cnn", gx[:, None, :], {})
        for name in models:
            t1 = time.perf_counter()
            if name == "constant":
                prior = y_any[tr].mean(axis=0)
                s_val = np.tile(prior, (len(va), 1))
                s_te = np.tile(prior, (len(te), 1))
            else:
                kind, x, kw = inputs[name]
                if kind == "cnn":
                    net, _ = _train_head(x[:, 0], y_ts, tr, va, epochs=epochs, patience=patience, seed=seed)
                    s_val, s_te = predict_windows(net, x[va, 0]), predict_windows(net, x[te, 0])
                else:
                    net, _ = train_temporal(x[tr], y_ts[tr], x[va], y_any[va], model=kind, model_kwargs=kw,
                                            epochs=epochs, patience=patience, seed=seed, progress=progress)
                    s_val, s_te = predict_windows(net, x[va]), predict_windows(net, x[te])
            thr = tune_thresholds(y_any[va], s_val) if len(va) else 0.5
            rep = multilabel_report(y_any[te], s_te, classes=classes, threshold=thr)
            fold["models"][name] = {"f1": rep["macro"]["f1"], "precision": rep["macro"]["precision"],
                                    "recall": rep["macro"]["recall"], "seconds": round(time.perf_counter() - t1, 1),
                                    "per_class_f1": {c: rep["per_class"][c]["f1"] for c in classes if rep["per_class"][c]["support"] > 0}}
            log.info("fold test=%d %s macro F1 %.3f", fold["test_video"], name, rep["macro"]["f1"])
        folds.append(fold)
    mean = {m: float(np.nanmean([f["models"][m]["f1"] for f in folds])) for m in models}
    result = {
        "settings": {"n_videos": n_videos, "seconds": seconds, "seed": seed, "length": length, "backbone": backbone,
                     "cnn_size": cnn_size, "epochs": epochs, "patience": patience, "val_fraction": val_fraction,
                     "background": "cluttered", "loss": "mse + DBB", "target": "ts (Eq. 6 of 001)",
                     "metric": "macro F1 over classes present in the test video, thresholds tuned on validation"},
        "classes": classes,
        "samples_per_video": [int(len(p["starts"])) for p in per],
        "landmark_detection_rates": [p["detection"] for p in per],
        "folds": folds,
        "mean_f1": mean,
        "seconds_prepare": round(t_prep, 1),
        "seconds_total": round(time.perf_counter() - t0, 1),
    }
    write_text_atomic(work / "results.json", json.dumps(result, indent=2, default=float))
    return result


def _train_head(x, y_ts, tr, va, *, epochs, patience, seed):
    """The papers' single-model head (Section 5.2 of 001) on per-clip CNN features, same loop and loss."""
    import torch
    from torch.utils.data import TensorDataset

    from musicperf.models import SingleModelHead
    from musicperf.train.loop import TrainConfig, fit

    torch.manual_seed(seed)
    net = SingleModelHead(x.shape[1], y_ts.shape[1])
    cfg = TrainConfig(epochs=epochs, patience=patience, seed=seed, loss="mse", dbb=True, ts=True)
    trd = TensorDataset(torch.from_numpy(x[tr]), torch.from_numpy(y_ts[tr]))
    trd.targets = y_ts[tr]
    vad = TensorDataset(torch.from_numpy(x[va]), torch.from_numpy((y_ts[va] > 0).astype(np.float32)))
    res = fit(net, trd, vad, cfg, progress=False)
    net.eval()
    return net, res


def comparison_table(result: dict) -> str:
    """A Markdown table of per-fold and mean macro F1 from :func:`run_comparison`'s result."""
    models = list(result["mean_f1"])
    head = "| test video | " + " | ".join(models) + " |\n|---|" + "---|" * len(models) + "\n"
    rows = []
    for f in result["folds"]:
        rows.append(f"| video{f['test_video']} | " + " | ".join(f"{f['models'][m]['f1']:.3f}" for m in models) + " |")
    rows.append("| **mean** | " + " | ".join(f"**{result['mean_f1'][m]:.3f}**" for m in models) + " |")
    return head + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    """``python -m musicperf.tasks.landmark_experiment WORK_DIR [options]``: run and print the table."""
    import argparse
    import logging as _logging

    p = argparse.ArgumentParser(prog="python -m musicperf.tasks.landmark_experiment",
                                description="Leave-one-video-out F1: landmark vs 3D-CNN vs fused models on synthetic cluttered videos.")
    p.add_argument("work_dir")
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--seconds", type=float, default=48.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backbone", default="resnet10", help="3D ResNet for the CNN side, or 'none'")
    p.add_argument("--cnn-size", type=int, default=112)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--models", default="landmarks,cnn,grid,flow,fusion,fusion_audio,constant")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: the models are tiny)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    _logging.basicConfig(level=_logging.INFO, format="%(message)s")
    _logging.getLogger("musicperf.train").setLevel(_logging.WARNING)
    res = run_comparison(args.work_dir, n_videos=args.videos, seconds=args.seconds, seed=args.seed,
                         backbone=args.backbone, cnn_size=args.cnn_size, epochs=args.epochs,
                         models=tuple(m.strip() for m in args.models.split(",") if m.strip()))
    print(comparison_table(res), end="")
    print(f"total {res['seconds_total']} s (preparing videos and CNN features {res['seconds_prepare']} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
