"""The API's calls for the analyses of 002 and the dataset, landmark and feature commands (re-exported by :mod:`musicperf.api`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from musicperf.api._checks import _check_dir, _check_file


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
