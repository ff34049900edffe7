"""The HTML review page of a labelled video, centred on the errors.

One self-contained page per video, for the human expert who corrects the automatic labels
(paper 001's workflow): nothing is fetched from the network. The page holds

* the video: embedded as a ``data:`` URI by default, so the page can be mailed or archived
  alone (with ``embed_video=False`` linked by a path relative to the page). A video browsers
  cannot play (AVI, MPEG-4 part 2, HEVC, ...) is replaced by an H.264/AAC MP4 copy at review
  size made beside the page (:mod:`musicperf.report.review_video`), reused while up to date;
* per class, adjacent lanes: the reference (or the human tier), the prediction (``auto:``), the
  errors in the scored part (false positives and false negatives in two colours, on the same
  frame grid as ``musicperf score``) and the per-frame probability with its threshold and a
  0-1 axis; the class's precision, recall, F1 and kappa beside its lanes;
* the annotate-next tier (``auto-query``, where the labelled file has one) as its own lane, and
  the other human tiers below;
* navigation: previous/next error and next query (keys ``p``, ``n``, ``q``), zoom on the scored
  part (``z``), the whole video (``0``), zoom in/out around the playhead (``+``/``-``); times
  are ELAN's ``hh:mm:ss.mmm``; clicking a segment or a lane seeks the video;
* when a reference is given: the per-class precision, recall and F1 as grouped bar charts (as
  Figures 5-6 of paper 001) and a 2x2 confusion matrix per class (as Figure 3 of paper 000), as
  inline SVG, with the numbers in a table.

Imports only the standard library and numpy at module level; never matplotlib (the charts are
plain SVG).
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path

import numpy as np

from musicperf._version import __version__
from musicperf._util import write_text_atomic
from musicperf.errors import ParameterError
from musicperf.io.tabular import format_clock as _clock  # ELAN's hh:mm:ss.mmm

AUTO_PREFIX = "auto: "
#: Most points drawn per probability curve; longer videos are reduced by taking the maximum
#: over each bucket (so that short peaks stay visible).
MAX_CURVE_POINTS = 4000
#: Videos larger than this are linked rather than embedded, even when embedding was asked.
MAX_EMBED_BYTES = 200 * 1024 * 1024


def write_report(
    path: str | Path,
    *,
    video: str | Path,
    annotations: str | Path,
    probs: str | Path | None = None,
    reference: str | Path | None = None,
    start: float | None = None,
    end: float | None = None,
    thresholds: dict[str, float] | None = None,
    title: str | None = None,
    embed_video: bool = True,
    fps: float = 25.0,
    progress: bool = False,
) -> Path:
    """Write the review page of one labelled video.

    Parameters
    ----------
    path : str or Path
        The ``.html`` file to write (atomically).
    video : str or Path
        The video. When browsers cannot play it, an H.264/AAC copy
        ``<stem>.review.mp4`` is made (or reused) in the page's folder and shown instead.
    annotations : str or Path
        The labelled annotations (``musicperf label``'s ``.eaf``: human tiers, ``auto:`` tiers
        and, when present, the annotate-next tier ``auto-query``).
    probs : str or Path, optional
        The per-frame probability CSV of ``musicperf label``.
    reference : str or Path, optional
        Ground truth to score the ``auto:`` tiers against (e.g. a complete human annotation);
        without it the page shows the human tiers and no errors.
    start, end : float, optional
        Seconds: the scored part (e.g. the part that was not annotated by hand).
    thresholds : dict, optional
        Class -> threshold, drawn on the probability curves.
    title : str, optional
    embed_video : bool
        Embed the video in the page (default) or link it by a relative path.
    fps : float
        Frame rate of the scoring grid (and of the error lanes).
    progress : bool
        Show a progress bar on stderr while a browser-playable copy is made.

    Returns
    -------
    Path
        ``path``.
    """
    from musicperf.evaluate.agreement import score_annotations as score
    from musicperf.io import read_annotations
    from musicperf.io.probs import read_probs_csv
    from musicperf.io.video import probe
    from musicperf.report.review_video import review_video

    path, video = Path(path), Path(video)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ParameterError(f"report path '{path}' must end in .html")
    info = probe(video)
    labelled = read_annotations(annotations)
    ref_set = read_annotations(reference) if reference is not None else None
    classes = [t.name[len(AUTO_PREFIX):] for t in labelled if t.name.startswith(AUTO_PREFIX)]
    result = None
    metrics_html = "<p class='note'>No reference annotations were given, so there are no scores and no errors.</p>"
    if ref_set is not None:
        scored = [c for c in classes if c in ref_set.tiers]
        if scored:
            result = score(ref_set, labelled, start=start, end=end if end is not None else info.duration, fps=fps,
                           tiers=scored)
            metrics_html = _metrics_html(result)
        else:
            metrics_html = "<p class='note'>The reference has no tier named like a predicted class.</p>"
    curves = None
    if probs is not None:
        times, p, prob_classes = read_probs_csv(probs)
        times, p = _reduce(times, p, MAX_CURVE_POINTS)
        curves = {"times": [round(float(x), 3) for x in times],
                  "classes": {c: [round(float(v), 3) for v in p[:, k]] for k, c in enumerate(prob_classes)}}
    lanes = []
    for c in classes:
        row = result["tiers"].get(c) if result is not None else None
        if ref_set is not None and c in ref_set.tiers:
            ref, ref_kind = _segs(ref_set.tiers[c]), "reference"
        elif c in labelled.tiers:
            ref, ref_kind = _segs(labelled.tiers[c]), "human"
        else:
            ref, ref_kind = None, None
        errors = []
        if row is not None:
            errors = _error_runs(ref_set.tiers[c], labelled.tiers[AUTO_PREFIX + c], fps=fps,
                                 start=result["start"], end=result["end"])
        lanes.append({
            "name": c, "ref": ref, "refKind": ref_kind, "pred": _segs(labelled.tiers[AUTO_PREFIX + c]),
            "errors": errors,
            "scores": None if row is None else {k: row[k] for k in ("precision", "recall", "f1", "kappa", "support")},
            "threshold": float(thresholds[c]) if thresholds and c in thresholds else None,
        })
    query = labelled.tiers.get(QUERY_TIER)
    others = [{"name": t.name, "segs": _segs(t)} for t in labelled
              if len(t) and t.name != QUERY_TIER and not t.name.startswith(AUTO_PREFIX)
              and not (t.name in classes and any(lane["refKind"] == "human" and lane["name"] == t.name
                                                 for lane in lanes))]
    if ref_set is not None:  # reference tiers the prediction has no class for
        others += [{"name": f"reference: {t.name}", "segs": _segs(t)} for t in ref_set
                   if len(t) and t.name not in classes and not t.name.startswith(AUTO_PREFIX)]
    window = None
    if result is not None:
        window = [result["start"], result["end"]]
    elif start is not None or end is not None:
        window = [start or 0.0, end if end is not None else float(info.duration)]
    data = {"duration": float(info.duration), "scored": window, "lanes": lanes,
            "query": _segs(query) if query is not None else None, "others": others, "curves": curves,
            "fps": float(fps)}
    shown = review_video(video, path.parent, progress=progress)
    src, embedded = _video_src(shown.path, path, embed_video)
    note = ""
    if shown.converted:
        note = (f"<p class='note'>Browsers cannot play {html.escape(video.name)} ({html.escape(shown.reason)}): "
                f"the page shows {html.escape(shown.path.name)}, an H.264 copy made for review"
                + ("" if embedded else f", kept at {src} relative to this page") + ".</p>")
    elif not embedded:  # src is escaped already
        note = f"<p class='note'>The video is linked, not embedded: keep it at {src} relative to this page.</p>"
    page = _PAGE.format(
        title=html.escape(title or f"musicperf review: {video.name}"),
        heading=html.escape(title or f"Review: {video.name}"),
        meta=html.escape(
            f"{video.name}: {_clock(info.duration)}, {info.width}x{info.height}, {info.fps:g} fps"
            + (f"; scored part {_clock(window[0])} to {_clock(window[1])}" if window else "")
            + f"; labels: {Path(annotations).name}"
            + (f"; reference: {Path(reference).name}" if reference is not None else "")
            + f"; musicperf {__version__}"
        ),
        video_src=src,
        video_type=html.escape(shown.mime),
        video_note=note,
        metrics=metrics_html,
        data=json.dumps(data).replace("</", "<\\/"),
        css=_CSS,
        js=_JS,
    )
    write_text_atomic(path, page)
    return path


#: The annotate-next tier of a labelled file: the segments worth annotating by hand next.
QUERY_TIER = "auto-query"


def _segs(tier) -> list:
    return [[round(a.start, 3), round(a.end, 3), a.value] for a in tier.annotations]


def _error_runs(reference, prediction, *, fps: float, start: float, end: float) -> list:
    """False positives and false negatives as ``[start, end, "FP" | "FN"]`` runs of frames.

    The frames are those of ``musicperf score`` (a frame is present when an annotation overlaps
    it; frame ``i`` covers ``[i / fps, (i + 1) / fps)``), inside its scored window, so the run
    lengths add up to the FP and FN counts of the confusion matrix.
    """
    from musicperf.io.annotations import AnnotationSet, Tier
    from musicperf.labels import Taxonomy, frame_labels

    first, stop = int(round(start * fps)), int(round(end * fps))
    if stop <= first:
        return []
    tax = Taxonomy(("c",), {"c": "c"}, by="tier", name="errors")

    def present(tier):
        aset = AnnotationSet(tiers={"c": Tier("c", list(tier.annotations))})
        y = frame_labels(aset, tax, fps=fps, n_frames=stop, check=False, unknown="ignore")
        return np.asarray(y)[first:stop, 0] > 0.5

    truth, pred = present(reference), present(prediction)
    runs = []
    for kind, wrong in (("FP", pred & ~truth), ("FN", truth & ~pred)):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], wrong.astype(np.int8), [0]])))
        for a, b in zip(edges[::2], edges[1::2]):
            runs.append([round((first + a) / fps, 3), round((first + b) / fps, 3), kind])
    return sorted(runs)


def _reduce(times: np.ndarray, p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` points: bucket maxima, so short peaks survive."""
    if len(times) <= n:
        return times, p
    edges = np.linspace(0, len(times), n + 1).astype(int)
    return times[edges[:-1]], np.maximum.reduceat(p, edges[:-1], axis=0)


