"""What an interrupted ``musicperf train`` left behind, so the rerun resumes where it stopped.

While it trains, :func:`musicperf.tasks.gestures.train_model` keeps its progress in
``MODEL_DIR/.train-state/``:

``state.json``
    the key of the run (:func:`run_key`: settings, ``--until``, classes given, and the
    fingerprints of every video and annotation file) and the region of interest;
``samples-<i>.npz``
    the clips' features and targets of video ``i``, once computed (the costly part);
``fold-<k>.npz``
    the out-of-fold frame labels and scores of cross-validation fold ``k``, once done;
``fold-<k>.head.safetensors``, ``final.head.safetensors``
    the head being trained, after every epoch: weights, AdamW moments, the sample-order and
    dropout random states and the loss history (:func:`musicperf.train.loop.save_train_state`).

A rerun with the same key reads what is there and goes on from the next epoch; the random
states are restored, so the model's bytes are those of an uninterrupted run. Another key (other
settings or changed inputs) discards the folder. It is removed once the model is written.

Imports numpy and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from musicperf._util import atomic_path, write_text_atomic
from musicperf._version import __version__
from musicperf.tasks.gestures.outputs import fingerprint

log = logging.getLogger(__name__)

STATE_DIR = ".train-state"
SAMPLE_FIELDS = ("starts", "features", "targets", "present", "frame_labels")


def run_key(config, *, until, taxonomy, items) -> str:
    """16 hex digits naming one training run: what it trains on and how."""
    doc = {"config": config.to_dict(), "until": until, "taxonomy": None if taxonomy is None else repr(taxonomy),
           "inputs": [[fingerprint(it.video), fingerprint(it.annotations)] for it in items],
           "musicperf": __version__}
    for pair in doc["inputs"]:
        for fp in pair:
            fp.pop("path", None)
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


class TrainState:
    """The ``.train-state`` folder of one model directory (see the module docstring)."""

    def __init__(self, model_dir: Path, key: str):
        self.dir = Path(model_dir) / STATE_DIR
        self.key = key
        doc = self._read()
        if doc is not None and doc.get("key") != key:
            log.info("'%s' holds the state of another training run (other settings or inputs): starting afresh",
                     self.dir)
            shutil.rmtree(self.dir, ignore_errors=True)
            doc = None
        self.doc = doc or {"key": key}
        if doc is not None:
            log.info("resuming the interrupted training run kept in '%s'", self.dir)

    def _read(self) -> dict | None:
        try:
            return json.loads((self.dir / "state.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def _write(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.dir / "state.json", json.dumps(self.doc, indent=2))

    # -- region of interest
    def roi(self):
        roi = self.doc.get("roi")
        return None if roi is None else tuple(roi)

    def save_roi(self, roi) -> None:
        self.doc["roi"] = list(roi)
        self._write()

    # -- samples of one video
    def samples(self, i: int, make, kind):
        """The samples of video ``i``: read back (as ``kind(**fields)``), or ``make()`` and keep them."""
        path = self.dir / f"samples-{i}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
                meta = self.doc["samples"][str(i)]
                return kind(video=Path(meta["video"]), fps=float(meta["fps"]),
                            resampled_from=meta["resampled_from"], **arrays)
            except (OSError, KeyError, ValueError) as exc:
                log.warning("cannot read '%s' (%s): computing these samples again", path, exc)
        vs = make()
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **{k: getattr(vs, k) for k in SAMPLE_FIELDS})
        self.doc.setdefault("samples", {})[str(i)] = {"video": str(vs.video), "fps": vs.fps,
                                                      "resampled_from": vs.resampled_from}
        self._write()
        return vs

    # -- cross-validation folds
    def fold(self, k: int):
        """``(labels, scores)`` of fold ``k`` when it is done, else None."""
        path = self.dir / f"fold-{k}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return z["labels"], z["scores"]
        except (OSError, KeyError, ValueError):
            return None

    def save_fold(self, k: int, labels: np.ndarray, scores: np.ndarray) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.dir / f"fold-{k}.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, labels=labels, scores=scores)
        (self.dir / f"fold-{k}.head.safetensors").unlink(missing_ok=True)

    def head_checkpoint(self, name: str) -> Path:
        """Where the per-epoch checkpoint of head ``name`` (``fold-<k>`` or ``final``) goes."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir / f"{name}.head.safetensors"

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

