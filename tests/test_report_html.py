"""The HTML review page: content without a browser, and behaviour in headless Chromium.

The browser tests need Debian's ``chromium`` (``make browser``, or ``apt-get install chromium``);
they are skipped with a clear reason when ``chromium`` is not on the PATH. No Python package
drives it: Chromium's own ``--headless --dump-dom`` runs the page, plus a probe script the test
injects into a copy of the page. The probe records JavaScript errors, waits for the video's
metadata, seeks, clicks the navigation buttons and presses their keys, and writes what it saw
(readyState, duration, currentTime, the highlighted error segment, the status line, the view)
into the DOM, where the test reads it.
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
    aset.add_tier(Tier("auto-query", [Annotation(2.2, 2.6, "Nod?"), Annotation(4.8, 5.0, "Wave?")]))
    write_eaf(aset, paths["eaf"], media=video)
    t = np.arange(150) / 25
    probs = np.stack([np.isin(np.floor(t * 5), [3, 4, 5]) * 0.8 + 0.1, np.full(150, 0.3)], axis=1)
    _write_probs_csv(paths["csv"], probs, first=0, fps=25.0, classes=["Wave", "Nod"])
    summary = {"video": str(video), "classes": ["Wave", "Nod"], "thresholds": [0.5, 0.4], "after": 0.5,
               "fps": 25.0, "outputs": {k: str(v) for k, v in paths.items()}, "complete": True}
    paths["json"].write_text(json.dumps(summary))
    return {"dir": d, "video": video, "truth": d / "truth.eaf", "summary": paths["json"]}


# Errors of PRED against EVENTS from 0.5 s on, on the 25 fps grid of `musicperf score` (frame i is
# [i/25, (i+1)/25), scored when it lies wholly after 0.5 s, so from 0.52 s; present when an
# annotation overlaps it): Wave FN 0.52-0.6, FN 1.4-1.52, FN 3.0-3.2, FP 4.2-4.4;
# Nod FN 1.0-1.2, FN 4.48-5.0, FP 5.52-5.6.
ERRORS = [[0.52, 0.6, "FN"], [1.0, 1.2, "FN"], [1.4, 1.52, "FN"], [3.0, 3.2, "FN"], [4.2, 4.4, "FP"],
          [4.48, 5.0, "FN"], [5.52, 5.6, "FP"]]


def _data(text: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
                      .group(1).replace("<\\/", "</"))


def test_page_is_self_contained_with_scores(labelled, tmp_path):
    from musicperf.report.html import write_report_from_summary

    page = write_report_from_summary(labelled["summary"], tmp_path / "r.html", reference=labelled["truth"])
    text = page.read_text()
    assert 'src="data:video/mp4;base64,' in text
    assert not list(tmp_path.glob("*.review.*"))  # an H.264 MP4 plays as it is: no copy
    # Nothing is fetched: no http(s) URL in any src/href (the SVG namespace URI is no fetch).
    assert not re.search(r"""(src|href)=["']?https?:""", text)
    assert "<link" not in text and "@import" not in text
    data = _data(text)
    assert [lane["name"] for lane in data["lanes"]] == ["Wave", "Nod"]
    assert [lane["refKind"] for lane in data["lanes"]] == ["reference", "reference"]
    assert [o["name"] for o in data["others"]] == ["Comments"]
    assert data["query"] == [[2.2, 2.6, "Nod?"], [4.8, 5.0, "Wave?"]]
    assert data["scored"] == [0.52, 6.0]
    assert {lane["name"]: lane["threshold"] for lane in data["lanes"]} == {"Wave": 0.5, "Nod": 0.4}
    assert text.count("aria-label='confusion matrix") == 2
    assert "aria-label='precision, recall and F1 per class'" in text
    assert "macro average" in text and "00:00:00.520 to 00:00:06.000" in text


def test_error_lanes_are_the_confusion_counts(labelled, tmp_path):
    from musicperf.api import score
    from musicperf.report.html import write_report_from_summary

    page = write_report_from_summary(labelled["summary"], tmp_path / "r.html", reference=labelled["truth"])
    lanes = {lane["name"]: lane for lane in _data(page.read_text())["lanes"]}
    assert sorted(e for lane in lanes.values() for e in lane["errors"]) == ERRORS
    summary = json.loads(labelled["summary"].read_text())
    result = score(labelled["truth"], summary["outputs"]["eaf"], start=0.5, end=6.0)
    for name, lane in lanes.items():
        (tn, fp), (fn, tp) = result["tiers"][name]["confusion"]
        frames = {k: round(sum(e - s for s, e, kind in lane["errors"] if kind == k) * 25) for k in ("FP", "FN")}
        assert frames == {"FP": fp, "FN": fn}
        assert lane["scores"]["f1"] == result["tiers"][name]["f1"]


