"""``musicperf extract``: compute and store, per video, the features a model needs.

For each video, ``OUT/<stem>.features.npz`` holds

* ``starts`` ``(N,)`` int64: first frame of each clip on the model's frame grid (``fps``);
* ``clips`` ``(N, F)`` float32: the workflow's clip features (grid motion/appearance
  statistics of :mod:`musicperf.tasks.clipfeatures`, plus the frozen 3D-ResNet's pooled
  features when the model has a backbone), exactly what
  :class:`musicperf.tasks.gestures.FeatureExtractor` gives the head;
* with ``audio=True``, ``audio`` ``(N, 28, 108)`` float32: the timbral features of paper 001
  (:func:`musicperf.features.audio.timbral_features`) of the audio under each clip;
* ``meta``: a JSON string with the settings (fps, clip length, stride, grid, size, region of
  interest, backbone, feature version, video, ``until``) -- a reader compares it with what it
  needs (:func:`features_match`) before trusting the file.

With ``landmarks=True``, ``OUT/<stem>.landmarks.npz`` holds MediaPipe landmarks
(:func:`musicperf.features.landmarks.extract_landmarks`, the ``landmarks`` command's format).

Each file is written under a temporary name and renamed, then read back (:func:`check_features`)
before the video counts as done. Imports numpy and the standard library at module level.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicperf._util import atomic_path
from musicperf.errors import DecodeError, ParameterError

FEATURES_SUFFIX = ".features.npz"
LANDMARKS_SUFFIX = ".landmarks.npz"


def features_path(out_dir: str | Path, video: str | Path) -> Path:
    """``OUT/<stem>.features.npz``."""
    return Path(out_dir) / f"{Path(video).stem}{FEATURES_SUFFIX}"


@dataclass
class ExtractJob:
    """Extract the features of one video (a :class:`~musicperf.distributed.engine.Job`).

    Parameters
    ----------
    out_dir : str
    model_dir : str, optional
        Compute the features this trained model needs (its grid, region of interest, backbone,
        frame rate and clip length). Without it, ``config`` decides and the region of interest
        is the whole picture.
    config : dict, optional
        :class:`~musicperf.tasks.gestures.GestureConfig` settings when there is no model.
    stride : int, optional
        Frames between clip starts; default the config's ``label_stride`` with a model, its
        ``train_stride`` without (features for training).
    until : float, optional
        Only clips ending before this time (seconds): the annotated part, for training.
    audio, landmarks : bool
        Also store timbral audio features / MediaPipe landmarks.
    """

    out_dir: str
    model_dir: str | None = None
    config: dict = field(default_factory=dict)
    stride: int | None = None
    until: float | None = None
    audio: bool = False
    landmarks: bool = False
    task: str = "extract"

    def __post_init__(self) -> None:
        self._extractor = None
        self._fps = None
        self._key = None

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_extractor"] = None  # the backbone never travels; each worker builds its own
        return d

    # ------------------------------------------------------------------ worker side
    def setup(self) -> None:
        from musicperf.tasks.gestures import FeatureExtractor, GestureConfig, make_backbone, load_gesture_model

        if self.model_dir:
            model = load_gesture_model(self.model_dir)
            self._extractor = model.extractor
            self._fps = model.fps
        else:
            cfg = GestureConfig.from_dict(dict(self.config), where="the extract settings")
            backbone, norm = make_backbone(cfg)
            self._extractor = FeatureExtractor(cfg, backbone, norm)
            self._fps = None  # the video's own rate

    def settings(self, fps: float | None = None) -> dict:
        """What the stored features depend on (compared by :func:`features_match`)."""
        ex = self._extractor
        cfg = ex.config
        return {
            "kind": "musicperf-clip-features",
            "version": _feature_version(),
            "grid": cfg.grid,
            "size": list(cfg.size),
            "roi": list(ex.roi),
            "clip_length": cfg.clip_length,
            "stride": int(self.stride or (cfg.label_stride if self.model_dir else cfg.train_stride)),
            "backbone": cfg.backbone,
            "backbone_weights": cfg.backbone_weights,
            "seed": cfg.seed,
            "fps": fps,
            "until": self.until,
            "audio": self.audio,
        }

    def outputs(self, video: str) -> dict[str, str]:
        out = {"features": str(features_path(self.out_dir, video))}
        if self.landmarks:
            out["landmarks"] = str(Path(self.out_dir) / f"{Path(video).stem}{LANDMARKS_SUFFIX}")
        return out

    def run(self, video: str) -> dict:
        if self._extractor is None:
            self.setup()
        paths = self.outputs(video)
        try:
            fps = self._fps
            if fps is None:
                from musicperf.tasks.gestures import video_fps

                fps = video_fps(Path(video))[0]
            settings = self.settings(fps)
            starts, feats = clip_features(Path(video), self._extractor, fps=fps, stride=settings["stride"],
                                          until=self.until)
            arrays = {"starts": starts, "clips": feats}
            if self.audio:
                arrays["audio"] = _audio_features(Path(video), starts, fps=fps, length=settings["clip_length"])
            meta = dict(settings, video=str(video), n_clips=int(len(starts)), key=self.key)
            save_features(paths["features"], arrays, meta)
            check_features(paths["features"], meta=settings)
            if self.landmarks:
                from musicperf.features.landmarks import extract_landmarks, load_landmarks

                lm = extract_landmarks(video, cache=False)
                lm.save(paths["landmarks"])
                load_landmarks(paths["landmarks"])
        except BaseException:
            for p in paths.values():
                Path(p).unlink(missing_ok=True)  # nothing of a failed video is left behind
            raise
        return {"outputs": paths, "n_clips": int(len(starts)), "n_features": int(feats.shape[1])}

    def finished(self, video: str) -> dict | None:
        paths = self.outputs(video)
        if not all(Path(p).is_file() for p in paths.values()):
            return None
        try:
            meta = read_features_meta(paths["features"])
        except DecodeError:
            return None
        if meta.get("key") != self.key or meta.get("video") != str(video):
            return None
        return {"outputs": paths}

    # ------------------------------------------------------------------ driver side
    @property
    def key(self) -> str:
        """A short hash of the settings (not of the frame rate, which is per video)."""
        if self._key is None:
            self._key = self._compute_key()
        return self._key

    def _compute_key(self) -> str:
        doc = {"model": self.model_dir and _model_id(self.model_dir), "config": self.config, "stride": self.stride,
               "until": self.until, "audio": self.audio, "landmarks": self.landmarks, "version": _feature_version()}
        return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _feature_version() -> int:
    from musicperf.tasks.clipfeatures import FEATURE_VERSION

    return FEATURE_VERSION


def _model_id(model_dir: str) -> str:
    meta = Path(model_dir) / "workflow.json"
    try:
        return str(json.loads(meta.read_text(encoding="utf-8"))["model_id"])
    except (OSError, KeyError, json.JSONDecodeError, UnicodeDecodeError):
        raise ParameterError(f"'{model_dir}' is not a musicperf labelling model ({meta} unreadable)") from None


def clip_features(video: Path, extractor, *, fps: float, stride: int, until: float | None = None,
                  batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Clip features of a video, streamed, as :func:`musicperf.tasks.gestures.collect_samples`
    computes them for training (or :func:`~musicperf.tasks.gestures.predict_video` for labelling).

    Parameters
    ----------
    video : Path
    extractor : FeatureExtractor
    fps : float
        Frame grid of the clips, frames per second (the model's).
    stride : int
        Frames between clip starts.
    until : float, optional
        Only clips ending before this time, seconds.

    Returns
    -------
    starts : np.ndarray, shape (N,), int64
    features : np.ndarray, shape (N, F), float32
    """
    from musicperf.tasks.gestures import iter_clips, video_fps

    _, duration = video_fps(video)
    end = duration if until is None else min(until, duration)
    n_frames = int(math.floor(duration * fps + 1e-6))
    length = extractor.config.clip_length
    starts, feats = [], []
    for s, clips in iter_clips(video, fps=fps, size=extractor.decode_size, length=length, stride=stride, end=end,
                               batch=batch):
        keep = s + length <= n_frames
        if keep.any():
            starts.append(s[keep])
            feats.append(extractor(clips[keep]))
    if not starts:
        raise ParameterError(f"no complete {length}-frame clip in '{video}'"
                             + (f" before {until:g} s" if until is not None else ""))
    return np.concatenate(starts).astype(np.int64), np.concatenate(feats).astype(np.float32)


