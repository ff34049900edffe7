"""The HTML review page of a labelled video: video, timeline, probabilities, metrics.

One self-contained page per video, for the human expert who corrects the automatic labels
(paper 001's workflow): nothing is fetched from the network. The page holds

* the video (embedded as a ``data:`` URI by default, so the page can be mailed or archived
  alone; with ``embed_video=False`` it is referenced by a path relative to the page);
* a timeline (SVG drawn by inline JavaScript) with one row per tier: reference tiers, human
  tiers and predicted ``auto:`` tiers; clicking a segment seeks the video to its start, and a
  playhead follows the video;
* under it, the per-frame probability of every class with its threshold (SVG, by the same
  script);
* when a reference is given: the per-class precision, recall and F1 as grouped bar charts (as
  Figures 5-6 of paper 001) and a 2x2 confusion matrix per class (as Figure 3 of paper 000), as
  inline SVG, with the numbers in a table.

Imports only the standard library and numpy; never matplotlib (the charts are plain SVG).
"""

from __future__ import annotations

import base64
import html
import json
import mimetypes
import os
from pathlib import Path

import numpy as np

from musicperf._version import __version__
from musicperf._util import write_text_atomic
from musicperf.errors import ParameterError

AUTO_PREFIX = "auto: "
#: Most points drawn per probability curve; longer videos are reduced by taking the maximum
#: over each bucket (so that short peaks stay visible).
MAX_CURVE_POINTS = 2000
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
) -> Path:
    """Write the review page of one labelled video.

    Parameters
    ----------
    path : str or Path
        The ``.html`` file to write (atomically).
    video : str or Path
        The video.
    annotations : str or Path
        The labelled annotations (``musicperf label``'s ``.eaf``: human tiers and ``auto:`` tiers).
    probs : str or Path, optional
        The per-frame probability CSV of ``musicperf label``.
    reference : str or Path, optional
        Ground truth to score the ``auto:`` tiers against (e.g. a complete human annotation).
    start, end : float, optional
        Seconds: the scored part (e.g. the part that was not annotated by hand).
    thresholds : dict, optional
        Class -> threshold, drawn on the probability curves.
    title : str, optional
    embed_video : bool
        Embed the video in the page (default) or link it by a relative path.
    fps : float
        Frame rate of the scoring grid.

    Returns
    -------
    Path
        ``path``.
    """
    from musicperf.evaluate.agreement import score_annotations as score
    from musicperf.io import read_annotations
    from musicperf.io.probs import read_probs_csv
    from musicperf.io.video import probe

    path, video = Path(path), Path(video)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ParameterError(f"report path '{path}' must end in .html")
    info = probe(video)
    labelled = read_annotations(annotations)
    tiers = []
    ref_set = read_annotations(reference) if reference is not None else None
    if ref_set is not None:
        for t in ref_set:
            if len(t):
                tiers.append({"name": f"truth: {t.name}", "kind": "truth", "segs": _segs(t)})
    for t in labelled:
        kind = "auto" if t.name.startswith(AUTO_PREFIX) else "human"
        if len(t) or kind == "auto":
            tiers.append({"name": t.name, "kind": kind, "segs": _segs(t)})
    curves = None
    if probs is not None:
        times, p, classes = read_probs_csv(probs)
        times, p = _reduce(times, p, MAX_CURVE_POINTS)
        curves = {"times": [round(float(x), 3) for x in times],
                  "classes": {c: [round(float(v), 3) for v in p[:, k]] for k, c in enumerate(classes)},
                  "thresholds": {c: float(thresholds[c]) for c in classes if thresholds and c in thresholds}}
    metrics_html = "<p class='note'>No reference annotations were given, so there are no scores.</p>"
    result = None
    if ref_set is not None:
        classes = [t.name[len(AUTO_PREFIX):] for t in labelled if t.name.startswith(AUTO_PREFIX)]
        classes = [c for c in classes if c in ref_set.tiers]
        if classes:
            result = score(ref_set, labelled, start=start, end=end if end is not None else info.duration, fps=fps,
                           tiers=classes)
            metrics_html = _metrics_html(result)
        else:
            metrics_html = "<p class='note'>The reference has no tier named like a predicted class.</p>"
    data = {"duration": float(info.duration), "start": start, "end": end, "tiers": tiers, "curves": curves}
    src, embedded = _video_src(video, path, embed_video)
    page = _PAGE.format(
        title=html.escape(title or f"musicperf review: {video.name}"),
        heading=html.escape(title or f"Review: {video.name}"),
        meta=html.escape(
            f"{video.name}: {info.duration:.1f} s, {info.width}x{info.height}, {info.fps:g} fps"
            + (f"; scored from {start:g} s" if start is not None else "")
            + f"; labels: {Path(annotations).name}; musicperf {__version__}"
        ),
        video_src=src,
        video_type=html.escape(mimetypes.guess_type(video.name)[0] or "video/mp4"),
        video_note="" if embedded else f"<p class='note'>The video is linked, not embedded: keep it at {html.escape(src)} relative to this page.</p>",
        metrics=metrics_html,
        data=json.dumps(data).replace("</", "<\\/"),
        css=_CSS,
        js=_JS,
    )
    write_text_atomic(path, page)
    return path


