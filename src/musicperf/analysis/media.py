"""The analyses of 002 applied to media files: decode, measure, decide, return a result object.

The array-level algorithms live in :mod:`~musicperf.analysis.playing`,
:mod:`~musicperf.analysis.separation` and :mod:`~musicperf.analysis.association`; this module
wires them to videos and audio files the way the ``playing``, ``separate`` and ``associate``
commands do (the commands parse arguments, call one function here and print), so that the
Python API (:mod:`musicperf.api`) offers the same pipelines:

* :func:`detect_playing` - playing / non-playing per performer of a video (IV-B, Figure 2)
* :func:`separate_mixture` - motion-informed (or audio-only) separation of a mixture (VI-B)
* :func:`associate_tracks` - which player of a video plays which audio track or score part (V-A)

Also the shared steps: :func:`regions_from_spec` (``X,Y,W,H`` boxes or equal strips),
:func:`face_regions` (the upper body under each face), :func:`read_motion_matrix` and
:func:`read_playing_mask` (the speed matrices and ``playing --json`` files ``separate`` reads).

numpy at top level; PyAV, OpenCV, soundfile and Pillow inside the functions. Must not import
torch or matplotlib (figures are drawn by :mod:`musicperf.report`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from musicperf.analysis import association as AS
from musicperf.analysis import playing as PL
from musicperf.analysis.motion import Region, auto_downscale, parse_region, region_motion, split_region
from musicperf.errors import AnnotationError, ParameterError

_STRIPS = {"halves": 2, "thirds": 3, "quarters": 4}


# --------------------------------------------------------------------------- shared steps
def regions_from_spec(spec: Sequence[str | Region] | str | None, width: int, height: int) -> list[Region]:
    """Regions from ``["X,Y,W,H", ...]`` (pixels) or ``"halves"``/``"thirds"``/``"quarters"``.

    The named splits cut the picture into equal vertical strips, left to right.

    Raises
    ------
    ParameterError
        No regions given, or a box that does not parse.
    """
    if isinstance(spec, (str, Region)):
        spec = [spec]
    if not spec:
        raise ParameterError("--regions is needed with a video: one X,Y,W,H per player, or 'halves'")
    if len(spec) == 1 and isinstance(spec[0], str) and spec[0] in _STRIPS:
        n = _STRIPS[spec[0]]
        return [Region(i * width / n, 0, width / n, height) for i in range(n)]
    return [s if isinstance(s, Region) else parse_region(s) for s in spec]


def face_regions(frames: Sequence[np.ndarray], fps: float, width: int, height: int, *, method: str = "auto",
                 source: str | Path | None = None) -> list[Region]:
    """Upper-body regions below the faces found in the first second, one per face, left to right.

    The frame (of about five tried) with the most faces decides.

    Parameters
    ----------
    frames : sequence of np.ndarray, each (H, W, 3) uint8 RGB
        The first second (or more) of the video.
    fps : float
    width, height : int
        Frame size in pixels.
    method : {"auto", "mediapipe", "haar"}
        Face detector (:func:`~musicperf.analysis.playing.detect_faces`).
    source : str or Path, optional
        The video, named in the error.

    Raises
    ------
    ParameterError
        No face in the first second.
    """
    best = []
    for i in range(0, min(len(frames), int(fps) + 1), max(1, int(fps // 5))):
        f = PL.detect_faces(frames[i], method=method)
        if len(f) > len(best):
            best = f
    if len(best) == 0:
        where = f" of '{source}'" if source is not None else ""
        raise ParameterError(f"no face found in the first second{where}; give --regions X,Y,W,H per performer")
    out = []
    for face in sorted(best.tolist(), key=lambda b: b[0]):
        x0, y0, x1, y1 = PL.upper_body_box(face, width, height)
        out.append(Region(x0, y0, x1 - x0, y1 - y0))
    return out


def read_motion_matrix(path: str | Path) -> np.ndarray:
    """A speed matrix (frames x motion clusters) from ``.npy`` or ``.csv``/``.txt`` (comma-separated).

    ``.npy`` files are read without pickles (an object array is refused, never executed).

    Raises
    ------
    AnnotationError
        Unreadable, not numeric, not 1-D/2-D, or not finite.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            m = np.load(path, allow_pickle=False)
        else:
            m = np.loadtxt(path, delimiter=",", ndmin=2)
    except FileNotFoundError:
        raise AnnotationError(f"speed matrix '{path}' does not exist") from None
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "allow_pickle" in reason:
            reason = "it holds Python objects (a pickle), not numbers"
        raise AnnotationError(f"speed matrix '{path}' cannot be read: {reason}") from None
    if not isinstance(m, np.ndarray) or m.dtype.kind not in "biuf":
        raise AnnotationError(f"speed matrix '{path}' holds {getattr(m, 'dtype', type(m))}, not numbers")
    if m.ndim == 1:
        m = m[:, None]
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise AnnotationError(f"speed matrix '{path}' has shape {m.shape}; frames x clusters was expected")
    if not np.all(np.isfinite(m)):
        raise AnnotationError(f"speed matrix '{path}' holds NaN or infinite values")
    return m.astype(np.float64)


