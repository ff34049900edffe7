"""The demo of the labelling workflow: synthesise, annotate 2/3, train, label the rest, score.

:func:`run_demo` is what ``musicperf demo`` (and ``make demo``) runs. It writes into one folder:

``performance.mp4``, ``truth.eaf``, ``truth.json``
    A synthetic guitarist (:func:`musicperf.synth.synthesize`) performing five clearly visible
    gestures of Table 2 of paper 001 at known times (``truth.eaf`` is the complete ground truth).
``annotated.eaf``
    What a human would have annotated: the five gesture tiers of the ground truth, in the
    first two thirds only.
``model/``
    The model trained on the annotated part (``musicperf train --until``): the frame labeller
    by default, the clip labeller with ``labeller="clip"`` (``musicperf demo --labeller
    clip``; see :data:`DEMO_LABELLER`).
``labelled/performance.eaf`` (+ ``.probs.csv``, ``.labels.json``)
    The human tiers, untouched, plus the predicted ``auto: <class>`` tiers for the last third.
``scores.json``, ``summary.md``
    Frame-level scores of the prediction against the truth on the last third, and a table that
    compares each class with a constant "always present" predictor.
``report.html``
    The review page (when :mod:`musicperf.report.html` is available).

Imports numpy only at module level.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from musicperf._util import write_text_atomic
from musicperf.errors import ParameterError

log = logging.getLogger(__name__)

#: The gestures of the demo: each moves a different part of the body, so each is visible.
DEMO_GESTURES = (
    "Nodding",
    "Right hand round",
    "Expressive shoulder movement",
    "Left hand gesture",
    "Sympathetic body movement",
)


#: The demo's default labeller: the real-video labeller ("frame": per-frame tracks, candidates
#: compared by cross-validation). On the demo's synthetic guitarist (90 s, seed 7, 2/3 annotated)
#: it scores macro F1 0.872 (it chooses linear+LightGBM on the flow and grid tracks) against
#: 0.854 for the clip labeller (``labeller="clip"``), which it became the default by beating;
#: figures and commands in docs/labelling-real.md ("The demo, both ways").
DEMO_LABELLER = "frame"
#: Tracks of the frame labeller in the demo: MediaPipe finds no body in the drawn performer and
#: the synthetic video is silent, so the landmark and audio tracks would cost time and be left out.
DEMO_FRAME_TRACKS = ("flow", "grid")


def demo_schedule(seconds: float, seed: int) -> dict[str, list[tuple[float, float]]]:
    """Gesture intervals of the demo: per gesture, 1.5-3.5 s long, 2.5-7 s apart.

    The paper's rates (used by the synthetic performer's own scheduler) give most gestures one
    or two occurrences a minute: too few to learn from one minute of annotation. The demo
    uses denser, regular occurrences so that every class is seen about ten times in training.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for g in DEMO_GESTURES:
        t, iv = float(rng.uniform(0.5, 4.0)), []
        while t < seconds - 1.5:
            d = float(rng.uniform(1.5, 3.5))
            iv.append((round(t, 2), round(min(t + d, seconds - 0.1), 2)))
            t += d + float(rng.uniform(2.5, 7.0))
        out[g] = iv
    return out


