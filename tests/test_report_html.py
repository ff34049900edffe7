"""The HTML review page: content without a browser, and behaviour in headless Chromium.

The browser test needs Debian's ``chromium`` (``apt-get install chromium``); it is skipped with
a clear reason when ``chromium`` is not on the PATH. No Python package drives it: Chromium's own
``--headless --dump-dom`` runs the page, plus a probe script the test injects into a copy of the
page that records JavaScript errors, clicks a timeline segment and writes what it saw into the
DOM.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _workflow_video import write_video  # noqa: E402

from musicperf.cli import main  # noqa: E402
from musicperf.errors import ParameterError  # noqa: E402
from musicperf.io.annotations import Annotation, AnnotationSet, Tier  # noqa: E402

EVENTS = {"Wave": [(0.5, 1.5), (3.0, 4.2)], "Nod": [(1.0, 2.0), (4.5, 5.5)]}
PRED = {"Wave": [(0.6, 1.4), (3.2, 4.4)], "Nod": [(1.2, 2.0), (5.0, 5.6)]}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A 6 s video, its truth, and outputs shaped like those of `musicperf label`."""
    from musicperf.io.elan import write_eaf
    from musicperf.tasks.gestures import _write_probs_csv, output_paths

    d = tmp_path_factory.mktemp("report")
    video = write_video(d / "clip.mp4", 6.0, EVENTS)
    truth = AnnotationSet(tiers={k: Tier(k, [Annotation(s, e, k) for s, e in v]) for k, v in EVENTS.items()})
    write_eaf(truth, d / "truth.eaf", media=video)
    out = d / "labelled"
    paths = output_paths(out, video)
    aset = AnnotationSet(tiers={"Comments": Tier("Comments", [Annotation(0.2, 0.4, "start")])})
    for k, v in PRED.items():
        aset.add_tier(Tier(f"auto: {k}", [Annotation(s, e, k) for s, e in v]))
    write_eaf(aset, paths["eaf"], media=video)
    t = np.arange(150) / 25
    probs = np.stack([np.isin(np.floor(t * 5), [3, 4, 5]) * 0.8 + 0.1, np.full(150, 0.3)], axis=1)
    _write_probs_csv(paths["csv"], probs, first=0, fps=25.0, classes=["Wave", "Nod"])
    summary = {"video": str(video), "classes": ["Wave", "Nod"], "thresholds": [0.5, 0.4], "after": 0.5,
               "fps": 25.0, "outputs": {k: str(v) for k, v in paths.items()}, "complete": True}
    paths["json"].write_text(json.dumps(summary))
    return {"dir": d, "video": video, "truth": d / "truth.eaf", "summary": paths["json"]}


def test_page_is_self_contained_with_scores(labelled, tmp_path):
    from musicperf.report.html import write_report_from_summary

    page = write_report_from_summary(labelled["summary"], tmp_path / "r.html", reference=labelled["truth"])
    text = page.read_text()
    assert 'src="data:video/mp4;base64,' in text
    # Nothing is fetched: no http(s) URL in any src/href (the SVG namespace URI is no fetch).
    assert not re.search(r"""(src|href)=["']?https?:""", text)
    assert "<link" not in text and "@import" not in text
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
                      .group(1).replace("<\\/", "</"))
    assert [t["name"] for t in data["tiers"]] == ["truth: Wave", "truth: Nod", "Comments", "auto: Wave", "auto: Nod"]
    assert data["start"] == 0.5 and data["curves"]["thresholds"] == {"Wave": 0.5, "Nod": 0.4}
    assert text.count("aria-label='confusion matrix") == 2
    assert "aria-label='precision, recall and F1 per class'" in text
    assert "macro average" in text


def test_linked_video_is_relative(labelled, tmp_path):
    from musicperf.report.html import write_report_from_summary

    page = write_report_from_summary(labelled["summary"], tmp_path / "sub" / "r.html", embed_video=False)
    text = page.read_text()
    assert "data:video" not in text
    src = re.search(r'<source src="([^"]+)"', text).group(1)
    assert (page.parent / src).resolve() == labelled["video"].resolve()
    assert "No reference annotations" in text


def test_cli_report_refuses_to_overwrite(labelled, tmp_path, capsys):
    out = tmp_path / "r.html"
    args = ["report", str(labelled["summary"]), "-o", str(out), "--reference", str(labelled["truth"])]
    assert main(args) == 0
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert main(["report", str(labelled["summary"].parent), "-o", str(tmp_path / "pages")]) == 0
    assert (tmp_path / "pages" / "clip.html").is_file()
    with pytest.raises(ParameterError, match="must end in .html"):
        from musicperf.report.html import write_report

        write_report(tmp_path / "r.txt", video=labelled["video"], annotations=labelled["truth"])


PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
(function () { var orig = console.error; console.error = function () {
  window.__errors.push(Array.prototype.join.call(arguments, " ")); orig.apply(console, arguments); }; })();
window.addEventListener("load", function () {
  var video = document.getElementById("video"), done = false;
  function probe() {
    if (done) { return; } done = true;
    var seg = document.querySelector("#timeline .seg.auto");
    var out = {errors: window.__errors, segments: document.querySelectorAll("#timeline .seg").length,
               curves: document.querySelectorAll("#curves polyline").length,
               timelineSvg: !!document.querySelector("#timeline svg"), readyState: video.readyState,
               videoError: video.error ? video.error.code : null};
    if (seg) {
      out.target = parseFloat(seg.getAttribute("data-start"));
      seg.dispatchEvent(new MouseEvent("click", {bubbles: true}));
      out.currentTime = video.currentTime;
      out.position = document.getElementById("position").textContent;
    }
    var pre = document.createElement("pre"); pre.id = "probe-result";
    pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
  }
  if (video.readyState >= 1) { probe(); } else { video.addEventListener("loadedmetadata", probe); }
  setTimeout(probe, 4000);
});
</script>"""


def test_page_in_headless_chromium(labelled, tmp_path):
    from musicperf.report.html import write_report_from_summary

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); the browser test needs it")
    page = write_report_from_summary(labelled["summary"], tmp_path / "r.html", reference=labelled["truth"])
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text().replace("<head>", "<head>" + PROBE, 1))
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--mute-audio", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=8000", "--dump-dom", probed.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    m = re.search(r'<pre id="probe-result">(.*?)</pre>', proc.stdout, re.S)
    assert m, f"the probe did not run; chromium said: {proc.stderr[-2000:]}"
    result = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    console = [ln for ln in proc.stderr.splitlines() if "CONSOLE" in ln and ("rror" in ln or "Uncaught" in ln)]
    assert console == []
    assert result["timelineSvg"] and result["segments"] == 4 + 1 + 4  # truth, human, auto
    assert result["curves"] == 2
    assert result["videoError"] is None
    assert result["target"] == pytest.approx(PRED["Wave"][0][0])
    assert result["currentTime"] == pytest.approx(result["target"], abs=0.05)
    assert result["position"] == f"{result['target']:.2f} s"