def read_playing_mask(path: str | Path, n_frames: int, fps: float, n_players: int) -> np.ndarray:
    """(frames, players) bool mask from the JSON that ``musicperf playing --json`` prints.

    Raises
    ------
    AnnotationError
        Not such a file, or another number of performers than ``n_players``.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        perf = list(data["performers"].values())
        mask = [PL.mask_from_intervals(p["playing"], fps, n_frames) for p in perf]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AnnotationError(f"'{path}' is not the output of 'musicperf playing --json': {exc}") from None
    if len(mask) != n_players:
        raise AnnotationError(f"'{path}' has {len(mask)} performers but the motion has {n_players} players")
    return np.stack(mask, 1)


def _box(r: Region) -> list[float]:
    return [round(r.x, 1), round(r.y, 1), round(r.w, 1), round(r.h, 1)]


# --------------------------------------------------------------------------- playing
class _Sparse:
    """The key frames (and the frame after each) of a video, indexable like the full list."""

    def __init__(self, frames: dict, n: int):
        self._frames, self._n = frames, n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int):
        return self._frames[i]


@dataclass
class PlayingResult:
    """Playing / non-playing per performer of a video (:func:`detect_playing`).

    Attributes
    ----------
    video : str
    fps : float
    method : str
        ``"motion+audio"``, ``"motion"`` or ``"ensemble"``.
    names : list of str
        ``performer1``... (``musician1``... for the ensemble pipeline).
    timeline : np.ndarray of int8, shape (T, P), or None
        1 playing, 0 non-playing, -1 unknown (ensemble: a rejected sub-cluster). None for the
        ensemble pipeline before its sub-clusters are labelled (see ``observations``).
    n_frames : int
    activity : np.ndarray, shape (T, P), or None
        Motion speed of each performer's region (pixels per frame); None for the ensemble.
    regions : list of Region
        Each performer's region (empty for the ensemble).
    observations : list of Observation
        Ensemble pipeline: the faces found, with musician and sub-cluster (to be labelled with
        :func:`write_cluster_template`, or already labelled).
    n_musicians : int or None
    """

    video: str
    fps: float
    method: str
    names: list
    timeline: np.ndarray | None
    n_frames: int
    activity: np.ndarray | None = None
    regions: list = field(default_factory=list)
    observations: list = field(default_factory=list)
    n_musicians: int | None = None

    @property
    def times(self) -> np.ndarray:
        """Frame times in seconds, shape (T,)."""
        return np.arange(self.n_frames) / self.fps

    def performers(self) -> dict:
        """``{name: {playing: [(start, end)...], non_playing: [...], playing_share}}`` in seconds."""
        if self.timeline is None:
            raise ParameterError("the ensemble's sub-clusters are not labelled yet: pass labels=")
        tl = self.timeline
        return {name: dict(playing=PL.intervals_from_mask(tl[:, i] == 1, self.fps),
                           non_playing=PL.intervals_from_mask(tl[:, i] == 0, self.fps),
                           playing_share=round(float(np.mean(tl[:, i] == 1)), 4))
                for i, name in enumerate(self.names)}

    def to_dict(self) -> dict:
        """What ``musicperf playing --json`` prints."""
        extra = {} if self.method == "ensemble" else dict(regions=[_box(r) for r in self.regions])
        return dict(video=self.video, fps=self.fps, method=self.method, performers=self.performers(), **extra)


def detect_playing(
    video: str | Path,
    *,
    regions: Sequence[str | Region] | str | None = None,
    threshold: float = 0.3,
    audio: bool = True,
    faces: str = "auto",
    ensemble: bool = False,
    musicians: int | None = None,
    subclusters: int = 4,
    step: float = 0.5,
    labels: str | Path | dict | None = None,
    max_seconds: float | None = None,
) -> PlayingResult:
    """Whether each performer of ``video`` plays over time (002 Section IV-B): ``musicperf playing``.

    Default: one region per performer (``regions``, else the upper body under each face found in
    the first second); a soloist plays while the region's motion exceeds ``threshold`` of its
    own high level and the audio sounds; an ensemble by
    :func:`~musicperf.analysis.playing.playing_decision` (motion, rest postures and the audio).
    ``ensemble=True``: the clustering pipeline of Figure 2; without ``labels`` it stops after
    the clustering (``timeline`` None: write the sub-clusters with
    :func:`write_cluster_template`, mark them, and call again with ``labels``).

    Parameters
    ----------
    video : str or Path
    regions : list of "X,Y,W,H" or Region, or "halves"/"thirds"/"quarters", optional
    threshold : float
        Share of a performer's 95th-percentile motion that counts as playing (soloist / no audio).
    audio : bool
        Use the audio track (when there is one).
    faces : {"auto", "mediapipe", "haar"}
    ensemble : bool
    musicians, subclusters, step
        Ensemble pipeline: musicians (None: chosen by silhouette), sub-clusters per musician,
        seconds between key frames.
    labels : str, Path or dict, optional
        Ensemble pipeline: sub-cluster -> playing / non-playing / reject (a file as written by
        :func:`write_cluster_template`, or the dict).
    max_seconds : float, optional
        Analyse only the first seconds.

    Returns
    -------
    PlayingResult

    Raises
    ------
    DecodeError
        The video cannot be read.
    ParameterError
        Fewer than 3 frames; no face found (naming the video) without ``regions``.
    """
    from musicperf.io.video import VideoReader

    thumbs: list = []
    m = None
    frames = None
    # frames are streamed: long videos never sit in memory whole
    with VideoReader(video) as reader:
        fps = reader.info.fps
        W, H = reader.info.width, reader.info.height
        has_audio = reader.info.has_audio
        if ensemble:
            stride = max(1, int(round(step * fps)))
            keep, T = {}, 0
            for i, (_t, f) in enumerate(reader.frames(0.0, max_seconds)):
                if i % stride in (0, 1) or stride == 1:
                    keep[i] = f  # key frames and the frame after each (for its motion)
                T = i + 1
            frames = _Sparse(keep, T)
            regs: list = []
        else:
            if regions:
                regs = regions_from_spec(regions, W, H)
            else:
                head = [f for _t, f in reader.frames(0.0, min(1.0, max_seconds or 1.0))]
                regs = face_regions(head, fps, W, H, method=faces, source=video)
                del head
            # posture thumbnails, taken in the same pass as the motion
            m = region_motion(PL.thumbnail_tap((f for _t, f in reader.frames(0.0, max_seconds)), regs, thumbs),
                              regs, fps=fps, compensate=True, downscale=auto_downscale(H))
            T = len(m.speed)
    if T < 3:
        raise ParameterError(f"'{video}' has fewer than 3 frames")
    if ensemble:
        obs = PL.ensemble_observations(frames, fps=fps, step=step, faces=lambda f: PL.detect_faces(f, method=faces))
        n = PL.cluster_musicians(obs, musicians)
        PL.sub_cluster(obs, subclusters)
        names = [f"musician{i + 1}" for i in range(n)]
        timeline = None
        if labels is not None:
            marks = _cluster_marks(labels) if isinstance(labels, dict) else PL.read_cluster_labels(labels)
            timeline = PL.ensemble_timeline(obs, marks, T, fps, n)
        return PlayingResult(str(video), fps, "ensemble", names, timeline, T, observations=obs, n_musicians=n)
    use_audio = has_audio and audio
    if use_audio:
        from musicperf.io.audio import load_audio

        y, sr = load_audio(video, sr=16000, duration=max_seconds)
        pred = PL.playing_decision(m.velocity, fps, y=y, sr=sr, speed=m.speed, thumbs=thumbs, threshold=threshold)
    else:
        pred = PL.playing_from_motion(m.speed, fps, threshold=threshold)
    timeline = pred.astype(np.int8)
    names = [f"performer{i + 1}" for i in range(timeline.shape[1])]
    return PlayingResult(str(video), fps, "motion+audio" if use_audio else "motion", names, timeline, T,
                         activity=m.speed, regions=regs)


def _cluster_marks(labels: dict) -> dict[str, str]:
    """Sub-cluster marks given as a dict: ``{key: label}`` or the template's ``{key: {"label": ...}}``."""
    out = {}
    for k, v in labels.items():
        lab = v.get("label") if isinstance(v, dict) else v
        if lab not in ("playing", "non-playing", "reject"):
            raise ParameterError(f"sub-cluster {k} has label {lab!r}; use playing, non-playing or reject")
        out[str(k)] = lab
    return out


