"""The Python API of musicperf: one call per command-line command, returning results instead of printing.

Each function does what the CLI command of the same name does (``musicperf playing`` is
:func:`playing`, ``musicperf instrument train`` is :func:`instrument_train`...) with the same
defaults, writes the same files, and returns a result object::

    import musicperf.api as mp

    mp.train(["concert.mp4=concert.eaf"], "model", until=60.0)      # first 60 s annotated
    mp.label(["concert.mp4"], "model", "labelled", after=60.0)     # label the rest
    result = mp.score("concert_full.eaf", "labelled/concert.eaf", start=60.0)
    result["macro"]["f1"]

    res = mp.playing("duet.mp4", regions="halves")                  # PlayingResult
    res.performers()["performer1"]["playing"]                       # [(start, end), ...] seconds

The commands are thin: they parse their arguments, call the function here and print. The
pipelines themselves live in the library (:mod:`musicperf.analysis.media`,
:mod:`musicperf.labels.stats`, :mod:`musicperf.tasks`...). Every function that writes checks its
output location before any compute (:func:`musicperf._util.check_output_location`) and turns a
failure while writing (disk full, read-only folder) into a one-line
:class:`~musicperf.errors.OutputError` naming the path. See docs/api.md for an example of each.

Imports nothing heavy at module level; numpy, torch and PyAV are loaded when a function runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from musicperf.api._checks import _check_dir, _check_file  # noqa: F401 - used by the calls here and in submodules

__all__ = ["train", "label", "score", "info", "vibrato", "playing", "separate", "associate", "stats", "landmarks",
           "features", "instrument_train", "instrument_predict", "instrument_evaluate", "instrument_synth",
           "skill_train", "skill_predict", "skill_evaluate", "skill_synth", "synth", "extract", "experiment",
           "demo", "report", "annotations_show", "annotations_convert"]


def train(
    data: Sequence[str | Path] | str | Path,
    model_dir: str | Path,
    *,
    until: float | None = None,
    config=None,
    taxonomy=None,
    overwrite: bool = False,
    progress: bool = False,
    labeller: str = "clip",
    annotated: str | None = None,
    tiers=None,
    tracks=None,
    sets=None,
    candidates=None,
    say=None,
) -> dict:
    """Train a gesture labeller on annotated videos; see :func:`musicperf.tasks.gestures.train_model`.

    Parameters
    ----------
    data : str, Path or sequence of them
        ``VIDEO=ANNOTATIONS`` pairs, folders of videos with same-named ``.eaf`` files, YAML
        manifests, or videos with a same-named ``.eaf`` beside them.
    model_dir : str or Path
        Where the model is written (refused if it exists, unless ``overwrite``).
    until : float, optional
        Seconds: train on the first ``until`` seconds of each video only.
    config : GestureConfig, str or Path, optional
        Settings object or YAML file (see :class:`musicperf.tasks.gestures.GestureConfig`).
    taxonomy : Taxonomy, str or Path, optional
        Classes: default one per tier name in the annotations; or ``"gestures18"``,
        ``"superclasses7"``, or a YAML mapping file.
    overwrite, progress : bool
    labeller : {"clip", "frame"}
        ``"clip"``: the clip head (:func:`musicperf.tasks.gestures.train_model`). ``"frame"``: the
        per-frame labeller chosen by cross-validation
        (:func:`musicperf.tasks.gestures.frame.train_frame_model`), which reads ``annotated``
        (``"START-END,..."``: where absence means absent), ``tiers`` (the class tiers),
        ``tracks``, ``sets``, ``candidates`` and ``say`` (a callable for the lines to show;
        ``config`` gives it ``landmark_every``; ``taxonomy`` is not used).

    Returns
    -------
    dict
        The model's metadata (classes, thresholds or the cross-validation table, training summary).
    """
    from musicperf.errors import ParameterError

    if labeller == "frame":
        from musicperf.tasks.gestures.config import GestureConfig
        from musicperf.tasks.gestures.frame import DEFAULT_SETS, DEFAULT_TRACKS, train_frame_model

        if taxonomy is not None:
            raise ParameterError("a taxonomy is for the clip labeller; the frame labeller's classes are tiers (tiers=)")
        cfg = config if isinstance(config, GestureConfig) or config is None else GestureConfig.from_yaml(config)
        return train_frame_model(data, model_dir, until=until, annotated=annotated, tiers=tiers,
                                 tracks=tracks or DEFAULT_TRACKS, sets=sets or DEFAULT_SETS, candidates=candidates,
                                 landmark_every=(cfg or GestureConfig()).landmark_every, overwrite=overwrite,
                                 progress=progress, say=say)
    if labeller != "clip":
        raise ParameterError(f"labeller must be 'clip' or 'frame', got {labeller!r}")
    if annotated is not None or tiers or tracks or sets or candidates:
        raise ParameterError("annotated spans, tiers, tracks, sets and candidates are options of the frame labeller "
                             "(--labeller frame)")
    from musicperf.tasks.gestures import train_model

    return train_model(data, model_dir, until=until, config=config, taxonomy=taxonomy, overwrite=overwrite,
                       progress=progress)


def label(
    videos: Sequence[str | Path] | str | Path,
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    after: float | None = None,
    overwrite: bool = False,
    progress: bool = False,
    feature_cache: str | Path | bool | None = None,
    compile: bool = False,
    queries: int = 5,
    numeric_mode: str | None = None,
) -> list[dict]:
    """Label videos; per video an ``.eaf``, a per-frame probability CSV and a JSON summary.

    See :func:`musicperf.tasks.gestures.label_videos`. Human tiers of a video's own ``.eaf``
    are kept untouched; predicted tiers are named ``auto: <class>``. Videos already labelled
    by the same model are skipped, so an interrupted run can simply be restarted.

    ``feature_cache`` (a folder, or True for the default one) stores each video's clip
    features, so relabelling with a retrained head does not decode the video again.
    ``compile=True`` runs a model's 3D-CNN backbone through ``torch.compile`` (slow to start,
    faster per clip: worth it for long videos). With a frame-labeller model, ``queries``
    stretches to annotate next go into an ``auto-query`` tier (0: none), and classes it could
    not learn are listed in ``not_learnable`` and labelled with their constant. ``numeric_mode``
