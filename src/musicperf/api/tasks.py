"""The API's calls for instrument recognition (003) and piano skill assessment (004) (re-exported by :mod:`musicperf.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from musicperf.api._checks import _check_dir


# --------------------------------------------------------------------------- instrument (003) and skill (004)
def _training_errors(out):
    """Disk full / read-only while a training run writes its caches, checkpoints and model."""
    from musicperf._util import WRITE_ERRNOS, output_errors

    return output_errors(out, what="model folder", errnos=WRITE_ERRNOS)


def instrument_train(dataset, output: str | Path, *, config=None, train_config=None, val_fraction: float = 0.2,
                     fusion_epochs: int | None = None, cache: str | Path | None = None, resume: bool = True,
                     progress=None):
    """Train an instrument recogniser (``musicperf instrument train``; paper 003).

    ``dataset``: CSV of ``path,label`` or a folder with one sub-folder per class (or a list of
    :class:`~musicperf.tasks.instrument.ClassLabelledVideo`). ``config``: an
    :class:`~musicperf.tasks.instrument.InstrumentConfig`; ``train_config``: a
    :class:`~musicperf.train.loop.TrainConfig` (default the command's: weight decay 1e-4,
    patience 10). ``cache``: folder for sampled frames and mel patches (default
    ``output/cache``; ``"none"`` keeps them in memory). An interrupted run resumes from
    ``output``'s checkpoints unless ``resume=False``. Returns the saved
    :class:`~musicperf.tasks.instrument.InstrumentModel`.
    """
    from musicperf.tasks.instrument import InstrumentConfig, read_labelled_videos, train_instrument
    from musicperf.train.loop import TrainConfig

    out = _check_dir(output, "model folder")
    items = read_labelled_videos(dataset) if isinstance(dataset, (str, Path)) else list(dataset)
    cache_dir = None if cache == "none" else Path(cache) if cache else out / "cache"
    with _training_errors(out):
        model = train_instrument(items, config or InstrumentConfig(),
                                 train_config or TrainConfig(weight_decay=1e-4, patience=10),
                                 val_fraction=val_fraction, fusion_epochs=fusion_epochs, cache_dir=cache_dir,
                                 progress=progress, checkpoint_dir=out, resume=resume)
        model.save(out)
    return model


def instrument_predict(videos, model) -> list[dict]:
    """Instrument probabilities per video (``musicperf instrument predict``).

    ``model``: a model folder or a loaded :class:`~musicperf.tasks.instrument.InstrumentModel`.
    Returns per video ``{"video": path, "classes", "probabilities": {"video", "audio", "fusion"},
    "prediction"}`` (probabilities of the frame branch, the audio branch and the fusion, in
    ``classes`` order).
    """
    from musicperf.tasks.instrument import InstrumentModel

    m = model if isinstance(model, InstrumentModel) else InstrumentModel.load(model)
    out = []
    for v in [videos] if isinstance(videos, (str, Path)) else videos:
        p = m.predict(v)
        out.append({"video": str(v), "classes": m.classes,
                    "probabilities": {b: [float(x) for x in p[b]] for b in ("video", "audio", "fusion")},
                    "prediction": m.classes[int(p["fusion"].argmax())]})
    return out


def instrument_evaluate(dataset, model, *, cache: str | Path | None = None, progress=None) -> dict:
    """Hit@1, Hit@3 and macro F1 of the video, audio and fused predictions (``musicperf instrument evaluate``)."""
    from musicperf.tasks.instrument import InstrumentModel, evaluate_instrument, read_labelled_videos

    m = model if isinstance(model, InstrumentModel) else InstrumentModel.load(model)
    items = read_labelled_videos(dataset) if isinstance(dataset, (str, Path)) else list(dataset)
    return evaluate_instrument(m, items, cache_dir=cache, progress=progress)


def instrument_synth(out_dir: str | Path, *, instruments: Sequence[str] = ("guitar", "violin", "flute", "drums", "piano"),
                     per_class: int = 4, seconds: float = 3.0, size: tuple[int, int] = (128, 96),
                     seed: int = 0) -> Path:
    """A synthetic labelled instrument dataset and its ``labels.csv`` (``musicperf instrument synth``);
    returns the CSV's path."""
    from musicperf._util import output_errors
    from musicperf.tasks.instrument import synth_instrument_dataset

    _check_dir(out_dir)
    with output_errors(out_dir, what="output folder"):  # writes only: any OSError is the output's
        return synth_instrument_dataset(out_dir, instruments=list(instruments), per_class=per_class,
                                        seconds=seconds, size=size, seed=seed)


