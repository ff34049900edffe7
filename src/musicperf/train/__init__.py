"""musicperf.train: losses (MSE, BCE, Dynamic Batch Balance), the training loop, splits and the
conv4 feature cache.

Modules: :mod:`~musicperf.train.losses` (torch), :mod:`~musicperf.train.loop` (torch),
:mod:`~musicperf.train.cache` (torch), :mod:`~musicperf.train.splits` (numpy only). This
``__init__`` imports nothing, so ``import musicperf.train.splits`` stays torch-free.

``musicperf.train(...)``, the workflow's training step, is a function of the top package
(:func:`musicperf.train`, i.e. :func:`musicperf.api.train`); this sub-package is reached by
importing its modules (``from musicperf.train import losses``).
"""
