"""In-memory annotations: the format-neutral model every reader returns and every writer takes.

Times are float seconds, relative to the start of the media (any ELAN ``TIME_ORIGIN`` offset is
already applied by the reader). A :class:`Tier` holds non-overlapping or overlapping intervals
with string values; an :class:`AnnotationSet` holds ordered tiers plus the media they describe.
Imports numpy only.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from musicperf.errors import AnnotationError


#: Latest time an annotation file may hold, in seconds (100 hours). No recording of a
#: performance is that long; a larger time is a unit error or a hostile file, and would make
#: frame arrays of absurd size downstream.
MAX_TIME = 100 * 3600.0


class AnnotationWarning(UserWarning):
    """A reader left something out or changed it (zero-length or untimed annotations, ...).

    The message names the file, the tier and what was done.
    """


def time_problem(t: float) -> str | None:
    """Why ``t`` (seconds) is not an acceptable annotation time, or ``None`` when it is.

    Accepted: finite, ``0 <= t <= MAX_TIME``.
    """
    if not math.isfinite(t):
        return "is not a finite number"
    if t < 0:
        return "is negative"
    if t > MAX_TIME:
        return f"is beyond {MAX_TIME / 3600:.0f} hours"
    return None


def check_time(t: float, *, path: str | Path | None, where: str, shown: str | None = None) -> float:
    """Return ``t`` or raise a one-line :class:`AnnotationError` naming ``path``, ``where`` and the value.

    ``shown`` is the value as written in the file (``"1e20"`` ms, ``"nan"``), when it differs
    from ``t`` in seconds.
    """
    problem = time_problem(t)
    if problem is not None:
        value = shown if shown is not None else f"{t!r} s"
        raise AnnotationError(f"'{path}': {where}: time {value} {problem}; the file is refused")
    return t


def zero_length_rule(annotations: list[Annotation], *, path: str | Path | None, tier: str,
                     point_tier: bool = False, stacklevel: int = 3) -> list[Annotation]:
    """Apply the zero-length rule of the readers to one tier's annotations; warn when it acts.

    * A tier whose annotations are **all** zero-length has no time span anywhere: in an interval
      format (ELAN, a Praat IntervalTier, an ELAN export) it is damage (ELAN and Praat cannot make
      such annotations; a file whose slots were all placed at one time looks like this), and
      training on it teaches a model to predict nothing. Its annotations are dropped with an
      :class:`AnnotationWarning`. With ``point_tier`` (a format that has points: the musicperf
      CSV, which writes a Praat TextTier so) the tier is kept as points.
    * Zero-length annotations **among intervals** are kept as points (musicperf writes points
      so; :func:`musicperf.labels.frame_labels` labels the one frame containing a point), with
      an :class:`AnnotationWarning` giving their number and the first one.
    """
    zero = [a for a in annotations if a.end <= a.start]
    if not zero or (point_tier and len(zero) == len(annotations)):
        return annotations
    first = zero[0]
    if len(zero) == len(annotations):
        warnings.warn(
            AnnotationWarning(
                f"'{path}': tier {tier!r}: all its {len(zero)} annotation(s) have zero length (the first at "
                f"{first.start:.3f} s, value {first.value!r}): the tier spans no time; its annotations were dropped"
            ),
            stacklevel=stacklevel,
        )
        return []
    warnings.warn(
        AnnotationWarning(
            f"'{path}': tier {tier!r}: {len(zero)} zero-length annotation(s) (the first at {first.start:.3f} s, "
            f"value {first.value!r}) are kept as points, each marking one frame"
        ),
        stacklevel=stacklevel,
    )
    return annotations


@dataclass(frozen=True)
class Annotation:
    """One annotated interval: ``start`` and ``end`` in seconds, ``value`` its text."""

    start: float
    end: float
    value: str = ""


@dataclass
class Tier:
    """A named sequence of annotations.

    Attributes
    ----------
    name : str
        Tier id (ELAN ``TIER_ID``).
    annotations : list of Annotation
        Sorted by start time.
    parent : str or None
        Parent tier name for ELAN dependent tiers.
    linguistic_type : str
        ELAN linguistic type id.
    participant, annotator : str
        ELAN attributes, kept for round-trips.
    vocabulary : str or None
        Id of the controlled vocabulary the values come from.
    """

    name: str
    annotations: list[Annotation] = field(default_factory=list)
    parent: str | None = None
    linguistic_type: str = "default-lt"
    participant: str = ""
    annotator: str = ""
    vocabulary: str | None = None

    def __post_init__(self) -> None:
        self.annotations = sorted(self.annotations, key=lambda a: (a.start, a.end))

    def __len__(self) -> int:
        return len(self.annotations)

    @property
    def intervals(self) -> np.ndarray:
        """``(n, 2)`` float array of start and end times in seconds."""
        if not self.annotations:
            return np.zeros((0, 2), dtype=float)
        return np.array([[a.start, a.end] for a in self.annotations], dtype=float)

    @property
    def values(self) -> list[str]:
        """The annotation values, in the order of :attr:`intervals`."""
        return [a.value for a in self.annotations]


@dataclass
class MediaRef:
    """A media file an annotation document links (ELAN ``MEDIA_DESCRIPTOR``)."""

    url: str
    mime_type: str = ""
    relative_url: str = ""
    time_origin: float = 0.0  # seconds; already applied to annotation times


@dataclass
class AnnotationSet:
    """Tiers of one annotation document, plus linked media and controlled vocabularies.

    Attributes
    ----------
    tiers : dict of str to Tier
        In document order.
    media : list of MediaRef
    vocabularies : dict of str to list of str
        Controlled vocabulary id -> allowed values.
    source : Path or None
        The file this set was read from.
    document : object or None
        The source document as read, for writers that keep what the model does not hold
        (:func:`musicperf.io.elan.read_eaf` stores an :class:`~musicperf.io.elan.EafDocument`
        here and :func:`~musicperf.io.elan.write_eaf` writes it back losslessly). ``None`` for
        sets built in code or read from other formats.
    """

    tiers: dict[str, Tier] = field(default_factory=dict)
    media: list[MediaRef] = field(default_factory=list)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    source: Path | None = None
    document: Any = field(default=None, repr=False, compare=False)

    def __iter__(self):
        return iter(self.tiers.values())

    def __len__(self) -> int:
        return len(self.tiers)

    def __getitem__(self, name: str) -> Tier:
        try:
            return self.tiers[name]
        except KeyError:
            raise AnnotationError(
                f"no tier named {name!r} in {self._where()}; tiers are: {', '.join(self.tiers) or 'none'}"
            ) from None

    def add_tier(self, tier: Tier) -> Tier:
        if tier.name in self.tiers:
            raise AnnotationError(f"tier {tier.name!r} already exists in {self._where()}")
        self.tiers[tier.name] = tier
        return tier

    @property
    def time_range(self) -> tuple[float, float]:
        """(earliest start, latest end) over all annotations, ``(0.0, 0.0)`` when empty."""
        starts = [a.start for t in self for a in t.annotations]
        ends = [a.end for t in self for a in t.annotations]
        if not starts:
            return (0.0, 0.0)
        return (min(starts), max(ends))

    def check_duration(self, duration: float, *, media: str | Path | None = None, tolerance: float = 0.5) -> None:
        """Raise :class:`AnnotationError` when annotations end after ``duration`` seconds.

        The message guesses the usual cause (times written in milliseconds).
        """
        end = self.time_range[1]
        if end > duration + tolerance:
            on = f" of '{media}'" if media else ""
            hint = " (were times in milliseconds?)" if end > 100 * duration else ""
            raise AnnotationError(
                f"annotation end {end:.3f} s exceeds the duration {duration:.3f} s{on} in {self._where()}{hint}"
            )

    def _where(self) -> str:
        return f"'{self.source}'" if self.source else "the annotation set"