def _audio_features(video: Path, starts: np.ndarray, *, fps: float, length: int) -> np.ndarray:
    """Timbral features ``(N, 28, 108)`` of paper 001 (Section 5.1) of the audio under each clip."""
    from musicperf.features.audio import load_performance_audio, timbral_features

    pa = load_performance_audio(video)
    return timbral_features(pa.y, pa.sr, segment_starts=starts / fps, segment_duration=length / fps).astype(np.float32)


def save_features(path: str | Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write arrays and a JSON ``meta`` to an ``.npz`` atomically (temporary name, then rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)


def read_features_meta(path: str | Path) -> dict:
    """The ``meta`` of a features file; :class:`DecodeError` when it is not one."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DecodeError(f"'{path}' is not a readable musicperf features file ({exc})") from None


def load_features(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read a file written by :func:`save_features`: ``(arrays, meta)``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise DecodeError(f"'{path}' is not a readable musicperf features file ({exc})") from None
    return arrays, meta


def check_features(path: str | Path, *, meta: dict | None = None) -> None:
    """Read a features file back completely and check its arrays agree (the readability check).

    Raises
    ------
    DecodeError
        Unreadable, or ``starts`` and ``clips`` (and ``audio``) disagree in length, or a value
        is not finite, or ``meta`` differs from the stored settings.
    """
    arrays, stored = load_features(path)
    n = len(arrays.get("starts", ()))
    if "clips" not in arrays or arrays["clips"].ndim != 2 or len(arrays["clips"]) != n or n == 0:
        raise DecodeError(f"features file '{path}' is incomplete: {n} starts for clips {arrays.get('clips', np.empty(0)).shape}")
    if "audio" in arrays and len(arrays["audio"]) != n:
        raise DecodeError(f"features file '{path}' has {len(arrays['audio'])} audio rows for {n} clips")
    if not np.isfinite(arrays["clips"]).all():
        raise DecodeError(f"features file '{path}' holds non-finite clip features")
    if meta is not None and not features_match(stored, meta):
        raise DecodeError(f"features file '{path}' was written with other settings")


def features_match(stored: dict, wanted: dict) -> bool:
    """Whether stored settings are those wanted (every wanted key equal; ``fps`` within 1e-6)."""
    for k, v in wanted.items():
        s = stored.get(k)
        if k == "fps" and v is not None and s is not None:
            if abs(float(s) - float(v)) > 1e-6:
                return False
        elif s != v:
            return False
    return True


def extract_batch(
    videos: Sequence[str | Path] | str | Path,
    out_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    config=None,
    stride: int | None = None,
    until: float | None = None,
    audio: bool = False,
    landmarks: bool = False,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    retries: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    overwrite: bool = False,
    on_progress: Callable | None = None,
) -> dict:
    """Extract features of many videos on an engine, resumably (``musicperf extract``).

    Parameters
    ----------
    videos : str, Path or sequence of them
        Videos, folders, ``VIDEO=ANNOTATIONS`` pairs or a YAML manifest.
    out_dir : str or Path
    model_dir, config, stride, until, audio, landmarks
        See :class:`ExtractJob`; ``config`` is a GestureConfig, a YAML file or None.
    engine, address, workers, retries, num_cpus, num_gpus, overwrite, on_progress
        See :func:`musicperf.distributed.engine.run_batch`.

    Returns
    -------
    dict
        The run summary of :func:`~musicperf.distributed.engine.run_batch`.
    """
    from musicperf.distributed.engine import run_batch
    from musicperf.tasks.gestures import GestureConfig, discover

    if model_dir is not None and config is not None:
        raise ParameterError("give either a model (its features) or a config (settings), not both")
    if stride is not None and stride < 1:
        raise ParameterError(f"--stride must be a positive number of frames, got {stride}")
    if until is not None and not until > 0:
        raise ParameterError(f"--until must be a positive number of seconds, got {until}")
    if config is None:
        cfg = GestureConfig(roi="full")
    elif isinstance(config, GestureConfig):
        cfg = config
    else:
        cfg = GestureConfig.from_yaml(config)
    items = discover(videos, need_annotations=False)
    stems: dict[str, Path] = {}
    for it in items:
        if it.video.stem in stems:
            raise ParameterError(f"videos '{stems[it.video.stem]}' and '{it.video}' would write the same outputs "
                                 f"in '{out_dir}' (same file name)")
        stems[it.video.stem] = it.video
    if model_dir is not None:
        _model_id(str(model_dir))  # a broken model is reported once, here
    job = ExtractJob(str(out_dir), model_dir=None if model_dir is None else str(model_dir),
                     config={} if model_dir is not None else cfg.to_dict(), stride=stride, until=until, audio=audio,
                     landmarks=landmarks)
    return run_batch(job, [str(it.video) for it in items], out_dir, engine=engine, address=address, workers=workers,
                     retries=retries, num_cpus=num_cpus, num_gpus=num_gpus, key=job.key, overwrite=overwrite,
                     on_progress=on_progress)
