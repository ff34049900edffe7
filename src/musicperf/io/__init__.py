"""File input and output: annotations (ELAN, TextGrid, tabular) and, beside them, media.

This package ``__init__`` stays light: it imports no submodule eagerly, so ``import musicperf.io``
costs nothing. :func:`read_annotations` and :func:`write_annotations` dispatch on the file
extension (and, for ``.txt/.csv/.tsv``, on the content) to the format modules; other names are
re-exported lazily.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from musicperf.errors import AnnotationError, ParameterError

if TYPE_CHECKING:  # pragma: no cover
    from musicperf.io.annotations import AnnotationSet, Tier

__all__ = [
    "read_annotations",
    "write_annotations",
    "annotation_format",
    "Annotation",
    "AnnotationSet",
    "MediaRef",
    "Tier",
    "AnnotationWarning",
    "read_eaf",
    "write_eaf",
    "add_prediction_tiers",
    "read_textgrid",
    "write_textgrid",
    "read_elan_tab",
    "write_elan_tab",
    "read_csv",
    "write_csv",
]

_LAZY = {
    "Annotation": "musicperf.io.annotations",
    "AnnotationSet": "musicperf.io.annotations",
    "MediaRef": "musicperf.io.annotations",
    "Tier": "musicperf.io.annotations",
    "AnnotationWarning": "musicperf.io.annotations",
    "EafDocument": "musicperf.io.elan",
    "add_prediction_tiers": "musicperf.io.elan",
    "read_eaf": "musicperf.io.elan",
    "write_eaf": "musicperf.io.elan",
    "read_ecv": "musicperf.io.elan",
    "read_textgrid": "musicperf.io.textgrid",
    "write_textgrid": "musicperf.io.textgrid",
    "read_elan_tab": "musicperf.io.tabular",
    "write_elan_tab": "musicperf.io.tabular",
    "read_csv": "musicperf.io.tabular",
    "write_csv": "musicperf.io.tabular",
}

#: Annotation formats by lower-case suffix; ``"tabular"`` is resolved by looking at the content.
_SUFFIX_FORMAT = {
    ".eaf": "eaf",
    ".etf": "eaf",
    ".textgrid": "textgrid",
    ".txt": "tabular",
    ".tsv": "tabular",
    ".csv": "tabular",
}
FORMATS = ("eaf", "textgrid", "elan_tab", "csv")


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'musicperf.io' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def annotation_format(path: str | Path, *, for_writing: bool = False) -> str:
    """The annotation format of ``path``: one of ``"eaf"``, ``"textgrid"``, ``"elan_tab"``, ``"csv"``.

    On reading, ``.txt/.tsv/.csv`` files are told apart by content (a tab in the first line
    means an ELAN tab-delimited export). On writing, ``.csv`` is the musicperf CSV and
    ``.txt/.tsv`` the tab-delimited layout.
    """
    path = Path(path)
    kind = _SUFFIX_FORMAT.get(path.suffix.lower())
    if kind is None:
        raise AnnotationError(
            f"'{path}': unknown annotation format {path.suffix or '(no suffix)'!r}; "
            "expected .eaf, .etf, .TextGrid, .txt, .tsv or .csv"
        )
    if kind != "tabular":
        return kind
    if for_writing:
        return "csv" if path.suffix.lower() == ".csv" else "elan_tab"
    from musicperf.io.tabular import sniff_tabular

    return sniff_tabular(path)


def _select(aset: AnnotationSet, tier_filter) -> AnnotationSet:
    """Keep the tiers ``tier_filter`` selects; a kept tier whose parent is dropped loses its parent."""
    names = list(aset.tiers)
    if callable(tier_filter):
        keep = [n for n in names if tier_filter(aset.tiers[n])]
    elif isinstance(tier_filter, str):
        keep = [n for n in names if fnmatch.fnmatchcase(n, tier_filter)]
        if not keep:
            raise AnnotationError(
                f"no tier of '{aset.source}' matches {tier_filter!r}; tiers are: {', '.join(names) or 'none'}"
            )
    elif isinstance(tier_filter, Iterable):
        wanted = list(tier_filter)
        missing = [n for n in wanted if n not in aset.tiers]
        if missing:
            raise AnnotationError(
                f"'{aset.source}' has no tier {', '.join(map(repr, missing))}; tiers are: {', '.join(names) or 'none'}"
            )
        keep = [n for n in names if n in set(wanted)]
    else:
        raise AnnotationError(f"tier_filter must be a glob pattern, a list of names or a callable, not {tier_filter!r}")
    kept = {n: aset.tiers[n] for n in keep}
    for tier in kept.values():
        if tier.parent is not None and tier.parent not in kept:
            tier.parent = None
    aset.tiers = kept
    return aset


def read_annotations(
    path: str | Path,
    *,
    tier_filter: str | Iterable[str] | Callable[[Tier], bool] | None = None,
) -> AnnotationSet:
    """Read an annotation file of any supported format.

    Parameters
    ----------
    path : str or Path
        ``.eaf``/``.etf`` (ELAN), ``.TextGrid`` (Praat, any case), ``.txt``/``.tsv``/``.csv``
        (ELAN tab-delimited export or musicperf CSV, told apart by content).
    tier_filter : str, iterable of str or callable, optional
        Keep only some tiers: a glob pattern on tier names (``"gesture*"``), exact names (each
        must exist), or a predicate on :class:`~musicperf.io.annotations.Tier`.

    Returns
    -------
    AnnotationSet
        Times in seconds from the start of the media.

    Raises
    ------
    AnnotationError
        For an unknown suffix, an unreadable or malformed file, or a filter naming no tier.
    """
    path = Path(path)
    if not path.exists():
        raise AnnotationError(f"'{path}' does not exist")
    kind = annotation_format(path)
    if kind == "eaf":
        from musicperf.io.elan import read_eaf as reader
    elif kind == "textgrid":
        from musicperf.io.textgrid import read_textgrid as reader
    elif kind == "elan_tab":
        from musicperf.io.tabular import read_elan_tab as reader
    else:
        from musicperf.io.tabular import read_csv as reader
    aset = reader(path)
    return aset if tier_filter is None else _select(aset, tier_filter)


def write_annotations(aset: AnnotationSet, path: str | Path, **kwargs) -> None:
    """Write ``aset`` in the format the suffix of ``path`` names; the write is atomic.

    ``.eaf`` -> :func:`~musicperf.io.elan.write_eaf` (keywords ``media``, ``vocabularies``),
    ``.TextGrid`` -> :func:`~musicperf.io.textgrid.write_textgrid`, ``.csv`` ->
    :func:`~musicperf.io.tabular.write_csv`, ``.txt``/``.tsv`` ->
    :func:`~musicperf.io.tabular.write_elan_tab`. ``kwargs`` go to the writer.
    """
    kind = annotation_format(path, for_writing=True)
    if kind == "eaf":
        from musicperf.io.elan import write_eaf as writer
    elif kind == "textgrid":
        from musicperf.io.textgrid import write_textgrid as writer
    elif kind == "elan_tab":
        from musicperf.io.tabular import write_elan_tab as writer
    else:
        from musicperf.io.tabular import write_csv as writer
    try:
        writer(aset, path, **kwargs)
    except TypeError as exc:
        if "unexpected keyword" not in str(exc):
            raise
        raise ParameterError(f"cannot write '{path}' as {kind}: {exc}") from None