def test_without_reference_human_tiers_and_no_errors(labelled, tmp_path):
    from musicperf.report.html import write_report_from_summary

    page = write_report_from_summary(labelled["summary"], tmp_path / "sub" / "r.html", embed_video=False)
    text = page.read_text()
    assert "data:video" not in text
    src = re.search(r'<source src="([^"]+)"', text).group(1)
    assert (page.parent / src).resolve() == labelled["video"].resolve()
    assert "No reference annotations" in text
    data = _data(text)
    assert all(lane["errors"] == [] and lane["scores"] is None for lane in data["lanes"])
    assert data["scored"] == [0.5, 6.0]  # the labelling's --from to the end


def test_bar_chart_labels_are_whole(labelled, tmp_path):
    from musicperf.report.html import _bar_chart

    name = "Expressive shoulder movement with a long name"
    svg = _bar_chart({name: {"precision": 0.5, "recall": 0.5, "f1": 0.5}, "Nod": {"precision": 1, "recall": 1, "f1": 1}})
    assert f">{name}</text>" in svg
    width, height = map(int, re.search(r"width='(\d+)' height='(\d+)'", svg).groups())
    # the turned label (35 degrees, ~6.4 px a character) fits inside the drawing
    assert height >= 30 + 180 + len(name) * 6.4 * 0.57 and width >= 44 + len(name) * 6.4 * 0.8


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


# --------------------------------------------------------------------------- a real AVI


