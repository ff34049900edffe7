"""Where a video is annotated, and where to annotate next.

* Annotated spans: the stretches of a video where the absence of an annotation means "absent"
  (elsewhere it means "not looked at"). They need not be one prefix: ``--annotated 0-20,45-60``
  (:func:`parse_spans`), a tier naming them (:func:`spans_from_tier`), ``--until T`` (``0-T``),
  or by default the span up to the last annotation (:func:`annotated_extent`, which says so).
* Annotate next: :func:`query_stretches` ranks the stretches where a model is least sure
  outside the annotated spans; :func:`query_tier` writes them as a tier (``auto-query``) whose
  values give the rank and the uncertainty, for the annotator to correct and train again.

Imports numpy only.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from musicperf.errors import AnnotationError, ParameterError
from musicperf.io.annotations import Annotation, AnnotationSet, Tier

__all__ = ["parse_spans", "spans_from_tier", "spans_to_mask", "annotated_extent", "AnnotatedExtent",
           "frame_uncertainty", "query_stretches", "query_tier", "QUERY_TIER"]

#: Name of the tier of stretches to annotate next.
QUERY_TIER = "auto-query"

_SPAN = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*-\s*([0-9]*\.?[0-9]+)\s*$")


def _normalise(spans: np.ndarray) -> np.ndarray:
    """Sort and merge overlapping or touching spans."""
    spans = np.asarray(spans, dtype=float).reshape(-1, 2)
    if len(spans) == 0:
        return spans
    spans = spans[np.argsort(spans[:, 0])]
    out = [spans[0].copy()]
    for s, e in spans[1:]:
        if s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append(np.array([s, e]))
    return np.asarray(out)


def parse_spans(text: str) -> np.ndarray:
    """Parse ``"START-END[,START-END...]"`` (seconds) into sorted, merged ``(n, 2)`` spans.

    >>> parse_spans("45-60, 0-20.5").tolist()
    [[0.0, 20.5], [45.0, 60.0]]
    """
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise ParameterError(f"no annotated span in {text!r}; expected START-END[,START-END...] in seconds")
    spans = []
    for part in parts:
        m = _SPAN.match(part)
        if not m:
            raise ParameterError(f"annotated span {part.strip()!r} is not START-END in seconds (e.g. 0-20.5)")
        s, e = float(m.group(1)), float(m.group(2))
        if e <= s:
            raise ParameterError(f"annotated span {part.strip()!r} ends before it starts")
        spans.append((s, e))
    return _normalise(np.array(spans))


def spans_from_tier(aset: AnnotationSet, name: str) -> np.ndarray:
    """The annotations of tier ``name`` as annotated spans (sorted, merged)."""
    tier = aset[name]
    if not tier.annotations:
        raise AnnotationError(f"tier {name!r} naming the annotated spans is empty in {aset._where()}")
    return _normalise(np.array([[a.start, a.end] for a in tier.annotations]))


def spans_to_mask(spans: np.ndarray, *, n_frames: int, fps: float) -> np.ndarray:
    """Frames lying entirely inside a span: ``(n_frames,)`` bool (frame ``i`` is ``[i, i+1) / fps``)."""
    mask = np.zeros(int(n_frames), dtype=bool)
    eps = 1e-6
    for s, e in np.asarray(spans, dtype=float).reshape(-1, 2):
        first = max(0, math.ceil(s * fps - eps))
        stop = min(int(n_frames), math.floor(e * fps + eps))
        if stop > first:
            mask[first:stop] = True
    return mask


@dataclass
class AnnotatedExtent:
    """Annotated spans and how they were found.

    ``source`` is ``"annotated"``, ``"tier"``, ``"until"`` or ``"last annotation"``;
    ``warnings`` are one-line messages for the user (``train`` prints them).
    """

    spans: np.ndarray
    source: str
    warnings: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return float((self.spans[:, 1] - self.spans[:, 0]).sum()) if len(self.spans) else 0.0

    def describe(self) -> str:
        text = ", ".join(f"{s:.2f}-{e:.2f} s" for s, e in self.spans)
        return f"annotated: {text} ({self.seconds:.1f} s, from {self.source})"


def annotated_extent(
    aset: AnnotationSet,
    *,
    duration: float | None = None,
    until: float | None = None,
    annotated: str | np.ndarray | None = None,
    tier: str | None = None,
    ignore_tiers: tuple[str, ...] = (),
) -> AnnotatedExtent:
    """Decide where the annotations of ``aset`` are complete.

    Parameters
    ----------
    aset : AnnotationSet
    duration : float, optional
        The media's duration in seconds (for the warnings and clipping).
    until : float, optional
        Annotated from 0 to ``until`` seconds.
    annotated : str or ndarray, optional
        ``"START-END,..."`` or ``(n, 2)`` spans.
    tier : str, optional
        A tier whose annotations are the annotated spans.
    ignore_tiers : tuple of str
        Tiers not to count when finding the last annotation (e.g. the spans tier, ``auto:`` ones).

    Returns
    -------
    AnnotatedExtent
    """
    given = [n for n, v in (("until", until), ("annotated", annotated), ("tier", tier)) if v is not None]
    if len(given) > 1:
        raise ParameterError(f"give only one of --until, --annotated and an annotated-spans tier, got {given}")
    ends = [a.end for t in aset if t.name not in ignore_tiers and t.name != tier and not t.name.startswith("auto")
            for a in t.annotations]
    last = max(ends) if ends else 0.0
    warnings: list[str] = []
    if until is not None:
        if not (math.isfinite(until) and until > 0):
            raise ParameterError(f"--until must be a positive number of seconds, got {until!r}")
        spans, source = np.array([[0.0, float(until)]]), "until"
        if duration is not None and until > duration + 1e-6:
            warnings.append(f"--until {until:g} s is past the end of the video ({duration:.2f} s)")
        elif until > last + 1e-6:
            warnings.append(f"--until {until:g} s is past the last annotation ({last:.2f} s): everything in "
                            f"{last:.2f}-{until:g} s counts as 'absent'")
    elif annotated is not None:
        spans = parse_spans(annotated) if isinstance(annotated, str) else _normalise(annotated)
        source = "annotated"
    elif tier is not None:
        spans, source = spans_from_tier(aset, tier), "tier"
    else:
        if last <= 0:
            raise AnnotationError(f"no annotation in {aset._where()}: nothing to learn from")
        spans, source = np.array([[0.0, last]]), "last annotation"
        warnings.append(f"no --until or --annotated given: the annotated part is taken as 0-{last:.2f} s "
                        "(up to the last annotation); frames after it are not used")
    if duration is not None:
        if len(spans) and spans[:, 0].min() >= duration:
            raise ParameterError(f"the annotated spans start after the end of the video ({duration:.2f} s)")
        if source != "until" and spans[:, 1].max() > duration + 1e-6:
            warnings.append(f"annotated spans end after the video ({duration:.2f} s): clipped")
        spans = spans.copy()
        spans[:, 1] = np.minimum(spans[:, 1], duration)
    return AnnotatedExtent(spans=spans, source=source, warnings=warnings)


def frame_uncertainty(probs: np.ndarray) -> np.ndarray:
    """Per-frame uncertainty in [0, 1]: the largest over classes of ``1 - |2 p - 1|``.

    A frame is as uncertain as its least certain class (1 at p = 0.5, 0 at p = 0 or 1).
    """
    p = np.asarray(probs, dtype=float)
    if p.ndim == 1:
        p = p[:, None]
    return np.max(1.0 - np.abs(2.0 * p - 1.0), axis=1)


def query_stretches(
    probs: np.ndarray,
    *,
    fps: float,
    n: int = 5,
    length: float = 3.0,
    annotated: np.ndarray | None = None,
) -> list[tuple[float, float, float]]:
    """The ``n`` stretches where the model is least sure, most uncertain first.

    The uncertainty of a stretch of ``length`` seconds is the mean of
    :func:`frame_uncertainty` over its frames; stretches are chosen greedily, without overlap,
    and never overlap the annotated frames (the annotator has been there).

    Parameters
    ----------
    probs : ndarray, shape (T, K)
        Per-frame probabilities of the model.
    fps : float
    n : int
        Stretches to return (fewer when the unannotated part is short).
    length : float
        Seconds per stretch.
    annotated : ndarray of bool, shape (T,), optional
        Frames already annotated.

    Returns
    -------
    list of (start, end, uncertainty)
        Seconds and the mean uncertainty in [0, 1], ranked.
    """
    if not (isinstance(n, int) and n >= 1):
        raise ParameterError(f"n must be a positive integer, got {n!r}")
    if not (fps > 0 and length > 0):
        raise ParameterError("fps and length must be positive")
    u = frame_uncertainty(probs)
    t = len(u)
    w = max(1, min(t, int(round(length * fps))))
    free = np.ones(t, dtype=bool) if annotated is None else ~np.asarray(annotated, dtype=bool)
    c = np.concatenate([[0.0], np.cumsum(u)])
    cf = np.concatenate([[0], np.cumsum(~free)])
    out = []
    for _ in range(n):
        starts = np.arange(0, t - w + 1)
        ok = (cf[starts + w] - cf[starts]) == 0
        if not ok.any():
            break
        score = (c[starts + w] - c[starts]) / w
        score[~ok] = -1.0
        s = int(np.argmax(score))
        out.append((s / fps, (s + w) / fps, float(score[s])))
        free[s : s + w] = False
        cf = np.concatenate([[0], np.cumsum(~free)])
    return out


def query_tier(stretches: list[tuple[float, float, float]], *, name: str = QUERY_TIER) -> Tier:
    """A tier of the stretches to annotate next; values ``"1 (uncertainty 0.83)"``, rank first."""
    anns = [Annotation(s, e, f"{i} (uncertainty {u:.2f})") for i, (s, e, u) in enumerate(stretches, start=1)]
    return Tier(name, sorted(anns, key=lambda a: a.start))
