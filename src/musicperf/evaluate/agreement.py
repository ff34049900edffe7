"""Frame-level agreement between two annotation documents (``musicperf score``).

Compares a reference :class:`~musicperf.io.annotations.AnnotationSet` with a prediction (or a
second human annotator) tier by tier: each tier is turned into a per-frame presence vector on a
common frame grid (a frame counts as present when any annotation of the tier overlaps it, the
rule of Section 3 of paper 001), then per-tier precision, recall and F1 (Equations 11-13 of
paper 001) and Cohen's kappa are computed, with their macro averages.

The frame labelling and the metric formulas are not re-implemented here: they come from
:func:`musicperf.labels.frame_labels` and :mod:`musicperf.evaluate.metrics`. This module only
matches tiers, builds the frame grid and the time window, and assembles a readable result.
Imports numpy only at module level; never imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from musicperf.errors import AnnotationError, ParameterError
from musicperf.evaluate.segmental import segmental_scores
from musicperf.io.annotations import AnnotationSet, Tier, time_problem

#: The segmental scores added beside the frame scores (:mod:`musicperf.evaluate.segmental`).
_SEGMENTAL = ("f1@10", "f1@25", "f1@50", "edit")
_METRICS = ("precision", "recall", "f1", "kappa", *_SEGMENTAL)

#: Prefix of the tiers that ``musicperf label`` writes; ``auto: gesture`` predicts ``gesture``.
AUTO_PREFIX = "auto: "

#: Most frame x tier cells scored at once (a 100 h recording at 25 fps with 18 tiers is 1.6e8).
MAX_CELLS = 500_000_000


def _check_times(aset: AnnotationSet, role: str) -> None:
    """Refuse times the readers refuse (sets built in code reach here unchecked)."""
    for tier in aset:
        for a in tier.annotations:
            for t in (a.start, a.end):
                problem = time_problem(t)
                if problem is not None:
                    where = f"'{aset.source}'" if aset.source else f"the {role}"
                    raise AnnotationError(f"{where}: tier {tier.name!r}: time {t!r} s {problem}; it cannot be scored")


@dataclass
class TierMatch:
    """How the tiers of a reference and a prediction were paired.

    Attributes
    ----------
    pairs : list of (str, str)
        ``(reference tier, prediction tier)`` in reference order.
    unmatched_reference : list of str
        Reference tiers with no counterpart in the prediction.
    unmatched_prediction : list of str
        Prediction tiers not used by any pair.
    ignored_reference : list of str
        Reference tiers that were skipped because they are predictions themselves (``auto: ``).
    """

    pairs: list[tuple[str, str]] = field(default_factory=list)
    unmatched_reference: list[str] = field(default_factory=list)
    unmatched_prediction: list[str] = field(default_factory=list)
    ignored_reference: list[str] = field(default_factory=list)


def match_tiers(reference: list[str], prediction: list[str], *, tiers: list[str] | None = None) -> TierMatch:
    """Pair reference tiers with prediction tiers by name.

    A reference tier ``X`` is paired with the prediction tier ``auto: X`` when there is one
    (the output of ``musicperf label``, which also keeps copies of the human tiers, so the
    ``auto:`` tier must win), else with a prediction tier named exactly ``X`` (agreement between
    two human annotators). Reference tiers whose own name starts with ``auto: `` are ignored.

    Parameters
    ----------
    reference, prediction : list of str
        Tier names, in document order.
    tiers : list of str, optional
        Only score these reference tiers; a name missing from the reference raises.

    Returns
    -------
    TierMatch
    """
    pred_set = set(prediction)
    if tiers is not None:
        missing = [t for t in tiers if t not in reference]
        if missing:
            raise ParameterError(
                f"tier(s) {', '.join(map(repr, missing))} not in the reference; its tiers are: "
                f"{', '.join(reference) or 'none'}"
            )
        wanted = list(tiers)
    else:
        wanted = list(reference)
    match = TierMatch()
    used: set[str] = set()
    for name in wanted:
        if name.startswith(AUTO_PREFIX):
            match.ignored_reference.append(name)
            continue
        auto = AUTO_PREFIX + name
        if auto in pred_set:
            match.pairs.append((name, auto))
            used.add(auto)
        elif name in pred_set:
            match.pairs.append((name, name))
            used.add(name)
        else:
            match.unmatched_reference.append(name)
    match.unmatched_prediction = [p for p in prediction if p not in used]
    return match


def frame_window(n_frames: int, fps: float, start: float | None, end: float | None) -> tuple[int, int]:
    """Frame index range ``[first, stop)`` of the frames lying inside ``[start, end)`` seconds.

    Frame ``i`` covers ``[i / fps, (i + 1) / fps)``; a frame is scored when it lies entirely in
    the window (a small tolerance absorbs float rounding of times such as 60.0 s at 25 fps).
    """
    eps = 1e-6
    first = 0 if start is None else max(0, math.ceil(start * fps - eps))
    stop = n_frames if end is None else min(n_frames, math.floor(end * fps + eps))
    return first, stop


def score_annotations(
    reference: AnnotationSet,
    prediction: AnnotationSet,
    *,
    fps: float = 25.0,
    start: float | None = None,
    end: float | None = None,
    tiers: list[str] | None = None,
    by: str = "tier",
    duration: float | None = None,
) -> dict:
    """Frame-level precision, recall, F1 and Cohen's kappa per tier, and their macro averages.

    Beside the frame scores each tier gets the segmental scores of temporal action segmentation
    (F1@10, F1@25, F1@50 and the edit score, :mod:`musicperf.evaluate.segmental`).

    Parameters
    ----------
    reference : AnnotationSet
        The ground truth (or the first annotator).
    prediction : AnnotationSet
        The prediction (or the second annotator); ``auto: X`` tiers are scored against ``X``.
    fps : float
        Frame rate of the scoring grid in frames per second (25 in the papers: 0.04 s steps).
    start, end : float, optional
        Only score frames inside ``[start, end)`` seconds, e.g. the part that was not used for
        training. ``end`` defaults to the last annotation end of either document.
    tiers : list of str, optional
        Reference tiers (classes, with ``by="value"``) to score (default: all that are not
        ``auto:`` tiers).
    by : {"tier", "value"}
        ``"value"``: the classes are annotation values, not tier names (models trained with
        ``--by value``); the annotations of every non-``auto:`` tier of both documents are
        regrouped into one tier per distinct value before matching.
    duration : float, optional
        Seconds of the media the documents describe. The scored window then runs to the media's
        end (or ``end``), so that frames after the last annotation of both documents are scored
        as absent: without it a prediction and a reference that both stop early shrink the
        window to their extent.

    Returns
    -------
    dict
        ``{"fps", "start", "end", "n_frames", "tiers": {name: {"prediction_tier", "precision",
        "recall", "f1", "kappa", "support", "predicted", "frames", "confusion"}}, "macro": {...},
        "unmatched_reference", "unmatched_prediction", "ignored_reference"}``. ``support`` and
        ``predicted`` count positive frames in the reference and the prediction;
        ``confusion`` is ``[[TN, FP], [FN, TP]]`` in frames; ``"f1@10"``, ``"f1@25"``,
        ``"f1@50"`` and ``"edit"`` are the segmental scores (fractions). A metric that is undefined (no
        reference positives in the window: 0/0) is ``None`` and left out of the averages.
    """
    from musicperf.evaluate import metrics
    from musicperf.labels import Taxonomy, frame_labels

    if not (isinstance(fps, (int, float)) and fps > 0 and math.isfinite(fps)):
        raise ParameterError(f"fps must be a positive number of frames per second, got {fps!r}")
    if start is not None and end is not None and end <= start:
        raise ParameterError(f"--to {end} s must be after --from {start} s")
    if by not in ("tier", "value"):
        raise ParameterError(f"by must be 'tier' or 'value', got {by!r}")
    _check_times(reference, "reference")
    _check_times(prediction, "prediction")
    if duration is not None and not (isinstance(duration, (int, float)) and duration > 0 and math.isfinite(duration)):
        raise ParameterError(f"duration must be a positive number of seconds, got {duration!r}")
    if by == "value":
        reference, prediction = by_value(reference), by_value(prediction)
    match = match_tiers(list(reference.tiers), list(prediction.tiers), tiers=tiers)
    last = end
    if last is None:
        last = duration if duration is not None else max(reference.time_range[1], prediction.time_range[1])
    n_frames = max(int(math.ceil(last * fps - 1e-6)), 0)
    first, stop = frame_window(n_frames, fps, start, end)
    result: dict = {
        "fps": float(fps),
        "start": float(first / fps),
        "end": float(stop / fps),
        "n_frames": int(max(stop - first, 0)),
        "tiers": {},
        "macro": {},
        "unmatched_reference": match.unmatched_reference,
        "unmatched_prediction": match.unmatched_prediction,
        "ignored_reference": match.ignored_reference,
    }
    if not match.pairs or stop <= first:
        result["macro"] = {m: None for m in _METRICS}
        return result

    names = [r for r, _ in match.pairs]
    # Both documents become one-tier-per-class sets named by the reference tier, so the same
    # taxonomy (class = tier name) labels both frame grids.
    ref_set = AnnotationSet(tiers={r: _renamed(reference.tiers[r], r) for r, _ in match.pairs})
    pred_set = AnnotationSet(tiers={r: _renamed(prediction.tiers[p], r) for r, p in match.pairs})
    # Class = reference tier name, exactly (no forgiving name matching: the pairs are fixed).
    taxonomy = Taxonomy(tuple(names), {n: n for n in names}, by="tier", name="score")
    if (stop - first) * len(names) > MAX_CELLS:
        raise ParameterError(
            f"scoring {stop - first} frames x {len(names)} tiers at {fps:g} fps is more than {MAX_CELLS:.0e} cells; "
            "score a window (--from/--to) or at a lower fps"
        )
    # only the window's frames are labelled (frame i of the window starts at (first + i) / fps)
    kw = dict(fps=fps, n_frames=stop - first, start_time=first / fps, check=False, unknown="ignore")
    y_true = np.asarray(frame_labels(ref_set, taxonomy, **kw))
    y_pred = np.asarray(frame_labels(pred_set, taxonomy, **kw))
    y_true = (y_true > 0.5).astype(np.int64)
    y_pred = (y_pred > 0.5).astype(np.int64)

    report = metrics.multilabel_report(y_true, y_pred.astype(float), classes=names, threshold=0.5, absent="exclude")
    kappas = np.atleast_1d(metrics.cohen_kappa(y_true, y_pred))
    seg = segmental_scores(y_true, y_pred, classes=names)["per_class"]
    for k, (r, p) in enumerate(match.pairs):
        row = report["per_class"][r]
        result["tiers"][r] = {
            "prediction_tier": p,
            "precision": _num(row["precision"]),
            "recall": _num(row["recall"]),
            "f1": _num(row["f1"]),
            "kappa": _num(kappas[k]),
            "support": int(y_true[:, k].sum()),
            "predicted": int(y_pred[:, k].sum()),
            "frames": int(y_true.shape[0]),
            # Figure 3 of 000: [[TN, FP], [FN, TP]], rows true absent/present.
            "confusion": [[int(row["tn"]), int(row["fp"])], [int(row["fn"]), int(row["tp"])]],
            **{m: seg[r][m] for m in _SEGMENTAL},
        }
    # Tiers whose reference is empty in the window have no recall or F1 (0/0): they are left
    # out of the averages, as in musicperf.evaluate.metrics (absent="exclude").
    # Kappa too, so that all four averages are over the same tiers (two empty tiers "agree"
    # with kappa 1, which would flatter the average).
    scored = [row for row in result["tiers"].values() if row["support"] > 0]
    result["macro"] = {m: _mean([row[m] for row in scored]) for m in _METRICS}
    result["macro"]["tiers"] = len(scored)
    return result


def _num(x) -> float | None:
    """A metric as a JSON-friendly float, ``None`` when undefined (NaN)."""
    x = float(x)
    return None if math.isnan(x) else x


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def by_value(aset: AnnotationSet) -> AnnotationSet:
    """Regroup the annotations of the non-``auto:`` tiers into one tier per distinct value.

    ``auto:`` tiers (predictions, one per class already) are kept as they are; empty values are
    ignored. Used to score classes that are annotation values rather than tier names.
    """
    groups: dict[str, list] = {}
    kept: dict[str, Tier] = {}
    for tier in aset:
        if tier.name.startswith(AUTO_PREFIX):
            kept[tier.name] = tier
            continue
        for a in tier.annotations:
            if a.value.strip():
                groups.setdefault(a.value.strip(), []).append(a)
    out = AnnotationSet(source=aset.source)
    for value, anns in groups.items():
        out.add_tier(Tier(value, anns))
    for name, tier in kept.items():
        if name in out.tiers:
            raise ParameterError(f"'{name}' is both a value and a tier name in {out._where()}")
        out.add_tier(tier)
    return out


def _renamed(tier: Tier, name: str) -> Tier:
    return Tier(name=name, annotations=list(tier.annotations))


def format_table(result: dict) -> str:
    """Render a :func:`score_annotations` result as a fixed-width text table."""
    lines = [f"frames {result['n_frames']} at {result['fps']:g} fps, {result['start']:.2f}-{result['end']:.2f} s"]
    width = max([len("tier"), len("macro average")] + [len(n) for n in result["tiers"]])
    lines.append(f"{'tier':<{width}}  precision  recall     f1  kappa  F1@10  F1@25  F1@50   edit  support  predicted")
    for name, row in result["tiers"].items():
        lines.append(
            f"{name:<{width}}  {_fmt(row['precision'], 9)}  {_fmt(row['recall'], 6)}  {_fmt(row['f1'], 5)}  "
            f"{_fmt(row['kappa'], 5)}  {_segfmt(row)}  {row['support']:7d}  {row['predicted']:9d}"
        )
    m = result["macro"]
    lines.append(
        f"{'macro average':<{width}}  {_fmt(m['precision'], 9)}  {_fmt(m['recall'], 6)}  {_fmt(m['f1'], 5)}  "
        f"{_fmt(m['kappa'], 5)}  {_segfmt(m)}"
    )
    for key, label in (
        ("unmatched_reference", "reference tiers without a prediction"),
        ("unmatched_prediction", "prediction tiers not scored"),
        ("ignored_reference", "reference tiers ignored (auto:)"),
    ):
        if result[key]:
            lines.append(f"{label}: {', '.join(result[key])}")
    empty = [n for n, row in result["tiers"].items() if row["support"] == 0]
    if empty:
        lines.append(f"not in the averages (no reference frame in the window): {', '.join(empty)}")
    return "\n".join(lines)


def _segfmt(row: dict) -> str:
    return "  ".join(_fmt(row.get(m), 5) for m in _SEGMENTAL)


def _fmt(x: float | None, width: int) -> str:
    return f"{'-':>{width}}" if x is None else f"{x:{width}.3f}"
