"""Label real performances: every candidate, the constants and the automatic choice, per video and
annotated fraction, scored on the part that was not annotated.

For each video of ``benchmarks/data/`` (``pianist``, ``dancer``, ``makeup``: hand-made tiers, see the
README there; :data:`VIDEOS` names the shared video each one annotates) and each fraction (default
20/40/60 %): the first fraction of the video is the annotated part (``--spans`` also tries the
same amount as two separate spans: the first and the third quarter of it... see ``spans_mask``);
a layout with fewer annotated frames than two per fold is reported as "too few annotated frames"
and skipped. The automatic choice cross-validates the candidates on the annotated part
and trains the chosen ones; every candidate (model x feature set) is also trained on the whole
annotated part; all are scored on the rest of the video with frame macro F1, segmental F1@25 and
edit score (macro over classes). Train seconds: cross-validation and final fit (features cached);
label seconds: prediction of the whole video (features not included; their time is printed once
per video, from the cache or computed).

    PYTHONPATH=src .venv/bin/python benchmarks/bench_real_labelling.py [--fractions 0.2,0.4,0.6]
        [--videos pianist,dancer,makeup] [--sets all,landmarks] [--folds 3] [--json out.json]

Prints a Markdown table per video and the targets (at 40 %: the choice >= best
constant + 0.10 macro F1, and >= the LightGBM baseline), then a summary table per video and
annotated fraction. ``--write-docs [PAGE]`` also writes that summary into the block
``labelling-real-summary`` of docs/labelling-real.md (``benchmarks/docs_blocks.py``, under a line
naming the command, the machine and the time); ``make figures FIGURES_ARGS=labelling-real-summary``
runs ``--spans --write-docs``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
SHARED = HERE.parent.parent / "shared" / "data" / "video"
if str(HERE) not in sys.path:  # also when imported by the tests
    sys.path.insert(0, str(HERE))
import docs_blocks  # noqa: E402

DOCS_PAGE = HERE.parent / "docs" / "labelling-real.md"
DOCS_BLOCK = "labelling-real-summary"

#: The real videos of ``benchmarks/data`` (``NAME.eaf``) and the shared video each one annotates.
VIDEOS = {
    "pianist": "pianist.avi",
    "dancer": "dancer.avi",
    "makeup": "mmaction2_tests_test.avi",  # 6.56 s, not a music performance: see data/README.md
}


def load(video_name: str, *, every: int, workers: int):
    from musicperf.features.tracks import frame_tracks
    from musicperf.io.elan import read_eaf
    from musicperf.labels import Taxonomy, frame_labels

    eaf = DATA / f"{video_name}.eaf"
    video = SHARED / VIDEOS.get(video_name, f"{video_name}.avi")
    t0 = time.perf_counter()
    tracks = frame_tracks(video, landmark_every=every, workers=workers)
    feat_s = time.perf_counter() - t0
    aset = read_eaf(eaf)
    classes = list(aset.tiers)
    tax = Taxonomy(tuple(classes), {c: c for c in classes}, by="tier", name="bench")
    # Frame i of the tracks is shown at tracks.times[i]: in these AVI files ffmpeg's timeline puts the
    # first frame at one frame period (musicperf.io.video), and the annotations are on that timeline.
    y = np.asarray(frame_labels(aset, tax, fps=tracks.fps, n_frames=len(tracks), check=False,
                                start_time=float(tracks.times[0])), dtype=np.float32)
    return tracks, y, classes, feat_s


def load_synthetic(out: Path, *, seconds: float = 90.0, seed: int = 7):
    """The demo's synthetic performance (``make demo``: 90 s, 320x240, 25 fps, 5 gestures).

    MediaPipe does not detect the drawn performer, so its tracks are flow + grid only.
    """
    from musicperf.features.tracks import frame_tracks
    from musicperf.io.elan import read_eaf
    from musicperf.labels import Taxonomy, frame_labels
    from musicperf.synth import synthesize
    from musicperf.tasks.demo import DEMO_GESTURES, demo_schedule

    t0 = time.perf_counter()
    if not (out / "performance.mp4").is_file():
        synthesize(out, seconds=seconds, seed=seed, size=(320, 240), schedule=demo_schedule(seconds, seed))
    tracks = frame_tracks(out / "performance.mp4", tracks=("flow", "grid"))
    feat_s = time.perf_counter() - t0
    aset = read_eaf(out / "performance.eaf")
    classes = [c for c in DEMO_GESTURES if c in aset.tiers]
    tax = Taxonomy(tuple(classes), {c: c for c in classes}, by="tier", name="bench")
    y = np.asarray(frame_labels(aset, tax, fps=tracks.fps, n_frames=len(tracks), check=False,
                                unknown="ignore"), dtype=np.float32)
    return tracks, y, classes, feat_s


def scores(y_true: np.ndarray, active: np.ndarray, rest: np.ndarray, classes) -> dict:
    from musicperf.evaluate.segmental import segmental_scores

    t = y_true[rest] > 0.5
    p = active[rest].astype(bool)
    f1s = []
    per = {}
    for c, name in enumerate(classes):
        tp = int((t[:, c] & p[:, c]).sum())
        fp = int((~t[:, c] & p[:, c]).sum())
        fn = int((t[:, c] & ~p[:, c]).sum())
        f1 = None if tp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
        per[name] = f1
        if f1 is not None:
            f1s.append(f1)
    seg = segmental_scores(t, p, classes=classes)["macro"]
    return {"macro_f1": float(np.mean(f1s)) if f1s else None, "f1@25": seg["f1@25"], "edit": seg["edit"],
            "per_class": per}


def spans_mask(n: int, fraction: float) -> np.ndarray:
    """The same amount as the prefix, as two spans: the first half at the start, the second
    half in the middle of the video (annotation need not be one prefix)."""
    m = np.zeros(n, bool)
    k = int(fraction * n)
    m[: k // 2] = True
    mid = n // 2
    m[mid : mid + (k - k // 2)] = True
    return m


def run_one(tracks, y, classes, mask, *, sets, n_folds, choice="global", margin=0.02):
    from musicperf.errors import ParameterError
    from musicperf.train.candidates import Cleanup, ConstantLabeller, default_candidates
    from musicperf.train.framelabeller import set_tracks, train_frame_labeller
    from musicperf.train.selection import ensemble_members

    rest = ~mask
    rows = []
    t0 = time.perf_counter()
    lab = train_frame_labeller([tracks], [y], [mask], classes=classes, sets=sets, n_folds=n_folds, choice=choice,
                               margin=margin)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, active = lab.label([tracks])
    label_s = time.perf_counter() - t0
    choice = {"model": "automatic choice", "features": ", ".join(
        f"{c}: {b['model']}{'/' + b['features'] if b['features'] else ''}" for c, b in lab.selection.best.items()),
        **scores(y, active[0], rest, classes), "train_s": train_s, "label_s": label_s}
    for value in ("always", "never"):
        c = ConstantLabeller(value).fit([y], [y], [mask])
        rows.append({"model": f"constant-{value}", "features": "", **scores(y, c.predict([y])[0], rest, classes),
                     "train_s": 0.0, "label_s": 0.0})
    st, _ = set_tracks([tracks], sets=sets, min_rate=0.2)
    pool = default_candidates(fps=tracks.fps)
    members = ensemble_members(pool)
    probs = {}
    # Ensembles last: their probabilities are the mean of their members' (as EnsembleLabeller),
    # so they cost no training here either; their train/label seconds are the members' sums.
    for mname in sorted(pool, key=lambda m: m in members):
        for sname, ts in st.items():
            x = tracks.matrix(list(ts))[0]
            try:
                if mname in members:
                    if any(probs[(m, sname)] is None for m in members[mname]):
                        raise ParameterError("a member could not be trained")
                    p = np.mean([probs[(m, sname)][0] for m in members[mname]], axis=0)
                    pred = Cleanup.from_labels([y], [mask]).apply(p)
                    tr_s = sum(probs[(m, sname)][1] for m in members[mname])
                    lb_s = sum(probs[(m, sname)][2] for m in members[mname])
                else:
                    t0 = time.perf_counter()
                    model = pool[mname]().fit([x], [y], [mask])
                    tr_s = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    p = model.predict_proba([x])[0]
                    pred = model.cleanup.apply(p)
                    lb_s = time.perf_counter() - t0
                    probs[(mname, sname)] = (p, tr_s, lb_s)
            except ParameterError as exc:  # e.g. the clip head without 16 annotated frames in a row
                probs.setdefault((mname, sname), None)
                print(f"{mname}/{sname}: not trained: {exc}")
                rows.append({"model": mname, "features": sname, "macro_f1": None, "f1@25": None, "edit": None,
                             "per_class": {c: None for c in classes}, "train_s": 0.0, "label_s": 0.0})
                continue
            rows.append({"model": mname, "features": sname, **scores(y, pred, rest, classes), "train_s": tr_s,
                         "label_s": lb_s})
    rows.append(choice)
    return rows, lab


def fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def summary_table(out: list[dict]) -> str:
    """One row per video and annotated fraction (the verdicts of :func:`main`): the choice, the best
    constant, LightGBM on landmarks (Ienaga et al.'s baseline), the best LightGBM, the best single
    candidate, the two targets and the choice's training time."""
    lines = ["| video | annotated | choice macro F1 | best constant | LightGBM on landmarks (Ienaga) | best LightGBM "
             "| best single candidate | choice >= constant + 0.10 | choice >= best LightGBM | train s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for v in out:
        if "skipped" in v:
            lines.append(f"| {v['video']} | {round(100 * v['fraction']):d} % {v['layout']} | too few annotated frames "
                         + "| - " * 7 + "|")
            continue
        rows = v["rows"]
        ienaga = next((r["macro_f1"] for r in rows if r["model"] == "lightgbm" and r["features"] == "landmarks"),
                      None)
        single = [r for r in rows[:-1] if not r["model"].startswith("constant") and r["macro_f1"] is not None]
        best = max(single, key=lambda r: r["macro_f1"], default=None)
        best_s = "-" if best is None else (f"{best['macro_f1']:.3f} ({best['model']}"
                                          + (f"/{best['features']})" if best["features"] else ")"))
        lines.append(f"| {v['video']} | {round(100 * v['fraction']):d} % {v['layout']} | **{v['choice']:.3f}** "
                     f"| {v['best_constant']:.3f} | {fmt(ienaga)} | {fmt(v['best_lightgbm'])} | {best_s} "
                     f"| {'yes' if v['beats_constant_by_0.10'] else 'no'} | {'yes' if v['beats_lightgbm'] else 'no'} "
                     f"| {rows[-1]['train_s']:.0f} |")
    return "\n".join(lines)


README = HERE.parent / "README.md"
README_BLOCK = "labelling-real-40"


def readme_table(out: list[dict], *, fraction: float = 0.4, layout: str = "prefix") -> str:
    """Every candidate, the constants and the choice (rows) per video (columns): frame macro F1 on
    the part not annotated, with ``fraction`` of each video annotated as a ``layout``."""
    runs = [v for v in out if abs(v["fraction"] - fraction) < 1e-9 and v["layout"] == layout]
    if not runs:
        return ""
    names = []
    for v in runs:
        for r in v["rows"]:
            key = (r["model"], r["features"] if r["model"] != "automatic choice" else "")
            if key not in names:
                names.append(key)
    head = "| model | features | " + " | ".join(v["video"] for v in runs) + " |"
    lines = [head, "|---|---|" + "---|" * len(runs)]
    for model, feats in names:
        cells = []
        for v in runs:
            row = next((r for r in v["rows"] if r["model"] == model
                        and (model == "automatic choice" or r["features"] == feats)), None)
            val = None if row is None else row["macro_f1"]
            cell = fmt(val)
            if model == "automatic choice" or model == "constant-always":
                cell = f"**{cell}**"
            cells.append(cell)
        label = "**automatic choice**" if model == "automatic choice" else model
        lines.append(f"| {label} | {feats} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--videos", default=",".join(VIDEOS), help=f"comma-separated, of {', '.join(VIDEOS)} "
                    "(default: all)")
    ap.add_argument("--fractions", default="0.2,0.4,0.6")
    ap.add_argument("--sets", default="all,landmarks")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--choice", choices=("global", "class"), default="global",
                    help="one candidate for all classes (default) or the best per class")
    ap.add_argument("--margin", type=float, default=0.02)
    ap.add_argument("--every", type=int, default=2, help="landmarks on every N-th frame (default 2)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--spans", action="store_true", help="also annotate the same amount as two spans")
    ap.add_argument("--json", default=None, help="write all rows to this JSON file")
    ap.add_argument("--synthetic", default=None, metavar="DIR",
                    help="instead, the demo's synthetic performance, rendered into DIR (SYNTHETIC figures)")
    docs_blocks.add_write_docs_option(ap, DOCS_PAGE)
    ap.add_argument("--readme", action="store_true",
                    help="with --write-docs, write the 40 %% table of every candidate into README.md (block "
                         f"{README_BLOCK}) instead of the summary into the docs page")
    args = ap.parse_args(argv)
    if args.write_docs:
        if args.synthetic:
            ap.error("--write-docs writes the real videos' summary: not with --synthetic")
        try:
            # Fail now, not after half an hour.
            docs_blocks.check_block(README if args.readme else args.write_docs,
                                    README_BLOCK if args.readme else DOCS_BLOCK)
        except docs_blocks.DocsBlockError as exc:
            docs_blocks.fail(exc)
    import torch

    # One thread: on a busy 2-core machine two torch threads ran 3.5x slower than one.
    torch.set_num_threads(1)
    sets = tuple(s.strip() for s in args.sets.split(",") if s.strip())
    out = []
    names = [v.strip() for v in args.videos.split(",") if v.strip()]
    if args.synthetic:
        names = ["synthetic"]
    for name in names:
        if name == "synthetic":
            Path(args.synthetic).mkdir(parents=True, exist_ok=True)
            tracks, y, classes, feat_s = load_synthetic(Path(args.synthetic))
        else:
            tracks, y, classes, feat_s = load(name, every=args.every, workers=args.workers)
        print(f"\n## {name}: {len(tracks)} frames at {tracks.fps:g} fps, tiers {classes}")
        print(f"features: {feat_s:.1f} s ({'cached' if all(tracks.meta['cache_hit'].values()) else 'computed'}); "
              + tracks.describe().replace("\n", "; "))
        layouts = [("prefix", f) for f in map(float, args.fractions.split(","))]
        if args.spans:
            layouts += [("spans", f) for f in map(float, args.fractions.split(","))]
        for layout, frac in layouts:
            n = len(tracks)
            if layout == "prefix":
                mask = np.zeros(n, bool)
                mask[: int(frac * n)] = True
            else:
                mask = spans_mask(n, frac)
            print(f"\n### {name}, {frac:.0%} annotated ({layout}), scored on the other {1 - frac:.0%}")
            print(f"annotated: {int(mask.sum())} of {n} frames; present in them: "
                  + ", ".join(f"{c} {int(y[mask, k].sum())}" for k, c in enumerate(classes)))
            if int(mask.sum()) < 2 * args.folds:  # what train_frame_labeller's cross-validation refuses
                why = f"too few annotated frames: {int(mask.sum())} for {args.folds}-fold cross-validation"
                print(why)
                out.append({"video": name, "fraction": frac, "layout": layout, "skipped": why})
                continue
            rows, lab = run_one(tracks, y, classes, mask, sets=sets, n_folds=args.folds, choice=args.choice,
                                margin=args.margin)
            print("| model | features | macro F1 | F1@25 | edit | " + " | ".join(classes) + " | train s | label s |")
            print("|---" * (7 + len(classes)) + "|")
            for r in rows:
                print(f"| {r['model']} | {r['features']} | {fmt(r['macro_f1'])} | {fmt(r['f1@25'])} | {fmt(r['edit'])} | "
                      + " | ".join(fmt(r["per_class"][c]) for c in classes)
                      + f" | {r['train_s']:.1f} | {r['label_s']:.2f} |")
            print("\ncross-validation on the annotated part:")
            print(lab.summary())
            best_const = max((r["macro_f1"] or 0.0) for r in rows if r["model"].startswith("constant"))
            lgb = max((r["macro_f1"] or 0.0) for r in rows if r["model"] == "lightgbm") if any(
                r["model"] == "lightgbm" for r in rows) else None
            choice = rows[-1]["macro_f1"] or 0.0
            verdict = {"video": name, "fraction": frac, "layout": layout, "choice": choice, "best_constant": best_const,
                       "best_lightgbm": lgb, "beats_constant_by_0.10": choice >= best_const + 0.10,
                       "beats_lightgbm": lgb is None or choice >= lgb}
            print(f"\ntarget check: choice {choice:.3f}, best constant {best_const:.3f}, best LightGBM {fmt(lgb)}: "
                  f">= constant + 0.10: {verdict['beats_constant_by_0.10']}; >= LightGBM: {verdict['beats_lightgbm']}")
            out.append({**verdict, "rows": rows, "selection": lab.selection.to_dict()})
            sys.stdout.flush()
    print("\n### Summary: every video and annotated fraction\n")
    with docs_blocks.captured_stdout() as printed:
        print(summary_table(out))
    table40 = readme_table(out)
    if table40:
        print("\n### Every candidate at 40 % annotated (prefix), frame macro F1 on the rest\n")
        print(table40)
    if args.write_docs and args.readme:
        docs_blocks.write_figures(README, README_BLOCK, table40 or "(no 40 % prefix run)",
                                  command=docs_blocks.command_line(__file__, argv))
    elif args.write_docs:
        docs_blocks.write_figures(args.write_docs, DOCS_BLOCK, printed.getvalue(),
                                  command=docs_blocks.command_line(__file__, argv))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