def skill_train(annotations, output: str | Path, *, videos: str | Path | None = None, config=None,
                train_config=None, val_fraction: float = 0.2, cache: str | Path | None = None, resume: bool = True,
                progress=None):
    """Train a piano skill grader (``musicperf skill train``; paper 004).

    ``annotations``: a PISA-style file (video id -> level; videos in ``videos`` or beside it) or
    a list of :class:`~musicperf.tasks.skill.ClassLabelledVideo`. ``config``: a
    :class:`~musicperf.tasks.skill.SkillConfig`; ``train_config``: a
    :class:`~musicperf.train.loop.TrainConfig` (default the command's: weight decay 1e-4,
    patience 10, batch 16). Resumes from ``output``'s checkpoint unless ``resume=False``.
    Returns the saved :class:`~musicperf.tasks.skill.SkillModel`.
    """
    from musicperf.tasks.skill import SkillConfig, read_skill_annotations, train_skill
    from musicperf.train.loop import TrainConfig

    out = _check_dir(output, "model folder")
    items = (read_skill_annotations(annotations, video_dir=videos) if isinstance(annotations, (str, Path))
             else list(annotations))
    cache_dir = None if cache == "none" else Path(cache) if cache else out / "cache"
    with _training_errors(out):
        model = train_skill(items, config or SkillConfig(),
                            train_config or TrainConfig(weight_decay=1e-4, patience=10, batch_size=16),
                            val_fraction=val_fraction, progress=progress, cache_dir=cache_dir, checkpoint_dir=out,
                            resume=resume)
        model.save(out)
    return model


def skill_predict(videos, model, *, roi=None, max_seconds: float | None = None) -> list[dict]:
    """Level probabilities per video (``musicperf skill predict``).

    Returns per video ``{"video": path, "levels", "prediction", "probabilities": {"video",
    "audio", "fusion"}, "roi", "roi_source", "n_clips"}``.
    """
    from musicperf.tasks.skill import SkillModel

    m = model if isinstance(model, SkillModel) else SkillModel.load(model)
    out = []
    for v in [videos] if isinstance(videos, (str, Path)) else videos:
        p = m.predict(v, max_seconds=max_seconds, roi=roi)
        out.append({"video": str(v), "levels": m.classes, "prediction": m.classes[int(p["fusion"].argmax())],
                    "probabilities": {b: [float(x) for x in p[b]] for b in ("video", "audio", "fusion")},
                    "roi": p["roi"], "roi_source": p["roi_source"], "n_clips": p["n_clips"]})
    return out


def skill_evaluate(annotations, model, *, videos: str | Path | None = None, progress=None) -> dict:
    """Per-video accuracy and macro F1 of each branch (``musicperf skill evaluate``)."""
    from musicperf.tasks.skill import SkillModel, evaluate_skill, read_skill_annotations

    m = model if isinstance(model, SkillModel) else SkillModel.load(model)
    items = (read_skill_annotations(annotations, video_dir=videos) if isinstance(annotations, (str, Path))
             else list(annotations))
    return evaluate_skill(m, items, progress=progress)


def skill_synth(out_dir: str | Path, *, skills: Sequence[int] = (0, 9), per_level: int = 4, seconds: float = 6.0,
                size: tuple[int, int] = (128, 96), seed: int = 0, camera_shake: float = 0.0) -> Path:
    """Synthetic piano performances per skill and ``annotations.csv`` (``musicperf skill synth``);
    returns the CSV's path."""
    from musicperf._util import output_errors
    from musicperf.tasks.skill import synth_skill_dataset

    _check_dir(out_dir)
    with output_errors(out_dir, what="output folder"):  # writes only: any OSError is the output's
        return synth_skill_dataset(out_dir, skills=list(skills), per_level=per_level, seconds=seconds, size=size,
                                   seed=seed, camera_shake=camera_shake)
