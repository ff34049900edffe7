"""musicperf: turn videos of music performances into analysed, labelled data.

Importing the package is cheap: no torch, OpenCV, mediapipe or librosa is imported here.
Sub-packages load their heavy dependencies when a function needs them.
"""

import sys as _sys
import types as _types

from musicperf.errors import (  # noqa: F401
    AnnotationError,
    DecodeError,
    MissingDependencyError,
    ModelError,
    MusicperfError,
    NoAudioError,
    ParameterError,
)

from musicperf._version import __version__  # noqa: E402,F401


class _Train:
    """``musicperf.train``: the workflow's training step, and the way to the sub-package.

    Calling it is :func:`musicperf.api.train`; an attribute (``musicperf.train.losses``) is the
    sub-module of the sub-package :mod:`musicperf.train` (losses, loop, splits), imported on first
    use, so ``import musicperf.train.loop as loop`` works as for any package.
    """

    __name__ = "musicperf.train"

    def __call__(self, *args, **kwargs):
        from musicperf import api

        return api.train(*args, **kwargs)

    def __getattr__(self, name: str):
        import importlib

        package = importlib.import_module("musicperf.train")
        try:
            return getattr(package, name)
        except AttributeError:
            return importlib.import_module(f"musicperf.train.{name}")

    def __repr__(self) -> str:
        return "<musicperf.train: musicperf.api.train, and the sub-package musicperf.train>"


train = _Train()
train.__doc__ = _Train.__doc__


def label(*args, **kwargs):
    """Label videos with a trained model: :func:`musicperf.api.label`."""
    from musicperf import api

    return api.label(*args, **kwargs)


def score(*args, **kwargs):
    """Score predicted against reference annotations: :func:`musicperf.api.score`."""
    from musicperf import api

    return api.score(*args, **kwargs)


class _Package(_types.ModuleType):
    """This package's own module type: ``musicperf.train`` stays the function above.

    Importing the sub-package ``musicperf.train`` (losses, loop, splits) makes Python set it as
    the attribute ``train`` of this package, hiding the function; this module ignores that one
    assignment (the sub-package is still in ``sys.modules`` and importable by name). The package
    changes only its own class here, no other module.
    """

    def __setattr__(self, name, value):
        if name == "train" and isinstance(value, _types.ModuleType):
            return
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
