"""Dataset statistics of Section 3.2 of ``001``: Tables 2, 3 and 5 and the class
inter-correlations of Figures 1 and 2.

* Table 2: frames in which each class is present, per video (any-overlap rule of
  :func:`~musicperf.labels.frame_labels`).
* Table 3: occurrences of each class per video. An occurrence is one annotation of the class
  *after mapping* (so a super-class counts the annotations of all its gestures) and after
  merging the class's annotations that overlap or touch (end of one == start of the next);
  annotations lying wholly outside the video's frames are not counted. The background class
  has no annotations: its occurrences are the runs of consecutive background frames (the
  paper prints "-" there).
* Table 5: samples (``length`` frames, ``stride`` apart, 16 and 16 in ``001``) in which each
  class is present in *any* frame. With fragmented annotations this is at least
  ``frames / 16``, which is the order of the paper's figures.
* Correlations: Pearson correlation of the per-frame binary labels of two classes. A class
  that is constant over the frames (never or always present) has no defined correlation: its
  row and column are NaN (drawn blank in the heatmaps, written empty in CSV).

Imports numpy only.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from musicperf.errors import AnnotationError, ParameterError
from musicperf.io.annotations import AnnotationSet, time_problem
from musicperf.labels.frames import frame_labels, interval_frames
from musicperf.labels.intervals import merge_intervals
from musicperf.labels.samples import sample_labels, sample_starts
from musicperf.labels.taxonomy import Taxonomy


@dataclass(frozen=True)
class AnnotatedVideo:
    """One video of a dataset: its annotations and the frame facts they are labelled at.

    Not to be confused with :class:`musicperf.io.discover.Item` (the *paths* of a video and of its
    annotation file, before anything is read) nor with
    :class:`musicperf.tasks._classify.ClassLabelledVideo` (a video path with one class label).

    Attributes
    ----------
    name : str
        Column name in the tables (e.g. the video file's stem).
    annotations : AnnotationSet
        Times in seconds.
    fps : float
        Frames per second.
    n_frames : int
        Number of frames of the video.
    """

    name: str
    annotations: AnnotationSet
    fps: float
    n_frames: int

    @property
    def duration(self) -> float:
        """Seconds spanned by the frames, ``n_frames / fps``."""
        return self.n_frames / self.fps


@dataclass
class Table:
    """A small table of per-class figures with one column per video.

    Attributes
    ----------
    title : str
        Caption, e.g. "Table 2: Number of frames where each class is present, per video".
    rows : list of str
        Row names (classes, then any total rows).
    columns : list of str
        Column names (videos, then "total" where it makes sense).
    values : ndarray, shape (len(rows), len(columns))
        Numbers; NaN is written as an empty cell.
    notes : list of str
        Sentences printed under the Markdown table.
    row_header : str
        Header of the row-name column.
    """

    title: str
    rows: list[str]
    columns: list[str]
    values: np.ndarray
    notes: list[str] = field(default_factory=list)
    row_header: str = "Class"

    def cell(self, row: str, column: str) -> float:
        """The value at (``row``, ``column``)."""
        return self.values[self.rows.index(row), self.columns.index(column)]

    def _fmt(self, v: float) -> str:
        if self.values.dtype.kind in "iub":
            return str(int(v))
        return "" if math.isnan(v) else f"{float(v):.3f}"

    def to_csv(self) -> str:
        """CSV text: a header row (row header + columns), then one line per row."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([self.row_header, *self.columns])
        for name, vals in zip(self.rows, self.values):
            w.writerow([name, *(self._fmt(v) for v in vals.tolist())])
        return buf.getvalue()

    def to_markdown(self) -> str:
        """A GitHub-flavoured Markdown table with the title above and the notes below."""
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines = [f"**{esc(self.title)}**", ""]
        lines.append("| " + " | ".join(esc(c) for c in [self.row_header, *self.columns]) + " |")
        lines.append("|" + "---|" + "---:|" * len(self.columns))
        for name, vals in zip(self.rows, self.values):
            lines.append("| " + " | ".join([esc(name), *(self._fmt(v) for v in vals.tolist())]) + " |")
        if self.notes:
            lines.append("")
            lines.extend(self.notes)
        return "\n".join(lines) + "\n"


def _check_videos(videos: Sequence[AnnotatedVideo]) -> None:
    if not videos:
        raise ParameterError("no videos given to compute statistics of")
    names = [v.name for v in videos]
    if len(set(names)) != len(names):
        raise ParameterError(f"video names must be unique, got {names}")
    for v in videos:
        # The readers refuse these times; a set built in code could hold them, and a negative
        # or non-finite time would be clipped away or counted nowhere without a word.
        for tier in v.annotations:
            for a in tier.annotations:
                for t in (a.start, a.end):
                    problem = time_problem(t)
                    if problem is not None:
                        where = f"'{v.annotations.source}'" if v.annotations.source else f"video {v.name!r}"
                        raise AnnotationError(f"{where}: tier {tier.name!r}: time {t!r} s {problem}")


def dataset_labels(videos: Sequence[AnnotatedVideo], taxonomy: Taxonomy, *, unknown: str = "warn") -> list[np.ndarray]:
    """Per-frame labels of every video (:func:`~musicperf.labels.frame_labels`).

    Raises :class:`~musicperf.errors.AnnotationError` when a video's annotations end after
    its duration (via :meth:`AnnotationSet.check_duration`).

    Returns
    -------
    list of ndarray
        ``(n_frames_v, K)`` float32 per video.
    """
    _check_videos(videos)
    return [
        frame_labels(v.annotations, taxonomy, fps=v.fps, n_frames=v.n_frames, unknown=unknown)  # type: ignore[arg-type]
        for v in videos
    ]


def frames_table(videos: Sequence[AnnotatedVideo], labels: Sequence[np.ndarray], taxonomy: Taxonomy) -> Table:
    """Table 2 of ``001``: frames where each class is present, per video, plus a total column
    and a "Total frames" row."""
    _check_videos(videos)
    counts = np.stack([(np.asarray(y) > 0).sum(axis=0) for y in labels], axis=1).astype(np.int64)  # (K, V)
    totals = np.array([[y.shape[0] for y in labels]], dtype=np.int64)
    values = np.concatenate([counts, totals], axis=0)
    values = np.concatenate([values, values.sum(axis=1, keepdims=True)], axis=1)
    return Table(
        title="Table 2: Number of frames where each class is present, per video",
        rows=[*taxonomy.classes, "Total frames"],
        columns=[v.name for v in videos] + ["total"],
        values=values,
        notes=[
            "A class is present in a frame when any of its annotations overlaps the frame's span "
            "[i/fps, (i+1)/fps). Classes overlap, so a column sums to more than its frame count."
            + (f" '{taxonomy.background}' is on where no other class is." if taxonomy.background else "")
        ],
    )


def class_occurrences(video: AnnotatedVideo, labels: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Occurrences of each class in one video (Table 3 of ``001``), see the module docstring.

    Parameters
    ----------
    video : AnnotatedVideo
    labels : ndarray, shape (n_frames, K)
        Its frame labels (used for the background class only).
    taxonomy : Taxonomy

    Returns
    -------
    ndarray of int64, shape (K,)
    """
    per_class = taxonomy.class_intervals(video.annotations, unknown="ignore")
    out = np.zeros(len(taxonomy.classes), dtype=np.int64)
    for c, iv in per_class.items():
        merged = merge_intervals(iv)
        if len(merged):
            first, stop = interval_frames(merged, fps=video.fps)
            out[taxonomy.classes.index(c)] = int(((stop > 0) & (first < video.n_frames)).sum())
    if taxonomy.background is not None:
        b = taxonomy.classes.index(taxonomy.background)
        on = np.concatenate([[False], np.asarray(labels)[:, b] > 0, [False]])
        out[b] = int((np.diff(on.astype(np.int8)) == 1).sum())
    return out


def occurrences_table(videos: Sequence[AnnotatedVideo], labels: Sequence[np.ndarray], taxonomy: Taxonomy) -> Table:
    """Table 3 of ``001``: occurrences of each class per video, plus a total column."""
    _check_videos(videos)
    counts = np.stack([class_occurrences(v, y, taxonomy) for v, y in zip(videos, labels)], axis=1)
    values = np.concatenate([counts, counts.sum(axis=1, keepdims=True)], axis=1)
    notes = [
        "An occurrence is one annotation of the class after mapping, with overlapping or touching "
        "annotations of the same class merged into one."
    ]
    if taxonomy.background is not None:
        notes.append(
            f"'{taxonomy.background}' has no annotations: its figure is the number of runs of consecutive "
            "frames where no other class is present."
        )
    return Table(
        title="Table 3: Number of occurrences of each class, per video",
        rows=list(taxonomy.classes),
        columns=[v.name for v in videos] + ["total"],
        values=values,
        notes=notes,
    )


def samples_table(
    videos: Sequence[AnnotatedVideo],
    labels: Sequence[np.ndarray],
    taxonomy: Taxonomy,
    *,
    length: int = 16,
    stride: int = 16,
) -> Table:
    """Table 5 of ``001``: samples of ``length`` frames where each class is present in any frame,
    per video, plus a total column and a "Total samples" row."""
    _check_videos(videos)
    cols, totals = [], []
    for y in labels:
        starts = sample_starts(y.shape[0], length=length, stride=stride)
        s = sample_labels(y, starts, length=length, how="any")
        cols.append(s.sum(axis=0).astype(np.int64))
        totals.append(len(starts))
    values = np.concatenate([np.stack(cols, axis=1), np.array([totals], dtype=np.int64)], axis=0)
    values = np.concatenate([values, values.sum(axis=1, keepdims=True)], axis=1)
    overlap = "without overlap" if stride >= length else f"overlapping (stride {stride})"
    return Table(
        title=f"Table 5: Number of {length}-frame samples where each class is present, per video",
        rows=[*taxonomy.classes, "Total samples"],
        columns=[v.name for v in videos] + ["total"],
        values=values,
        notes=[
            f"Samples of {length} consecutive frames, {overlap}, the incomplete tail dropped; a sample "
            "counts for a class when the class is present in any of its frames."
        ],
    )


def class_correlation(labels: np.ndarray) -> np.ndarray:
    """Pearson correlation between the per-frame labels of every pair of classes.

    Parameters
    ----------
    labels : ndarray, shape (T, K)
        Per-frame labels (binary in Figures 1 and 2 of ``001``).

    Returns
    -------
    ndarray of float64, shape (K, K)
        Symmetric, in [-1, 1], 1 on the diagonal; NaN in the row and column of a class that is
        constant over the frames (its correlation is undefined).
    """
    y = np.asarray(labels, dtype=np.float64)
    if y.ndim != 2:
        raise ParameterError(f"labels must be a (frames, classes) matrix, got shape {y.shape}")
    k = y.shape[1]
    if y.shape[0] == 0:
        return np.full((k, k), np.nan)
    d = y - y.mean(axis=0)
    sd = np.sqrt((d**2).sum(axis=0))
    constant = sd <= 1e-12 * max(1.0, math.sqrt(y.shape[0]))
    sd_safe = np.where(constant, 1.0, sd)
    corr = (d.T @ d) / np.outer(sd_safe, sd_safe)
    corr = np.clip(corr, -1.0, 1.0)
    corr[constant, :] = np.nan
    corr[:, constant] = np.nan
    return corr


def correlation_table(corr: np.ndarray, classes: Sequence[str], *, title: str) -> Table:
    """A correlation matrix as a :class:`Table` (NaN -> empty cells) for CSV output."""
    return Table(title=title, rows=list(classes), columns=list(classes), values=np.asarray(corr, dtype=float))



# --------------------------------------------------------------------------- the dataset pipeline
# ``musicperf stats`` and ``musicperf.api.stats``: read the annotated videos, resolve the
# taxonomies, compute every table and correlation matrix (:func:`dataset_stats`), then write all
# files at once or none (:meth:`DatasetStats.write`).

STATS_TAXONOMIES = ("gestures18", "superclasses7", "tiers", "values")


def _safe_stem(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "video"


def _per_alone(option: str, value, n: int) -> list[float] | None:
    if value is None:
        return None
    values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    if not all(v > 0 and math.isfinite(v) for v in values):
        raise ParameterError(f"{option} must be positive, got {value!r}")
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ParameterError(f"{option} gives {len(values)} values for {n} annotation files without a video")
    return values


def load_labelled_videos(
    data: Sequence,
    *,
    fps: float | Sequence[float] | None = None,
    duration: float | Sequence[float] | None = None,
    count_frames: bool = False,
) -> list[AnnotatedVideo]:
    """Read the annotated videos of a dataset.

    Parameters
    ----------
    data : sequence of (video, annotations) pairs or annotation paths
        A pair ``(video, annotations)`` (video None for an annotation file alone), or just the
        annotation file's path (str or Path).
    fps, duration : float or sequence of float, optional
        For annotation files given without a video: one value for all, or one per such file.
    count_frames : bool
        Decode each video to count its frames exactly (slow) instead of trusting its header.

    Returns
    -------
    list of AnnotatedVideo
        Named after the video (or annotation file) stem, ``-2``, ``-3``... for repeated stems.

    Raises
    ------
    ParameterError
        An annotation file alone without ``fps`` and ``duration``.
    AnnotationError, DecodeError
        Unreadable files, annotations beyond the video's end.
    """
    from pathlib import Path

    from musicperf.io import read_annotations

    pairs = [(None, Path(d)) if isinstance(d, (str, Path)) else (None if d[0] is None else Path(d[0]), Path(d[1]))
             for d in data]
    if not pairs:
        raise ParameterError("no annotated videos given")
    alone = sum(1 for video, _ in pairs if video is None)
    fps_list = _per_alone("--fps", fps, alone)
    dur_list = _per_alone("--duration", duration, alone)
    loaded = []
    used: dict[str, int] = {"all": 1}  # "all" names the all-videos heatmaps
    k = 0
    for video, ann in pairs:
        aset = read_annotations(ann)
        if video is not None:
            from musicperf.io.video import probe

            info = probe(video, count_frames=count_frames)
            aset.check_duration(info.duration, media=video)
            rate, n_frames, stem = float(info.fps), int(info.n_frames), video.stem
        else:
            if fps_list is None or dur_list is None:
                raise ParameterError(
                    f"'{ann}' is given without a video: pass VIDEO={ann} or both --fps and --duration"
                )
            rate, seconds = fps_list[k], dur_list[k]
            k += 1
            aset.check_duration(seconds)
            n_frames = int(np.floor(seconds * rate + 1e-6))
            stem = ann.stem
        n = used.get(stem, 0) + 1
        used[stem] = n
        loaded.append(AnnotatedVideo(stem if n == 1 else f"{stem}-{n}", aset, rate, n_frames))
    return loaded


def stats_taxonomies(
    sets: Sequence[AnnotationSet],
    *,
    taxonomy: str = "gestures18",
    mapping=None,
    background: str | None = None,
    super_classes: str = "auto",
) -> tuple[Taxonomy, Taxonomy | None]:
    """The classes of Tables 2-3 / Figure 1 and of Table 5 / Figure 2 (None: no super-classes).

    ``taxonomy``: ``gestures18``, ``superclasses7``, or ``tiers``/``values`` (one class per tier
    name / annotation value of ``sets``, with an optional derived ``background`` class);
    ``mapping``: a YAML file of rename/merge/drop rules applied to it; ``super_classes``:
    ``superclasses7``, ``none``, a YAML mapping applied to the main taxonomy, or ``auto``
    (superclasses7 with gestures18, none otherwise).
    """
    from pathlib import Path

    if taxonomy not in STATS_TAXONOMIES:
        raise ParameterError(f"taxonomy must be one of {', '.join(STATS_TAXONOMIES)}, got {taxonomy!r}")
    if taxonomy in ("gestures18", "superclasses7"):
        if background:
            raise ParameterError("--background is for --taxonomy tiers|values; the built-in taxonomies have 'Normal play'")
        main = Taxonomy.builtin(taxonomy)
    else:
        main = Taxonomy.from_annotations(list(sets), by=taxonomy[:-1], background=background)
    if mapping is not None:
        main = Taxonomy.from_yaml(mapping, base=main)
    sup_arg = str(super_classes)
    if sup_arg == "auto":
        sup_arg = "superclasses7" if taxonomy == "gestures18" else "none"
    if sup_arg == "none":
        sup = None
    elif sup_arg == "superclasses7":
        sup = Taxonomy.builtin("superclasses7", by=main.by)
    else:
        sup = Taxonomy.from_yaml(Path(sup_arg), base=main)
    return main, sup


@dataclass
class DatasetStats:
    """Everything ``musicperf stats`` writes, computed (:func:`dataset_stats`).

    Attributes
    ----------
    videos : list of AnnotatedVideo
    taxonomy, super_taxonomy : Taxonomy, Taxonomy or None
    tables : dict of str -> Table
        ``table2_frames``, ``table3_occurrences``, ``table5_samples``.
    correlations : list of (stem, title, corr, classes)
        Per video (and ``all`` videos when there are several), Figure 1's class correlations and
        Figure 2's super-class ones: ``corr`` is a (K, K) Pearson matrix.
    written : list of Path
        The files of the last :meth:`write`.
    """

    videos: list
    taxonomy: Taxonomy
    super_taxonomy: Taxonomy | None
    tables: dict
    correlations: list
    written: list = field(default_factory=list)

    def write(self, out_dir, *, heatmap_writer) -> list:
        """Write the tables (CSV and Markdown) and heatmaps (PNG and CSV) into ``out_dir``: all or none.

        Every file is written to a temporary folder inside ``out_dir`` first and moved into
        place only when all succeeded (:func:`musicperf._util.write_all_or_nothing`): a full
        disk or an unwritable folder leaves no partial set behind.

        Parameters
        ----------
        out_dir : str or Path
        heatmap_writer : callable
            ``heatmap_writer(path, corr, classes, title=...)`` draws a PNG (e.g.
            :func:`musicperf.report.heatmap.write_correlation_heatmap`; passed in because
            drawing belongs to :mod:`musicperf.report`, above this layer).

        Returns
        -------
        list of Path
            In the order: tables, then per heatmap its PNG and CSV.
        """
        from musicperf._util import check_output_location, write_all_or_nothing

        out = check_output_location(out_dir, kind="dir", what="output", need_bytes=self._size_estimate())
        writers: dict = {}

        def text(s: str):
            return lambda p: p.write_text(s, encoding="utf-8")

        for stem, table in self.tables.items():
            writers[f"{stem}.csv"] = text(table.to_csv())
            writers[f"{stem}.md"] = text(table.to_markdown())
        for stem, title, corr, classes in self.correlations:
            writers[f"{stem}.png"] = (lambda c, k, t: lambda p: heatmap_writer(p, c, k, title=t))(corr, classes, title)
            writers[f"{stem}.csv"] = text(correlation_table(corr, classes, title=title).to_csv())
        self.written = write_all_or_nothing(out, writers)
        return self.written

    def _size_estimate(self) -> int:
        # tables are small; a heatmap PNG is ~50-200 kB
        return 200_000 * len(self.correlations) + 100_000


def dataset_stats(
    videos: Sequence[AnnotatedVideo],
    taxonomy: Taxonomy,
    super_taxonomy: Taxonomy | None = None,
    *,
    length: int = 16,
    stride: int = 16,
) -> DatasetStats:
    """Tables 2, 3, 5 and the correlations of Figures 1 and 2 of 001 for a dataset.

    Parameters
    ----------
    videos : sequence of AnnotatedVideo
    taxonomy : Taxonomy
        Classes of Tables 2 and 3 and Figure 1.
    super_taxonomy : Taxonomy, optional
        Classes of Table 5 and Figure 2 (None: Table 5 uses ``taxonomy``, no Figure 2).
    length, stride : int
        Frames per sample and between sample starts for Table 5.

    Returns
    -------
    DatasetStats
    """
    if length < 1 or stride < 1:
        raise ParameterError(f"--length and --stride must be positive, got {length} and {stride}")
    videos = list(videos)
    labels = dataset_labels(videos, taxonomy)
    sup_labels = dataset_labels(videos, super_taxonomy, unknown="ignore") if super_taxonomy is not None else labels
    tables = {
        "table2_frames": frames_table(videos, labels, taxonomy),
        "table3_occurrences": occurrences_table(videos, labels, taxonomy),
        "table5_samples": samples_table(videos, sup_labels, super_taxonomy or taxonomy, length=length,
                                        stride=stride),
    }
    correlations = []

    def heatmaps(prefix: str, what: str, tax: Taxonomy, ys) -> None:
        runs = [(v.name, y) for v, y in zip(videos, ys)]
        if len(videos) > 1:
            runs.append(("all", np.concatenate(ys, axis=0)))
        for name, y in runs:
            label = "all videos" if name == "all" and len(videos) > 1 else name
            correlations.append((f"{prefix}_correlation_{_safe_stem(name)}", f"Inter-correlation of {what}: {label}",
                                 class_correlation(y), list(tax.classes)))

    heatmaps("figure1", "classes", taxonomy, labels)
    if super_taxonomy is not None:
        heatmaps("figure2", "super-classes", super_taxonomy, sup_labels)
    return DatasetStats(videos, taxonomy, super_taxonomy, tables, correlations)


def __getattr__(name):
    # Deprecated alias, kept importable for code written before the rename.
    if name == "LabelledVideo":
        import warnings

        warnings.warn(f"{__name__}.LabelledVideo is deprecated; use AnnotatedVideo (a video's annotations and frame facts)",
                      DeprecationWarning, stacklevel=2)
        return AnnotatedVideo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
