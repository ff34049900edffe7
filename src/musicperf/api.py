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
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["train", "label", "score", "info", "vibrato", "playing", "separate", "associate", "stats", "landmarks",
           "features", "instrument_train", "instrument_predict", "instrument_evaluate", "instrument_synth",
           "skill_train", "skill_predict", "skill_evaluate", "skill_synth", "synth", "extract", "experiment",
           "demo"]


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
    not learn are listed in ``not_learnable`` and labelled with their constant.

    Returns
    -------
    list of dict
        One JSON summary per video.
    """
    from musicperf.tasks.gestures import label_videos

    return label_videos(videos, model_dir, out_dir, after=after, overwrite=overwrite, progress=progress,
                        feature_cache=feature_cache, compile=compile, queries=queries)


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


# --------------------------------------------------------------------------- helpers
def _check_file(path, what: str, need_bytes: int = 0):
    from musicperf._util import check_output_location

    return None if path is None else check_output_location(path, kind="file", what=what, need_bytes=need_bytes)


def _check_dir(path, what: str = "output", need_bytes: int = 0):
    from musicperf._util import check_output_location

    return check_output_location(path, kind="dir", what=what, need_bytes=need_bytes)


# --------------------------------------------------------------------------- media facts
def info(video: str | Path, *, fast: bool = False):
    """The facts of a video (``musicperf info``): rate, frame count, duration, size, rotation, audio.

    ``fast=True`` trusts the container header's frame count instead of decoding the video.
    Returns a :class:`musicperf.io.video.VideoInfo` (``.to_dict()`` is what ``--json`` prints).
    """
    from musicperf.io.video import probe

    return probe(video, count_frames=not fast)


# --------------------------------------------------------------------------- analyses of 002
def vibrato(
    media: str | Path,
    *,
    audio: str | Path | None = None,
    notes: str | Path | None = None,
    hand="auto",
    hand_side: str = "left",
    method: str = "autocorr",
    threshold: float | None = None,
    track: bool = True,
    max_seconds: float | None = None,
    plot: str | Path | None = None,
):
    """Vibrato notes with rate and extent (``musicperf vibrato``; 002 Section V-B).

    ``hand``: ``"auto"``, ``"landmarks"``, ``"search"`` or a :class:`~musicperf.analysis.motion.Region`
    (or ``"X,Y,W,H"``). ``plot``: also write the figure (PNG). Returns a
    :class:`musicperf.analysis.vibrato.VibratoResult` (``.segments()`` lists the vibrato notes).
    See :func:`musicperf.analysis.vibrato.analyze_media` for the other parameters.
    """
    from musicperf.analysis.motion import parse_region
    from musicperf.analysis.vibrato import analyze_media
    from musicperf.errors import ParameterError

    if isinstance(hand, str) and hand not in ("auto", "landmarks", "search"):
        try:
            hand = parse_region(hand)
        except ParameterError:
            raise ParameterError(f"--hand must be auto, landmarks, search or a box X,Y,W,H in pixels, "
                                 f"got {hand!r}") from None
    _check_file(plot, "plot")
    res = analyze_media(media, audio=audio, hand=hand, side=hand_side, notes_file=notes, method=method,
                        threshold=threshold, track=track, max_seconds=max_seconds)
    if plot is not None:
        from musicperf._util import output_errors
        from musicperf.report.analysis_plots import save_vibrato_plot

        with output_errors(plot, what="plot"):
            save_vibrato_plot(res, plot)
    return res


def playing(
    video: str | Path,
    *,
    regions=None,
    threshold: float = 0.3,
    audio: bool = True,
    faces: str = "auto",
    ensemble: bool = False,
    musicians: int | None = None,
    subclusters: int = 4,
    step: float = 0.5,
    labels=None,
    max_seconds: float | None = None,
    plot: str | Path | None = None,
    write_labels: str | Path | None = None,
):
    """Playing / non-playing per performer over time (``musicperf playing``; 002 Section IV-B).

    See :func:`musicperf.analysis.media.detect_playing` for the parameters. ``plot``: also write
    the timeline figure (PNG). ``write_labels`` (with ``ensemble=True``): write the sub-clusters
    to label (JSON, and its ``.png`` contact sheet) for a person to mark, then call again with
    ``labels``. Returns a :class:`musicperf.analysis.media.PlayingResult`.
    """
    from musicperf._util import output_errors
    from musicperf.analysis.media import detect_playing, write_cluster_template

    _check_file(plot, "plot")
    if write_labels is not None:
        _check_file(write_labels, "labels file")
        labels = None
    res = detect_playing(video, regions=regions, threshold=threshold, audio=audio, faces=faces, ensemble=ensemble,
                         musicians=musicians, subclusters=subclusters, step=step, labels=labels,
                         max_seconds=max_seconds)
    if write_labels is not None:
        if not ensemble:
            from musicperf.errors import ParameterError

            raise ParameterError("write_labels is for the ensemble pipeline (ensemble=True)")
        with output_errors(write_labels, what="labels file"):
            write_cluster_template(write_labels, res.observations)
        return res
    if plot is not None and res.timeline is not None:
        from musicperf.report.analysis_plots import save_playing_plot

        with output_errors(plot, what="plot"):
            save_playing_plot(plot, res.times, res.timeline, names=res.names, activity=res.activity,
                              title=f"{video}: playing (green), non-playing (white), unknown (grey)")
    return res


def separate(
    mixture: str | Path,
    output: str | Path | None = None,
    *,
    motion=None,
    motion_fps: float | None = None,
    regions=None,
    grid: int = 1,
    clusters: list[int] | None = None,
    playing=None,
    instruments: Sequence[str] | None = None,
    n_sources: int | None = None,
    sr: int = 16000,
    n_components: int = 30,
    n_iter: int = 100,
    lam: float = 1.0,
    mu: float = 0.1,
    restarts: int = 5,
    references: Sequence[str | Path] | None = None,
):
    """Separate a mixture into its players' sources (``musicperf separate``; 002 Section VI-B).

    See :func:`musicperf.analysis.media.separate_mixture` for the parameters. ``output``: write
    ``source1.wav``... there (checked before the compute). ``references``: the true sources in
    player order, for SDR/SIR/SAR. Returns a :class:`musicperf.analysis.media.MixtureSeparation`
    (``.sources`` (J, n) at ``.sr``, ``.files``, ``.metrics``).
    """
    from musicperf.analysis.media import separate_mixture

    if output is not None:
        _check_dir(output)
    res = separate_mixture(mixture, motion=motion, motion_fps=motion_fps, regions=regions, grid=grid,
                           clusters=clusters, playing=playing, instruments=instruments, n_sources=n_sources, sr=sr,
                           n_components=n_components, n_iter=n_iter, lam=lam, mu=mu, restarts=restarts)
    if output is not None:
        res.write(output)
    if references:
        res.score(references)
    return res


def associate(
    video: str | Path,
    *,
    tracks: Sequence[str | Path] | None = None,
    parts: Sequence[str | Path] | None = None,
    regions=None,
    max_lag: int = 2,
):
    """Which player plays which audio track or score part (``musicperf associate``; 002 Section V-A).

    See :func:`musicperf.analysis.media.associate_tracks`. Returns a
    :class:`musicperf.analysis.media.TrackAssociation` (``.track_of_player``, ``.matrix``).
    """
    from musicperf.analysis.media import associate_tracks

    return associate_tracks(video, tracks=tracks, parts=parts, regions=regions, max_lag=max_lag)


# --------------------------------------------------------------------------- datasets
def stats(
    data: Sequence,
    output: str | Path,
    *,
    fps=None,
    duration=None,
    taxonomy: str = "gestures18",
    mapping: str | Path | None = None,
    background: str | None = None,
    super_classes: str = "auto",
    length: int = 16,
    stride: int = 16,
    count_frames: bool = False,
):
    """Dataset tables and class-correlation heatmaps of 001 (``musicperf stats``).

    Parameters
    ----------
    data : sequence
        ``(video, annotations)`` pairs, or annotation files alone (then ``fps`` and ``duration``:
        one value for all, or one per such file).
    output : str or Path
        Folder for ``table2_frames``, ``table3_occurrences``, ``table5_samples`` (CSV + Markdown)
        and the ``figure1_``/``figure2_correlation_*`` heatmaps (PNG + CSV). All are written or
        none (a failure leaves no partial set).
    taxonomy, mapping, background, super_classes
        See :func:`musicperf.labels.stats.stats_taxonomies`.
    length, stride : int
        Table 5's samples.
    count_frames : bool
        Decode each video to count its frames exactly.

    Returns
    -------
    musicperf.labels.stats.DatasetStats
        The tables and matrices; ``.written`` lists the files.
    """
    from musicperf.errors import ParameterError
    from musicperf.labels.stats import dataset_stats, load_labelled_videos, stats_taxonomies
    from musicperf.report.heatmap import write_correlation_heatmap

    if length < 1 or stride < 1:
        raise ParameterError(f"--length and --stride must be positive, got {length} and {stride}")
    _check_dir(output)
    videos = load_labelled_videos(data, fps=fps, duration=duration, count_frames=count_frames)
    main, sup = stats_taxonomies([v.annotations for v in videos], taxonomy=taxonomy, mapping=mapping,
                                 background=background, super_classes=super_classes)
    res = dataset_stats(videos, main, sup, length=length, stride=stride)
    res.write(output, heatmap_writer=write_correlation_heatmap)
    return res


# --------------------------------------------------------------------------- landmarks and features
@dataclass
class LandmarksRun:
    """What :func:`landmarks` produced: the landmarks and the files written."""

    landmarks: object
    written: list = field(default_factory=list)

    def summary(self) -> dict:
        """Frames, fps, size and detection rate per part (what ``musicperf landmarks --json`` prints)."""
        return self.landmarks.summary()


def landmarks(
    video: str | Path,
    output: str | Path | None = None,
    *,
    hands: str = "fallback",
    refine_face: bool = True,
    start: float = 0.0,
    end: float | None = None,
    max_frames: int | None = None,
    every: int = 1,
    workers: int | None = None,
    cache: bool = True,
    cache_dir: str | Path | None = None,
    progress: bool = False,
    sheet: str | Path | None = None,
    overlay: str | Path | None = None,
    features: str | Path | None = None,
) -> LandmarksRun:
    """MediaPipe pose, face and hand landmarks per frame (``musicperf landmarks``).

    See :func:`musicperf.features.landmarks.extract_landmarks` for the extraction parameters.
    ``output`` (``.npz``), ``sheet`` (contact sheet PNG), ``overlay`` (MP4 with the landmarks
    drawn) and ``features`` (per-frame gesture features CSV) are written when given; every one
    is checked before the extraction.
    """
    from musicperf._util import output_errors, write_text_atomic
    from musicperf.errors import ParameterError
    from musicperf.features.landmarks import extract_landmarks

    if output is not None and Path(output).suffix != ".npz":
        raise ParameterError(f"the landmark file must end in .npz, got '{output}'")
    for path, what in ((output, "landmark file"), (sheet, "contact sheet"), (overlay, "overlay video"),
                       (features, "features file")):
        _check_file(path, what)
    lm = extract_landmarks(video, hands=hands, refine_face=refine_face, start=start, end=end, max_frames=max_frames,
                           progress=progress, cache=cache, cache_dir=cache_dir, every=every, workers=workers)
    run = LandmarksRun(lm)
    if output is not None:
        with output_errors(output, what="landmark file"):
            lm.save(output)
        run.written.append(str(output))
    if sheet is not None:
        from musicperf.report.overlay import contact_sheet

        with output_errors(sheet, what="contact sheet"):
            run.written.append(str(contact_sheet(video, lm, sheet)))
    if overlay is not None:
        from musicperf.report.overlay import overlay_video

        with output_errors(overlay, what="overlay video"):
            run.written.append(str(overlay_video(video, lm, overlay)))
    if features is not None:
        from musicperf.features.landmark_features import gesture_features

        g = gesture_features(lm)
        lines = ["time," + ",".join(g.names)]
        for t, row in zip(lm.times, g.values):
            lines.append(f"{t:.4f}," + ",".join("" if v != v else f"{v:.5g}" for v in row))
        with output_errors(features, what="features file"):
            write_text_atomic(features, "\n".join(lines) + "\n")
        run.written.append(str(features))
    return run


@dataclass
class AudioFeatures:
    """What :func:`features` computed: the array and its description (``--json``'s object)."""

    array: object
    info: dict


def features(
    media: str | Path,
    output: str | Path | None = None,
    *,
    kind: str = "timbral",
    audio: str | Path | None = None,
    offset: float = 0.0,
    sr: int = 22050,
    fps: float | None = None,
    clip_frames: int = 16,
    n_windows: int = 28,
    n_fft: int = 2048,
    hop_length: int | None = None,
    contrast: str = "mean",
    n_mels: int = 128,
    overwrite: bool = False,
) -> AudioFeatures:
    """Audio features per video sample of ``clip_frames`` frames (``musicperf features audio``).

    ``kind="timbral"``: paper 001's (n_segments, 28, 108) timbral features; ``kind="mel"``:
    log-mel patches (n_segments, n_mels, n_frames) in dB. ``media`` is a video with sound or an
    audio file; ``audio`` a separate recording starting ``offset`` s into the video. ``output``
    (``.npy``) is written when given (refused if it exists, unless ``overwrite``).
    """
    import numpy as np

    from musicperf._util import atomic_path, output_errors
    from musicperf.errors import DecodeError, ParameterError
    from musicperf.features import audio as fa

    out = None if output is None else Path(output)
    if out is not None and out.exists() and not overwrite:
        raise ParameterError(f"'{out}' already exists; pass --overwrite to replace it")
    if clip_frames < 1:
        raise ParameterError(f"--clip-frames must be >= 1, got {clip_frames}")
    if fps is not None and fps <= 0:
        raise ParameterError(f"--fps must be > 0, got {fps}")
    if kind not in ("timbral", "mel"):
        raise ParameterError(f"kind must be 'timbral' or 'mel', got {kind!r}")
    _check_file(out, "output")
    media = Path(media)
    rate, n_samples = _sample_grid(media, fps, clip_frames)
    if rate is None and audio is not None:
        raise DecodeError(f"'{media}' has no video stream; --audio is only for videos")
    rate = rate or fps or 25.0
    seg = clip_frames / rate
    if n_samples == 0:
        raise ParameterError(f"video '{media}' is shorter than one sample of {clip_frames} frames ({seg:.3f} s)")
    duration = None if n_samples is None else n_samples * seg
    pa = fa.load_performance_audio(media, audio=audio, offset=offset, sr=sr, duration=duration)
    if n_samples is None:  # an audio file: as many whole samples as it holds
        n_samples = int(len(pa.y) // int(round(seg * pa.sr)))
    if n_samples < 1:
        raise ParameterError(f"'{pa.source}' holds {pa.duration:.3f} s of audio, less than one sample of "
                             f"{clip_frames} frames ({seg:.3f} s)")
    starts = np.arange(n_samples) * seg
    if kind == "timbral":
        arr = fa.timbral_features(pa.y, pa.sr, segment_starts=starts, segment_duration=seg, n_windows=n_windows,
                                  n_fft=n_fft, hop_length=hop_length, contrast=contrast)
        names = fa.timbral_feature_names(contrast=contrast)
        hop = hop_length or fa.default_hop_length(pa.sr, seg, n_windows)
    else:
        hop = hop_length or 512
        arr = fa.mel_patches(pa.y, pa.sr, starts, duration=seg, n_mels=n_mels, n_fft=n_fft, hop_length=hop)
        names = None
    if out is not None:
        with output_errors(out), atomic_path(out) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
    desc = {
        "output": None if out is None else str(out),
        "kind": kind,
        "shape": list(arr.shape),
        "dtype": str(arr.dtype),
        "source": str(pa.source),
        "media": str(media),
        "offset_s": pa.offset,
        "sr": pa.sr,
        "fps": rate,
        "clip_frames": clip_frames,
        "segment_s": seg,
        "segment_starts_s": [round(float(t), 6) for t in starts],
        "n_fft": n_fft,
        "hop_length": hop,
    }
    if names is not None:
        desc["feature_names"] = names
    return AudioFeatures(arr, desc)


def _sample_grid(media, fps_override: float | None, clip_frames: int):
    """``(fps, n_samples)`` of a video, or ``(None, None)`` for a file without a video stream."""
    from musicperf.io.video import open_container, probe

    container = open_container(media)
    try:
        is_video = bool(container.streams.video)
    finally:
        container.close()
    if not is_video:
        return None, None
    vinfo = probe(media)
    rate = fps_override or vinfo.fps
    # Samples are whole, non-overlapping runs of clip_frames frames (001, section 5.1).
    n_frames = vinfo.n_frames if fps_override is None else int(vinfo.duration * rate)
    return rate, n_frames // clip_frames


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
    :class:`~musicperf.tasks.instrument.LabelledVideo`). ``config``: an
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
    a list of :class:`~musicperf.tasks.skill.LabelledVideo`. ``config``: a
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