def _segs(tier) -> list:
    return [[round(a.start, 3), round(a.end, 3), a.value] for a in tier.annotations]


def _reduce(times: np.ndarray, p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``n`` points: bucket maxima, so short peaks survive."""
    if len(times) <= n:
        return times, p
    edges = np.linspace(0, len(times), n + 1).astype(int)
    return times[edges[:-1]], np.maximum.reduceat(p, edges[:-1], axis=0)


def _video_src(video: Path, page: Path, embed: bool) -> tuple[str, bool]:
    if embed and video.stat().st_size <= MAX_EMBED_BYTES:
        mime = mimetypes.guess_type(video.name)[0] or "video/mp4"
        return f"data:{mime};base64," + base64.b64encode(video.read_bytes()).decode("ascii"), True
    rel = os.path.relpath(video.resolve(), page.resolve().parent).replace(os.sep, "/")
    return html.escape(rel), False


# --------------------------------------------------------------------------- metric charts
_PALETTE = {"precision": "#4c78a8", "recall": "#f58518", "f1": "#54a24b"}


def _metrics_html(result: dict) -> str:
    rows = result["tiers"]
    parts = [
        f"<p>Frames {result['start']:g}-{result['end']:g} s ({result['n_frames']} frames at {result['fps']:g} fps); "
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
    """Grouped bars of precision, recall and F1 per class (Figures 5-6 of 001)."""
    names = list(rows)
    group, bar, left, top, h = 3 * 16 + 18, 16, 44, 30, 180
    width = max(left + group * len(names) + 60, 320)
    out = [f"<svg class='bars' role='img' aria-label='precision, recall and F1 per class' width='{width}' "
           f"height='{top + h + 110}' viewBox='0 0 {width} {top + h + 110}'>"]
    for v in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + h * (1 - v)
        out.append(f"<line x1='{left}' x2='{width - 6}' y1='{y:.1f}' y2='{y:.1f}' class='grid'/>"
                   f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end'>{v:g}</text>")
    for i, name in enumerate(names):
        x0 = left + i * group + 6
        for j, m in enumerate(("precision", "recall", "f1")):
            v = rows[name][m]
            vh = 0.0 if v is None else h * v
            out.append(f"<rect x='{x0 + j * bar}' y='{top + h - vh:.1f}' width='{bar - 2}' height='{vh:.1f}' "
                       f"fill='{_PALETTE[m]}'><title>{html.escape(name)} {m}: {_fmt(v)}</title></rect>")
        cx = x0 + 1.5 * bar
        short = name if len(name) <= 18 else name[:17] + "\u2026"
        out.append(f"<text x='{cx}' y='{top + h + 12}' transform='rotate(35 {cx} {top + h + 12})'>"
                   f"{html.escape(short)}<title>{html.escape(name)}</title></text>")
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
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #222; max-width: 1200px; }
h1 { font-size: 1.4em; margin: 0 0 .2em; } h2 { font-size: 1.15em; margin-top: 1.4em; }
.meta, .note { color: #666; }
video { width: 100%; max-height: 420px; background: #000; }
#timeline svg, #curves svg { width: 100%; display: block; }
.seg { cursor: pointer; } .seg:hover { stroke: #000; stroke-width: 1; }
.seg.truth { fill: #9e9e9e; } .seg.human { fill: #4c78a8; } .seg.auto { fill: #e45756; }
.rowlabel { font-size: 11px; fill: #333; } .tick { font-size: 10px; fill: #666; }
.playhead { stroke: #000; stroke-width: 1.5; } .grid { stroke: #ddd; }
.scored { fill: #fff6d5; } .curve { fill: none; stroke: #e45756; stroke-width: 1.2; }
.threshold { stroke: #333; stroke-dasharray: 3 3; }
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
  var NS = "http://www.w3.org/2000/svg";
  var W = 1000, LABEL = 250, ROW = 18, PLOT = W - LABEL - 10;
  var duration = data.duration || 1;
  function x(t) { return LABEL + PLOT * Math.max(0, Math.min(1, t / duration)); }
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) { e.setAttribute(k, attrs[k]); }
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function seek(t) {
    video.currentTime = t;
    document.getElementById("position").textContent = t.toFixed(2) + " s";
  }
  function axis(svg, y) {
    var step = duration > 600 ? 60 : duration > 120 ? 10 : duration > 30 ? 5 : 1;
    for (var t = 0; t <= duration + 1e-9; t += step) {
      el("line", {x1: x(t), x2: x(t), y1: 0, y2: y, "class": "grid"}, svg);
      var lab = el("text", {x: x(t), y: y + 12, "text-anchor": "middle", "class": "tick"}, svg);
      lab.textContent = t + " s";
    }
  }
  function scored(svg, h) {
    if (data.start === null || data.start === undefined) { return; }
    var end = data.end === null || data.end === undefined ? duration : data.end;
    el("rect", {x: x(data.start), y: 0, width: x(end) - x(data.start), height: h, "class": "scored"}, svg);
  }
  var playheads = [];
  // timeline: one row per tier
  var tl = document.getElementById("timeline");
  var h = data.tiers.length * ROW + 4;
  var svg = el("svg", {viewBox: "0 0 " + W + " " + (h + 16), preserveAspectRatio: "none", height: h + 16}, tl);
  scored(svg, h);
  axis(svg, h);
  data.tiers.forEach(function (tier, i) {
    var y = 2 + i * ROW;
    var lab = el("text", {x: LABEL - 6, y: y + ROW - 6, "text-anchor": "end", "class": "rowlabel"}, svg);
    lab.textContent = tier.name;
    tier.segs.forEach(function (s) {
      var r = el("rect", {x: x(s[0]), y: y + 2, width: Math.max(1, x(s[1]) - x(s[0])), height: ROW - 4,
                          "class": "seg " + tier.kind, "data-start": s[0], "data-end": s[1]}, svg);
      var tip = el("title", {}, r);
      tip.textContent = tier.name + ": " + s[2] + " (" + s[0].toFixed(2) + "-" + s[1].toFixed(2) + " s)";
      r.addEventListener("click", function () { seek(s[0]); });
    });
  });
  playheads.push(el("line", {x1: LABEL, x2: LABEL, y1: 0, y2: h, "class": "playhead"}, svg));
  svg.addEventListener("click", function (ev) {
    if (ev.target.classList && ev.target.classList.contains("seg")) { return; }
    var box = svg.getBoundingClientRect();
    var px = (ev.clientX - box.left) / box.width * W;
    if (px >= LABEL) { seek((px - LABEL) / PLOT * duration); }
  });
  // probability curves
  var cv = document.getElementById("curves");
  if (data.curves) {
    var names = Object.keys(data.curves.classes), CH = 46;
    var hc = names.length * CH + 4;
    var svg2 = el("svg", {viewBox: "0 0 " + W + " " + (hc + 16), preserveAspectRatio: "none", height: hc + 16}, cv);
    scored(svg2, hc);
    axis(svg2, hc);
    names.forEach(function (name, i) {
      var y0 = 2 + i * CH, ys = data.curves.classes[name], ts = data.curves.times, pts = [];
      var lab = el("text", {x: LABEL - 6, y: y0 + CH / 2 + 4, "text-anchor": "end", "class": "rowlabel"}, svg2);
      lab.textContent = "p(" + name + ")";
      el("line", {x1: LABEL, x2: W - 10, y1: y0 + CH - 4, y2: y0 + CH - 4, "class": "grid"}, svg2);
      for (var k = 0; k < ts.length; k++) {
        pts.push(x(ts[k]).toFixed(1) + "," + (y0 + (CH - 4) * (1 - ys[k])).toFixed(1));
      }
      el("polyline", {points: pts.join(" "), "class": "curve"}, svg2);
      var th = data.curves.thresholds[name];
      if (th !== undefined && th <= 1) {
        var yt = y0 + (CH - 4) * (1 - th);
        el("line", {x1: LABEL, x2: W - 10, y1: yt, y2: yt, "class": "threshold"}, svg2);
      }
    });
    playheads.push(el("line", {x1: LABEL, x2: LABEL, y1: 0, y2: hc, "class": "playhead"}, svg2));
    svg2.addEventListener("click", function (ev) {
      var box = svg2.getBoundingClientRect();
      var px = (ev.clientX - box.left) / box.width * W;
      if (px >= LABEL) { seek((px - LABEL) / PLOT * duration); }
    });
  } else {
    cv.textContent = "No probabilities were given.";
  }
  function follow() {
    var px = x(video.currentTime || 0);
    playheads.forEach(function (l) { l.setAttribute("x1", px); l.setAttribute("x2", px); });
  }
  video.addEventListener("timeupdate", follow);
  video.addEventListener("seeked", follow);
  window.musicperfReport = {seek: seek, segments: function () { return document.querySelectorAll(".seg").length; }};
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
<p>Position: <span id="position">0.00 s</span>. Click a segment to jump to its start, or anywhere on the timeline.
<span class="legend"><span style="background:#9e9e9e"></span>truth<span style="background:#4c78a8"></span>human<span style="background:#e45756"></span>predicted (auto:)<span style="background:#fff6d5;border:1px solid #ccc"></span>scored part</span></p>
<h2>Timeline</h2>
<div id="timeline"></div>
<h2>Probabilities (dashed: the class threshold)</h2>
<div id="curves"></div>
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
    end, title, embed_video
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
                        fps=float(s.get("fps", 25.0)))