def _video_src(video: Path, page: Path, embed: bool) -> tuple[str, bool]:
    if embed and video.stat().st_size <= MAX_EMBED_BYTES:
        mime = "video/webm" if video.suffix.lower() == ".webm" else "video/mp4"
        return f"data:{mime};base64," + base64.b64encode(video.read_bytes()).decode("ascii"), True
    rel = os.path.relpath(video.resolve(), page.resolve().parent).replace(os.sep, "/")
    return html.escape(rel), False


# --------------------------------------------------------------------------- metric charts
_PALETTE = {"precision": "#4c78a8", "recall": "#f58518", "f1": "#54a24b"}


def _metrics_html(result: dict) -> str:
    rows = result["tiers"]
    parts = [
        f"<p>Scored part {_clock(result['start'])} to {_clock(result['end'])} ({result['n_frames']} frames at "
        f"{result['fps']:g} fps); "
        "a frame counts as present when an annotation overlaps it.</p>",
        _bar_chart(rows),
        _table(result),
        "<h3>Confusion matrices per class (frames)</h3><div class='cms'>",
    ]
    parts += [_confusion_svg(name, row["confusion"]) for name, row in rows.items()]
    parts.append("</div>")
    return "\n".join(parts)


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.3f}"


def _table(result: dict) -> str:
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>kappa</th><th>frames present</th><th>frames predicted</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{_fmt(r['precision'])}</td><td>{_fmt(r['recall'])}</td>"
        f"<td>{_fmt(r['f1'])}</td><td>{_fmt(r['kappa'])}</td><td>{r['support']}</td><td>{r['predicted']}</td></tr>"
        for n, r in result["tiers"].items()
    )
    m = result["macro"]
    body += (f"<tr class='avg'><td>macro average</td><td>{_fmt(m['precision'])}</td><td>{_fmt(m['recall'])}</td>"
             f"<td>{_fmt(m['f1'])}</td><td>{_fmt(m['kappa'])}</td><td></td><td></td></tr>")
    return f"<table class='metrics'>{head}{body}</table>"


