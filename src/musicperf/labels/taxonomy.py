"""Label taxonomies: which classes a model predicts and how annotation names map onto them.

A :class:`Taxonomy` says which output classes exist (in order), how *source names* found in
annotation files (tier names, or annotation values) map onto those classes (rename, merge or
drop), and which class, if any, is a *background* class ("Normal play" in the papers): a class
that is never annotated but is on in every frame where no other class is on.

Two taxonomies of the papers are built in (:meth:`Taxonomy.builtin`):

``"gestures18"``
    The 17 expressive gestures of Table 2 of ``001`` (Section 3 of ``000``) plus the background
    class "Normal play".
``"superclasses7"``
    The 7 super-classes of Table 4 of ``001``. Table 4 maps "Rest (any other class), Normal
    Play" to "Normal play"; we read "Rest" as the two gestures Table 4 lists nowhere else
    ("Expressive preparation" and "Physical energy") and *drop* them, so that a frame showing
    only those gestures counts as "Normal play" (no other super-class present). Table 5 supports
    this: a class on in F frames is present in at least F / 16 samples (less the dropped
    tail of under 16 frames), and were the two
    gestures positive "Normal play" labels, video-1 would need at least (4292 + 907) / 16 = 325
    Normal-play samples against the 280 of Table 5 (video-3: 330 against 271, video-4: 208
    against 184), while dropping them needs at least 268, 135, 254 and 171 (Table 5: 280, 165,
    271, 184).

Name matching is forgiving: case, surrounding white space, repeated spaces and ``_`` versus
space are ignored ("EYES_CLOSED " matches "Eyes closed"); outputs always use the canonical names.

Imports numpy only (PyYAML is imported inside :meth:`Taxonomy.from_yaml`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import numpy as np

from musicperf.errors import AnnotationError, ParameterError
from musicperf.io.annotations import AnnotationSet

#: The background class of the papers: frames where no other class is present.
NORMAL_PLAY = "Normal play"

#: The 17 expressive gestures of Table 2 of ``001``, in the table's order.
GESTURES17: tuple[str, ...] = (
    "Facial expression",
    "Nodding",
    "Right hand round",
    "Expressive shoulder movement",
    "Left hand gesture",
    "Lifting head",
    "Minimal movement",
    "Eyes closed",
    "Vibrato",
    "Expressive preparation",
    "Freeze",
    "Expressive head movement",
    "Frowning",
    "Physical energy",
    "Upbeat in head movement",
    "Repositioning guitar",
    "Sympathetic body movement",
)

#: The 17 gestures plus "Normal play": the 18 classes of Table 2 of ``001``.
GESTURES18: tuple[str, ...] = GESTURES17 + (NORMAL_PLAY,)

#: Table 4 of ``001``: super-class -> the gestures it groups, in the table's order.
SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "Facial expression": ("Facial expression", "Eyes closed", "Frowning"),
    "Head related action": ("Nodding", "Lifting head", "Expressive head movement", "Upbeat in head movement"),
    "Right hand action": ("Right hand round", "Repositioning guitar"),
    "Left hand action": ("Left hand gesture", "Vibrato"),
    "Relative stillness": ("Minimal movement", "Freeze"),
    "Upper body movement": ("Expressive shoulder movement", "Sympathetic body movement"),
}

#: Gestures that Table 4 of ``001`` maps to no super-class ("Rest"); dropped, see module doc.
SUPERCLASS_DROPPED: tuple[str, ...] = ("Expressive preparation", "Physical energy")

#: The 7 super-classes of Table 4 / Table 5 of ``001``, in the table's order.
SUPERCLASSES7: tuple[str, ...] = tuple(SUPERCLASSES) + (NORMAL_PLAY,)

BUILTIN_NAMES = ("gestures18", "superclasses7")

_SPACES = re.compile(r"\s+")


def normalize_name(name: str) -> str:
    """The key two names are matched by: case-folded, ``_`` read as space, spaces collapsed.

    >>> normalize_name("  Eyes_CLOSED ")
    'eyes closed'
    """
    return _SPACES.sub(" ", str(name).replace("_", " ")).strip().casefold()


@dataclass(frozen=True)
class Taxonomy:
    """Output classes plus the rules that map annotation names onto them.

    Build one with :meth:`builtin`, :meth:`from_annotations`, :meth:`from_yaml` or
    :meth:`from_dict` rather than by hand.

    Attributes
    ----------
    classes : tuple of str
        Output classes in column order of every label matrix; includes ``background``.
    rules : dict of str to (str or None)
        Source name (as found in files; matched with :func:`normalize_name`) -> output class,
        or ``None`` when annotations with that name are dropped. A source that maps onto the
        background class is recognised but ignored: the background is always derived.
    background : str or None
        The class that is on exactly where no other class is on ("Normal play"), or ``None``.
    by : {"tier", "value"}
        Whether source names are tier names or annotation values.
    name : str
        A short description (``"gestures18"``, ``"custom"``, ...), stored with models.
    """

    classes: tuple[str, ...]
    rules: Mapping[str, str | None] = field(default_factory=dict)
    background: str | None = None
    by: Literal["tier", "value"] = "tier"
    name: str = "custom"

    def __post_init__(self) -> None:
        classes = tuple(str(c) for c in self.classes)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))  # read-only view
        if not classes:
            raise ParameterError("a taxonomy needs at least one class")
        keys = [normalize_name(c) for c in classes]
        if len(set(keys)) != len(keys):
            raise ParameterError(f"duplicate class names in taxonomy: {list(classes)}")
        if self.by not in ("tier", "value"):
            raise ParameterError(f"taxonomy 'by' must be 'tier' or 'value', got {self.by!r}")
        if self.background is not None and self.background not in classes:
            raise ParameterError(f"background class {self.background!r} is not one of the classes {list(classes)}")
        index: dict[str, str | None] = {}
        for source, target in self.rules.items():
            if target is not None and target not in classes:
                raise ParameterError(f"rule {source!r} -> {target!r} names no class of the taxonomy {list(classes)}")
            key = normalize_name(source)
            if key in index and index[key] != target:
                raise ParameterError(
                    f"source name {source!r} maps to both {index[key]!r} and {target!r} (names differing only "
                    "in case, spaces or '_' are the same name)"
                )
            index[key] = target
        # Every class name is also a source name for itself unless a rule says otherwise.
        for c in classes:
            index.setdefault(normalize_name(c), c)
        object.__setattr__(self, "_index", index)

    def __hash__(self) -> int:
        return hash((self.classes, frozenset(self.rules.items()), self.background, self.by, self.name))

    # ------------------------------------------------------------------ construction
    @classmethod
    def builtin(cls, name: Literal["gestures18", "superclasses7"], *, by: Literal["tier", "value"] = "tier") -> Taxonomy:
        """One of the taxonomies of the papers.

        Parameters
        ----------
        name : {"gestures18", "superclasses7"}
            The 17 gestures + "Normal play" of Table 2 of ``001``, or the 7 super-classes of
            Table 4 of ``001`` ("Expressive preparation" and "Physical energy" dropped, see the
            module docstring).
        by : {"tier", "value"}
            Whether the gesture names are tier names (one tier per gesture, the default) or
            annotation values.
        """
        if name == "gestures18":
            rules = {g: g for g in GESTURES18}
            return cls(GESTURES18, rules, background=NORMAL_PLAY, by=by, name=name)
        if name == "superclasses7":
            rules: dict[str, str | None] = {}
            for sup, members in SUPERCLASSES.items():
                for g in members:
                    rules[g] = sup
            for g in SUPERCLASS_DROPPED:
                rules[g] = None
            rules[NORMAL_PLAY] = NORMAL_PLAY
            return cls(SUPERCLASSES7, rules, background=NORMAL_PLAY, by=by, name=name)
        raise ParameterError(f"unknown built-in taxonomy {name!r}; choose one of {', '.join(BUILTIN_NAMES)}")

    @classmethod
    def from_annotations(
        cls,
        aset_or_sets: AnnotationSet | Iterable[AnnotationSet],
        *,
        by: Literal["tier", "value"] = "tier",
        background: str | None = None,
    ) -> Taxonomy:
        """A taxonomy with one class per distinct tier name (or annotation value) in the files.

        Parameters
        ----------
        aset_or_sets : AnnotationSet or iterable of AnnotationSet
        by : {"tier", "value"}
            Classes from tier names (every tier, including empty ones) or from the distinct
            non-empty annotation values of all tiers.
        background : str or None
            Name of a derived background class ("Normal play") appended last; a source with
            the same name is recognised and ignored.

        Names that differ only in case, spaces or ``_`` become one class, spelt as first seen.
        """
        sets = [aset_or_sets] if isinstance(aset_or_sets, AnnotationSet) else list(aset_or_sets)
        if by not in ("tier", "value"):
            raise ParameterError(f"'by' must be 'tier' or 'value', got {by!r}")
        seen: dict[str, str] = {}
        for aset in sets:
            for tier in aset:
                names = [tier.name] if by == "tier" else [a.value for a in tier.annotations]
                for n in names:
                    if not str(n).strip():
                        continue
                    seen.setdefault(normalize_name(n), _tidy(n))
        classes = list(seen.values())
        if background is not None:
            bkey = normalize_name(background)
            classes = [c for c in classes if normalize_name(c) != bkey] + [background]
        if not classes:
            raise AnnotationError(
                f"no {'tiers' if by == 'tier' else 'annotation values'} found to build classes from in "
                + ", ".join(_where(a) for a in sets)
            )
        rules = {c: c for c in classes}
        return cls(tuple(classes), rules, background=background, by=by, name=f"{by}s")

    @classmethod
    def from_yaml(cls, path: str | Path, *, base: Taxonomy | None = None) -> Taxonomy:
        """Rename, merge or drop classes as a YAML mapping file says.

        The file is a mapping with any of these keys::

            rename:                 # old class -> new name
              Eyes closed: Eyes shut
            merge:                  # new class -> the old classes it replaces
              Head related action: [Nodding, Lifting head]
            drop: [Physical energy] # annotations of these are ignored
            background: Normal play # add (or rename) the derived background class; null removes it
            order: [Head related action, Eyes shut]   # optional output column order
            by: tier                # tier | value (only without a base)
            classes: [Vibrato, Freeze]   # only without a base: the source classes, kept as-is

        With ``base``, every old name must be a class of ``base``; classes not mentioned are
        kept unchanged, and the output order follows ``base`` (a merged class takes the place of
        its first member) unless ``order`` lists output classes (they come first, in that order;
        the background always comes last). Without ``base``, the file defines the whole
        taxonomy: the sources are ``classes`` plus the names under ``rename``, ``merge`` and
        ``drop``. New names are matched forgivingly too: renaming onto an existing class merges
        into it.

        Raises
        ------
        AnnotationError
            Unreadable or malformed file, a name under two keys, or (with ``base``) a name that
            is not a class of ``base``; the message names the file and the name.
        """
        path = Path(path)
        yaml = _yaml()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AnnotationError(f"cannot read taxonomy mapping '{path}': {exc.strerror or exc}") from None
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise AnnotationError(f"taxonomy mapping '{path}' is not valid YAML{at}") from None
        return cls._from_mapping(doc if doc is not None else {}, base=base, where=f"'{path}'")

    @classmethod
    def _from_mapping(cls, doc: object, *, base: Taxonomy | None, where: str) -> Taxonomy:
        if not isinstance(doc, dict):
            raise AnnotationError(f"taxonomy mapping {where} must be a YAML mapping (rename/merge/drop/...)")
        allowed = {"rename", "merge", "drop", "background", "by", "classes", "name", "order"}
        extra = sorted(set(map(str, doc)) - allowed)
        if extra:
            raise AnnotationError(
                f"unknown key {extra[0]!r} in taxonomy mapping {where}; allowed: {', '.join(sorted(allowed))}"
            )
        rename = doc.get("rename") or {}
        merge = doc.get("merge") or {}
        drop = doc.get("drop") or []
        if not isinstance(rename, dict):
            raise AnnotationError(f"'rename' in taxonomy mapping {where} must map old names to new names")
        if not isinstance(merge, dict) or not all(isinstance(v, list) for v in merge.values()):
            raise AnnotationError(f"'merge' in taxonomy mapping {where} must map each new class to a list of old names")
        if isinstance(drop, str):
            drop = [drop]
        if not isinstance(drop, list):
            raise AnnotationError(f"'drop' in taxonomy mapping {where} must be a list of names")

        # old (normalised) -> new class or None, remembering which key set it.
        target: dict[str, str | None] = {}
        spelled: dict[str, str] = {}
        origin: dict[str, str] = {}
        # one spelling per new name: an existing class's, else the first one written
        canon: dict[str, str] = {normalize_name(c): c for c in (base.classes if base is not None else ())}

        def put(old: object, new: str | None, key: str) -> None:
            if old is None or not str(old).strip():
                raise AnnotationError(f"empty class name under '{key}' in taxonomy mapping {where}")
            k = normalize_name(str(old))
            if k in target:
                raise AnnotationError(f"{str(old)!r} appears under both '{origin[k]}' and '{key}' in taxonomy mapping {where}")
            target[k] = None if new is None else canon.setdefault(normalize_name(new), _tidy(new))
            spelled[k] = _tidy(str(old))
            origin[k] = key

        for old, new in rename.items():
            if new is None or not str(new).strip():
                raise AnnotationError(f"rename of {str(old)!r} has no new name in taxonomy mapping {where} (use 'drop')")
            put(old, str(new), "rename")
        for new, olds in merge.items():
            for old in olds:
                put(old, str(new), "merge")
        for old in drop:
            put(old, None, "drop")

        if base is not None:
            for key in ("by", "classes"):
                if key in doc:
                    raise AnnotationError(f"'{key}' in taxonomy mapping {where} is only allowed without a base taxonomy")
            known = {normalize_name(c): c for c in base.classes}
            for k, old in spelled.items():
                if k not in known:
                    raise AnnotationError(
                        f"unknown class {old!r} under '{origin[k]}' in taxonomy mapping {where}; "
                        f"known classes: {', '.join(base.classes)}"
                    )
            old_bg = base.background
            background = old_bg
            if old_bg is not None and normalize_name(old_bg) in target:
                k = normalize_name(old_bg)
                if origin[k] == "merge":
                    raise AnnotationError(
                        f"the background class {old_bg!r} cannot be merged in taxonomy mapping {where}; "
                        "it is derived (on where no other class is)"
                    )
                background = target[k]  # renamed, or None when dropped
            if "background" in doc:
                background = _tidy(doc["background"]) if doc["background"] is not None else None
            step = {c: target.get(normalize_name(c), c) for c in base.foreground}
            if background is not None:
                bkey = normalize_name(background)
                into = [c for c, t in step.items() if t is not None and normalize_name(t) == bkey]
                if into:
                    raise AnnotationError(
                        f"class {into[0]!r} is mapped onto the background class {background!r} in taxonomy mapping "
                        f"{where}; the background is derived (on where no other class is), drop the class instead"
                    )
            classes: list[str] = []
            for t in step.values():
                if t is not None and t not in classes:
                    classes.append(t)
            classes = _reorder(classes, doc.get("order"), where, skip=background)
            if background is not None:
                classes.append(background)

            def compose(t0: str | None) -> str | None:
                if t0 is None:
                    return None
                return background if t0 == old_bg else step[t0]

            rules: dict[str, str | None] = {s: compose(t0) for s, t0 in base.rules.items()}
            for c in base.classes:
                rules.setdefault(c, compose(c))
            if not [c for c in classes if c != background]:
                raise AnnotationError(f"taxonomy mapping {where} drops every class")
            name = str(doc.get("name", f"{base.name}+mapping"))
            return _build(cls, where, tuple(classes), rules, background=background, by=base.by, name=name)

        # Without a base: the file defines the taxonomy.
        by = doc.get("by", "tier")
        if by not in ("tier", "value"):
            raise AnnotationError(f"'by' in taxonomy mapping {where} must be 'tier' or 'value', got {by!r}")
        listed = doc.get("classes") or []
        if not isinstance(listed, list):
            raise AnnotationError(f"'classes' in taxonomy mapping {where} must be a list of names")
        rules = {}
        classes = []
        for c in listed:
            k = normalize_name(str(c))
            t = target.get(k, canon.setdefault(k, _tidy(str(c))))
            rules[_tidy(str(c))] = t
            if t is not None and t not in classes:
                classes.append(t)
        for k, t in target.items():
            rules.setdefault(spelled[k], t)
            if t is not None and t not in classes:
                classes.append(t)
        classes = _reorder(classes, doc.get("order"), where, skip=doc.get("background"))
        background = doc.get("background")
        if background is not None:
            background = _tidy(background)
            bkey = normalize_name(background)
            if any(normalize_name(c) == bkey for c in classes):
                raise AnnotationError(
                    f"background class {background!r} is also a mapped class in taxonomy mapping {where}; "
                    "the background is derived (on where no other class is)"
                )
            classes.append(background)
        if not [c for c in classes if c != background]:
            raise AnnotationError(f"taxonomy mapping {where} defines no class (give 'classes', 'rename' or 'merge')")
        return _build(cls, where, tuple(classes), rules, background=background, by=by, name=str(doc.get("name", "custom")))

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """A JSON-serialisable description; :meth:`from_dict` rebuilds an equal taxonomy."""
        return {
            "name": self.name,
            "classes": list(self.classes),
            "background": self.background,
            "by": self.by,
            "rules": dict(self.rules),
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> Taxonomy:
        """Rebuild a taxonomy written by :meth:`to_dict` (e.g. stored in a model file)."""
        try:
            return cls(
                tuple(d["classes"]),
                dict(d.get("rules", {})),
                background=d.get("background"),
                by=d.get("by", "tier"),
                name=d.get("name", "custom"),
            )
        except (KeyError, TypeError) as exc:
            raise ParameterError(f"malformed taxonomy description (missing or bad {exc}); expected the keys of to_dict()") from None

    # ------------------------------------------------------------------ use
    def __len__(self) -> int:
        return len(self.classes)

    @property
    def foreground(self) -> tuple[str, ...]:
        """The classes other than the background, in order."""
        return tuple(c for c in self.classes if c != self.background)

    def index(self, name: str) -> int:
        """Column of class ``name`` (forgiving match) in label matrices."""
        key = normalize_name(name)
        for i, c in enumerate(self.classes):
            if normalize_name(c) == key:
                return i
        raise ParameterError(f"no class {name!r} in taxonomy {self.name!r}; classes: {', '.join(self.classes)}")

    def map_name(self, source: str) -> str | None:
        """The class a source name maps to, ``None`` when dropped.

        Raises
        ------
        KeyError
            When the name is unknown to the taxonomy (neither a rule nor a class).
        """
        return self._index[normalize_name(source)]  # type: ignore[attr-defined]

    def knows(self, source: str) -> bool:
        """Whether a source name is a class or has a rule (possibly a drop rule)."""
        return normalize_name(source) in self._index  # type: ignore[attr-defined]

    def class_intervals(
        self, aset: AnnotationSet, *, unknown: Literal["ignore", "warn", "error"] = "warn"
    ) -> dict[str, np.ndarray]:
        """The annotated intervals of every foreground class, after mapping.

        Parameters
        ----------
        aset : AnnotationSet
        unknown : {"ignore", "warn", "error"}
            What to do with tiers (or values) the taxonomy does not know: ignore them, ignore
            them with one :class:`UserWarning` naming them, or raise :class:`AnnotationError`.

        Returns
        -------
        dict of str to ndarray
            Every foreground class (background excluded: it is derived, see
            :func:`~musicperf.labels.frame_labels`) -> ``(n, 2)`` float array of
            ``[start, end]`` seconds, sorted by start, overlaps kept (see
            :func:`~musicperf.labels.merge_intervals`). Empty classes give ``(0, 2)``.

        Raises
        ------
        AnnotationError
            An annotation ends before it starts or has a non-finite time.
        """
        if unknown not in ("ignore", "warn", "error"):
            raise ParameterError(f"'unknown' must be 'ignore', 'warn' or 'error', got {unknown!r}")
        out: dict[str, list] = {c: [] for c in self.foreground}
        unknown_names: list[str] = []
        for tier in aset:
            for a in tier.annotations:
                source = tier.name if self.by == "tier" else a.value
                if self.by == "value" and not str(source).strip():
                    continue
                key = normalize_name(source)
                if key not in self._index:  # type: ignore[attr-defined]
                    if source not in unknown_names:
                        unknown_names.append(source)
                    continue
                target = self._index[key]  # type: ignore[attr-defined]
                if not (np.isfinite(a.start) and np.isfinite(a.end)):
                    raise AnnotationError(f"non-finite time in tier {tier.name!r} of {_where(aset)}")
                if a.end < a.start:
                    raise AnnotationError(
                        f"annotation in tier {tier.name!r} ends ({a.end:.3f} s) before it starts ({a.start:.3f} s) "
                        f"in {_where(aset)}"
                    )
                if target is None or target == self.background:
                    continue
                out[target].append((a.start, a.end))
            if self.by == "tier" and not tier.annotations and not self.knows(tier.name) and tier.name not in unknown_names:
                unknown_names.append(tier.name)
        if unknown_names and unknown != "ignore":
            what = "tier" if self.by == "tier" else "annotation value"
            msg = (
                f"{len(unknown_names)} {what}(s) unknown to taxonomy {self.name!r} in {_where(aset)}: "
                + ", ".join(repr(n) for n in unknown_names[:8])
                + (" ..." if len(unknown_names) > 8 else "")
            )
            if unknown == "error":
                raise AnnotationError(msg)
            warnings.warn(msg + " (ignored)", stacklevel=2)
        result = {}
        for c, ivs in out.items():
            arr = np.asarray(ivs, dtype=float).reshape(-1, 2)
            if len(arr):
                arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
            result[c] = arr
        return result


def _build(cls, where: str, *args, **kwargs) -> Taxonomy:
    """Construct a taxonomy from a mapping file, naming the file in any inconsistency."""
    try:
        return cls(*args, **kwargs)
    except ParameterError as exc:
        raise AnnotationError(f"taxonomy mapping {where} is inconsistent: {exc}") from None


def _reorder(classes: list[str], order: object, where: str, *, skip: object = None) -> list[str]:
    """``classes`` with those named in ``order`` first, in that order (forgiving names); the
    background ``skip`` may be listed and is ignored (it always comes last)."""
    if order is None:
        return classes
    if not isinstance(order, list):
        raise AnnotationError(f"'order' in taxonomy mapping {where} must be a list of class names")
    by_key = {normalize_name(c): c for c in classes}
    head: list[str] = []
    for name in order:
        if skip is not None and normalize_name(str(name)) == normalize_name(str(skip)):
            continue
        c = by_key.get(normalize_name(str(name)))
        if c is None:
            raise AnnotationError(
                f"unknown class {str(name)!r} under 'order' in taxonomy mapping {where}; "
                f"the mapped classes are: {', '.join(classes)}"
            )
        if c not in head:
            head.append(c)
    return head + [c for c in classes if c not in head]


def _tidy(name: object) -> str:
    """Strip and collapse spaces, keeping the user's spelling otherwise."""
    return _SPACES.sub(" ", str(name)).strip()


def _where(aset: AnnotationSet) -> str:
    return f"'{aset.source}'" if aset.source else "the annotation set"


def _yaml():
    from musicperf.errors import require

    return require("yaml", purpose="taxonomy mapping files")