def _excerpt(src: Path, dst: Path, seconds: float) -> Path:
    """The first ``seconds`` of an AVI, packets copied (same codecs, same container)."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", format="avi") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in (inp.streams.video[0], inp.streams.audio[0])}
        for packet in inp.demux(*inp.streams.video[:1], *inp.streams.audio[:1]):
            t = packet.pts if packet.pts is not None else packet.dts
            if t is None or t * packet.time_base >= seconds:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def pianist(shared_data, tmp_path_factory):
    """A 4 s excerpt of pianist.avi (H.264 in AVI: no browser plays the container) and its labels."""
    from musicperf.io.elan import write_eaf

    d = tmp_path_factory.mktemp("pianist")
    video = _excerpt(shared_data / "video" / "pianist.avi", d / "pianist.avi", 4.0)
    ref = AnnotationSet(tiers={"Sway": Tier("Sway", [Annotation(0.5, 1.5, "Sway"), Annotation(2.4, 3.5, "Sway")])})
    write_eaf(ref, d / "truth.eaf", media=video)
    lab = AnnotationSet(tiers={"auto: Sway": Tier("auto: Sway", [Annotation(0.6, 1.4, "Sway"), Annotation(2.0, 3.7, "Sway")])})
    write_eaf(lab, d / "labelled.eaf", media=video)
    return {"dir": d, "video": video, "truth": d / "truth.eaf", "labels": d / "labelled.eaf"}


def test_review_copy_of_an_avi_is_made_once(pianist, tmp_path):
    import os

    from musicperf.io.video import probe
    from musicperf.report.review_video import review_video, why_not_playable

    assert why_not_playable(pianist["video"]) == "container AVI"
    src = tmp_path / "pianist.avi"
    src.write_bytes(pianist["video"].read_bytes())
    first = review_video(src, tmp_path / "pages")
    assert first.converted and first.path == tmp_path / "pages" / "pianist.review.mp4" and first.mime == "video/mp4"
    assert why_not_playable(first.path) == ""
    a, b = probe(src, count_frames=True), probe(first.path, count_frames=True)
    assert (b.codec, b.width, b.height, b.fps, b.n_frames) == ("h264", 640, 480, a.fps, a.n_frames)
    assert b.has_audio and b.duration == pytest.approx(a.duration, abs=0.05)
    made = first.path.stat().st_mtime_ns
    assert review_video(src, tmp_path / "pages").path.stat().st_mtime_ns == made  # up to date: reused
    os.utime(src, ns=(made + 10**9, made + 10**9))  # the source changed: made again
    assert review_video(src, tmp_path / "pages").path.stat().st_mtime_ns != made
    small = review_video(src, tmp_path / "small", max_lines=240)
    assert (probe(small.path).width, probe(small.path).height) == (320, 240)


def test_cli_links_the_review_copy(pianist, tmp_path, capsys):
    summary = tmp_path / "pianist.labels.json"
    summary.write_text(json.dumps({"video": str(pianist["video"]), "classes": ["Sway"], "thresholds": [0.5],
                                   "after": 1.0, "fps": 25.0,
                                   "outputs": {"eaf": str(pianist["labels"]), "csv": None}}))
    # no probability CSV in this summary: the page is made without curves
    code = main(["report", str(summary), "-o", str(tmp_path / "pages"), "--link-video",
                 "--reference", str(pianist["truth"])])
    assert code == 0, capsys.readouterr().err
    text = (tmp_path / "pages" / "pianist.html").read_text()
    assert '<source src="pianist.review.mp4" type="video/mp4">' in text
    assert (tmp_path / "pages" / "pianist.review.mp4").is_file()
    assert "kept at pianist.review.mp4 relative to this page" in text


# --------------------------------------------------------------------------- headless Chromium


class Chromium:
    """Headless Chromium driven through the DevTools protocol on ``--remote-debugging-pipe``.

    The pipe (fd 3: commands in, fd 4: replies out, NUL-separated JSON) needs no Python package.
    The page runs in real time: a media seek completes (under ``--virtual-time-budget`` a video
    with an audio track never finishes seeking in headless Chromium, so the older
    ``--dump-dom`` approach cannot test seeking).
    """

    def __init__(self, exe: str, log: Path):
        import os

        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def fds():  # in the child: the protocol's fds 3 and 4
            a, b = os.dup(cmd_r), os.dup(out_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--mute-audio", "--remote-debugging-pipe",
             "--window-size=1200,1600", f"--user-data-dir={log.parent / 'profile'}", "about:blank"],
            pass_fds=(3, 4), preexec_fn=fds, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        os.close(cmd_r)
        os.close(out_w)
        self._buf, self._n, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        import os
        import select
        import time

        self._n += 1
        msg = {"id": self._n, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("id") != self._n:
                    self.events.append(m)
                    continue
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m["result"]
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"chromium did not answer {method} in {timeout} s")
            if select.select([self._out_r], [], [], left)[0]:
                chunk = os.read(self._out_r, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium exited")
                self._buf += chunk

    def open(self, url: str) -> str:
        """Load ``url`` in a new tab; return the session once the page's script has run."""
        import time

        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Runtime.enable", session=session)
        self.send("Page.enable", session=session)
        self.send("Page.navigate", {"url": url}, session=session)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.evaluate(session, "document.readyState === 'complete' && !!window.musicperfReport"):
                return session
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not load")

    def evaluate(self, session: str, expression: str, timeout: float = 30):
        r = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True},
                      session=session, timeout=timeout)
        if "exceptionDetails" in r:
            raise AssertionError(f"the probe failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def page_errors(self) -> list:
        """Uncaught exceptions and console.error calls seen so far."""
        out = []
        for m in self.events:
            p = m.get("params", {})
            if m.get("method") == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"].get("exception", {}).get("description") or p["exceptionDetails"]["text"])
            elif m.get("method") == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
        return out

    def close(self):
        import os

        self.proc.kill()
        self.proc.wait()
        os.close(self._cmd_w)
        os.close(self._out_r)
        self._log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (make browser, or apt-get install chromium)")
    b = Chromium(exe, tmp_path_factory.mktemp("chromium") / "chromium.log")
    yield b
    b.close()


METADATA = """new Promise(function (resolve) {
  var v = document.getElementById("video");
  if (v.readyState >= 1) { resolve(true); return; }
  v.addEventListener("loadedmetadata", function () { resolve(true); }, {once: true});
  v.addEventListener("error", function () { resolve(false); }, {once: true});
  setTimeout(function () { resolve(false); }, 15000);
})"""

SEEK = """new Promise(function (resolve) {
  var v = document.getElementById("video"), out = {readyState: v.readyState, duration: v.duration};
  v.addEventListener("seeked", function () {
    out.seekedTo = v.currentTime; out.readyStateAfterSeek = v.readyState;
    out.position = document.getElementById("position").textContent; resolve(out);
  }, {once: true});
  window.musicperfReport.seek(2.0);
  setTimeout(function () { out.timeout = true; out.seeking = v.seeking; resolve(out); }, 15000);
})"""

STATE = """(function () {
  var v = document.getElementById("video"), cur = document.querySelector("#lanes .seg.current");
  return {time: v.currentTime, position: document.getElementById("position").textContent,
          status: document.getElementById("nav-status").textContent, view: window.musicperfReport.view(),
          current: cur ? {id: cur.id, start: parseFloat(cur.getAttribute("data-start")),
                          kind: cur.getAttribute("data-kind"), cls: cur.parentNode.getAttribute("data-class")} : null};
})()"""

LANES = """({err: document.querySelectorAll("#lanes .seg.FP, #lanes .seg.FN").length,
  fp: document.querySelectorAll("#lanes .seg.FP").length,
  curves: document.querySelectorAll("#lanes polyline").length,
  query: document.querySelectorAll("#lanes .seg.query").length,
  scores: Array.prototype.map.call(document.querySelectorAll("#lanes text.scores"), function (t) { return t.textContent; }),
  videoError: document.getElementById("video").error ? document.getElementById("video").error.code : null})"""


def _click(k: str) -> str:
    return f"document.querySelector(\"button[data-key='{k}']\").click()"


def _key(k: str) -> str:
    return f"document.body.dispatchEvent(new KeyboardEvent('keydown', {{key: '{k}', bubbles: true}}))"


def test_avi_page_plays_and_seeks_in_chromium(pianist, browser, tmp_path):
    """The page of an AVI shows an H.264 copy that Chromium loads (metadata) and seeks."""
    from musicperf.io.video import probe
    from musicperf.report.html import write_report

    page = write_report(tmp_path / "pianist.html", video=pianist["video"], annotations=pianist["labels"],
                        reference=pianist["truth"], start=0.0)
    text = page.read_text()
    assert 'src="data:video/mp4;base64,' in text and "data:video/x-msvideo" not in text
    assert "Browsers cannot play pianist.avi (container AVI)" in text
    session = browser.open(page.as_uri())
    assert browser.evaluate(session, METADATA), "the video did not load its metadata"
    result = browser.evaluate(session, SEEK)
    assert "timeout" not in result, result
    assert result["readyState"] >= 1  # HAVE_METADATA
    assert result["duration"] == pytest.approx(probe(pianist["video"]).duration, abs=0.1)
    assert result["seekedTo"] == pytest.approx(2.0, abs=0.05)
    assert result["readyStateAfterSeek"] >= 2  # HAVE_CURRENT_DATA: the frame at 2 s is decoded
    assert result["position"] == "00:00:02.000"
    lanes = browser.evaluate(session, LANES)
    # FN 0.5-0.6, FP 2.0-2.4, FN 1.4-1.52, FP 3.52-3.72 (frames of 1/25 s that the annotations overlap)
    assert lanes["videoError"] is None and lanes["err"] == 4 and lanes["fp"] == 2
    assert browser.page_errors() == []


def test_error_navigation_in_chromium(labelled, browser, tmp_path):
    from musicperf.report.html import write_report_from_summary

    page = write_report_from_summary(labelled["summary"], tmp_path / "r.html", reference=labelled["truth"])
    session = browser.open(page.as_uri())
    assert browser.evaluate(session, METADATA)
    lanes = browser.evaluate(session, LANES)
    assert lanes["videoError"] is None
    assert lanes["err"] == len(ERRORS) and lanes["fp"] == 2 and lanes["curves"] == 2 and lanes["query"] == 2
    assert [s.split("   ")[0] for s in lanes["scores"]] == ["F1 0.86", "F1 0.77"]
    steps = {}
    for label, action in [("next 1", _click("n")), ("next 2", _key("n")), ("next 3", _key("n")),
                          ("previous", _click("p")), ("whole video", _key("0")), ("scored part", _key("z")),
                          ("query 1", _key("q")), ("query 2", _click("q")), ("zoom in", _key("+"))]:
        browser.evaluate(session, action)
        steps[label] = browser.evaluate(session, STATE)
    # next error from 0 s: the first error (Wave FN at 0.52 s); the video is there, the segment is highlighted
    first = steps["next 1"]
    assert first["current"] == {"id": "error-0", "start": 0.52, "kind": "FN", "cls": "Wave"}
    assert first["time"] == pytest.approx(0.52, abs=0.01) and first["position"] == "00:00:00.520"
    assert first["status"] == "error 1 of 7: false negative Wave, 00:00:00.520 - 00:00:00.600"
    assert steps["next 2"]["current"]["start"] == 1.0 and steps["next 2"]["current"]["cls"] == "Nod"
    assert steps["next 3"]["current"]["start"] == 1.4 and steps["next 3"]["current"]["cls"] == "Wave"
    assert steps["previous"]["current"]["id"] == "error-1" and steps["previous"]["time"] == pytest.approx(1.0, abs=0.01)
    assert steps["whole video"]["view"] == [0, 6.0]
    assert steps["scored part"]["view"] == [0.52, 6.0]
    assert steps["query 1"]["current"]["id"] == "query-0" and steps["query 1"]["time"] == pytest.approx(2.2, abs=0.01)
    assert steps["query 1"]["status"] == "query 1 of 2: Nod?, 00:00:02.200 - 00:00:02.600"
    assert steps["query 2"]["current"]["id"] == "query-1"
    v = steps["zoom in"]["view"]
    assert v[1] - v[0] == pytest.approx(2.74) and v[0] <= 4.8 <= v[1]
    assert browser.page_errors() == []
