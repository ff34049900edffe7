"""The benchmark suite behind ``make bench``: musicperf's fast path against the papers' pipeline
and the field's tools, on the same machine in the same run; prints one table and writes
``bench-results.json`` at the repository root.

Every measurement runs in its own process (so peak memory is its own, ``ru_maxrss``), the
two sides of a comparison back to back (same machine load); with ``--repeats N`` each pair is
run N times, interleaved, and medians are reported.

    .venv/bin/python benchmarks/run_all.py            # pianist.avi in full (long: ~15-30 min)
    .venv/bin/python benchmarks/run_all.py --quick    # excerpts, a few minutes

Measured:

* 3D-ResNet-34 labelling of ``pianist.avi`` (musicperf fast path, non-overlapping clips) vs the
  3D-ResNets-PyTorch reference data path (``bench_reference.py``): time, real-time factor,
  speed-up, both peak memories;
* landmark labelling with motion-driven sampling (MediaPipe on every 2nd to 6th frame, still
  frames skipped, interpolated) interleaved with every 2nd frame and with the pose and hand graphs
  only, and the error of each against every-frame tracking; the fused model (3D-CNN + landmarks);
* the 3D-CNN's first run on a fresh machine cache (numeric mode measured) against later runs
  (mode read back), and ``--compile`` in a first and a second process (compile seconds apart);
* motion features and dense optical flow vs the Musical Gestures Toolbox (``bench_mgt.py``);
* peak memory labelling 1 minute vs 10 minutes of synthetic video;
* decoding speed per conversion method; training time of the Table 7 grid of 001.

The machine (CPU model; AVX2 / AVX-512 / AVX-512 BF16 / AMX; native or emulated bf16; load
average) and the command are printed above the table and stored in ``bench-results.json``.

``--write-docs`` also writes the table into a block of docs/performance.md named after the
selection (``benchmarks/docs_blocks.py``; checked before anything runs): ``<!-- figures:bench-cnn -->``
for ``--only cnn``, ``bench-landmarks`` for ``--only landmarks``, ``bench-cnn+landmarks`` for
``--only cnn landmarks``, ``bench-all`` without ``--only``.

Comparisons whose tools are missing (``ffmpeg``, ``.venv/mgt``; see ``benchmarks/setup.sh``)
are skipped with the reason in the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docs_blocks

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PARTS = ("decode", "cnn", "landmarks", "motion", "memory", "grid")
PY = sys.executable
MGT_PY = ROOT / ".venv" / "mgt" / "bin" / "python"
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "pianist.avi"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def child(args: list[str], *, python: str | Path = PY, timeout: float = 3600) -> dict:
    """Run one measurement process; its last stdout line is JSON."""
    env = {k: v for k, v in os.environ.items() if k != "TORCHINDUCTOR_CACHE_DIR"}  # compiled graphs: MUSICPERF_CACHE_DIR
    env.setdefault("PYTHONWARNINGS", "ignore")
    t0 = time.perf_counter()
    proc = subprocess.run([str(python), *args], capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=str(ROOT))
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(args[:2])} failed: {' | '.join(tail)}")
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    out = json.loads(lines[-1])
    out["_wall_s"] = time.perf_counter() - t0
    return out


def median_of(runs: list[dict], key: str):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def machine() -> dict:
    """The machine the figures come from: CPU model and the flags that decide the 3D-CNN's
    kernels (AVX2 / AVX-512 / AVX-512 BF16 / AMX, and whether oneDNN has native bf16), memory,
    torch, load average (:func:`musicperf.features.fastpath.cpu_info`)."""
    from musicperf.features.fastpath import bf16_supported, cpu_info, describe_cpu

    cpu = cpu_info()
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "cpu": cpu["model"], "avx2": cpu["avx2"], "avx512": cpu["avx512"], "avx512_bf16": cpu["avx512_bf16"],
            "amx": cpu["amx"], "bf16_native": bf16_supported(), "describe": describe_cpu(cpu)}
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            info["memory_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    info["load_average_start"] = list(os.getloadavg())
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except ImportError:
        pass
    return info


def machine_line(m: dict) -> str:
    """One line naming the machine, printed beside every table."""
    load = m.get("load_average_start", [float("nan")])[0]
    end = m.get("load_average_end")
    return (f"machine: {m.get('describe', m.get('cpu', '?'))}; oneDNN bf16 {'native' if m.get('bf16_native') else 'emulated'}; "
            f"{m.get('memory_gb', '?')} GB; torch {m.get('torch', '?')} ({m.get('cpu_capability', '?')}, "
            f"{m.get('torch_threads', '?')} threads); load average {load:.1f}"
            + (f" -> {end[0]:.1f}" if end else ""))


def docs_block_name(want: set[str]) -> str:
    """The docs/performance.md block a selection of measurements writes."""
    return "bench-all" if set(PARTS) <= want else "bench-" + "+".join(p for p in PARTS if p in want)


def docs_text(res: dict, rows: list[tuple], title: str) -> str:
    """The table as the docs block shows it: the run, the machine in full, a Markdown table."""
    cell = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    lines = [f"{title}; {res['seconds']:.0f} s.", "", machine_line(res["machine"]) + ".", "",
             "| what | musicperf | reference | ratio | target |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--quick", action="store_true", help="excerpts and fewer epochs: minutes, not half an hour")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved repeats of each comparison (medians)")
    ap.add_argument("--only", nargs="*", default=None,
                    help="subset: decode cnn landmarks motion memory grid")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results.json")
    ap.add_argument("--machine-cache", action="store_true",
                    help="use the real user cache directory (numeric-mode choice, compiled graphs) instead of a fresh one")
    docs_blocks.add_write_docs_option(ap, ROOT / "docs" / "performance.md")
    args = ap.parse_args()
    bad = sorted(set(args.only or []) - set(PARTS))
    if bad:
        ap.error(f"--only: unknown part(s) {', '.join(bad)}; choose from {' '.join(PARTS)}")
    if not args.video.is_file():
        sys.exit(f"video {args.video} not found (the shared test data: ../shared/data/video/pianist.avi)")
    want = set(args.only or PARTS)
    if args.write_docs:
        try:
            docs_blocks.check_block(args.write_docs, docs_block_name(want))  # fail now, not after half an hour
        except docs_blocks.DocsBlockError as exc:
            docs_blocks.fail(exc)
    quick = args.quick
    res: dict = {"machine": machine(), "video": str(args.video), "quick": quick, "repeats": args.repeats}
    rows: list[tuple[str, str, str, str, str]] = []  # what, musicperf, reference, ratio, target
    bl = str(HERE / "bench_labelling.py")
    v = str(args.video)
    excerpt = None
    t_start = time.perf_counter()
    tmpdir = tempfile.TemporaryDirectory(prefix="musicperf-bench-")
    if not args.machine_cache:
        # A fresh user cache directory: the first 3D-CNN run is the first video on a new
        # machine (numeric mode measured, nothing compiled); the later ones read what it stored.
        os.environ["MUSICPERF_CACHE_DIR"] = str(Path(tmpdir.name) / "user-cache")
    res["machine_cache"] = os.environ.get("MUSICPERF_CACHE_DIR", "default user cache directory")
    if quick and shutil.which("ffmpeg"):
        # Every comparison on the first 20 s (packets copied, not re-encoded), both sides alike.
        cut = Path(tmpdir.name) / f"{args.video.stem}-20s{args.video.suffix}"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", v, "-t", "20", "-c", "copy", str(cut)],
                       check=True)
        v = str(cut)
        res["video_excerpt_s"] = 20.0
    elif quick:
        excerpt = 20.0

    if "decode" in want:
        log("decoding speed")
        d = child([bl, "decode", v, "--seconds", "10" if quick else "30", "--repeats", "3"])
        res["decode"] = d
        rows.append(("decode to 112x112 RGB, frames/s", f"{d['pyav_fps']:.0f} (PyAV reformat)",
                     f"{d['opencv_fps']:.0f} (OpenCV on YUV planes)", f"{d['opencv_fps'] / d['pyav_fps']:.2f}", "-"))

    if "cnn" in want:
        ours_runs, ref_runs = [], []
        have_ffmpeg = shutil.which("ffmpeg") is not None
        for r in range(args.repeats):
            log(f"3D-ResNet-34 labelling, musicperf ({r + 1}/{args.repeats})")
            ours_runs.append(child([bl, "cnn", v, "--stride", "16"]))
            if have_ffmpeg:
                log(f"3D-ResNet-34, 3D-ResNets-PyTorch reference data path ({r + 1}/{args.repeats})")
                ref_runs.append(child([str(HERE / "bench_reference.py"), v]))
        ours = {k: median_of(ours_runs, k) for k in ("seconds", "rtf", "peak_rss_mb", "video_s")}
        ours["backbone_mode"] = ours_runs[-1].get("backbone_mode")
        ours["runs"] = ours_runs
        res["cnn"] = ours
        rows.append(("3D-ResNet-34 labelling, x real time", f"{ours['rtf']:.3f}", "-", "-", "<= 0.06"))
        # The first run on the (fresh) machine cache measures the numeric mode; later ones read it.
        first, later = ours_runs[0], ours_runs[1:]
        mode = lambda r: (r.get("backbone_mode") or {}).get("mode", "?")  # noqa: E731
        src = lambda r: (r.get("backbone_mode") or {}).get("source", "?")  # noqa: E731
        rows.append(("  first video on the machine (mode measured), x real time", f"{first['rtf']:.3f}",
                     f"mode {mode(first)} ({src(first)})", "-", "-"))
        if later:
            res["cnn"]["later_rtf"] = median_of(later, "rtf")
            rows.append((f"  later videos (mode from the machine cache), x real time, median of {len(later)}",
                         f"{res['cnn']['later_rtf']:.3f}", f"mode {mode(later[-1])} ({src(later[-1])})",
                         f"{first['rtf'] / res['cnn']['later_rtf']:.2f}x", "-"))
        if ref_runs:
            ref = {k: median_of(ref_runs, k) for k in ("total_s", "jpeg_s", "load_s", "forward_s", "peak_rss_mb", "s_per_clip")}
            ref["runs"] = ref_runs
            res["reference"] = ref
            res["cnn"]["speedup_vs_reference"] = ref["total_s"] / ours["seconds"]
            rows.append(("3D-ResNet-34 video -> labels, s", f"{ours['seconds']:.1f}",
                         f"{ref['total_s']:.1f} (JPEG {ref['jpeg_s']:.1f} + load {ref['load_s']:.1f} + forward {ref['forward_s']:.1f})",
                         f"{ref['total_s'] / ours['seconds']:.2f}x", ">= 5x"))
            rows.append(("3D-ResNet-34 peak memory, MB", f"{ours['peak_rss_mb']:.0f}", f"{ref['peak_rss_mb']:.0f}",
                         f"{ref['peak_rss_mb'] / ours['peak_rss_mb']:.1f}x less", "< 1536"))
        else:
            rows.append(("3D-ResNets-PyTorch reference", "-", "skipped: no ffmpeg program (benchmarks/setup.sh)", "-", ""))
        if not quick:
            # torch.compile (inductor, freezing) in two processes: the first compiles and stores the
            # graph in the machine cache, the second loads it. Compile seconds are reported apart.
            try:
                comp = []
                for k in ("first", "second"):
                    log(f"3D-ResNet-34 labelling with torch.compile, {k} process on the machine")
                    comp.append(child([bl, "cnn", v, "--stride", "16", "--compile"]))
                res["cnn_compiled"] = {"first": comp[0], "second": comp[1]}
                for k, c in zip(("first", "second"), comp):
                    cs = c.get("compile_s")
                    rows.append((f"3D-ResNet-34 labelling with --compile, {k} process, x real time", f"{c['rtf']:.3f}",
                                 f"eager {ours['rtf']:.3f}", f"{ours['seconds'] / c['seconds']:.2f}x",
                                 f"compile {cs:.1f} s included" if cs is not None else "compile failed: eager"))
            except RuntimeError as exc:
                res["cnn_compiled"] = {"error": str(exc)}
                rows.append(("3D-ResNet-34 labelling with --compile", "failed", str(exc)[:80], "-", ""))

    if "landmarks" in want:
        # The fast configuration (motion-driven sampling: every 2nd frame at most, every 6th at
        # least, still frames skipped) against the earlier one (every 2nd frame), interleaved; each
        # compared once with MediaPipe on every frame in one process (the error is deterministic
        # up to tracking state). A third, with only the pose and hand graphs, shows what
        # selecting the parts adds for a model without facial classes.
        configs = {"motion": ["--every", "2", "--max-every", "6", "--motion-threshold", "3"],
                   "every2": ["--every", "2"],
                   "motion_pose_hands": ["--every", "2", "--max-every", "6", "--motion-threshold", "3",
                                         "--parts", "pose,hands"]}
        cmp_s = "5" if quick else "10"
        runs: dict = {k: [] for k in configs}
        try:
            for r in range(args.repeats):
                for name, flags in configs.items():
                    log(f"landmarks, {name} ({r + 1}/{args.repeats})")
                    runs[name].append(child([bl, "landmarks", v, "--workers", "0", *flags,
                                             *(["--compare-seconds", cmp_s] if r == 0 else []),
                                             *(["--seconds", str(excerpt)] if excerpt else [])]))
            lms = {}
            for name, rr in runs.items():
                m = dict(rr[0])  # errors from the first (compared) run
                m["rtf"] = median_of(rr, "rtf")
                m["model_frames"] = median_of(rr, "model_frames")
                m["runs"] = rr
                lms[name] = m
            res["landmarks"] = lms
            base, new = lms["every2"], lms["motion"]
            naive = base.get("every_frame_one_process_rtf")
            rows.append((f"landmarks, motion-driven 1/2-1/6 frames ({new['segments']} processes), x real time",
                         f"{new['rtf']:.3f}", f"every 2nd frame: {base['rtf']:.3f}", f"{base['rtf'] / new['rtf']:.2f}x",
                         "<= 0.25"))
            ph = lms["motion_pose_hands"]
            rows.append(("  same, pose + hands only (no face: no Holistic), x real time", f"{ph['rtf']:.3f}",
                         f"every 2nd frame, all: {base['rtf']:.3f}", f"{base['rtf'] / ph['rtf']:.2f}x", "<= 0.25"))
            if naive:
                rows.append(("  every frame, 1 process (Holistic), x real time", f"{naive:.3f}", "-", "-", "-"))
            for name, label in (("motion", "motion-driven"), ("every2", "every 2nd frame"),
                                ("motion_pose_hands", "motion-driven, pose + hands")):
                m = lms[name]
                if m.get("pose_mean_px_error") is None:
                    continue
                f = lambda k: m.get(k) if m.get(k) is not None else float("nan")  # noqa: E731
                rows.append((f"  error vs every frame, {label}: mean px (p95), first {cmp_s} s",
                             f"pose {f('pose_mean_px_error'):.1f} ({f('pose_p95_px_error'):.0f}), hands "
                             f"{f('left_hand_mean_px_error'):.1f}/{f('right_hand_mean_px_error'):.1f}, face "
                             f"{f('face_mean_px_error'):.1f}",
                             f"model on {m['model_frames'] / max(m['frames'], 1):.0%} of frames; hands lost "
                             f"{100 * f('left_hand_lost'):.0f}/{100 * f('right_hand_lost'):.0f} %", "-", "-"))
            if "cnn" in res:
                fused = res["cnn"]["rtf"] + new["rtf"]
                res["fused"] = {"rtf": fused, "how": "3D-CNN labelling + landmark extraction, run one after the other"}
                rows.append(("fused model (3D-CNN + landmarks), x real time", f"{fused:.3f}", "-", "-", "-"))
        except RuntimeError as exc:
            res["landmarks"] = {"error": str(exc)}
            rows.append(("landmark labelling", "failed", str(exc)[:80], "-", ""))

    if "motion" in want:
        log("motion features and dense flow, musicperf")
        ours = child([bl, "motion", v, "--flow", "dis-fast", "dis-ultrafast", *(["--seconds", str(excerpt)] if excerpt else [])])
        res["motion"] = ours
        if MGT_PY.exists():
            log("motion and dense flow, Musical Gestures Toolbox (slow)")
            try:
                mgt = child([str(HERE / "bench_mgt.py"), v, *(["--seconds", str(excerpt)] if excerpt else [])],
                            python=MGT_PY)
                res["mgt"] = mgt
                rows.append(("motion (QoM, CoM, motiongrams), s", f"{ours['motion_s']:.1f}", f"{mgt['motion_s']:.1f} (MGT motion())",
                             f"{mgt['motion_s'] / ours['motion_s']:.1f}x", ">= 5x"))
                rows.append(("dense optical flow, s", f"{ours['flow_dis-fast_s']:.1f} (DIS fast, 320x240)",
                             f"{mgt['flow_dense_s']:.1f} (MGT flow.dense(), Farneback 640x480)",
                             f"{mgt['flow_dense_s'] / ours['flow_dis-fast_s']:.1f}x", ">= 5x"))
            except RuntimeError as exc:
                res["mgt"] = {"error": str(exc)}
                rows.append(("Musical Gestures Toolbox", "-", f"failed: {str(exc)[:80]}", "-", ""))
        else:
            rows.append(("Musical Gestures Toolbox", f"motion {ours['motion_s']:.1f} s", "skipped: .venv/mgt missing (benchmarks/setup.sh)", "-", ""))

    if "memory" in want:
        sys.path.insert(0, str(ROOT / "tests"))
        from _workflow_video import schedule, write_video

        import numpy as np

        mem = {}
        with tempfile.TemporaryDirectory(prefix="musicperf-bench-") as tmp:
            for minutes in (1, 10):
                d = 60.0 * minutes
                log(f"writing a {minutes}-minute synthetic video")
                path = write_video(Path(tmp) / f"v{minutes}.mp4", d, schedule(d, np.random.default_rng(0)))
                log(f"labelling {minutes} minute(s) of video")
                # The papers' ResNet-34 in a full run; a tiny ResNet-10 with --quick (the data path
                # is the same; only the model's share of the memory differs).
                model = ["--depth", "10", "--width-factor", "0.125"] if quick else ["--depth", "34"]
                mem[minutes] = child([bl, "cnn", str(path), *model, "--stride", "16"])
                if minutes == 10 and not quick and "landmarks" in want:
                    # Speed only: MediaPipe does not take the drawn performer for a person.
                    log("landmark extraction on the 10-minute synthetic video")
                    try:
                        res["landmarks_long"] = child([bl, "landmarks", str(path), "--every", "2", "--max-every", "6",
                                                       "--motion-threshold", "3", "--workers", "0"])
                    except RuntimeError as exc:
                        res["landmarks_long"] = {"error": str(exc)}
        res["memory"] = {"1min": mem[1], "10min": mem[10], "model": "resnet10 x0.125" if quick else "resnet34",
                         "growth": mem[10]["peak_rss_mb"] / mem[1]["peak_rss_mb"] - 1}
        rows.append((f"peak memory labelling 1 min vs 10 min ({res['memory']['model']}), MB",
                     f"{mem[1]['peak_rss_mb']:.0f} vs {mem[10]['peak_rss_mb']:.0f}",
                     "-", f"{100 * res['memory']['growth']:+.1f} %", "within 10 %"))
        rows.append((f"labelling 10 min synthetic video ({res['memory']['model']}), x real time",
                     f"{mem[10]['rtf']:.3f}", "-", "-", "<= 0.06" if not quick else "-"))
        lml = res.get("landmarks_long")
        if lml and "rtf" in lml:
            rows.append((f"landmarks, 10 min synthetic video (motion-driven, {lml['segments']} processes), x real time",
                         f"{lml['rtf']:.3f}", "-", "-", "<= 0.25"))
            rows.append(("fused model, 10 min synthetic video, x real time", f"{mem[10]['rtf'] + lml['rtf']:.3f}",
                         "-", "-", "-"))

    if "grid" in want:
        log("Table 7 training grid")
        g = child([bl, "grid", "--epochs", "5" if quick else "20"])
        res["grid"] = g
        rows.append((f"Table 7 grid (16 heads, {g['epochs']} epochs), s", f"{g['total_s']:.1f}", "-", "-", "-"))

    tmpdir.cleanup()
    res["machine"]["load_average_end"] = list(os.getloadavg())
    res["seconds"] = time.perf_counter() - t_start
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(res, f, indent=2)

    m = res["machine"]
    title = (f"musicperf benchmarks, video {Path(args.video).name}{' (20 s excerpts)' if quick else ''}, "
             f"medians of {args.repeats} interleaved run(s)")
    print(f"\n{title}")
    print(machine_line(m))
    print(f"command: {' '.join(['benchmarks/run_all.py', *sys.argv[1:]])}\n")
    widths = [max(len(r[i]) for r in rows + [("what", "musicperf", "reference", "ratio", "target")]) for i in range(5)]
    head = ("what", "musicperf", "reference", "ratio", "target")
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print(" | ".join(c.ljust(w) for c, w in zip(r, widths)))
    print(f"\nwritten {args.out} ({res['seconds']:.0f} s)")
    if args.write_docs:
        docs_blocks.write_figures(args.write_docs, docs_block_name(want), docs_text(res, rows, title),
                                  command=docs_blocks.command_line(__file__), when=time.time() - res["seconds"])


if __name__ == "__main__":
    main()
