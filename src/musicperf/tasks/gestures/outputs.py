"""The outputs of labelling one video, and whether a rerun may skip, redo or must refuse them.

Labelling ``video.mp4`` into ``OUT`` writes ``OUT/video.eaf``, ``OUT/video.probs.csv`` and
``OUT/video.labels.json``. The JSON is the sidecar that marks the other two as musicperf's:

1. before anything else, a JSON with ``"complete": false`` (the video is being written);
2. the CSV, then the EAF, each atomically;
3. the final JSON, ``"complete": true``, with the SHA-256 of the EAF and the CSV as written
   (``written``) and the fingerprints of the inputs (``inputs``: video, human annotation file,
   model).

A rerun (:func:`plan`) therefore knows, per video:

* **skip** -- complete, same model and ``--from``, and the video, the annotation file and the
  model are those fingerprinted;
* **redo** -- half-written (the JSON says incomplete, or a CSV and an EAF from the same run
  without a JSON, as versions before the sidecar-first order left them), or complete but an
  input changed since (a corrected annotation file, a retrained model in the same folder, a
  replaced video);
* **refuse unless --overwrite** -- complete, but by another model folder or another ``--from``;
* **refuse always** -- an EAF or CSV musicperf did not write, or that was edited after it was
  written (its hash differs from the sidecar's): a human file is never replaced, with or
  without ``--overwrite``.

Imports the standard library only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from musicperf.errors import OutputError, ParameterError

#: ``writer`` of the JSON sidecars written by :func:`musicperf.tasks.gestures.label_video`.
WRITER = "musicperf label"
#: Bytes read at each end of a large file for its fingerprint.
EDGE = 1 << 20
#: Seconds within which an EAF written after its CSV counts as written by the same run (legacy
#: half-written outputs, which have no sidecar).
SAME_RUN_S = 120.0


def output_paths(out_dir: Path, video: Path) -> dict[str, Path]:
    """The three outputs of labelling ``video`` into ``out_dir``."""
    stem = video.stem
    return {
        "eaf": out_dir / f"{stem}.eaf",
        "csv": out_dir / f"{stem}.probs.csv",
        "json": out_dir / f"{stem}.labels.json",
    }


def file_sha256(path: Path) -> str:
    """SHA-256 of a whole file (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(path: str | Path | None) -> dict | None:
    """What identifies an input file: its absolute path, size and content hash.

    Files up to 8 MiB are hashed whole (annotation files); larger ones (videos) by their size
    and the first and last MiB, so checking a rerun of hours of video costs two reads.
    """
    if path is None:
        return None
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        if size <= 8 * EDGE:
            h.update(fh.read())
            how = "sha256"
        else:
            h.update(fh.read(EDGE))
            fh.seek(size - EDGE)
            h.update(fh.read(EDGE))
            how = "sha256-head-tail-1MiB"
    return {"path": str(path.resolve()), "size": size, how: h.hexdigest()}


def same_content(a: dict | None, b: dict | None) -> bool:
    """Whether two fingerprints describe the same content (the path may differ)."""
    if a is None or b is None:
        return a is b
    return {k: v for k, v in a.items() if k != "path"} == {k: v for k, v in b.items() if k != "path"}


def read_sidecar(path: Path) -> dict | None:
    """The JSON sidecar at ``path`` when it is one musicperf wrote (new or legacy), else None."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    if doc.get("writer") == WRITER or {"model_id", "complete", "outputs"} <= set(doc):
        return doc
    return None


def _is_probs_csv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.readline().startswith("frame,time_s,")
    except (OSError, UnicodeDecodeError):
        return False


@dataclass
class Plan:
    """What a rerun does with one video: ``"label"``, ``"skip"`` or ``"redo"``, and why."""

    action: str
    reason: str = ""
    summary: dict | None = None


def plan(paths: dict[str, Path], *, video: Path, annotations: Path | None, model_dir: Path, model_id: str,
         after: float | None, overwrite: bool) -> Plan:
    """Decide what to do with the existing outputs ``paths`` of one video (see the module docstring).

    Raises
    ------
    OutputError
        An existing EAF or CSV is not musicperf's (or was edited since): never replaced.
    ParameterError
        A complete labelling by another model folder or ``--from``, without ``overwrite``.
    """
    existing = {k: p for k, p in paths.items() if p.exists()}
    if not existing:
        return Plan("label")
    for k, p in existing.items():
        if not p.is_file():
            raise OutputError(f"output '{p}' is an existing folder; choose another output folder")
    side = read_sidecar(paths["json"]) if "json" in existing else None
    if "json" in existing and side is None:
        _refuse(paths["json"], "is not a summary written by musicperf label")
    if side is None:
        # No sidecar: only the CSV + EAF of one interrupted run of an older musicperf are ours.
        csv, eaf = existing.get("csv"), existing.get("eaf")
        if csv is not None and _is_probs_csv(csv) and (
                eaf is None or 0 <= eaf.stat().st_mtime - csv.stat().st_mtime <= SAME_RUN_S):
            return Plan("redo", "half-written (no summary)")
        _refuse(eaf if eaf is not None else csv, "was not written by musicperf label")
    written = side.get("written") or {}
    for k in ("eaf", "csv"):
        if k not in existing:
            continue
        if k in written:
            if file_sha256(existing[k]) != written[k]:
                _refuse(existing[k], "was edited after musicperf label wrote it")
        elif side.get("complete") is True and existing[k].stat().st_mtime > paths["json"].stat().st_mtime + 1.0:
            # A legacy summary has no hashes: a file changed after the summary was written was edited.
            _refuse(existing[k], "was edited after musicperf label wrote it")
    if side.get("complete") is not True:
        return Plan("redo", "half-written")
    same_model_dir = _same_path(side.get("model"), model_dir)
    if side.get("after") != after or (side.get("model_id") != model_id and not same_model_dir):
        if overwrite:
            return Plan("redo", "--overwrite")
        raise ParameterError(
            f"output {paths['json']} is a finished labelling of '{video}' by another model or --from; pass "
            "--overwrite to replace it, or choose another output folder"
        )
    if any(k not in existing for k in ("eaf", "csv")):
        return Plan("redo", "an output is missing")
    changed = []
    inputs = side.get("inputs")
    if side.get("model_id") != model_id:
        changed.append("the model (retrained)")
    if inputs is not None:
        if not same_content(inputs.get("video"), fingerprint(video)):
            changed.append("the video")
        if not same_content(inputs.get("annotations"), fingerprint(annotations)):
            changed.append("the annotation file")
    if changed:
        return Plan("redo", "changed since: " + ", ".join(changed))
    if overwrite:
        return Plan("redo", "--overwrite")
    return Plan("skip", "already labelled", side)


def _same_path(a, b) -> bool:
    if a is None or b is None:
        return False
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _refuse(path: Path, why: str):
    raise OutputError(
        f"output '{path}' {why}: musicperf never replaces it, with or without --overwrite; "
        "move it away or choose another output folder"
    )


def check_batch_outputs(items, out_dir: Path) -> None:
    """Refuse a batch whose videos would write the same outputs, or an output that is a video's
    own human annotation file; before any work.

    Raises
    ------
    ParameterError
    """
    stems: dict[str, Path] = {}
    for it in items:
        if it.video.stem in stems:
            raise ParameterError(
                f"videos '{stems[it.video.stem]}' and '{it.video}' would write the same outputs in '{out_dir}' "
                "(same file name); label them into different folders"
            )
        stems[it.video.stem] = it.video
        eaf = output_paths(Path(out_dir), it.video)["eaf"]
        if it.annotations is not None and eaf.resolve() == Path(it.annotations).resolve():
            raise ParameterError(
                f"the output '{eaf}' would replace the human annotations of '{it.video}'; choose another output folder"
            )


def first_labelled_frame(after: float | None, *, duration: float, fps: float, video) -> int:
    """The first frame (on an ``fps`` grid) labelled with ``--from after``: 0 without it.

    Raises
    ------
    ParameterError
        ``after`` negative or at/after the end of ``video`` (``duration`` seconds).
    """
    if after is None:
        return 0
    if after < 0:
        raise ParameterError(f"--from must be >= 0 seconds, got {after}")
    if after >= duration:
        raise ParameterError(f"--from {after} s is beyond the end of '{video}' ({duration:.2f} s)")
    return int(math.floor(after * fps + 1e-6))

