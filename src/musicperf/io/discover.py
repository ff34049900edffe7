"""Find the inputs of a run: ``(video, annotations)`` pairs from the command line's arguments.

Each argument is ``VIDEO=ANNOTATIONS``, a folder of videos with same-named annotation files, a
YAML list of inputs, or a single video (see :func:`discover`). Used by ``train``, ``label``,
``extract`` and the experiments.

Imports the standard library at module level; PyYAML inside :func:`discover` for YAML lists.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from musicperf.errors import AnnotationError, ParameterError, require

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
ANNOTATION_SUFFIXES = (".eaf", ".textgrid", ".txt", ".csv", ".tsv")


@dataclass(frozen=True)
class Item:
    """One video and, when known, its annotation file."""

    video: Path
    annotations: Path | None = None


def discover(data: Sequence[str | Path] | str | Path, *, need_annotations: bool = True) -> list[Item]:
    """Find ``(video, annotations)`` pairs.

    Parameters
    ----------
    data : str, Path or sequence of them
        Each entry is one of

        * ``VIDEO=ANNOTATIONS`` (an explicit pair);
        * a folder: every video in it (``.mp4``, ``.avi``, ``.mov``, ...) with the annotation
          file of the same stem (``.eaf`` first, then ``.TextGrid``, tab-delimited ``.txt``);
        * a YAML manifest (``.yaml``/``.yml``): a list of ``{video: ..., annotations: ...}``
          mappings or ``VIDEO=ANNOTATIONS`` strings, or a mapping with such a list under
          ``videos``; relative paths are relative to the manifest;
        * a single video file (its same-stem annotation file is used when present).
    need_annotations : bool
        Raise :class:`AnnotationError` when a video has no annotation file (training), or
        accept it with ``annotations=None`` (labelling).

    Returns
    -------
    list of Item
        In the order given; folders in sorted file-name order.
    """
    if isinstance(data, (str, Path)):
        data = [data]
    items: list[Item] = []
    for entry in data:
        items.extend(_discover_one(str(entry), need_annotations=need_annotations))
    if not items:
        raise ParameterError(f"no videos found in {', '.join(map(str, data)) or 'the arguments'}")
    seen: set[Path] = set()
    for it in items:
        if not it.video.is_file():
            raise ParameterError(f"video '{it.video}' does not exist")
        if it.annotations is not None and not it.annotations.is_file():
            raise AnnotationError(f"annotation file '{it.annotations}' for video '{it.video}' does not exist")
        key = it.video.resolve()
        if key in seen:
            raise ParameterError(f"video '{it.video}' is listed twice")
        seen.add(key)
    return items


def _discover_one(entry: str, *, need_annotations: bool) -> list[Item]:
    path = Path(entry)
    if "=" in entry and not path.exists():
        # Split at the first '=' whose left side is an existing file (paths may contain '=').
        for i, ch in enumerate(entry):
            if ch == "=" and Path(entry[:i]).is_file():
                return [Item(Path(entry[:i]), Path(entry[i + 1 :]))]
        left, _, right = entry.partition("=")
        raise ParameterError(f"video '{left}' of the pair '{entry}' does not exist")
    if path.is_dir():
        videos = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        out = []
        for v in videos:
            ann = companion_annotations(v)
            if ann is None and need_annotations:
                log.warning("skipping '%s': no annotation file with the same name beside it", v)
                continue
            out.append(Item(v, ann))
        if not out:
            what = "videos with same-named annotation files" if need_annotations else "videos"
            raise ParameterError(f"no {what} found in folder '{path}'")
        return out
    if path.suffix.lower() in (".yaml", ".yml"):
        return _read_manifest(path, need_annotations=need_annotations)
    if path.suffix.lower() in VIDEO_SUFFIXES or path.is_file():
        if not path.is_file():
            raise ParameterError(f"video '{path}' does not exist")
        ann = companion_annotations(path)
        if ann is None and need_annotations:
            raise AnnotationError(
                f"no annotation file for video '{path}': give VIDEO=ANNOTATIONS or put '{path.stem}.eaf' beside it"
            )
        return [Item(path, ann)]
    raise ParameterError(f"'{entry}' is neither a video, a folder, a YAML manifest nor a VIDEO=ANNOTATIONS pair")


def companion_annotations(video: Path) -> Path | None:
    """The annotation file beside ``video`` with the same stem (``.eaf`` preferred), or None."""
    for suffix in (".eaf", ".EAF", ".TextGrid", ".textgrid"):
        p = video.with_suffix(suffix)
        if p.is_file():
            return p
    return None


def _read_manifest(path: Path, *, need_annotations: bool) -> list[Item]:
    yaml = require("yaml", purpose="YAML manifests")
    if not path.is_file():
        raise ParameterError(f"manifest '{path}' does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParameterError(f"manifest '{path}' is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(doc, dict):
        doc = doc.get("videos", doc.get("items"))
    if not isinstance(doc, list):
        raise ParameterError(f"manifest '{path}' must be a list of {{video, annotations}} entries (or have one under 'videos')")
    base = path.parent
    items = []
    for k, e in enumerate(doc):
        if isinstance(e, str):
            video, _, ann = e.partition("=")
        elif isinstance(e, dict) and "video" in e:
            video, ann = str(e["video"]), str(e.get("annotations") or e.get("eaf") or "")
        else:
            raise ParameterError(f"entry {k + 1} of manifest '{path}' needs a 'video' key, got {e!r}")
        v = (base / video) if not Path(video).is_absolute() else Path(video)
        a = ((base / ann) if not Path(ann).is_absolute() else Path(ann)) if ann else companion_annotations(v)
        if a is None and need_annotations:
            raise AnnotationError(f"entry {k + 1} of manifest '{path}' gives no annotations for '{v}'")
        items.append(Item(v, a))
    return items


