"""``musicperf playing VIDEO [--json]``: playing / non-playing per performer over time (002 IV-B).

Default: motion and posture in each performer's region (given, or the upper body under each face
MediaPipe finds) with the audio activity (:func:`~musicperf.analysis.playing.playing_audio_visual`
and :func:`~musicperf.analysis.playing.rest_postures`). ``--ensemble``: the clustering pipeline
of Figure 2 with a scriptable labelling step (``--write-labels`` writes the sub-clusters to
label, ``--labels`` applies them). Heavy imports happen inside :func:`run` only.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "playing",
        help="per performer, whether they are playing over time (motion + audio, or Figure 2 clustering)",
        description=(
            "Playing/non-playing detection (002 Section IV-B). Default: one region per performer (--regions, "
            "else the upper body below each face found in the first second). A soloist plays while the "
            "region's smoothed motion exceeds a share of its own high level (--threshold) and the audio is "
            "not silent. With several performers, everyone plays while the audio sounds, except a performer "
            "whose region stays still for a second or more (below 0.3 of their own usual motion) or who holds "
            "a rare posture for 1.5 s or more (bow, flute or hands lowered); where the audio sounds but "
            "nobody is left playing, the performer most active for their own level plays. --ensemble runs the "
            "clustering pipeline of Figure 2: key frames, faces, upper bodies, musicians by clustering, "
            "sub-clusters per musician, then a labelling step: --write-labels FILE.json writes every "
            "sub-cluster (and a contact sheet FILE.png) for a person to mark playing / non-playing / reject, "
            "--labels FILE.json applies the marks."
        ),
        epilog=("example: musicperf playing duet.mp4 --regions halves --json\n"
                "         musicperf playing concert.mp4 --ensemble --write-labels labels.json   # then edit it\n"
                "         musicperf playing concert.mp4 --ensemble --labels labels.json --json"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("video")
    p.add_argument("--regions", nargs="+", metavar="X,Y,W,H", help="one region per performer, or 'halves'/'thirds'")
    p.add_argument("--threshold", type=float, default=0.3,
                   help="share of a performer's 95th-percentile motion activity that counts as playing, for a "
                        "soloist or without audio (default 0.3)")
    p.add_argument("--no-audio", action="store_true", help="ignore the audio track")
    p.add_argument("--faces", choices=("auto", "mediapipe", "haar"), default="auto",
                   help="face detector: MediaPipe's full-range model (auto, when installed) or OpenCV's Haar cascade")
    p.add_argument("--ensemble", action="store_true", help="the face/upper-body clustering pipeline of Figure 2")
    p.add_argument("--musicians", type=int, help="number of musicians (default: chosen by silhouette)")
    p.add_argument("--subclusters", type=int, default=4, help="sub-clusters per musician (default 4)")
    p.add_argument("--step", type=float, default=0.5, help="seconds between key frames (default 0.5)")
    p.add_argument("--write-labels", metavar="FILE.json", help="write the sub-clusters to label and stop")
    p.add_argument("--labels", metavar="FILE.json", help="sub-cluster labels: playing / non-playing / reject")
    p.add_argument("--max-seconds", type=float, metavar="S", help="analyse only the first S seconds")
    p.add_argument("--plot", metavar="PNG", help="write the timeline as a figure")
    p.add_argument("--json", action="store_true", help="print playing intervals per performer as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from musicperf.analysis import playing as PL
    from musicperf.errors import ParameterError
    from musicperf.io.video import VideoReader

    activity = None
    # frames are streamed: long videos never sit in memory whole
    with VideoReader(args.video) as reader:
        fps = reader.info.fps
        W, H = reader.info.width, reader.info.height
        has_audio = reader.info.has_audio
        if args.ensemble:
            stride = max(1, int(round(args.step * fps)))
            keep, T = {}, 0
            for i, (_t, f) in enumerate(reader.frames(0.0, args.max_seconds)):
                if i % stride in (0, 1) or stride == 1:
                    keep[i] = f  # key frames and the frame after each (for its motion)
                T = i + 1
            frames = _Sparse(keep, T)
        else:
            from musicperf.analysis.motion import auto_downscale, region_motion
            from musicperf.commands.separate import _regions

            if args.regions:
                regions = _regions(args.regions, W, H)
            else:
                head = [f for _t, f in reader.frames(0.0, min(1.0, args.max_seconds or 1.0))]
                regions = _face_regions(PL, head, fps, W, H, method=args.faces)
                del head
            thumbs = []  # posture thumbnails, taken in the same pass as the motion
            m = region_motion(PL.thumbnail_tap((f for _t, f in reader.frames(0.0, args.max_seconds)), regions, thumbs),
                              regions, fps=fps, compensate=True, downscale=auto_downscale(H))
            T = len(m.speed)
    if T < 3:
        raise ParameterError(f"'{args.video}' has fewer than 3 frames")
    if args.ensemble:
        obs = PL.ensemble_observations(frames, fps=fps, step=args.step,
                                       faces=lambda f: PL.detect_faces(f, method=args.faces))
        n = PL.cluster_musicians(obs, args.musicians)
        PL.sub_cluster(obs, args.subclusters)
        if args.write_labels or not args.labels:
            path = args.write_labels or str(args.video) + ".clusters.json"
            _write_template(path, obs)
            print(f"{len(obs)} faces, {n} musicians; wrote {path} (and its .png contact sheet): mark each "
                  "sub-cluster playing / non-playing / reject, then rerun with --labels")
            return 0
        labels = PL.read_cluster_labels(args.labels)
        timeline = PL.ensemble_timeline(obs, labels, T, fps, n)
        names = [f"musician{i + 1}" for i in range(n)]
    else:
        if has_audio and not args.no_audio:
            from musicperf.io.audio import load_audio

            y, sr = load_audio(args.video, sr=16000, duration=args.max_seconds)
            pred = PL.playing_decision(m.velocity, fps, y=y, sr=sr, speed=m.speed, thumbs=thumbs,
                                       threshold=args.threshold)
        else:
            pred = PL.playing_from_motion(m.speed, fps, threshold=args.threshold)
        timeline = pred.astype(np.int8)
        activity = m.speed
        names = [f"performer{i + 1}" for i in range(timeline.shape[1])]
    if args.plot:
        from musicperf.report.analysis_plots import save_playing_plot

        save_playing_plot(args.plot, np.arange(T) / fps, timeline, names=names, activity=activity,
                          title=f"{args.video}: playing (green), non-playing (white), unknown (grey)")
    result = {name: dict(playing=PL.intervals_from_mask(timeline[:, i] == 1, fps),
                         non_playing=PL.intervals_from_mask(timeline[:, i] == 0, fps),
                         playing_share=round(float(np.mean(timeline[:, i] == 1)), 4))
              for i, name in enumerate(names)}
    if args.json:
        method = "ensemble" if args.ensemble else ("motion+audio" if has_audio and not args.no_audio else "motion")
        extra = {} if args.ensemble else dict(regions=[[round(r.x, 1), round(r.y, 1), round(r.w, 1), round(r.h, 1)]
                                                       for r in regions])
        print(json.dumps(dict(video=str(args.video), fps=fps, method=method, performers=result, **extra), indent=1))
    else:
        for name, r in result.items():
            spans = ", ".join(f"{s:.1f}-{e:.1f}" for s, e in r["playing"]) or "never"
            print(f"{name}: plays {100 * r['playing_share']:.0f} % of the time: {spans} s")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


class _Sparse:
    """The key frames (and the frame after each) of a video, indexable like the full list."""

    def __init__(self, frames: dict, n: int):
        self._frames, self._n = frames, n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int):
        return self._frames[i]


def _face_regions(PL, frames, fps, W, H, method="auto"):
    """Upper-body regions below the faces found in the first second (one per face)."""
    from musicperf.analysis.motion import Region
    from musicperf.errors import ParameterError

    best = []
    for i in range(0, min(len(frames), int(fps) + 1), max(1, int(fps // 5))):
        f = PL.detect_faces(frames[i], method=method)
        if len(f) > len(best):
            best = f
    if len(best) == 0:
        raise ParameterError("no face found in the first second; give --regions X,Y,W,H per performer")
    out = []
    for face in sorted(best.tolist(), key=lambda b: b[0]):
        x0, y0, x1, y1 = PL.upper_body_box(face, W, H)
        out.append(Region(x0, y0, x1 - x0, y1 - y0))
    return out


def _write_template(path, obs):
    import json

    import numpy as np
    from PIL import Image

    from musicperf._util import atomic_path, write_text_atomic
    from musicperf.analysis.playing import cluster_key, cluster_labels_template

    write_text_atomic(path, json.dumps(cluster_labels_template(obs), indent=1))
    groups: dict = {}
    for o in obs:
        groups.setdefault(cluster_key(o), []).append(o.thumb)
    per = 8
    th, tw = 80, 48
    sheet = np.full((len(groups) * (th + 14), 110 + per * (tw + 2), 3), 255, np.uint8)
    from PIL import ImageDraw

    img = Image.fromarray(sheet)
    d = ImageDraw.Draw(img)
    for r, (k, thumbs) in enumerate(sorted(groups.items())):
        y = r * (th + 14) + 7
        d.text((4, y + th // 2 - 6), k, fill=(0, 0, 0))
        for c, t in enumerate(thumbs[:per]):
            img.paste(Image.fromarray(t), (110 + c * (tw + 2), y))
    png = str(path).rsplit(".", 1)[0] + ".png"
    with atomic_path(png) as tmp:
        img.save(tmp, format="PNG")