def run_demo(out_dir: str | Path, *, seconds: float = 90.0, seed: int = 7, overwrite: bool = False,
             progress: bool = True, step=None, report: bool = True, size: tuple[int, int] = (320, 240),
             config=None, labeller: str | None = None) -> dict:
    """Run the whole workflow on a synthetic performance; see the module docstring.

    Parameters
    ----------
    out_dir : str or Path
        Output folder; refused when it exists and is not empty, unless ``overwrite``.
    seconds : float
        Length of the synthetic performance (the first two thirds are "annotated").
    seed : int
        Seeds the performer and the gesture schedule.
    overwrite, progress : bool
    step : callable, optional
        Called with a one-line description before each step (the CLI prints it).
    report : bool
        Also write ``report.html``.
    size : (int, int)
        ``(width, height)`` of the synthetic video.
    config : GestureConfig, optional
        Training settings (default: :class:`~musicperf.tasks.gestures.GestureConfig()`).
    labeller : {"clip", "frame"}, optional
        Which labeller to train (default :data:`DEMO_LABELLER`); the frame labeller reads the
        :data:`DEMO_FRAME_TRACKS`.

    Returns
    -------
    dict
        ``scores`` (see :func:`musicperf.evaluate.agreement.score_annotations`), ``baseline``
        (F1 of a constant "always present" predictor per class), ``seconds`` (wall time per
        step), ``paths``.
    """
    import shutil

    from musicperf.api import label, score, train
    from musicperf.io.annotations import Annotation, AnnotationSet, Tier
    from musicperf.io.elan import write_eaf
    from musicperf.synth import synthesize
    from musicperf.io import read_annotations

    if seconds < 15:
        raise ParameterError(f"the demo needs at least 15 s of performance, got {seconds}")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise ParameterError(f"output folder '{out}' already exists; choose another or pass --overwrite")
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    out.mkdir(parents=True, exist_ok=True)
    say = step or (lambda msg: log.info(msg))
    until = round(seconds * 2 / 3, 2)
    times: dict[str, float] = {}
    t0 = time.perf_counter()

    say(f"[1/5] synthesising a {seconds:g} s performance of a guitarist ({', '.join(DEMO_GESTURES)})")
    t = time.perf_counter()
    synthesize(out, seconds=seconds, seed=seed, size=size, schedule=demo_schedule(seconds, seed))
    (out / "performance.eaf").replace(out / "truth.eaf")  # the complete truth, not a human's file
    video, truth_path = out / "performance.mp4", out / "truth.eaf"
    truth = read_annotations(truth_path)
    human = AnnotationSet(media=list(truth.media), tiers={
        tier.name: Tier(tier.name, [Annotation(a.start, min(a.end, until), a.value)
                                    for a in tier.annotations if a.start < until])
        for tier in truth if tier.name in DEMO_GESTURES
    })
    write_eaf(human, out / "annotated.eaf", media=video)
    times["synthesise"] = time.perf_counter() - t

    say(f"[2/5] training the {labeller or DEMO_LABELLER} labeller on the annotated first {until:g} s")
    t = time.perf_counter()
    pair = f"{video}={out / 'annotated.eaf'}"
    labeller = labeller or DEMO_LABELLER
    if labeller == "frame":
        meta = train([pair], out / "model", until=until, config=config, progress=progress, labeller="frame",
                     tracks=DEMO_FRAME_TRACKS, sets=("all",), say=log.info)
    elif labeller == "clip":
        meta = train([pair], out / "model", until=until, config=config, progress=progress)
    else:
        raise ParameterError(f"labeller must be 'clip' or 'frame', got {labeller!r}")
    times["train"] = time.perf_counter() - t

    say(f"[3/5] labelling the rest ({until:g}-{seconds:g} s)")
    t = time.perf_counter()
    [summary] = label([pair], out / "model", out / "labelled", after=until, progress=progress)
    times["label"] = time.perf_counter() - t

    say("[4/5] scoring the prediction against the truth")
    t = time.perf_counter()
    labelled = out / "labelled" / "performance.eaf"
    scores = score(truth_path, labelled, start=until, end=seconds, tiers=list(meta["classes"]))
    baseline = {}
    for name, row in scores["tiers"].items():
        p = row["support"] / row["frames"] if row["frames"] else 0.0
        baseline[name] = 2 * p / (1 + p) if p > 0 else None
    write_text_atomic(out / "scores.json", json.dumps({"scores": scores, "constant_f1": baseline}, indent=2))
    times["score"] = time.perf_counter() - t

    paths = {"video": video, "truth": truth_path, "annotated": out / "annotated.eaf", "model": out / "model",
             "labelled": labelled, "probs": out / "labelled" / "performance.probs.csv",
             "scores": out / "scores.json", "summary": out / "summary.md"}
    if report:
        say("[5/5] writing the review report")
        t = time.perf_counter()
        from musicperf.report.html import write_report_from_summary

        write_report_from_summary(out / "labelled" / "performance.labels.json", out / "report.html",
                                  reference=truth_path, start=until, end=seconds,
                                  title="musicperf demo: a synthetic guitarist, labelled after "
                                  f"{until:g} s")
        paths["report"] = out / "report.html"
        times["report"] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    result = {"labeller": labeller, "scores": scores, "constant_f1": baseline, "seconds": times, "until": until,
              "paths": {k: str(v) for k, v in paths.items()}, "labelling": summary}
    write_text_atomic(out / "summary.md", summary_table(result))
    return result


def summary_table(result: dict) -> str:
    """A Markdown table of the demo's per-class scores next to the constant predictor."""
    s = result["scores"]
    lines = [
        f"# musicperf demo ({result.get('labeller', 'clip')} labeller): trained on 0-{result['until']:g} s, scored on {s['start']:g}-{s['end']:g} s "
        f"({s['n_frames']} frames at {s['fps']:g} fps)",
        "",
        "| class | F1 | constant F1 | precision | recall | kappa | frames present |",
        "|---|---|---|---|---|---|---|",
    ]

    def f(x):
        return "-" if x is None else f"{x:.3f}"

    for name, row in s["tiers"].items():
        lines.append(f"| {name} | {f(row['f1'])} | {f(result['constant_f1'][name])} | {f(row['precision'])} | "
                     f"{f(row['recall'])} | {f(row['kappa'])} | {row['support']} |")
    m = s["macro"]
    const = [v for v in result["constant_f1"].values() if v is not None]
    lines.append(f"| **macro average** | **{f(m['f1'])}** | {f(float(np.mean(const)) if const else None)} | "
                 f"{f(m['precision'])} | {f(m['recall'])} | {f(m['kappa'])} | |")
    lines.append("")
    lines.append("constant F1: an 'always present' predictor, 2p / (1 + p) for a class present in a fraction p of frames.")
    lines.append("wall time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items()))
    return "\n".join(lines) + "\n"
