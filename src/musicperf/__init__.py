"""musicperf: turn videos of music performances into analysed, labelled data.

Importing the package is cheap: no torch, OpenCV, mediapipe or librosa is imported here.
Sub-packages load their heavy dependencies when a function needs them.
"""

from musicperf.errors import (  # noqa: F401
    AnnotationError,
    DecodeError,
    MissingDependencyError,
    ModelError,
    MusicperfError,
    NoAudioError,
    ParameterError,
)

__version__ = "0.1.0"


def __getattr__(name: str):
    # The Python API of the labelling workflow, loaded on first use so `import musicperf` stays cheap:
    # musicperf.train(...), musicperf.label(...), musicperf.score(...) (see musicperf.api).
    if name in ("label", "score"):
        from musicperf import api

        return getattr(api, name)
    if name == "train":
        import importlib

        return importlib.import_module("musicperf.train")  # a callable package, see musicperf.train
    raise AttributeError(f"module 'musicperf' has no attribute {name!r}")
