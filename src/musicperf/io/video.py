"""Streaming video reading on PyAV: facts about a video (:func:`probe`) and its frames
(:class:`VideoReader`), one frame or one clip at a time, never the whole video in memory.

Time convention
---------------
All times are float seconds on the video stream's own timeline: ``t = (pts - start) *
time_base`` where ``start`` is the stream's ``start_time`` (0 when the container gives none,
i.e. timestamps are taken as they are). This is ffmpeg's timeline, the one ffmpeg-based players
(ffplay, VLC, mpv) show, and :func:`musicperf.io.audio.load_audio` aligns audio to
the same origin. Frame times come from timestamps, so variable-frame-rate video is safe.
Decoders emit frames in display order, but AVI files carry no presentation timestamps and
ffmpeg's guesses arrive shuffled (``pianist.avi`` gives ``1, 4, 3, 5, 2, ...``); the reader
therefore re-sorts timestamps through a small look-ahead buffer (:data:`REORDER_DEPTH` frames)
so the *k*-th frame gets the *k*-th smallest timestamp and times always increase. A
consequence kept on purpose: in AVI files with B-frames ffmpeg delays every timestamp by one
frame, so the first frame of ``pianist.avi`` is at 1/30 s, not 0; the audio stays at 0, as in
ffmpeg-based players, so sound and picture keep the file's own synchronisation.

Rotation
--------
``rotation`` is the clockwise angle (0/90/180/270) by which stored pictures must be turned for
display, read from the display matrix side data (or the legacy ``rotate`` tag). Frames are
returned as displayed, and ``width``/``height`` are the displayed ones. Non-square pixels
(sample aspect ratio) are not corrected.

PyAV is imported lazily, inside the functions that need it; numpy at top level. Must not import torch,
OpenCV or matplotlib.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from musicperf.errors import DecodeError, ParameterError, require

logger = logging.getLogger(__name__)

#: Frames held back to re-sort shuffled timestamps (H.264 allows at most 16 reordered frames).
REORDER_DEPTH = 16

__all__ = ["VideoInfo", "Clip", "VideoReader", "probe", "open_container", "REORDER_DEPTH"]


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video file.

    Attributes
    ----------
    path : Path
        The file.
    fps : float
        Frames per second: the stream's average rate (fallbacks: guessed rate, then
        ``n_frames / duration``).
    n_frames : int
        Number of frames. Decoded and counted when ``frame_count_exact`` is True; otherwise
        the container's figure (or ``round(duration * fps)`` where the container has none).
    duration : float
        Seconds, as announced by the stream (or the container); where neither announces one,
        the end of the last decoded frame (when counted) or ``n_frames / fps``.
    width, height : int
        Pixels as displayed, i.e. after rotation.
    rotation : int
        Clockwise degrees (0, 90, 180 or 270) applied to stored pictures for display.
    codec : str
        Video codec name (``"h264"``, ``"mpeg4"``, ...).
    frame_count_exact : bool
        False when ``n_frames`` is taken from container metadata only.
    has_audio : bool
        Whether the container holds an audio stream.
    audio_rate : int or None
        Audio sample rate in Hz, None without audio.
    audio_channels : int or None
        Audio channel count, None without audio.
    container : str
        Container format name as ffmpeg reports it (``"avi"``, ``"mov,mp4,m4a,3gp,3g2,mj2"``).
    announced_frames : int
        Frame count written in the container header (0 when it has none).
    lost_frames : int or None
        Frames that could not be decoded (None unless the video was decoded to count).
    skipped_frames : int or None
        Empty frame slots in the timestamps, measured against ``fps`` and not explained by lost
        frames: AVI drop frames (``dancer.avi`` has one, so it decodes 1571 of 1572 announced
        frames) or a variable rate. None unless the video was decoded to count.
    """

    path: Path
    fps: float
    n_frames: int
    duration: float
    width: int
    height: int
    rotation: int
    codec: str
    frame_count_exact: bool
    has_audio: bool
    audio_rate: int | None
    audio_channels: int | None
    container: str = ""
    announced_frames: int = 0
    lost_frames: int | None = None
    skipped_frames: int | None = None

    def to_dict(self) -> dict:
        """Return the facts as a JSON-serialisable dict (``path`` as a string)."""
        out = dataclasses.asdict(self)
        out["path"] = str(self.path)
        return out


