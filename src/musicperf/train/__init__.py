"""musicperf.train: losses (MSE, BCE, Dynamic Batch Balance), the training loop, splits and the
conv4 feature cache.

Modules: :mod:`~musicperf.train.losses` (torch), :mod:`~musicperf.train.loop` (torch),
:mod:`~musicperf.train.cache` (torch), :mod:`~musicperf.train.splits` (numpy only). This
``__init__`` imports nothing, so ``import musicperf.train.splits`` stays torch-free.
"""

import sys as _sys
import types as _types


class _CallableModule(_types.ModuleType):
    """``musicperf.train`` is both this sub-package and the workflow's training step.

    A plain function could not take the name: importing any ``musicperf.train.*`` module sets the
    package as the attribute. So the package itself is callable.
    """

    def __call__(self, *args, **kwargs):
        """``musicperf.train(...)`` is :func:`musicperf.api.train`."""
        from musicperf.api import train

        return train(*args, **kwargs)


_sys.modules[__name__].__class__ = _CallableModule