def write_cluster_template(path: str | Path, observations: list) -> tuple[Path, Path]:
    """Write the sub-clusters to label (JSON) and their contact sheet (PNG beside it), atomically.

    Each sub-cluster gets one row of up to 8 face thumbnails in the sheet. Returns both paths.
    """
    from PIL import Image, ImageDraw

    from musicperf._util import atomic_path, write_text_atomic

    path = Path(path)
    png = Path(str(path).rsplit(".", 1)[0] + ".png")
    groups: dict = {}
    for o in observations:
        groups.setdefault(PL.cluster_key(o), []).append(o.thumb)
    per = 8
    th, tw = 80, 48
    sheet = np.full((len(groups) * (th + 14), 110 + per * (tw + 2), 3), 255, np.uint8)
    img = Image.fromarray(sheet)
    d = ImageDraw.Draw(img)
    for r, (k, thumbs) in enumerate(sorted(groups.items())):
        y = r * (th + 14) + 7
        d.text((4, y + th // 2 - 6), k, fill=(0, 0, 0))
        for c, t in enumerate(thumbs[:per]):
            img.paste(Image.fromarray(t), (110 + c * (tw + 2), y))
    write_text_atomic(path, json.dumps(PL.cluster_labels_template(observations), indent=1))
    with atomic_path(png) as tmp:
        img.save(tmp, format="PNG")
    return path, png


# --------------------------------------------------------------------------- separation
@dataclass
class MixtureSeparation:
    """The sources separated from a mixture file (:func:`separate_mixture`).

    Attributes
    ----------
    mixture : str
    result : SeparationResult
        Sources ``(J, n)`` at ``result.sr``, method, naming margin.
    y : np.ndarray, shape (n,)
        The mixture at ``result.sr``.
    motion : np.ndarray, shape (T, C), or None
        The speeds used (None for the audio-only baseline).
    files : list of str
        The WAVs written by :meth:`write` (empty before).
    metrics : dict or None
        SDR/SIR/SAR against references (:meth:`score`).
    """

    mixture: str
    result: object
    y: np.ndarray
    motion: np.ndarray | None
    files: list = field(default_factory=list)
    metrics: dict | None = None

    @property
    def sources(self) -> np.ndarray:
        return self.result.sources

    @property
    def sr(self) -> int:
        return self.result.sr

    @property
    def method(self) -> str:
        """``motion-nmf``, ``audio-nmf`` or ``timbre-nmf-named-by-motion`` (as printed by ``--json``)."""
        return {"motion": "motion-nmf", "audio": "audio-nmf",
                "timbre+motion": "timbre-nmf-named-by-motion"}[self.result.method]

    def write(self, out_dir: str | Path) -> list[str]:
        """Write ``source1.wav``... (32-bit float) into ``out_dir``, all or none; returns the paths.

        The files are written to a temporary folder first and moved into place together
        (:func:`musicperf._util.write_all_or_nothing`): a full disk leaves no partial set.
        """
        import soundfile as sf

        from musicperf._util import check_output_location, write_all_or_nothing

        out = check_output_location(out_dir, kind="dir", what="output",
                                    need_bytes=int(self.sources.size * 4 + 4096 * len(self.sources)))

        def writer(s):
            return lambda p: sf.write(p, s.astype(np.float32), self.sr, subtype="FLOAT", format="WAV")

        paths = write_all_or_nothing(out, {f"source{j + 1}.wav": writer(s) for j, s in enumerate(self.sources)})
        self.files = [str(p) for p in paths]
        return self.files

    def score(self, references: Sequence[str | Path]) -> dict:
        """SDR/SIR/SAR (dB) of the sources against the true ones, in player order (permuted for the
        audio-only baseline, whose order is arbitrary); also kept in ``metrics``."""
        from musicperf.analysis.separation import evaluate
        from musicperf.io.audio import load_audio

        refs = np.stack([load_audio(r, sr=self.sr)[0][: len(self.y)] for r in references])
        if len(refs) != len(self.sources):
            raise ParameterError(f"{len(refs)} references for {len(self.sources)} separated sources")
        n = min(refs.shape[1], self.sources.shape[1])
        self.metrics = evaluate(refs[:, :n], self.sources[:, :n], permute=self.motion is None)
        return self.metrics

    def to_dict(self) -> dict:
        """What ``musicperf separate --json`` prints."""
        return dict(mixture=self.mixture, method=self.method, naming_margin=self.result.naming_margin,
                    sources=self.files, metrics=self.metrics)


def separate_mixture(
    mixture: str | Path,
    *,
    motion: str | Path | np.ndarray | None = None,
    motion_fps: float | None = None,
    regions: Sequence[str | Region] | str | None = None,
    grid: int = 1,
    clusters: list[int] | None = None,
    playing: str | Path | np.ndarray | None = None,
    instruments: Sequence[str] | None = None,
    n_sources: int | None = None,
    sr: int = 16000,
    n_components: int = 30,
    n_iter: int = 100,
    lam: float = 1.0,
    mu: float = 0.1,
    restarts: int = 5,
) -> MixtureSeparation:
    """Separate a mixture into its players' sources (002 Section VI-B): ``musicperf separate``.

    Parameters
    ----------
    mixture : str or Path
        Audio file or video holding the mixture.
    motion : str, Path or np.ndarray, optional
        A video of the players (speeds measured in ``regions``, each split into ``grid`` x
        ``grid`` motion clusters), a ``.npy``/``.csv`` speed matrix (frames x clusters) or that
        matrix itself (both at ``motion_fps``). None: the audio-only baseline (``n_sources``).
    motion_fps : float, optional
        Frame rate of a speed matrix.
    regions : list of "X,Y,W,H" or Region, or "halves"/"thirds", optional
        With a video: each player's region in its first frame.
    grid : int
    clusters : list of int, optional
        With a speed matrix: its columns per player (default one each).
    playing : "auto", str, Path or np.ndarray (T, players) of bool, optional
        Gate a player's motion by their playing in every other restart: ``"auto"`` estimates it
        from the video (as :func:`detect_playing`), a path reads ``musicperf playing --json``
        output, an array is used as it is.
    instruments : list of str, optional
        Each player's instrument (see :func:`~musicperf.analysis.separation.separate`).
    n_sources : int, optional
        Sources of the audio-only baseline.
    sr, n_components, n_iter, lam, mu, restarts
        Working sample rate and the NMF settings of Equation 2.

    Returns
    -------
    MixtureSeparation
        Call :meth:`~MixtureSeparation.write` for the WAVs, :meth:`~MixtureSeparation.score`
        for SDR/SIR/SAR.

    Raises
    ------
    ParameterError, AnnotationError, DecodeError
        Inconsistent options, an unreadable speed matrix or playing file, an unreadable medium.
    """
    from musicperf.analysis.separation import separate
    from musicperf.io.audio import load_audio

    if grid < 1:
        raise ParameterError(f"--grid must be at least 1, got {grid}")
    y, sr = load_audio(mixture, sr=sr)
    speeds, fps, m, thumbs, cells = None, None, None, [], []
    is_video = False
    if motion is not None:
        matrix = isinstance(motion, np.ndarray) or Path(motion).suffix.lower() in (".npy", ".csv", ".txt")
        if matrix:
            speeds = motion.astype(np.float64) if isinstance(motion, np.ndarray) else read_motion_matrix(motion)
            if speeds.ndim == 1:
                speeds = speeds[:, None]
            if not motion_fps:
                raise ParameterError(f"--motion-fps is needed with the speed matrix '{motion}'"
                                     if not isinstance(motion, np.ndarray) else "motion_fps is needed with a matrix")
            fps = motion_fps
            if isinstance(playing, str) and playing == "auto":
                raise ParameterError("--playing auto needs --motion to be a video (it watches the players' regions)")
        else:
            from musicperf.io.video import VideoReader

            is_video = True
            auto = isinstance(playing, str) and playing == "auto"
            with VideoReader(motion) as reader:
                fps = reader.info.fps
                W, H = reader.info.width, reader.info.height
                regs = regions_from_spec(regions, W, H)
                cells = [c for r in regs for c in split_region(r, grid)]
                frames = (f for _t, f in reader)
                if auto:  # resting-posture thumbnails in the same pass as the motion
                    frames = PL.thumbnail_tap(frames, regs, thumbs)
                # with a grid, the players' whole regions go along (for playing/non-playing)
                extra = regs if auto and grid > 1 else []
                m = region_motion(frames, cells + extra, fps=fps, compensate=True, downscale=auto_downscale(H))
            speeds = m.speed[:, :len(cells)]
            clusters = [grid ** 2] * len(regs)
    elif not n_sources:
        raise ParameterError("give --motion (motion-informed) or --sources N (audio-only baseline)")
    if instruments is not None:
        if speeds is None:
            raise ParameterError("--instruments needs --motion (the players' motion names the sources)")
        instruments = [i.strip() for i in instruments if i.strip()]  # one per player: separate() checks
    gate = None
    if playing is not None:
        if speeds is None:
            raise ParameterError("--playing needs --motion (it gates each player's motion)")
        if isinstance(playing, np.ndarray):
            gate = playing.astype(bool)
        elif playing == "auto":
            if not is_video:
                raise ParameterError("--playing auto needs --motion to be a video (it watches the players' regions)")
            cols = slice(len(cells), None) if grid > 1 else slice(None)  # the players' whole regions
            gate = PL.playing_decision(m.velocity[:, cols], fps, y=y, sr=sr, speed=m.speed[:, cols], thumbs=thumbs)
        else:
            gate = read_playing_mask(playing, len(speeds), fps, len(clusters) if clusters else np.shape(speeds)[1])
    res = separate(y, sr, motion=speeds, motion_fps=fps, clusters=clusters, n_sources=n_sources,
                   n_components=n_components, lam=lam, mu=mu, n_iter=n_iter, playing=gate, restarts=restarts,
                   instruments=instruments)
    return MixtureSeparation(str(mixture), res, y, speeds)


# --------------------------------------------------------------------------- association
@dataclass
class TrackAssociation:
    """Players of a video matched to tracks (:func:`associate_tracks`).

    Attributes
    ----------
    video : str
    tracks : list of str
        The track (or score part) files, in the order given.
    association : Association
        ``matrix`` (players x tracks correlations) and ``track_of_player`` (-1: none).
    regions : list of Region
        Each player's region, left to right.
    """

    video: str
    tracks: list
    association: AS.Association
    regions: list

    @property
    def track_of_player(self) -> list:
        return self.association.track_of_player

    @property
    def matrix(self) -> np.ndarray:
        return self.association.matrix

    def to_dict(self) -> dict:
        """What ``musicperf associate --json`` prints."""
        d = self.association.to_dict()
        d.update(video=self.video, tracks=self.tracks, regions=[_box(r) for r in self.regions])
        return d


def associate_tracks(
    video: str | Path,
    *,
    tracks: Sequence[str | Path] | None = None,
    parts: Sequence[str | Path] | None = None,
    regions: Sequence[str | Region] | str | None = None,
    max_lag: int = 2,
) -> TrackAssociation:
    """Which player of ``video`` plays which track (002 Section V-A): ``musicperf associate``.

    Each player's motion onsets (changes of the mean motion vector of their region) are
    correlated with each track's audio onsets (``tracks``) or a score part's note onsets
    (``parts``: .mid, .csv or .json), allowing ``max_lag`` frames of offset; players are matched
    to tracks by the Hungarian algorithm.

    Parameters
    ----------
    video : str or Path
    tracks, parts : sequence of str or Path
        Exactly one of them: audio files, or score parts.
    regions : list of "X,Y,W,H" or Region, or "halves"/"thirds", optional
        Default: the upper body under each face found in the first second, else halves.
    max_lag : int

    Returns
    -------
    TrackAssociation
    """
    from musicperf.io.video import VideoReader

    if (tracks is None) == (parts is None):
        raise ParameterError("give either tracks (audio files) or parts (score parts), not both or neither")
    with VideoReader(video) as reader:
        fps = reader.info.fps
        W, H = reader.info.width, reader.info.height
        if regions:
            regs = regions_from_spec(regions, W, H)
        else:
            head = [f for _t, f in reader.frames(0.0, 1.0)]
            try:
                regs = face_regions(head, fps, W, H, source=video)
            except ParameterError:
                regs = regions_from_spec("halves", W, H)
            del head
        m = region_motion((f for _t, f in reader), regs, fps=fps, compensate=True, downscale=auto_downscale(H))
    T = len(m.speed)
    onsets = AS.motion_onset_strength(m.velocity)
    if tracks is not None:
        from musicperf.io.audio import load_audio

        names = [str(t) for t in tracks]
        env = np.stack([AS.audio_onset_strength(load_audio(t, sr=22050)[0], 22050, fps, T) for t in names], 1)
    else:
        from musicperf.analysis.pitch import read_notes

        names = [str(p) for p in parts]
        env = np.stack([AS.onsets_to_envelope([n.onset for n in read_notes(p)], fps, T) for p in names], 1)
    res = AS.associate(onsets, env, max_lag=max_lag)
    return TrackAssociation(str(video), names, res, regs)