(``"auto"``, ``"fp32"``, ``"bf16"``) forces the 3D-CNN backbone's numeric mode (default: decided
once per machine, or ``MUSICPERF_NUMERIC_MODE``; see :mod:`musicperf.features.numeric_mode`).

    Returns
    -------
    list of dict
        One JSON summary per video.
    """
    from musicperf.tasks.gestures import label_videos

    return label_videos(videos, model_dir, out_dir, after=after, overwrite=overwrite, progress=progress,
                        feature_cache=feature_cache, compile=compile, queries=queries,
                        numeric_mode=numeric_mode)


def score(
    reference,
    prediction,
    *,
    start: float | None = None,
    end: float | None = None,
    fps: float = 25.0,
    tiers: list[str] | None = None,
    by: str = "tier",
    media: str | Path | None = None,
    duration: float | None = None,
) -> dict:
    """Frame-level precision, recall, F1, Cohen's kappa and the segmental scores (F1@10/25/50,
    edit) per tier between two annotations.

    Parameters
    ----------
    reference, prediction : str, Path or AnnotationSet
        Annotation files (any format musicperf reads) or annotation sets. Prediction tiers
        ``auto: X`` are scored against reference tiers ``X``; otherwise equal names are paired.
    start, end : float, optional
        Seconds: score only frames in ``[start, end)``.
    fps : float
        Frame rate of the scoring grid.
    tiers : list of str, optional
        Reference tiers to score.
    by : {"tier", "value"}
        Classes are tier names, or annotation values (regrouped into one tier per value).
    media : str or Path, optional
        The video (or audio) the annotations describe: the scored window runs to its end.
        Default: the media the reference links (ELAN media descriptor), else the prediction's.
    duration : float, optional
        Seconds of the media, instead of ``media``.

    Returns
    -------
    dict
        See :func:`musicperf.evaluate.agreement.score_annotations`; plus ``"window"``: where the
        end of the scored window came from (``"to"``, ``"duration"``, ``"media: PATH"``, or
        ``"annotations"`` when no media was found: then the window ends at the last annotation of
        either document and frames after it are not scored).
    """
    from musicperf.evaluate.agreement import score_annotations
    from musicperf.io.annotations import AnnotationSet
    from musicperf.tasks.gestures import read_annotations

    ref = reference if isinstance(reference, AnnotationSet) else read_annotations(reference)
    pred = prediction if isinstance(prediction, AnnotationSet) else read_annotations(prediction)
    window = "to" if end is not None else "duration" if duration is not None else None
    if duration is None and end is None:
        found = _media_duration(media) if media is not None else None
        for aset in (ref, pred):
            if found is None and media is None:
                found = _linked_media_duration(aset)
        if found is not None:
            duration, where = found
            window = f"media: {where}"
    result = score_annotations(ref, pred, fps=fps, start=start, end=end, tiers=tiers, by=by, duration=duration)
    result["window"] = window or "annotations"
    return result


def _media_duration(path) -> tuple[float, str]:
    """``(seconds, path)`` of a video or audio file; raises DecodeError when it cannot be read."""
    from musicperf.errors import DecodeError
    from musicperf.io.video import probe

    try:
        return float(probe(path).duration), str(path)
    except DecodeError:
        from musicperf.io.audio import load_audio

        y, sr = load_audio(path)
        return float(len(y) / sr), str(path)


def _linked_media_duration(aset) -> tuple[float, str] | None:
    """The duration of the first readable media file an annotation document links, or None.

    Looks for the relative URL beside the document, the absolute URL, then a same-named file
    beside the document (ELAN's own search order).
    """
    import urllib.parse
    import urllib.request

    from musicperf.errors import MusicperfError

    base = Path(aset.source).parent if aset.source is not None else None
    for ref in aset.media:
        candidates = []
        for url in (ref.relative_url, ref.url):
            if not url:
                continue
            parsed = urllib.parse.urlparse(url)
            if parsed.scheme == "file":
                candidates.append(Path(urllib.request.url2pathname(parsed.path)))
            elif not parsed.scheme or len(parsed.scheme) == 1:
                p = Path(urllib.parse.unquote(url))
                candidates.append(p if p.is_absolute() or base is None else base / p)
            if base is not None and parsed.path:
                candidates.append(base / Path(urllib.parse.unquote(parsed.path)).name)
        for c in candidates:
            if c.is_file():
                try:
                    return _media_duration(c)
                except MusicperfError:
                    continue
    return None


# --------------------------------------------------------------------------- media facts
def info(video: str | Path, *, fast: bool = False):
    """The facts of a video (``musicperf info``): rate, frame count, duration, size, rotation, audio.

    ``fast=True`` trusts the container header's frame count instead of decoding the video.
    Returns a :class:`musicperf.io.video.VideoInfo` (``.to_dict()`` is what ``--json`` prints).
    """
    from musicperf.io.video import probe

    return probe(video, count_frames=not fast)


# --------------------------------------------------------------------------- synthetic data, batches, experiments
def synth(out_dir: str | Path, *, seconds: float = 20.0, seed: int = 0, **kwargs):
    """A synthetic performance with exact ground truth (``musicperf synth``).

    Writes ``performance.mp4``, ``performance.eaf``, ``truth.json`` (and ``stems/`` for two
    performers). ``kwargs``: see :func:`musicperf.synth.synthesize` (``fps``, ``size``,
    ``performers``, ``instrument``, ``rests``, ``motion_dynamics``...). Returns its
    :class:`~musicperf.synth.SynthResult`.
    """
    from musicperf._util import output_errors
    from musicperf.synth import synthesize

    _check_dir(out_dir)
    with output_errors(out_dir, what="output folder"):  # writes only: any OSError is the output's
        return synthesize(out_dir, seconds=seconds, seed=seed, **kwargs)


def extract(videos, output: str | Path, **kwargs) -> dict:
    """Per-video features for training or labelling on a process pool or Ray (``musicperf extract``).

    See :func:`musicperf.distributed.extract.extract_batch` for the options (``model_dir``,
    ``config``, ``audio``, ``landmarks``, ``engine``, ``workers``...). Resumable; returns the
    run's summary (counts, failures, throughput).
    """
    from musicperf.distributed.extract import extract_batch

    _check_dir(output)
    return extract_batch(videos, output, **kwargs)


def experiment(table: str, data, output: str | Path, *, config=None, taxonomies=None, methods=None,
               features_dir=None, progress=None) -> Path:
    """The experiments of paper 001, Table 7 or 8 (``musicperf experiment``); reruns resume.

    ``config``: an :class:`~musicperf.tasks.experiments.ExperimentConfig`. Returns the path of
    the table's Markdown file (``output/TABLE.md``; ``.csv`` and per-class tables beside it).
    """
    from musicperf.tasks.experiments import ExperimentConfig, run_experiment

    _check_dir(output)
    run_experiment(table, data, output, config or ExperimentConfig(), taxonomies=taxonomies, methods=methods,
                   progress=progress, features_dir=features_dir)
    return Path(output) / f"{table}.md"


def demo(output: str | Path = "demo-output", *, seconds: float = 90.0, seed: int = 7, overwrite: bool = False,
         progress: bool = False, step=None, report: bool = True, size: tuple[int, int] = (320, 240),
         config=None, labeller: str | None = None) -> dict:
    """The labelling workflow end to end on a synthetic performance (``musicperf demo``).

    ``output`` is refused when it exists and is not empty, unless ``overwrite``; ``step`` is
    called with a line before each of the five steps; ``size`` and ``config`` (a
    ``WorkflowConfig``) shrink the run. Returns the demo's result (scores, ``paths`` of
    everything written). See :func:`musicperf.demo.run_demo`.
    """
    from musicperf.demo import run_demo

    _check_dir(output)
    return run_demo(output, seconds=seconds, seed=seed, overwrite=overwrite, progress=progress, step=step,
                    report=report, size=size, config=config, labeller=labeller)


# --------------------------------------------------------------------------- review pages, annotation files
def report(labels, output: str | Path, *, reference=None, start: float | None = None, end: float | None = None,
           link_video: bool = False, overwrite: bool = False, progress: bool = False, on_written=None) -> list[Path]:
    """HTML review pages of videos labelled by :func:`label` (``musicperf report``); returns the pages.

    ``labels``: ``<name>.labels.json`` files or folders of them; ``output``: an ``.html`` file
    (one video) or a folder. See :func:`musicperf.report.pages.write_reports`.
    """
    from musicperf.report.pages import write_reports

    if Path(output).suffix.lower() in (".html", ".htm"):
        _check_file(output, "report")
    else:
        _check_dir(output)
    return write_reports(labels, output, reference=reference, start=start, end=end, embed_video=not link_video,
                         overwrite=overwrite, progress=progress, on_written=on_written)


def annotations_show(file: str | Path, *, tiers: str | None = None, media: str | Path | None = None) -> dict:
    """Tiers, counts, value sets and time ranges of an annotation file (``musicperf annotations show``);
    see :func:`musicperf.io.annotation_summary.show_annotations`."""
    from musicperf.io.annotation_summary import show_annotations

    return show_annotations(file, tiers=tiers, media=media)


def annotations_convert(input: str | Path, output: str | Path, *, tiers: str | None = None,
                        media: str | Path | None = None, vocabularies: bool = True) -> dict:
    """Convert an annotation file (``musicperf annotations convert``); returns ``output``, ``format``,
    ``n_tiers``, ``n_annotations``. See :func:`musicperf.io.annotation_summary.convert_annotations`."""
    from musicperf.io.annotation_summary import convert_annotations

    _check_file(output, "output")
    return convert_annotations(input, output, tiers=tiers, media=media, vocabularies=vocabularies)


from musicperf.api.analyses import (  # noqa: E402,F401
    associate,
    features,
    landmarks,
    playing,
    separate,
    stats,
    vibrato,
)
from musicperf.api.tasks import (  # noqa: E402,F401
    instrument_evaluate,
    instrument_predict,
    instrument_synth,
    instrument_train,
    skill_evaluate,
    skill_predict,
    skill_synth,
    skill_train,
)
