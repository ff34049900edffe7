"""A copy of a video that every browser plays, for the HTML review page.

Browsers play a few container/codec pairs only: MP4 with H.264 (8-bit 4:2:0) and AAC or MP3,
WebM with VP8/VP9/AV1 and Opus/Vorbis. AVI, MPEG-4 part 2, HEVC, ProRes, 10-bit or 4:4:4 H.264
and most Matroska files leave the player grey. :func:`review_video` returns the video itself
when it is playable and otherwise a copy in H.264/AAC MP4 (or, in a PyAV build without
libx264, VP9/Opus WebM) at review size (at most :data:`MAX_LINES` lines), written beside the
page and reused while it is up to date.

"Up to date" is recorded inside the copy: its container metadata ``comment`` holds the source's
name, size, modification time and the size asked for; a copy whose record differs is made
again. Frames are placed at their source timestamps (a dropped frame stays a gap), so a time on
the page is the same time in the original video and in the ELAN file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from musicperf._util import atomic_path
from musicperf.errors import DecodeError

#: Largest height (lines) of a review copy; larger videos are scaled down (aspect kept).
MAX_LINES = 480
_PLAYABLE_VIDEO = {"h264", "vp8", "vp9", "av1"}
_PLAYABLE_AUDIO = {"aac", "mp3", "opus", "vorbis", "flac"}
_MP4 = "mov,mp4,m4a,3gp,3g2,mj2"
_WEBM = "matroska,webm"
_TAG = "musicperf review copy"


@dataclass(frozen=True)
class ReviewVideo:
    """The video a review page shows.

    Attributes
    ----------
    path : Path
        The file to embed or link.
    mime : str
        Its MIME type for ``<source type=...>``.
    source : Path
        The video that was labelled.
    converted : bool
        True when ``path`` is a copy made for browsers.
    reason : str
        Why a copy was needed ("" when none was).
    """

    path: Path
    mime: str
    source: Path
    converted: bool
    reason: str = ""


def why_not_playable(path: str | Path) -> str:
    """Return why browsers cannot play ``path`` ("" when they can).

    Raises
    ------
    DecodeError
        The file is not a readable video.
    """
    from musicperf.io.video import open_container

    path = Path(path)
    container = open_container(path)
    try:
        if not container.streams.video:
            raise DecodeError(f"'{path}': no video stream")
        v = container.streams.video[0].codec_context
        a = container.streams.audio[0].codec_context.name if container.streams.audio else None
        fmt = container.format.name
        pix = v.format.name if v.format is not None else ""
        profile = (getattr(v, "profile", None) or "") if v.name == "h264" else ""
    finally:
        container.close()
    if fmt == _MP4:
        if v.name not in _PLAYABLE_VIDEO - {"vp8"}:
            return f"video codec {v.name} in MP4/MOV"
    elif fmt == _WEBM and path.suffix.lower() == ".webm":
        if v.name not in ("vp8", "vp9", "av1"):
            return f"video codec {v.name} in WebM"
        if a is not None and a not in ("opus", "vorbis"):
            return f"audio codec {a} in WebM"
    else:
        return f"container {fmt.split(',')[0].upper()}"
    if pix not in ("yuv420p", "yuvj420p"):
        return f"pixel format {pix or 'unknown'}"
    if any(p in str(profile) for p in ("10", "4:2:2", "4:4:4")):
        return f"H.264 profile {profile}"
    if a is not None and a not in _PLAYABLE_AUDIO:
        return f"audio codec {a}"
    return ""


def review_video(video: str | Path, folder: str | Path, *, max_lines: int = MAX_LINES,
                 progress: bool = False) -> ReviewVideo:
    """The video itself when browsers play it, otherwise an up-to-date copy in ``folder``.

    Parameters
    ----------
    video : str or Path
        The labelled video.
    folder : str or Path
        Where a copy goes (the page's folder): ``<stem>.review.mp4`` (or ``.webm``).
    max_lines : int
        Largest height of a copy.
    progress : bool
        Show a progress bar on stderr while a copy is made.

    Returns
    -------
    ReviewVideo
    """
    video = Path(video)
    reason = why_not_playable(video)
    if not reason:
        mime = "video/webm" if video.suffix.lower() == ".webm" else "video/mp4"
        return ReviewVideo(video, mime, video, False)
    vcodec, acodec, suffix, mime = _encoders()
    target = Path(folder) / f"{video.stem}.review{suffix}"
    record = _record(video, max_lines)
    if _recorded(target) != record:
        _transcode(video, target, vcodec=vcodec, acodec=acodec, max_lines=max_lines, record=record,
                   progress=progress)
    return ReviewVideo(target, mime, video, True, reason)


def _encoders() -> tuple[str, str, str, str]:
    """(video encoder, audio encoder, suffix, MIME): H.264/AAC MP4 where this PyAV has libx264."""
    import av

    have = av.codecs_available
    if "libx264" in have and "aac" in have:
        return "libx264", "aac", ".mp4", "video/mp4"
    if "libvpx-vp9" in have and ("libopus" in have or "opus" in have):
        return "libvpx-vp9", "libopus" if "libopus" in have else "opus", ".webm", "video/webm"
    from musicperf.errors import MissingDependencyError

    raise MissingDependencyError("this PyAV build has neither libx264+aac nor libvpx-vp9+opus encoders; "
                                 "a browser-playable copy of the video cannot be made")


def _record(video: Path, max_lines: int) -> str:
    st = video.stat()
    return json.dumps({"source": video.name, "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
                       "max_lines": max_lines}, sort_keys=True)


def _recorded(target: Path) -> str | None:
    if not target.is_file():
        return None
    import av

    try:
        with av.open(str(target)) as c:
            comment = c.metadata.get("comment", "")
    except (av.error.FFmpegError, OSError):
        return None
    return comment[len(_TAG) + 1:] if comment.startswith(_TAG + " ") else None


def _review_size(width: int, height: int, max_lines: int) -> tuple[int, int]:
    """(height, width), even numbers (4:2:0), scaled down to ``max_lines`` lines."""
    if height > max_lines:
        width, height = width * max_lines / height, max_lines
    return max(2, int(round(height / 2)) * 2), max(2, int(round(width / 2)) * 2)


def _transcode(video: Path, target: Path, *, vcodec: str, acodec: str, max_lines: int, record: str,
               progress: bool) -> None:
    import av

    from musicperf.io.video import VideoReader, open_container, probe

    info = probe(video)
    h, w = _review_size(info.width, info.height, max_lines)
    reader = VideoReader(video, size=(h, w), _info=info)
    rate = info.fps if info.fps and info.fps > 0 else 25.0
    from fractions import Fraction

    # A rational rate for the encoder (30000/1001 stays exact).
    frate = Fraction(rate).limit_denominator(1001)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max(info.n_frames, 1), desc=f"browser copy of {video.name}", unit="frame", leave=False,
                   dynamic_ncols=True)
    audio_in = open_container(video) if info.has_audio else None
    try:
        with atomic_path(target) as tmp:
            options = {"movflags": "+faststart"} if target.suffix == ".mp4" else {}
            with av.open(str(tmp), "w", options=options) as out:
                out.metadata["comment"] = f"{_TAG} {record}"
                vs = out.add_stream(vcodec, rate=frate)
                vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
                if vcodec == "libx264":
                    vs.options = {"crf": "23", "preset": "veryfast", "profile": "main"}
                else:
                    vs.options = {"crf": "33", "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
                audio = _AudioCopy(audio_in, out, acodec) if audio_in is not None else None
                last = -1
                for t, img in reader.frames(0.0, None):
                    pts = int(round(t * frate))
                    if pts <= last:  # two frames in one slot of the output grid: keep the first
                        continue
                    last = pts
                    if audio is not None:
                        audio.until(t)
                    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                    frame.pts, frame.time_base = pts, 1 / frate
                    for packet in vs.encode(frame):
                        out.mux(packet)
                    if bar is not None:
                        bar.update(1)
                for packet in vs.encode():
                    out.mux(packet)
                if audio is not None:
                    audio.until(None)
    except av.error.FFmpegError as exc:
        raise DecodeError(f"'{video}': could not make a browser-playable copy ({exc})") from exc
    finally:
        reader.close()
        if audio_in is not None:
            audio_in.close()
        if bar is not None:
            bar.close()


class _AudioCopy:
    """Decode the source's first audio stream and encode it into ``out``, interleaved by time."""

    def __init__(self, container, out, codec: str):
        import av

        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or 48000
        if codec != "aac":  # Opus takes 48 kHz only
            rate = 48000
        self.out = out
        self.stream = out.add_stream(codec, rate=rate)
        self.stream.layout = "stereo" if (stream.codec_context.channels or 2) >= 2 else "mono"
        self.resampler = av.AudioResampler(format="fltp", layout=self.stream.layout, rate=rate)
        self.frames = container.decode(stream)
        self.done = False

    def until(self, t: float | None) -> None:
        """Encode the source audio up to ``t`` seconds (None: to the end, then flush)."""
        import av

        while not self.done:
            try:
                frame = next(self.frames)
            except (StopIteration, av.error.FFmpegError):
                self.done = True
                break
            for f in self.resampler.resample(frame):
                f.pts = None
                for packet in self.stream.encode(f):
                    self.out.mux(packet)
            if t is not None and frame.time is not None and frame.time >= t:
                break
        if t is None:
            for packet in self.stream.encode(None):
                self.out.mux(packet)
