"""Memory and speed of the real-video labeller (per-frame tracks + temporal model) on long videos.

Builds (once, in a cache folder outside the repository) a ~1-minute and a ~10-minute 640 x 480
30 fps H.264 video from ``pianist.avi`` (the first minute; the whole video six times over and the
start of a seventh, with its sound as 16-bit PCM, in Matroska), then labels each in a fresh
process: every track (:func:`musicperf.features.tracks.frame_tracks` with ``cache=False``:
landmarks on every 2nd frame in ``--workers`` processes, DIS flow, grid, audio), a frame
labeller trained on the first minute (the hand-made tiers of ``benchmarks/data/pianist.eaf``,
LightGBM only, 2 folds: the same cost for both videos; every class kept as learned, so that the
labelling predicts every frame) and the labelling of the whole video.
Prints per video the seconds, x real time and the peak resident memory of the driver process
(per phase: tracks, training, labelling; the kernel's high-water mark is reset between phases
through ``/proc/self/clear_refs``, where allowed; else ``getrusage``) and of its largest landmark
worker (``VmHWM`` of the child processes, sampled every 0.2 s), and the 10-minute / 1-minute
ratios (target: memory within 10 %).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_tracks_memory.py [--minutes 1,10]
        [--workers 2] [--every 2] [--no-label] [--tracks landmarks,flow,grid,audio] [--video-dir DIR]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "data" / "video" / "pianist.avi"
EAF = HERE / "data" / "pianist.eaf"
TRAIN_SECONDS = 60.0


def build_video(out: Path, seconds: float, source: Path = SOURCE) -> Path:
    """``seconds`` of ``source`` (repeated as often as needed) as H.264 640 x 480 30 fps + PCM sound."""
    import av
    import numpy as np

    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part.mkv")
    fps = 30
    n_frames = int(round(seconds * fps))
    with av.open(str(tmp), "w") as dst:
        vs = dst.add_stream("libx264", rate=fps, options={"preset": "veryfast", "crf": "23"})
        vs.width, vs.height, vs.pix_fmt = 640, 480, "yuv420p"
        aus = None
        done_v = done_a = 0
        rate = 44100
        n_samples = int(round(seconds * rate))
        while done_v < n_frames or (aus is not None and done_a < n_samples):
            with av.open(str(source)) as src:
                v_in = src.streams.video[0]
                a_in = src.streams.audio[0] if src.streams.audio else None
                if a_in is not None and aus is None:
                    aus = dst.add_stream("pcm_s16le", rate=rate)
                    aus.layout = "stereo"
                resampler = av.AudioResampler(format="s16", layout="stereo", rate=rate)
                streams = [v_in] + ([a_in] if a_in is not None else [])
                for packet in src.demux(*streams):
                    for frame in packet.decode():
                        if isinstance(frame, av.VideoFrame):
                            if done_v >= n_frames:
                                continue
                            img = frame.reformat(width=640, height=480, format="yuv420p")
                            img.pts, img.time_base = done_v, Fraction(1, fps)
                            for p in vs.encode(img):
                                dst.mux(p)
                            done_v += 1
                        else:
                            for r in resampler.resample(frame):
                                if done_a >= n_samples:
                                    continue
                                pcm = r.to_ndarray().reshape(-1, 2)[: n_samples - done_a]
                                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm.reshape(1, -1)), format="s16",
                                                                layout="stereo")
                                af.sample_rate, af.pts = rate, done_a
                                for p in aus.encode(af):
                                    dst.mux(p)
                                done_a += len(pcm)
            if a_in is None:
                n_samples = 0
        for s in (vs, aus):
            if s is not None:
                for p in s.encode():
                    dst.mux(p)
    os.replace(tmp, out)
    return out


def _peak_mb(who) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # kB on Linux


def _reset_peak() -> bool:
    """Reset this process's resident high-water mark (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _hwm_mb(pid: int | str = "self") -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class _ChildPeaks:
    """Samples the resident high-water mark (``VmHWM``) of this process's children every 0.2 s.

    ``getrusage(RUSAGE_CHILDREN)`` is not used for the workers: a child started by ``vfork`` +
    ``exec`` (what ``subprocess`` does) inherits its parent's high-water mark at the time, so any
    helper process started late by a library would report the driver's memory as its own.
    """

    def __init__(self):
        import threading

        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = str(os.getpid())
        while not self._stop.wait(0.2):
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = f.read().rsplit(")", 1)[1].split()[1]
                except (OSError, IndexError):
                    continue
                if ppid == me:
                    hwm = _hwm_mb(entry)
                    if hwm is not None:
                        self.peak = max(self.peak, hwm)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def child(video: Path, *, workers: int, every: int, label: bool, tracks: tuple[str, ...]) -> dict:
    """Label one video in this (fresh) process; the measurements as a dict."""
    import numpy as np

    from musicperf.features.tracks import frame_tracks
    from musicperf.io.video import probe

    res: dict = {"video": str(video), "duration": probe(video).duration, "phase_peak_mb": {}}
    can_reset = _reset_peak()
    children = _ChildPeaks()
    t0 = time.perf_counter()
    want = tracks
    tracks = frame_tracks(video, tracks=want, workers=workers, landmark_every=every, cache=False)
    res["tracks_s"] = time.perf_counter() - t0
    res["phase_peak_mb"]["tracks"] = _hwm_mb()
    res["frames"] = len(tracks)
    res["columns"] = int(sum(v.shape[1] for v in tracks.values.values()))
    res["seconds_per_track"] = tracks.meta["seconds"]
    res["label_s"] = 0.0
    if label:
        from musicperf.io.elan import read_eaf
        from musicperf.labels import Taxonomy, frame_labels
        from musicperf.train.candidates import LightGBMLabeller
        from musicperf.train.framelabeller import train_frame_labeller

        aset = read_eaf(EAF)
        classes = list(aset.tiers)
        tax = Taxonomy(tuple(classes), {c: c for c in classes}, by="tier", name="bench")
        y = np.asarray(frame_labels(aset, tax, fps=tracks.fps, n_frames=len(tracks), check=False), dtype=np.float32)
        mask = tracks.times < TRAIN_SECONDS
        if can_reset:
            _reset_peak()
        t0 = time.perf_counter()
        # margin -1: every class is labelled by the model even where it does not beat the
        # constant in cross-validation, so that the labelling phase does predict every frame.
        fl = train_frame_labeller([tracks], [y], [mask], classes=classes, sets=("all",), n_folds=2, margin=-1.0,
                                  candidates={"lightgbm": lambda: LightGBMLabeller(fps=tracks.fps, row_step=2)})
        res["train_s"] = time.perf_counter() - t0
        res["phase_peak_mb"]["train"] = _hwm_mb()
        if can_reset:
            _reset_peak()
        t0 = time.perf_counter()
        probs, decisions = fl.label([tracks])
        res["label_s"] = time.perf_counter() - t0
        res["phase_peak_mb"]["label"] = _hwm_mb()
        res["labelled_frames"] = int(decisions[0].shape[0])
    # Resetting the high-water mark also resets getrusage's own figure: the peak is then the
    # largest of the phases'.
    phases = [v for v in res["phase_peak_mb"].values() if v is not None]
    res["peak_rss_driver_mb"] = max(phases) if can_reset and phases else _peak_mb(resource.RUSAGE_SELF)
    res["peak_rss_workers_mb"] = children.stop()
    res["rusage_children_mb"] = _peak_mb(resource.RUSAGE_CHILDREN)
    res["hwm_reset"] = can_reset
    res["x_real_time"] = (res["tracks_s"] + res["label_s"]) / res["duration"]
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", default="1,10", help="video lengths in minutes, comma-separated (default 1,10)")
    ap.add_argument("--workers", type=int, default=2, help="landmark processes (default 2)")
    ap.add_argument("--every", type=int, default=2, help="landmarks on every n-th frame (default 2)")
    ap.add_argument("--no-label", action="store_true", help="tracks only: no frame labeller")
    ap.add_argument("--tracks", default="landmarks,flow,grid,audio",
                    help="tracks to compute, comma-separated (default: all four)")
    ap.add_argument("--video-dir", default=None,
                    help="where the built videos are kept (default: <temp>/musicperf-bench-memory)")
    ap.add_argument("--json", default=None, help="also write the results as JSON")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        res = child(Path(args.child), workers=args.workers, every=args.every, label=not args.no_label,
                    tracks=tuple(t.strip() for t in args.tracks.split(",") if t.strip()))
        print("RESULT " + json.dumps(res))
        return 0

    sys.path.insert(0, str(HERE))
    from run_all import machine, machine_line

    m = machine()
    print(machine_line(m))
    print(f"tracks {args.tracks}; landmark_every={args.every}, {args.workers} landmark process(es); "
          + ("no labeller" if args.no_label else "LightGBM labeller trained on the first minute, labelling the whole video"))
    folder = Path(args.video_dir or Path(tempfile.gettempdir()) / "musicperf-bench-memory")
    minutes = [float(x) for x in args.minutes.split(",") if x.strip()]
    results = []
    for mins in minutes:
        t0 = time.perf_counter()
        video = build_video(folder / f"pianist-{mins:g}min.mkv", mins * 60.0)
        built = time.perf_counter() - t0
        if built > 1:
            print(f"built {video} in {built:.0f} s", flush=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(video), "--workers", str(args.workers),
               "--every", str(args.every), "--tracks", args.tracks] + (["--no-label"] if args.no_label else [])
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode != 0 or not line:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        r = json.loads(line[-1][7:])
        r["minutes"] = mins
        results.append(r)
        ph = ", ".join(f"{k} {v:.0f}" for k, v in r["phase_peak_mb"].items() if v is not None)
        print(f"{mins:g} min ({r['duration']:.1f} s, {r['frames']} frames, {r['columns']} columns): "
              f"tracks {r['tracks_s']:.1f} s + label {r['label_s']:.1f} s = {r['x_real_time']:.3f} x real time; "
              f"peak RSS driver {r['peak_rss_driver_mb']:.0f} MB (per phase: {ph}), "
              f"largest worker {r['peak_rss_workers_mb']:.0f} MB", flush=True)
    if len(results) >= 2:
        a, b = results[0], results[-1]
        for key, what in (("peak_rss_driver_mb", "driver"), ("peak_rss_workers_mb", "largest worker")):
            ratio = b[key] / a[key]
            print(f"{b['minutes']:g} min / {a['minutes']:g} min peak RSS, {what}: {ratio:.3f} "
                  f"({'within' if ratio <= 1.10 else 'NOT within'} 10 %)")
    m["load_average_end"] = list(os.getloadavg())
    print(machine_line(m))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
