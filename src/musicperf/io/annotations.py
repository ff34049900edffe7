"""In-memory annotations: the format-neutral model every reader returns and every writer takes.

Times are float seconds, relative to the start of the media (any ELAN ``TIME_ORIGIN`` offset is
already applied by the reader). A :class:`Tier` holds non-overlapping or overlapping intervals
with string values; an :class:`AnnotationSet` holds ordered tiers plus the media they describe.
Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicperf.errors import AnnotationError


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
    """

    tiers: dict[str, Tier] = field(default_factory=dict)
    media: list[MediaRef] = field(default_factory=list)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    source: Path | None = None

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