@dataclass(frozen=True)
class Clip:
    """A run of consecutive frames.

    Attributes
    ----------
    start_frame : int
        Index of the first frame in the video (0-based, counting decoded frames).
    times : np.ndarray, shape (length,), float64
        Seconds of each frame on the video timeline.
    frames : np.ndarray, shape (length, H, W, 3), uint8
        RGB (or BGR with ``rgb=False``) pictures as displayed.
    """

    start_frame: int
    times: np.ndarray
    frames: np.ndarray

    def __len__(self) -> int:
        return len(self.times)


# --------------------------------------------------------------------------- opening


def _check_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DecodeError(f"'{path}': no such file")
    if path.is_dir():
        raise DecodeError(f"'{path}': is a directory, not a media file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise DecodeError(f"'{path}': cannot be read ({exc.strerror})") from exc
    if size == 0:
        raise DecodeError(f"'{path}': file is empty (0 bytes)")
    return path


def _ffmpeg_reason(exc: BaseException) -> str:
    """A short reason from a PyAV/ffmpeg exception, without the errno noise."""
    msg = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return str(msg).strip()


def open_container(path):
    """Open a media file with PyAV, turning every failure into :class:`DecodeError`.

    Parameters
    ----------
    path : str or Path
        Media file.

    Returns
    -------
    av.container.InputContainer
        The opened container; the caller closes it.

    Raises
    ------
    DecodeError
        The file is missing, empty, a directory, unreadable or not a media file.
    """
    path = _check_path(path)
    av = require("av", purpose="reading video and audio")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise DecodeError(f"'{path}': not a readable media file ({_ffmpeg_reason(exc)})") from exc


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise DecodeError(f"'{path}': has no video stream")
    return container.streams.video[0]


def _rotation_of(stream, first_frame) -> int:
    """Clockwise display rotation in degrees, snapped to 0/90/180/270."""
    angle = None
    if first_frame is not None:
        # PyAV gives av_display_rotation_get(): counter-clockwise degrees.
        try:
            r = first_frame.rotation
        except (AttributeError, ValueError):
            r = None
        if r:
            angle = -float(r)
    if angle is None:
        tag = stream.metadata.get("rotate")
        if tag:
            try:
                angle = float(tag)  # legacy tag: clockwise degrees
            except ValueError:
                logger.warning("'%s': ignoring unreadable rotate tag %r", stream.container.name, tag)
    if angle is None:
        return 0
    snapped = int(round(angle / 90.0)) * 90 % 360
    if abs(((angle - snapped) + 180) % 360 - 180) > 1:
        logger.warning("rotation %.1f degrees is not a multiple of 90; using %d", angle, snapped)
    return snapped


def _fps_of(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and rate > 0:
            return float(rate)
    return None


def _start_pts(stream) -> int | None:
    return stream.start_time if stream.start_time is not None else None


def _first_frame(container, stream, path: Path):
    """Decode the first picture (it carries the display matrix); errors become DecodeError."""
    av = require("av")
    failures = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                failures += 1
                if failures > 50:
                    break
                continue
            if frames:
                return frames[0]
    except av.error.FFmpegError as exc:
        raise DecodeError(f"'{path}': cannot read video packets ({_ffmpeg_reason(exc)})") from exc
    raise DecodeError(f"'{path}': no decodable video frame")


# --------------------------------------------------------------------------- decoding


class _DecodeStats:
    """Counters filled while decoding: failed packets and whether demuxing broke off."""

    def __init__(self):
        self.failed_packets = 0
        self.demux_error: str | None = None
        self.first_failure_time: float | None = None


def _decoded_frames(container, stream, stats: _DecodeStats):
    """Yield av.VideoFrame in decoder output order, skipping packets that fail to decode.

    A packet that does not decode costs the frame it carries (``stats.failed_packets``); a
    demuxer error (truncated file) ends the stream early (``stats.demux_error``) after the
    decoder is flushed, so everything decodable is still returned.
    """
    av = require("av")
    demux = container.demux(stream)
    while True:
        try:
            packet = next(demux)
        except StopIteration:
            return
        except av.error.FFmpegError as exc:
            stats.demux_error = _ffmpeg_reason(exc)
            try:
                yield from stream.decode(None)
            except av.error.FFmpegError:
                pass  # nothing more to flush out of a broken stream
            return
        try:
            frames = packet.decode()
        except av.error.FFmpegError:
            stats.failed_packets += 1
            if stats.first_failure_time is None and packet.pts is not None:
                stats.first_failure_time = float(packet.pts * stream.time_base)
            continue
        yield from frames


def _timed_frames(frames, *, origin: int, time_base, fps: float, depth: int = REORDER_DEPTH):
    """Pair frames (display order) with sorted timestamps; yield ``(seconds, frame)``.

    The *k*-th frame gets the *k*-th smallest pts seen so far through a look-ahead of
    ``depth`` frames, which repairs ffmpeg's shuffled guesses for AVI with B-frames. Missing
    timestamps continue the previous one by one frame period; ties are nudged forward by one
    period so times strictly increase.
    """
    buf: deque = deque()
    heap: list[int] = []
    tb = float(time_base)
    period = 1.0 / fps if fps else 0.0
    last_t = -math.inf
    last_pts: int | None = None

    def emit():
        nonlocal last_t
        frame = buf.popleft()
        t = (heapq.heappop(heap) - origin) * tb
        if t <= last_t:
            t = last_t + period if period else last_t
        last_t = t
        return t, frame

    for frame in frames:
        pts = frame.pts
        if pts is None:
            step = max(1, int(round(period / tb))) if period else 1
            pts = (last_pts + step) if last_pts is not None else origin
        last_pts = pts if last_pts is None else max(last_pts, pts)
        buf.append(frame)
        heapq.heappush(heap, pts)
        if len(buf) > depth:
            yield emit()
    while buf:
        yield emit()


def _to_array(frame, *, size, rotation: int, fmt: str, reformatter=None) -> np.ndarray:
    """Convert an av.VideoFrame to ``(H, W, 3)`` uint8 as displayed, resized to ``size``.

    ``reformatter`` (an ``av.video.reformatter.VideoReformatter``) is reused across frames so
    libswscale's context is not rebuilt for every frame.
    """
    w, h = frame.width, frame.height
    if size is not None:
        h, w = size
        if rotation in (90, 270):  # resize the stored picture to the transposed size
            h, w = w, h
    if reformatter is None:
        arr = frame.to_ndarray(width=w, height=h, format=fmt, interpolation="AREA")
    else:
        arr = reformatter.reformat(frame, width=w, height=h, format=fmt,
                                   interpolation="AREA").to_ndarray()
    if rotation:
        arr = np.ascontiguousarray(np.rot90(arr, k=-(rotation // 90)))
    return arr


# --------------------------------------------------------------------------- probe


def _probe(path, *, count: bool | None) -> VideoInfo:
    """``count`` True: decode everything; False: never; None: only when the container has no count."""
    path = _check_path(path)
    container = open_container(path)
    try:
        stream = _video_stream(container, path)
        first = _first_frame(container, stream, path)
        rotation = _rotation_of(stream, first)
        stored_w, stored_h = first.width, first.height
        announced = int(stream.frames or 0)
        tb = stream.time_base
        if stream.duration is not None and tb is not None:
            duration = float(stream.duration * tb)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = 0.0
        fps = _fps_of(stream)
        audio = container.streams.audio[0] if container.streams.audio else None
        codec = stream.codec_context.name
        fmt_name = container.format.name
        lost = skipped = None
        if count is None:
            count = announced <= 0
        if count:
            n_frames, lost, skipped, end = _count(path)
            exact = True
            if duration <= 0 and end is not None:  # no announced duration: the decoded one
                duration = end
        else:
            n_frames, exact = announced, False
            if n_frames <= 0 and fps and duration > 0:
                n_frames = int(round(duration * fps))
        if fps is None:
            if n_frames > 0 and duration > 0:
                fps = n_frames / duration
            else:
                raise DecodeError(f"'{path}': cannot determine the frame rate")
        if duration <= 0 and n_frames > 0:
            duration = n_frames / fps
    finally:
        container.close()
    width, height = (stored_h, stored_w) if rotation in (90, 270) else (stored_w, stored_h)
    return VideoInfo(
        path=path,
        fps=fps,
        n_frames=int(n_frames),
        duration=float(duration),
        width=int(width),
        height=int(height),
        rotation=rotation,
        codec=codec,
        frame_count_exact=exact,
        has_audio=audio is not None,
        audio_rate=int(audio.codec_context.sample_rate) if audio is not None else None,
        audio_channels=int(audio.codec_context.channels) if audio is not None else None,
        container=fmt_name,
        announced_frames=announced,
        lost_frames=lost,
        skipped_frames=skipped,
    )


def _count(path: Path) -> tuple[int, int, int, float | None]:
    """Decode the whole video; return (frames decoded, lost, skipped, end of the last frame in s)."""
    reader = VideoReader(path, _info=None)
    try:
        n = 0
        for _ in reader._frames(0.0, None, size=None, convert=False):
            n += 1
        end = reader._last_end
        return n, reader.lost_frames, reader.skipped_frames, end
    finally:
        reader.close()


def probe(path, *, count_frames: bool = False) -> VideoInfo:
    """Read the facts of a video: rate, frame count, duration, displayed size, rotation, audio.

    Parameters
    ----------
    path : str or Path
        Video file.
    count_frames : bool
        Decode the whole video to count its frames exactly (and find lost frames). Also done
        automatically when the container announces no frame count (e.g. Matroska/WebM).

    Returns
    -------
    VideoInfo

    Raises
    ------
    DecodeError
        Missing, empty, unreadable or non-video file, or no decodable frame.

    Examples
    --------
    >>> info = probe("pianist.avi")                       # doctest: +SKIP
    >>> info.width, info.height, info.fps, info.n_frames  # doctest: +SKIP
    (640, 480, 30.0, 2925)
    """
    return _probe(path, count=True if count_frames else None)


# --------------------------------------------------------------------------- reader


class VideoReader:
    """Stream the frames of a video, with timestamps, as numpy arrays.

    Parameters
    ----------
    path : str or Path
        Video file.
    size : (int, int) or None
        ``(height, width)`` in displayed orientation to resize every frame to; None keeps the
        displayed size. Resizing is done by libswscale (area averaging).
    rgb : bool
        True for RGB channel order, False for BGR (what OpenCV code expects).
    threads : int
        Decoder threads; 0 lets ffmpeg choose.

    Attributes
    ----------
    info : VideoInfo
        Facts from the container (``n_frames`` not counted: the reader never decodes the whole
        video up front; see :func:`probe` with ``count_frames=True``).
    lost_frames : int
        After iterating, frames that could not be decoded: packets that failed plus frames
        missing at the end of the announced duration (a truncated file). Gaps in the timestamps
        are not losses (variable frame rate, AVI drop frames). A warning is logged when > 0.
    skipped_frames : int
        After iterating, empty frame slots in the timestamps (measured against the average
        rate) not explained by lost frames.
    n_decoded : int
        Frames yielded by the last iteration.

    Notes
    -----
    ``len(reader)`` is ``info.n_frames``, the header's count (an estimate where the container
    has none). One iteration at a time: starting a new one rewinds the shared decoder.

    Examples
    --------
    >>> with VideoReader("pianist.avi", size=(112, 112)) as reader:   # doctest: +SKIP
    ...     for clip in reader.clips(16, 16):
    ...         clip.frames.shape
    (16, 112, 112, 3)
    """

    def __init__(self, path, *, size: tuple[int, int] | None = None, rgb: bool = True,
                 threads: int = 0, _info: VideoInfo | None | bool = True):
        self.path = _check_path(path)
        self.size = _check_size(size)
        self.rgb = bool(rgb)
        if not isinstance(threads, int) or threads < 0:
            raise ParameterError(f"threads must be an int >= 0, got {threads!r}")
        self.threads = threads
        self.lost_frames = 0
        self.skipped_frames = 0
        self.n_decoded = 0
        self._last_end: float | None = None
        self._container = None
        self._used = False
        if _info is True:
            self.info = _probe(self.path, count=False)
        elif isinstance(_info, VideoInfo):
            self.info = _info
        else:  # internal use by probe(): facts filled from the stream as we open it
            self.info = None
        self._open()

    # -- plumbing
    def _open(self):
        self._container = open_container(self.path)
        stream = _video_stream(self._container, self.path)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self.threads
        self._stream = stream
        self._origin = stream.start_time
        self._fps = _fps_of(stream) or (self.info.fps if self.info else 25.0)
        self._announced = int(stream.frames or 0)
        if stream.duration is not None:
            self._duration = float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            self._duration = self._container.duration / 1_000_000
        else:
            self._duration = None
        self._rotation = self.info.rotation if self.info is not None else 0

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - finaliser safety net
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def __len__(self) -> int:
        return self.info.n_frames

    def __repr__(self) -> str:
        i = self.info
        return (f"VideoReader('{self.path}', {i.width}x{i.height}, {i.fps:g} fps, "
                f"{i.n_frames} frames, size={self.size})")

    # -- iteration
    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        return self.frames()

    def frames(self, start: float = 0.0, end: float | None = None
               ) -> Iterator[tuple[float, np.ndarray]]:
        """Yield ``(time, frame)`` for frames with ``start <= time < end``.

        Parameters
        ----------
        start, end : float
            Seconds on the video timeline; ``end=None`` reads to the end. A positive ``start``
            seeks to the preceding keyframe first, so it does not decode from the beginning.

        Yields
        ------
        time : float
            Seconds from the stream start.
        frame : np.ndarray, shape (H, W, 3), uint8
            The picture as displayed (rotation applied), resized to ``size``.
        """
        if start < 0 or (end is not None and end < start):
            raise ParameterError(f"invalid frame range start={start}, end={end} for '{self.path}'")
        return self._frames(float(start), end, size=self.size, convert=True)

    def _frames(self, start: float, end: float | None, *, size, convert: bool):
        if self._container is None:
            raise DecodeError(f"'{self.path}': reader is closed")
        av = require("av")
        self._used = True
        container, stream = self._container, self._stream
        tb = stream.time_base
        origin = self._origin
        if origin is None:
            origin = 0
        try:
            if start > 0:
                container.seek(origin + int(start / float(tb)), stream=stream, backward=True)
            elif self._used:  # rewind; a fresh container needs no seek
                container.seek(origin, stream=stream, backward=True)
        except av.error.FFmpegError as exc:
            raise DecodeError(f"'{self.path}': cannot seek to {start:.3f} s ({_ffmpeg_reason(exc)})") from exc
        stats = _DecodeStats()
        fmt = "rgb24" if self.rgb else "bgr24"
        reformatter = av.video.reformatter.VideoReformatter()
        self.lost_frames = 0
        self.skipped_frames = 0
        self.n_decoded = 0
        n = 0
        gap_slots = 0
        last_t = None
        stopped_early = False
        for t, frame in _timed_frames(_decoded_frames(container, stream, stats),
                                      origin=origin, time_base=tb, fps=self._fps):
            if t < start - 1e-9:
                continue
            if end is not None and t >= end:
                stopped_early = True
                break
            n += 1
            if last_t is not None:
                gap_slots += max(0, int(round((t - last_t) * self._fps)) - 1)
            last_t = t
            self.n_decoded = n
            if convert:
                yield t, _to_array(frame, size=size, rotation=self._rotation, fmt=fmt,
                                   reformatter=reformatter)
            else:
                yield t, frame
        self._last_end = None if last_t is None else last_t + 1.0 / self._fps
        lost = stats.failed_packets
        if not stopped_early and end is None and self._duration and last_t is not None:
            # A truncated file ends before its announced duration.
            missing = int(round((self._duration - self._last_end) * self._fps))
            if missing > 0 and (stats.demux_error or self._announced > stats.failed_packets + n):
                lost += missing
        self.lost_frames = lost
        self.skipped_frames = max(0, gap_slots - stats.failed_packets)
        if lost:
            where = (f" (first near {stats.first_failure_time:.3f} s)"
                     if stats.first_failure_time is not None else "")
            why = f"; demuxing stopped: {stats.demux_error}" if stats.demux_error else ""
            logger.warning("'%s': %d frame(s) could not be decoded%s%s; %d frames read",
                           self.path, lost, where, why, n)

    def clips(self, length: int = 16, stride: int = 16, *, size: tuple[int, int] | None = None,
              drop_last: bool = True) -> Iterator[Clip]:
        """Yield runs of ``length`` consecutive frames, starting every ``stride`` frames.

        Parameters
        ----------
        length : int
            Frames per clip (16 for the 3D-CNNs of the papers).
        stride : int
            Frames between the starts of consecutive clips (< length overlaps, > length skips).
        size : (int, int) or None
            ``(height, width)`` for this call; None uses the reader's ``size``.
        drop_last : bool
            Drop a final clip shorter than ``length``; with False it is yielded short (no
            frames are invented; pad it yourself if a model needs a fixed length).

        Yields
        ------
        Clip
            ``frames`` of shape ``(length, H, W, 3)`` uint8, ``times`` of shape ``(length,)``.
        """
        for name, v in (("length", length), ("stride", stride)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ParameterError(f"clip {name} must be a positive int, got {v!r}")
        size = self.size if size is None else _check_size(size)
        window: deque = deque()
        index = 0          # index of the next frame read
        next_start = 0     # index of the first frame of the next clip
        for t, arr in self._frames(0.0, None, size=size, convert=True):
            if index >= next_start:
                window.append((t, arr))
            index += 1
            if len(window) == length:
                yield _make_clip(next_start, window)
                next_start += stride
                drop = min(stride, length)
                for _ in range(drop):
                    window.popleft()
        if window and not drop_last:
            yield _make_clip(next_start, window)


def _make_clip(start: int, window) -> Clip:
    times = np.fromiter((t for t, _ in window), dtype=np.float64, count=len(window))
    frames = np.stack([a for _, a in window])
    return Clip(start_frame=start, times=times, frames=frames)


def _check_size(size):
    if size is None:
        return None
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"size must be (height, width), got {size!r}") from exc
    if h < 2 or w < 2:
        raise ParameterError(f"size must be at least (2, 2), got {size!r}")
    return (h, w)
