"""musicperf: turn videos of music performances into analysed, labelled data.

Importing the package is cheap: no torch, OpenCV, mediapipe or librosa is imported here.
Sub-packages load their heavy dependencies when a function needs them.
"""

from musicperf.errors import (  # noqa: F401
    AnnotationError,
    DecodeError,
    MissingDependencyError,
    MusicperfError,
    ParameterError,
)

__version__ = "0.1.0"
