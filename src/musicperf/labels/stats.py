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
class LabelledVideo:
    """One video of a dataset: its annotations and the frame facts they are labelled at.

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


def _check_videos(videos: Sequence[LabelledVideo]) -> None:
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


def dataset_labels(videos: Sequence[LabelledVideo], taxonomy: Taxonomy, *, unknown: str = "warn") -> list[np.ndarray]:
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


def frames_table(videos: Sequence[LabelledVideo], labels: Sequence[np.ndarray], taxonomy: Taxonomy) -> Table:
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


def class_occurrences(video: LabelledVideo, labels: np.ndarray, taxonomy: Taxonomy) -> np.ndarray:
    """Occurrences of each class in one video (Table 3 of ``001``), see the module docstring.

    Parameters
    ----------
    video : LabelledVideo
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


def occurrences_table(videos: Sequence[LabelledVideo], labels: Sequence[np.ndarray], taxonomy: Taxonomy) -> Table:
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
    videos: Sequence[LabelledVideo],
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

