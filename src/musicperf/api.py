"""The Python API of the labelling workflow: ``train``, ``label`` and ``score``.

Each function does what the CLI command of the same name does (``musicperf train``,
``musicperf label``, ``musicperf score``) and returns the result instead of printing it::

    import musicperf.api as mp

    mp.train(["concert.mp4=concert.eaf"], "model", until=60.0)      # first 60 s annotated
    mp.label(["concert.mp4"], "model", "labelled", after=60.0)     # label the rest
    result = mp.score("concert_full.eaf", "labelled/concert.eaf", start=60.0)
    result["macro"]["f1"]

Imports nothing heavy at module level; torch and PyAV are loaded when a function runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["train", "label", "score"]


def train(
    data: Sequence[str | Path] | str | Path,
    model_dir: str | Path,
    *,
    until: float | None = None,
    config=None,
    taxonomy=None,
    overwrite: bool = False,
    progress: bool = False,
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
    config : WorkflowConfig, str or Path, optional
        Settings object or YAML file (see :class:`musicperf.tasks.gestures.WorkflowConfig`).
    taxonomy : Taxonomy, str or Path, optional
        Classes: default one per tier name in the annotations; or ``"gestures18"``,
        ``"superclasses7"``, or a YAML mapping file.
    overwrite, progress : bool

    Returns
    -------
    dict
        The model's metadata (classes, thresholds, training summary).
    """
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
) -> list[dict]:
    """Label videos; per video an ``.eaf``, a per-frame probability CSV and a JSON summary.

    See :func:`musicperf.tasks.gestures.label_videos`. Human tiers of a video's own ``.eaf``
    are kept untouched; predicted tiers are named ``auto: <class>``. Videos already labelled
    by the same model are skipped, so an interrupted run can simply be restarted.

    ``feature_cache`` (a folder, or True for the default one) stores each video's clip
    features, so relabelling with a retrained head does not decode the video again.
    ``compile=True`` runs a model's 3D-CNN backbone through ``torch.compile`` (slow to start,
    faster per clip: worth it for long videos).

    Returns
    -------
    list of dict
        One JSON summary per video.
    """
    from musicperf.tasks.gestures import label_videos

    return label_videos(videos, model_dir, out_dir, after=after, overwrite=overwrite, progress=progress,
                        feature_cache=feature_cache, compile=compile)


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