def _bar_chart(rows: dict) -> str:
    """Grouped bars of precision, recall and F1 per class (Figures 5-6 of 001).

    Class names are written in full, turned 35 degrees; the chart grows to hold the longest.
    """
    names = list(rows)
    group, bar, left, top, h = 3 * 16 + 18, 16, 44, 30, 180
    longest = max((len(n) for n in names), default=0) * 6.4  # px at 11 px font, a generous estimate
    below = 24 + longest * 0.574  # sin 35 degrees
    right = longest * 0.819 + 10  # cos 35 degrees: the last label runs to the right
    width = int(max(left + group * len(names) + right, 320))
    height = int(top + h + below)
    out = [f"<svg class='bars' role='img' aria-label='precision, recall and F1 per class' width='{width}' "
           f"height='{height}' viewBox='0 0 {width} {height}'>"]
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + h * (1 - v)
        out.append(f"<line x1='{left}' x2='{left + group * len(names)}' y1='{y:.1f}' y2='{y:.1f}' class='grid'/>"
                   f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{v:g}</text>")
    for i, name in enumerate(names):
        x0 = left + i * group + 6
        for j, m in enumerate(("precision", "recall", "f1")):
            v = rows[name][m]
            vh = 0.0 if v is None else h * v
            out.append(f"<rect x='{x0 + j * bar}' y='{top + h - vh:.1f}' width='{bar - 2}' height='{vh:.1f}' "
                       f"fill='{_PALETTE[m]}'><title>{html.escape(name)} {m}: {_fmt(v)}</title></rect>")
        cx = x0 + 1.5 * bar
        out.append(f"<text class='barlabel' x='{cx}' y='{top + h + 14}' transform='rotate(35 {cx} {top + h + 14})'>"
                   f"{html.escape(name)}</text>")
    lx = left
    for m, c in _PALETTE.items():
        out.append(f"<rect x='{lx}' y='4' width='10' height='10' fill='{c}'/>"
                   f"<text x='{lx + 14}' y='13'>{'F1' if m == 'f1' else m}</text>")
        lx += 90
    out.append("</svg>")
    return "".join(out)


def _confusion_svg(name: str, cm: list[list[int]]) -> str:
    """A 2x2 confusion matrix ``[[TN, FP], [FN, TP]]`` (Figure 3 of 000), rows normalised."""
    cell, left, top = 58, 62, 34
    out = [f"<figure class='cm'><svg role='img' aria-label='confusion matrix {html.escape(name)}' "
           f"width='{left + 2 * cell + 6}' height='{top + 2 * cell + 26}'>"]
    labels = ("absent", "present")
    for r in range(2):
        total = sum(cm[r]) or 1
        for c in range(2):
            frac = cm[r][c] / total
            shade = int(255 - 180 * frac)
            out.append(f"<rect x='{left + c * cell}' y='{top + r * cell}' width='{cell}' height='{cell}' "
                       f"fill='rgb({shade},{shade},255)' stroke='#fff'/>"
                       f"<text x='{left + c * cell + cell / 2}' y='{top + r * cell + cell / 2 + 4}' "
                       f"text-anchor='middle'>{cm[r][c]}</text>")
        out.append(f"<text x='{left - 4}' y='{top + r * cell + cell / 2 + 4}' text-anchor='end'>{labels[r]}</text>")
    for c in range(2):
        out.append(f"<text x='{left + c * cell + cell / 2}' y='{top - 6}' text-anchor='middle'>{labels[c]}</text>")
    out.append(f"<text x='{left + cell}' y='12' text-anchor='middle' class='axis'>predicted</text>")
    out.append(f"<text x='4' y='{top + 2 * cell + 18}' class='axis'>true (rows)</text></svg>"
               f"<figcaption>{html.escape(name)}</figcaption></figure>")
    return "".join(out)


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.4em; margin: 0 0 .2em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
.meta, .note { color: #666; }
video { width: 100%; max-height: 420px; background: #000; }
#lanes svg { display: block; }
.toolbar { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; margin: .5em 0; }
.toolbar button { font: inherit; padding: 2px 8px; } .toolbar kbd { font-size: 11px; color: #555; }
#position { font-variant-numeric: tabular-nums; font-weight: bold; min-width: 8.5em; display: inline-block; }
#nav-status { color: #444; }
.seg { cursor: pointer; } .seg:hover { stroke: #000; stroke-width: 1; }
.seg.reference { fill: #7f7f7f; } .seg.human { fill: #4c78a8; } .seg.pred { fill: #e45756; }
.seg.other { fill: #72b7b2; } .seg.query { fill: #b279a2; }
.seg.FP { fill: #f58518; } .seg.FN { fill: #2c7fb8; }
.seg.current { stroke: #000; stroke-width: 2.5; }
.lanelabel { font-size: 11px; fill: #333; } .classlabel { font-size: 12px; font-weight: bold; fill: #111; }
.scores { font-size: 11px; fill: #555; } .tick { font-size: 10px; fill: #666; }
.playhead { stroke: #000; stroke-width: 1.5; pointer-events: none; } .grid { stroke: #e3e3e3; }
.sep { stroke: #bbb; } .scored { fill: #fff6d5; } .curve { fill: none; stroke: #e45756; stroke-width: 1.2; }
.threshold { stroke: #333; stroke-dasharray: 3 3; } .lanebg { fill: #fafafa; }
svg text { font-size: 11px; fill: #333; } .axis { fill: #666; }
table.metrics { border-collapse: collapse; margin: .8em 0; }
table.metrics td, table.metrics th { border-bottom: 1px solid #ddd; padding: 2px 10px; text-align: right; }
table.metrics td:first-child, table.metrics th:first-child { text-align: left; }
tr.avg { font-weight: bold; } .cms { display: flex; flex-wrap: wrap; gap: 8px; }
figure.cm { margin: 0; } figcaption { font-size: 12px; text-align: center; max-width: 190px; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: -2px; }
"""

_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var video = document.getElementById("video");
  var host = document.getElementById("lanes");
  var NS = "http://www.w3.org/2000/svg";
  var LABEL = 300, RIGHT = 12, LANE = 16, GAP = 3, CURVE = 40, HEAD = 18, AXIS = 20;
  var duration = data.duration || 1;
  var view = data.scored ? [data.scored[0], data.scored[1]] : [0, duration];
  var errors = [], queries = [], cursor = {error: -1, query: -1};
  data.lanes.forEach(function (lane) {
    lane.errors.forEach(function (e) { errors.push({s: e[0], e: e[1], kind: e[2], cls: lane.name}); });
  });
  errors.sort(function (a, b) { return a.s - b.s || a.e - b.e; });
  errors.forEach(function (e, i) { e.id = i; });
  (data.query || []).forEach(function (q, i) { queries.push({s: q[0], e: q[1], value: q[2], id: i}); });

  function pad(n, w) { n = String(n); while (n.length < w) { n = "0" + n; } return n; }
  function clock(t) {
    var ms = Math.round(Math.max(0, t) * 1000);
    return pad(Math.floor(ms / 3600000), 2) + ":" + pad(Math.floor(ms / 60000) % 60, 2) + ":" +
      pad(Math.floor(ms / 1000) % 60, 2) + "." + pad(ms % 1000, 3);
  }
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function text(parent, x, y, s, cls, anchor) {
    var t = el("text", {x: x, y: y, "class": cls || "", "text-anchor": anchor || "start"}, parent);
    t.textContent = s;
    return t;
  }
  function fmt(v) { return v === null || v === undefined ? "-" : v.toFixed(2); }
  function setStatus(s) { document.getElementById("nav-status").textContent = s; }
  function seek(t) {
    t = Math.max(0, Math.min(duration, t));
    video.currentTime = t;
    document.getElementById("position").textContent = clock(t);
    follow(t);
  }
  var W = 1000, svg = null, playhead = null;
  function x(t) { return LABEL + (W - LABEL - RIGHT) * (t - view[0]) / (view[1] - view[0]); }
  function tAt(px) { return view[0] + (px - LABEL) / (W - LABEL - RIGHT) * (view[1] - view[0]); }
  function segs(g, list, y, h, cls, onclick, ids) {
    list.forEach(function (s, i) {
      if (s[1] < view[0] || s[0] > view[1]) { return; }
      var a = Math.max(x(s[0]), LABEL), b = Math.min(x(s[1]), W - RIGHT);
      var c = cls === "err kind" ? "err " + s[2] : cls;  // error segments: class FP or FN
      var r = el("rect", {x: a, y: y, width: Math.max(1, b - a), height: h, "class": "seg " + c,
                          "data-start": s[0], "data-end": s[1]}, g);
      if (cls === "err kind") { r.setAttribute("data-kind", s[2]); }
      if (ids) { r.setAttribute("id", ids(i)); }
      var tip = el("title", {}, r);
      tip.textContent = (s[2] === undefined ? "" : s[2] + ": ") + clock(s[0]) + " - " + clock(s[1]);
      r.addEventListener("click", function (ev) { ev.stopPropagation(); onclick(s, i); });
    });
  }
  function render() {
    W = Math.max(700, host.clientWidth || 1000);
    host.textContent = "";
    var rows = [];
    var y = AXIS;
    if (queries.length) { rows.push({type: "query", y: y}); y += LANE + 2 * GAP + 4; }
    data.lanes.forEach(function (lane) {
      rows.push({type: "head", y: y, lane: lane}); y += HEAD;
      if (lane.ref) { rows.push({type: "ref", y: y, lane: lane}); y += LANE + GAP; }
      rows.push({type: "pred", y: y, lane: lane}); y += LANE + GAP;
      if (lane.scores) { rows.push({type: "err", y: y, lane: lane}); y += LANE + GAP; }
      if (data.curves && data.curves.classes[lane.name]) { y += 5; rows.push({type: "curve", y: y, lane: lane}); y += CURVE + GAP; }
      y += 6;
    });
    if (data.others.length) {
      rows.push({type: "othershead", y: y}); y += HEAD;
      data.others.forEach(function (o) { rows.push({type: "other", y: y, tier: o}); y += LANE + GAP; });
    }
    var H = y + 4;
    svg = el("svg", {width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img",
                     "aria-label": "reference, prediction and error lanes per class"}, host);
    if (data.scored) {
      var a = Math.max(x(data.scored[0]), LABEL), b = Math.min(x(data.scored[1]), W - RIGHT);
      if (b > a) { el("rect", {x: a, y: AXIS, width: b - a, height: H - AXIS, "class": "scored"}, svg); }
    }
    // time axis: about one tick per 110 px, in hh:mm:ss.mmm
    var span = view[1] - view[0], steps = [0.04, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
    var step = steps[steps.length - 1];
    for (var k = 0; k < steps.length; k++) { if (span / steps[k] <= (W - LABEL) / 110) { step = steps[k]; break; } }
    for (var t = Math.ceil(view[0] / step) * step; t <= view[1] + 1e-9; t += step) {
      el("line", {x1: x(t), x2: x(t), y1: AXIS - 4, y2: H, "class": "grid"}, svg);
      text(svg, x(t), AXIS - 7, clock(t), "tick", "middle");
    }
    rows.forEach(function (r) {
      if (r.type === "head") {
        el("line", {x1: 0, x2: W - RIGHT, y1: r.y + 1, y2: r.y + 1, "class": "sep"}, svg);
        var name = text(svg, 4, r.y + 14, r.lane.name, "classlabel");
        var sc = r.lane.scores;
        if (sc) {  // the class's scores beside its lanes: after the name, in the lane area when the name is long
          var nx = 4 + name.getComputedTextLength() + 12;
          text(svg, Math.max(nx, LABEL + 4), r.y + 14, "F1 " + fmt(sc.f1) + "   precision " + fmt(sc.precision) +
               "   recall " + fmt(sc.recall) + "   \u03ba " + fmt(sc.kappa) + "   (" + sc.support + " reference frames)",
               "scores");
        }
        return;
      }
      if (r.type === "othershead") {
        el("line", {x1: 0, x2: W - RIGHT, y1: r.y + 1, y2: r.y + 1, "class": "sep"}, svg);
        text(svg, 4, r.y + 14, "other tiers", "classlabel");
        return;
      }
      var h = r.type === "curve" ? CURVE : LANE;
      el("rect", {x: LABEL, y: r.y, width: W - LABEL - RIGHT, height: h, "class": "lanebg", "fill-opacity": 0.5}, svg);
      var g = el("g", {"class": "lane lane-" + r.type, "data-class": r.lane ? r.lane.name : ""}, svg);
      if (r.type === "query") {
        text(svg, LABEL - 6, r.y + 12, "annotate next (auto-query)", "lanelabel", "end");
        segs(g, data.query, r.y, LANE, "query", function (s, i) { goQuery(i); }, function (i) { return "query-" + i; });
      } else if (r.type === "ref") {
        text(svg, LABEL - 6, r.y + 12, r.lane.refKind, "lanelabel", "end");
        segs(g, r.lane.ref, r.y, LANE, r.lane.refKind, function (s) { seek(s[0]); });
      } else if (r.type === "pred") {
        text(svg, LABEL - 6, r.y + 12, "predicted", "lanelabel", "end");
        segs(g, r.lane.pred, r.y, LANE, "pred", function (s) { seek(s[0]); });
      } else if (r.type === "err") {
        var mine = errors.filter(function (e) { return e.cls === r.lane.name; });
        var nfp = mine.filter(function (e) { return e.kind === "FP"; }).length;
        text(svg, LABEL - 6, r.y + 12, "errors: " + nfp + " FP, " + (mine.length - nfp) + " FN", "lanelabel", "end");
        segs(g, mine.map(function (e) { return [e.s, e.e, e.kind]; }), r.y, LANE, "err kind", function (s, i) {
          goError(mine[i].id);
        }, function (i) { return "error-" + mine[i].id; });
      } else if (r.type === "curve") {
        var ys = data.curves.classes[r.lane.name], ts = data.curves.times, pts = [];
        text(svg, LABEL - 34, r.y + CURVE / 2 + 4, "probability", "lanelabel", "end");
        [0, 0.5, 1].forEach(function (v) {
          var yy = r.y + CURVE * (1 - v);
          el("line", {x1: LABEL - 4, x2: LABEL, y1: yy, y2: yy, "class": "sep"}, svg);
          text(svg, LABEL - 6, yy + 3.5, String(v), "tick", "end");
        });
        el("line", {x1: LABEL, x2: LABEL, y1: r.y, y2: r.y + CURVE, "class": "sep"}, svg);
        for (var k2 = 0; k2 < ts.length; k2++) {
          if (ts[k2] < view[0] - span * 0.01 || ts[k2] > view[1] + span * 0.01) { continue; }
          pts.push(Math.max(LABEL, Math.min(W - RIGHT, x(ts[k2]))).toFixed(1) + "," + (r.y + CURVE * (1 - ys[k2])).toFixed(1));
        }
        el("polyline", {points: pts.join(" "), "class": "curve"}, svg);
        if (r.lane.threshold !== null && r.lane.threshold <= 1) {
          var yt = r.y + CURVE * (1 - r.lane.threshold);
          var th = el("line", {x1: LABEL, x2: W - RIGHT, y1: yt, y2: yt, "class": "threshold"}, svg);
          el("title", {}, th).textContent = "threshold " + r.lane.threshold.toFixed(3);
        }
      } else if (r.type === "other") {
        text(svg, LABEL - 6, r.y + 12, r.tier.name, "lanelabel", "end");
        segs(g, r.tier.segs, r.y, LANE, "other", function (s) { seek(s[0]); });
      }
    });
    playhead = el("line", {x1: LABEL, x2: LABEL, y1: AXIS - 4, y2: H, "class": "playhead"}, svg);
    svg.addEventListener("click", function (ev) {
      var box = svg.getBoundingClientRect(), px = ev.clientX - box.left;
      if (px >= LABEL && px <= W - RIGHT) { seek(tAt(px)); }
    });
    highlight();
    follow(video.currentTime || 0);
    document.getElementById("view").textContent = clock(view[0]) + " - " + clock(view[1]);
  }
  function follow(t) {
    if (!playhead) { return; }
    var px = t < view[0] || t > view[1] ? -10 : x(t);
    playhead.setAttribute("x1", px); playhead.setAttribute("x2", px);
  }
  function highlight() {
    document.querySelectorAll("#lanes .current").forEach(function (n) { n.classList.remove("current"); });
    var ids = [];
    if (cursor.error >= 0) { ids.push("error-" + cursor.error); }
    if (cursor.query >= 0) { ids.push("query-" + cursor.query); }
    ids.forEach(function (id) { var n = document.getElementById(id); if (n) { n.classList.add("current"); } });
  }
  function setView(a, b) {
    if (b - a < 0.2) { a = (a + b) / 2 - 0.1; b = a + 0.2; }  // at most 0.2 s across
    if (a < 0) { b = Math.min(duration, b - a); a = 0; }
    if (b > duration) { a = Math.max(0, a - (b - duration)); b = duration; }
    view = [a, b];
    render();
  }
  function show(s, e) {  // keep the zoom; pan so that [s, e] is in view
    if (s >= view[0] && e <= view[1]) { return; }
    var w = view[1] - view[0];
    if (e - s > w) { setView(s - 0.1 * (e - s), e + 0.1 * (e - s)); } else { setView((s + e) / 2 - w / 2, (s + e) / 2 + w / 2); }
  }
  function goError(i) {
    if (i < 0 || i >= errors.length) { return; }
    var e = errors[i];
    cursor.error = i;
    show(e.s, e.e);
    seek(e.s);
    highlight();
    setStatus("error " + (i + 1) + " of " + errors.length + ": " + (e.kind === "FP" ? "false positive " : "false negative ") +
              e.cls + ", " + clock(e.s) + " - " + clock(e.e));
  }
  function goQuery(i) {
    if (i < 0 || i >= queries.length) { return; }
    var q = queries[i];
    cursor.query = i;
    show(q.s, q.e);
    seek(q.s);
    highlight();
    setStatus("query " + (i + 1) + " of " + queries.length + ": " + (q.value ? q.value + ", " : "") + clock(q.s) + " - " + clock(q.e));
  }
  function now() { return video.currentTime || 0; }
  function nextError() {
    if (!errors.length) { setStatus(data.lanes.some(function (l) { return l.scores; }) ? "no errors in the scored part" :
                                    "no reference: give --reference to see the errors"); return; }
    var t = now(), i = 0;
    while (i < errors.length && errors[i].s <= t + 1e-3 && !(cursor.error >= 0 && i > cursor.error && errors[i].s >= t - 1e-3)) { i++; }
    if (i >= errors.length) { setStatus("no error after " + clock(t)); return; }
    goError(i);
  }
  function prevError() {
    if (!errors.length) { nextError(); return; }
    var t = now(), i = errors.length - 1;
    while (i >= 0 && errors[i].s >= t - 1e-3 && !(cursor.error >= 0 && i < cursor.error && errors[i].s <= t + 1e-3)) { i--; }
    if (i < 0) { setStatus("no error before " + clock(t)); return; }
    goError(i);
  }
  function nextQuery() {
    if (!queries.length) { setStatus("the labelled file has no annotate-next tier (auto-query)"); return; }
    var t = now(), i = 0;
    while (i < queries.length && queries[i].s <= t + 1e-3 && !(cursor.query >= 0 && i > cursor.query && queries[i].s >= t - 1e-3)) { i++; }
    goQuery(i < queries.length ? i : 0);  // wraps round: the queries are a to-do list
  }
  function zoom(f) {
    var c = Math.min(Math.max(now(), view[0]), view[1]), w = (view[1] - view[0]) * f;
    setView(c - w * (c - view[0]) / (view[1] - view[0]), c + w * (view[1] - c) / (view[1] - view[0]));
  }
  function zoomScored() { if (data.scored) { setView(data.scored[0], data.scored[1]); } }
  function zoomAll() { setView(0, duration); }
  var actions = {n: nextError, p: prevError, q: nextQuery, z: zoomScored, "0": zoomAll,
                 "+": function () { zoom(0.5); }, "=": function () { zoom(0.5); }, "-": function () { zoom(2); }};
  Object.keys(actions).forEach(function (k) {
    var b = document.querySelector("button[data-key='" + k + "']");
    if (b) { b.addEventListener("click", actions[k]); }
  });
  if (!queries.length) { document.querySelector("button[data-key='q']").disabled = true; }
  if (!data.scored) { document.querySelector("button[data-key='z']").disabled = true; }
  if (!errors.length) {
    ["n", "p"].forEach(function (k) { document.querySelector("button[data-key='" + k + "']").disabled = true; });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") { return; }
    if (ev.key === " " && tag !== "button" && tag !== "video") {
      ev.preventDefault();
      if (video.paused) { video.play(); } else { video.pause(); }
      return;
    }
    if (actions[ev.key]) { ev.preventDefault(); actions[ev.key](); }
  });
  video.addEventListener("timeupdate", function () {
    document.getElementById("position").textContent = clock(video.currentTime);
    follow(video.currentTime);
  });
  video.addEventListener("seeked", function () { follow(video.currentTime); });
  window.addEventListener("resize", function () { if (Math.abs((host.clientWidth || W) - W) > 2) { render(); } });
  render();
  if (!errors.length && data.lanes.length && !data.lanes.some(function (l) { return l.scores; })) {
    setStatus("no reference annotations: give --reference to see the errors");
  }
  window.musicperfReport = {seek: seek, nextError: nextError, prevError: prevError, nextQuery: nextQuery,
                            zoom: zoom, zoomScored: zoomScored, zoomAll: zoomAll, clock: clock,
                            view: function () { return view.slice(); }, errors: function () { return errors.slice(); },
                            segments: function () { return document.querySelectorAll("#lanes .seg").length; }};
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; media-src data: blob: file: *; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<h1>{heading}</h1>
<p class="meta">{meta}</p>
<video id="video" controls preload="metadata"><source src="{video_src}" type="{video_type}"></video>
{video_note}
<div class="toolbar">
<span id="position">00:00:00.000</span>
<button type="button" data-key="p" title="previous error (key p)">&#9664; previous error <kbd>p</kbd></button>
<button type="button" data-key="n" title="next error (key n)">next error &#9654; <kbd>n</kbd></button>
<button type="button" data-key="q" title="next segment of the annotate-next tier (key q)">next query <kbd>q</kbd></button>
<button type="button" data-key="z" title="zoom on the scored part (key z)">scored part <kbd>z</kbd></button>
<button type="button" data-key="0" title="the whole video (key 0)">whole video <kbd>0</kbd></button>
<button type="button" data-key="+" title="zoom in around the playhead (key +)">zoom in <kbd>+</kbd></button>
<button type="button" data-key="-" title="zoom out (key -)">zoom out <kbd>-</kbd></button>
<span class="note">view <span id="view"></span></span>
</div>
<p id="nav-status" aria-live="polite"></p>
<p class="legend note">Click a segment or a lane to jump there; space plays and pauses.
<span style="background:#7f7f7f"></span>reference<span style="background:#4c78a8"></span>human
<span style="background:#e45756"></span>predicted<span style="background:#f58518"></span>false positive
<span style="background:#2c7fb8"></span>false negative<span style="background:#b279a2"></span>annotate next
<span style="background:#fff6d5;border:1px solid #ccc"></span>scored part; dashed: the class threshold</p>
<div id="lanes"></div>
<h2>Scores</h2>
{metrics}
<script type="application/json" id="report-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""


def write_report_from_summary(
    summary: str | Path,
    path: str | Path,
    *,
    reference: str | Path | None = None,
    start: float | None = None,
    end: float | None = None,
    title: str | None = None,
    embed_video: bool = True,
    progress: bool = False,
) -> Path:
    """Write the review page of a video labelled by ``musicperf label``, from its JSON summary.

    Parameters
    ----------
    summary : str or Path
        ``<name>.labels.json`` written by ``musicperf label`` (names the video, the ``.eaf``,
        the CSV and the thresholds).
    path : str or Path
        The ``.html`` to write.
    reference : str or Path, optional
        Ground truth to score against.
    start : float, optional
        Start of the scored part; default: the ``--from`` time of the labelling.
    end, title, embed_video, progress
        See :func:`write_report`.
    """
    summary = Path(summary)
    try:
        s = json.loads(summary.read_text(encoding="utf-8"))
        video, outputs = Path(s["video"]), s["outputs"]
        thresholds = dict(zip(s["classes"], s["thresholds"]))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ParameterError(f"'{summary}' is not a summary written by 'musicperf label' ({exc})") from None
    if start is None:
        start = s.get("after")
    return write_report(path, video=video, annotations=outputs["eaf"], probs=outputs["csv"], reference=reference,
                        start=start, end=end, thresholds=thresholds, title=title, embed_video=embed_video,
                        fps=float(s.get("fps", 25.0)), progress=progress)
