"""``musicperf label --engine local|ray``: the labelling workflow as a resumable batch job.

The unit of work is :func:`musicperf.tasks.gestures.label_video` (one video, model already
loaded), so the outputs are exactly those of the single-process ``label`` command: per video
``<stem>.eaf``, ``<stem>.probs.csv`` and ``<stem>.labels.json``, each written atomically, the
JSON last. A video counts as done only after all three are read back here (EAF parsed, CSV
parsed with one row per frame, JSON complete and by this model).

Imports the standard library at module level; the model (torch) is loaded in the workers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from musicperf.errors import DecodeError, ParameterError


def _output_paths(out_dir: Path, video: Path) -> dict[str, Path]:
    # The same names as musicperf.tasks.gestures.output_paths (imported lazily there: it pulls numpy).
    from musicperf.tasks.gestures import output_paths

    return output_paths(out_dir, video)


@dataclass
class LabelJob:
    """Label one video with a trained workflow model (see :mod:`musicperf.tasks.gestures`).

    Parameters
    ----------
    model_dir : str
        Written by ``musicperf train``.
    out_dir : str
        Output folder; on a cluster, a folder every node reaches under the same path.
    after : float, optional
        Predict only from this time on (seconds).
    annotations : dict, optional
        Video path -> human annotation file to copy into the output ``.eaf``.
    model_id : str
        Filled by :meth:`setup` or by the driver; a finished output must carry it.
    """

    model_dir: str
    out_dir: str
    after: float | None = None
    annotations: dict | None = None
    model_id: str = ""
    task: str = "label"

    def __post_init__(self) -> None:
        self._model = None

    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        d["_model"] = None  # the loaded model never travels; each worker loads its own
        return d

    def setup(self) -> None:
        from musicperf.tasks.gestures import load_gesture_model

        self._model = load_gesture_model(self.model_dir)
        self.model_id = self._model.model_id

    def outputs(self, video: str) -> dict[str, str]:
        return {k: str(p) for k, p in _output_paths(Path(self.out_dir), Path(video)).items()}

    def run(self, video: str) -> dict:
        from musicperf.tasks.gestures import Item, label_video

        if self._model is None:
            self.setup()
        ann = (self.annotations or {}).get(video)
        item = Item(Path(video), Path(ann) if ann else None)
        paths = self.outputs(video)
        try:
            summary = label_video(self._model, item, Path(self.out_dir), after=self.after)
            verify_label_outputs(paths, model_id=self.model_id, after=self.after)
        except BaseException:
            # A video that fails leaves nothing behind: no CSV without its EAF and JSON.
            for p in paths.values():
                Path(p).unlink(missing_ok=True)
            raise
        return {"outputs": paths, "model_id": summary["model_id"],
                "intervals": sum(v["intervals"] for v in summary["predicted"].values())}

    def finished(self, video: str) -> dict | None:
        from musicperf.tasks.gestures.outputs import fingerprint, same_content

        paths = self.outputs(video)
        if not all(Path(p).is_file() for p in paths.values()):
            return None
        try:
            verify_label_outputs(paths, model_id=self.model_id, after=self.after, full=False)
            inputs = json.loads(Path(paths["json"]).read_text(encoding="utf-8")).get("inputs")
        except (ParameterError, DecodeError, OSError, ValueError):
            return None
        if inputs is not None:
            # Done with other inputs (a corrected annotation file, a replaced video): redo it.
            ann = (self.annotations or {}).get(video)
            if not (same_content(inputs.get("video"), fingerprint(video))
                    and same_content(inputs.get("annotations"), fingerprint(ann))):
                return None
        return {"outputs": paths}


def verify_label_outputs(paths: dict[str, str], *, model_id: str, after: float | None, full: bool = True) -> None:
    """Check that the outputs of one labelled video are complete and readable.

    Parameters
    ----------
    paths : dict
        ``eaf``, ``csv``, ``json`` paths.
    model_id : str
        The JSON summary must name this model.
    after : float or None
        The JSON summary must have been written for this ``--from``.
    full : bool
        Also parse the EAF and the CSV (True after writing; False for the quick check of a
        rerun, which reads the JSON only: it is written last, so its presence with
        ``complete: true`` means the others were renamed into place before it).

    Raises
    ------
    ParameterError
        An output is missing, unreadable, or not by this model.
    """
    jpath = Path(paths["json"])
    try:
        summary = json.loads(jpath.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ParameterError(f"output '{jpath}' is unreadable: {exc}") from None
    if summary.get("complete") is not True or summary.get("model_id") != model_id or summary.get("after") != after:
        raise ParameterError(f"output '{jpath}' is not a complete labelling by model {model_id}")
    for k in ("eaf", "csv"):
        if not Path(paths[k]).is_file():
            raise ParameterError(f"output '{paths[k]}' is missing")
    if not full:
        return
    from musicperf.errors import AnnotationError
    from musicperf.io.elan import read_eaf
    from musicperf.tasks.gestures import read_probs_csv

    try:
        aset = read_eaf(paths["eaf"])
    except AnnotationError as exc:
        raise ParameterError(f"output '{paths['eaf']}' does not read back: {exc}") from None
    if not any(name.startswith("auto: ") for name in aset.tiers):
        raise ParameterError(f"output '{paths['eaf']}' has no predicted tier")
    times, probs, classes = read_probs_csv(paths["csv"])
    if classes != list(summary["classes"]) or len(times) == 0:
        raise ParameterError(f"output '{paths['csv']}' does not match its summary '{jpath}'")


def label_batch(
    videos: Sequence[str | Path] | str | Path,
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    after: float | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    retries: int = 1,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    overwrite: bool = False,
    on_progress: Callable | None = None,
) -> dict:
    """Label videos on an engine, resumably; see :func:`musicperf.distributed.engine.run_batch`.

    Parameters
    ----------
    videos : str, Path or sequence of them
        As for ``musicperf label``: videos, folders, ``VIDEO=ANNOTATIONS`` pairs, a manifest.
        Unlike the serial ``label``, a video that cannot be read does not stop the run: it is
        retried ``retries`` times, then reported in ``OUT/musicperf-failures.json``.
    model_dir, out_dir, after
        As for :func:`musicperf.tasks.gestures.label_videos`.
    engine, address, workers, retries, num_cpus, num_gpus, overwrite, on_progress
        See :func:`~musicperf.distributed.engine.run_batch`.

    Returns
    -------
    dict
        The run summary of :func:`~musicperf.distributed.engine.run_batch`.
    """
    from musicperf.distributed.engine import run_batch
    from musicperf.tasks.gestures import discover
    from musicperf.tasks.gestures.outputs import check_batch_outputs, plan

    out = Path(out_dir)
    items = discover(videos, need_annotations=False)
    check_batch_outputs(items, out)
    model_id = _model_id(model_dir)
    # The single-process rules for existing outputs (musicperf.tasks.gestures.outputs), checked for
    # every video before any work: a file musicperf did not write (or that was edited since) is
    # never replaced, another model's finished labels need --overwrite. What is done, half-written
    # or to redo is then the engine's to decide (LabelJob.finished).
    for it in items:
        plan(_output_paths(out, it.video), video=it.video, annotations=it.annotations, model_dir=Path(model_dir),
             model_id=model_id, after=after, overwrite=overwrite)
    job = LabelJob(str(model_dir), str(out), after=after, model_id=model_id,
                   annotations={str(it.video): str(it.annotations) for it in items if it.annotations is not None})
    return run_batch(job, [str(it.video) for it in items], out, engine=engine, address=address, workers=workers,
                     retries=retries, num_cpus=num_cpus, num_gpus=num_gpus, key=f"model:{model_id}:after:{after}",
                     overwrite=overwrite, on_progress=on_progress)


def _model_id(model_dir: str | Path) -> str:
    """The model's id, read cheaply from its metadata without loading torch in the driver (the
    full load happens once per worker; a model that fails there fails every video with that
    error in the failures report). Read by :mod:`musicperf.models.files`, the one reader."""
    from musicperf.errors import ModelError
    from musicperf.models import files
    from musicperf.tasks.gestures.model import FORMAT, META_FILE, MODEL_FILE

    model_dir = Path(model_dir)
    meta = files.read_meta(model_dir, name=META_FILE, formats=(FORMAT,), what="labelling model",
                           hint=" (train one with 'musicperf train')")
    model_id = meta.get("model_id")
    if not isinstance(model_id, str):
        raise ModelError(f"'{model_dir / META_FILE}' has no model_id")
    if not (model_dir / MODEL_FILE).is_file():
        raise ModelError(f"model '{model_dir}' is incomplete: {MODEL_FILE} is missing")
    return model_id
