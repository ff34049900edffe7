"""Scale-out: batch engines (local process pool, Ray), resumable runs, distributed training.

* :mod:`~musicperf.distributed.engine`: :class:`LocalEngine`, :class:`RayEngine` and
  :func:`run_batch` (retries, run state, progress), the same for every engine;
* :mod:`~musicperf.distributed.runstate`: run state (``musicperf-run.json``), failures report,
  run lock (:mod:`~musicperf.distributed.manifest` is its deprecated old name);
* :mod:`~musicperf.distributed.label`: ``musicperf label --engine`` (the workflow's per-video
  labelling as a batch job);
* :mod:`~musicperf.distributed.extract`: ``musicperf extract`` (per-video features);
* :mod:`~musicperf.distributed.ddp`: ``musicperf train --distributed`` under torchrun.

Importing this package imports nothing heavy; ray and torch load when an engine or a
training run starts.
"""
