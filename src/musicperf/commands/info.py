"""``musicperf info VIDEO [--json] [--fast]``: print the facts of a video (or of an audio file).

By default the video is decoded once to count its frames exactly, because headers lie (some
report 0 frames, a damaged file announces frames it cannot deliver); ``--fast`` trusts the
container header instead. A file with sound but no picture (a .wav of
the performance, say) is described as audio: codec, rate, channels, duration. Heavy imports
happen inside :func:`run` only.
"""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "info",
        help="print frame rate, frame count, duration, size, rotation and audio of a video (or an audio file)",
        description=(
            "Print the facts of a video: frame rate, frame count, duration, displayed size, "
            "rotation, codec and audio. Frames are counted by decoding unless --fast is given. "
            "An audio-only file is described as audio (codec, sample rate, channels, duration)."
        ),
    )
    p.add_argument("video", help="video (or audio) file")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--fast", action="store_true",
                   help="trust the container's frame count instead of decoding (instant, "
                        "but blind to damaged files)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from musicperf import api

    audio = audio_only(args.video)
    if audio is not None:
        print(json.dumps(audio, indent=2) if args.json else format_audio(audio))
        return 0
    info = api.info(args.video, fast=args.fast)
    if args.json:
        print(json.dumps(info.to_dict(), indent=2))
    else:
        print(format_info(info))
    return 0


def audio_only(path) -> dict | None:
    """The facts of a file with audio and no video stream; None for anything else.

    A file that cannot be opened is left to :func:`~musicperf.io.video.probe`, whose error says why.
    """
    from musicperf.errors import DecodeError
    from musicperf.io.video import open_container

    try:
        container = open_container(path)
    except DecodeError:
        return None
    try:
        if container.streams.video or not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        else:
            duration = None
        return {"path": str(path), "container": container.format.name, "has_video": False,
                "audio_codec": ctx.name, "audio_rate": int(ctx.sample_rate), "audio_channels": int(ctx.channels),
                "duration": duration, "audio_streams": len(container.streams.audio)}
    finally:
        container.close()


def format_audio(audio: dict) -> str:
    """Human-readable lines for :func:`audio_only`'s facts."""
    d = audio["duration"]
    lines = [
        f"file:      {audio['path']}",
        f"container: {audio['container']}",
        "video:     none (an audio file)",
        f"audio:     {audio['audio_codec']}, {audio['audio_rate']} Hz, {audio['audio_channels']} channel(s)"
        + (f" (first of {audio['audio_streams']} audio streams)" if audio["audio_streams"] > 1 else ""),
        f"duration:  {d:.3f} s ({_clock(d)})" if d is not None else "duration:  unknown (the container does not say)",
    ]
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    m, s = divmod(seconds, 60.0)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:06.3f}" if h else f"{m}:{s:06.3f}"


def format_info(info) -> str:
    """Human-readable lines for a :class:`~musicperf.io.video.VideoInfo`."""
    size = f"{info.width}x{info.height}"
    if info.rotation:
        stored = f"{info.height}x{info.width}" if info.rotation in (90, 270) else size
        size += f" as displayed (stored {stored}, rotated {info.rotation} degrees clockwise)"
    lines = [
        f"file:      {info.path}",
        f"container: {info.container}",
        f"video:     {info.codec}, {size}, {info.fps:g} fps",
    ]
    if info.frame_count_exact:
        frames = f"{info.n_frames} (counted by decoding)"
        notes = []
        if info.announced_frames and info.announced_frames != info.n_frames:
            notes.append(f"the header announces {info.announced_frames}")
        if info.lost_frames:
            notes.append(f"{info.lost_frames} could not be decoded (damaged data)")
        if info.skipped_frames:
            notes.append(f"{info.skipped_frames} empty slot(s) in the timestamps "
                         "(dropped/repeated frames or variable rate), not damage")
        if notes:
            frames += "; " + "; ".join(notes)
    else:
        frames = f"{info.n_frames} (from the container header, not verified)"
    lines.append(f"frames:    {frames}")
    lines.append(f"duration:  {info.duration:.3f} s ({_clock(info.duration)})")
    lines.append(f"rotation:  {info.rotation}")
    if info.has_audio:
        lines.append(f"audio:     {info.audio_rate} Hz, {info.audio_channels} channel(s)")
    else:
        lines.append("audio:     none")
    return "\n".join(lines)
