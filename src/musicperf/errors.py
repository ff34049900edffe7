"""The exception hierarchy of musicperf.

Every error the library raises on purpose derives from :class:`MusicperfError`; the CLI turns
those into a one-line message and exit code 2. Must not import anything heavy.
"""

from __future__ import annotations


class MusicperfError(Exception):
    """Root of all errors raised on purpose by musicperf."""


class ParameterError(MusicperfError, ValueError):
    """A function or command received an invalid argument or configuration value."""


class DecodeError(MusicperfError):
    """A media file (video or audio) is missing, unreadable, corrupt or lacks a stream."""


class NoAudioError(DecodeError):
    """A media file has no audio stream where audio was asked for."""


class AnnotationError(MusicperfError):
    """An annotation file (EAF, TextGrid, tab-delimited export, mapping) is malformed or
    inconsistent with the media it describes."""


class OutputError(MusicperfError, OSError):
    """An output cannot be written: the location is a file, read-only, missing or full.

    Raised before the compute where the location can be checked cheaply
    (:func:`musicperf._util.check_output_location`), and for an ``OSError`` met while writing.
    """


class ModelError(MusicperfError):
    """A model file or checkpoint is missing, malformed or does not fit the architecture."""


class MissingDependencyError(MusicperfError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str | None = None, purpose: str | None = None):
        what = f" for {purpose}" if purpose else ""
        hint = f"pip install 'musicperf[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{package} is needed{what} but is not installed; install it with: {hint}")
        self.package = package
        self.extra = extra


def require(module: str, *, extra: str | None = None, purpose: str | None = None, package: str | None = None):
    """Import and return an optional module, or raise :class:`MissingDependencyError`.

    ``package`` is the name to install when it differs from the module's (``cv2`` comes from
    ``opencv-contrib-python``).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(package or module.split(".")[0], extra, purpose) from exc
