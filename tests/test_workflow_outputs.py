"""``label`` never replaces a file it did not write, redoes what changed, and ``train`` resumes.

Uses the tiny model folder of tests/data/gesture_model_v1 (written by an earlier musicperf) and
its 6 s synthetic performance, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from musicperf.cli import main
from musicperf.errors import OutputError, ParameterError
from musicperf.tasks import gestures
from musicperf.tasks.gestures import GestureConfig, TrainSteps, label_videos, train_model

FIXTURE = Path(__file__).parent / "data" / "gesture_model_v1"
CFG = GestureConfig(size=(32, 40), grid=4, epochs=6, hidden=(16,), train_stride=4, folds=2)


@pytest.fixture
def work(tmp_path):
    """A copy of the fixture: ``perf.mp4``, ``perf.eaf`` (human) and the model folder."""
    shutil.copytree(FIXTURE, tmp_path / "w")
    return tmp_path / "w"


def _label(work, out, **kw):
    return label_videos([f"{work / 'perf.mp4'}={work / 'perf.eaf'}"], work / "model", out, **kw)


# --------------------------------------------------------------------------- human files
def test_a_human_eaf_in_the_output_folder_is_never_replaced(work, tmp_path, capsys):
    human = tmp_path / "human"
    human.mkdir()
    shutil.copy(work / "perf.mp4", human / "concert.mp4")
    (human / "concert.TextGrid").write_text(_textgrid(), encoding="utf-8")
    (human / "concert.eaf").write_bytes((work / "perf.eaf").read_bytes())  # someone's own annotations
    before = (human / "concert.eaf").read_bytes()
    for extra in ([], ["--overwrite"]):
        code = main(["label", f"{human / 'concert.mp4'}={human / 'concert.TextGrid'}", "-m", str(work / "model"),
                     "-o", str(human), "-q", *extra])
        err = capsys.readouterr().err
        assert code == 2 and "concert.eaf' was not written by musicperf label" in err and "never replaces" in err
        assert len(err.strip().splitlines()) == 1
    assert (human / "concert.eaf").read_bytes() == before
    assert not (human / "concert.probs.csv").exists() and not (human / "concert.labels.json").exists()


def test_an_output_edited_after_labelling_is_never_replaced(work, tmp_path):
    out = tmp_path / "out"
    _label(work, out)
    eaf = out / "perf.eaf"
    eaf.write_text(eaf.read_text(encoding="utf-8").replace("auto: Wave", "auto: Wave (checked)"), encoding="utf-8")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="perf.eaf' was edited after musicperf label wrote it"):
            _label(work, out, overwrite=overwrite)
    assert "checked" in eaf.read_text(encoding="utf-8")


def test_a_half_written_video_is_redone_not_refused(work, tmp_path):
    out = tmp_path / "out"
    [first] = _label(work, out)
    summary = out / "perf.labels.json"
    # Killed while writing (the sidecar is written first, marked incomplete):
    summary.write_text(json.dumps({"writer": "musicperf label", "complete": False, "outputs": first["outputs"]}))
    [again] = _label(work, out)
    assert not again.get("skipped") and again["complete"]
    # As older versions left it: the CSV and the EAF of one run, no summary.
    summary.unlink()
    [again] = _label(work, out)
    assert not again.get("skipped") and summary.is_file()
    [done] = _label(work, out)
    assert done["skipped"]


def test_a_changed_annotation_file_or_retrained_model_is_relabelled(work, tmp_path):
    out = tmp_path / "out"
    [first] = _label(work, out)
    assert first["inputs"]["annotations"]["sha256"]
    assert _label(work, out)[0]["skipped"]
    eaf = work / "perf.eaf"  # the human corrects the annotation file
    eaf.write_text(eaf.read_text(encoding="utf-8").replace("</ANNOTATION_DOCUMENT>", "<!-- corrected -->\n"
                                                           "</ANNOTATION_DOCUMENT>"), encoding="utf-8")
    [redone] = _label(work, out)
    assert not redone.get("skipped") and redone["inputs"]["annotations"] != first["inputs"]["annotations"]
    assert redone["redone"] == "changed since: the annotation file"
    assert "redone" not in json.loads((out / "perf.labels.json").read_text())
    assert _label(work, out)[0]["skipped"]
    meta = json.loads((work / "model" / "workflow.json").read_text())
    meta["model_id"] = "retrained000000"  # the same folder, trained again
    (work / "model" / "workflow.json").write_text(json.dumps(meta))
    [redone] = _label(work, out)
    assert not redone.get("skipped") and redone["model_id"] == "retrained000000"
    # Another model folder's finished labels still need --overwrite.
    shutil.copytree(work / "model", tmp_path / "other")
    meta["model_id"] = "another00000000"
    (tmp_path / "other" / "workflow.json").write_text(json.dumps(meta))
    with pytest.raises(ParameterError, match="another model.*--overwrite"):
        label_videos([f"{work / 'perf.mp4'}={eaf}"], tmp_path / "other", out)


def test_summary_paths_are_absolute_so_report_works_from_elsewhere(work, tmp_path, monkeypatch):
    monkeypatch.chdir(work)
    [s] = label_videos(["perf.mp4=perf.eaf"], "model", "out")
    assert Path(s["video"]).is_absolute() and Path(s["video"]) == (work / "perf.mp4").resolve()
    assert all(Path(p).is_absolute() for p in s["outputs"].values())
    assert Path(s["model"]).is_absolute() and Path(s["human_annotations"]).is_absolute()
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    from musicperf.report.html import write_report_from_summary

    page = write_report_from_summary(work / "out" / "perf.labels.json", tmp_path / "page.html", embed_video=False)
    assert page.is_file()


def test_unwritable_outputs_are_refused_before_any_compute(work, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is an existing file"):
        _label(work, blocker)
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return gestures.collect_samples(*args, **kwargs)

    with pytest.raises(OutputError, match="is an existing file"):
        train_model([f"{work / 'perf.mp4'}={work / 'perf.eaf'}"], blocker, until=4.0, config=CFG,
                    steps=TrainSteps(collect_samples=spy))
    assert not calls


# --------------------------------------------------------------------------- frame rates
def _write_rate(path: Path, rate: Fraction, n: int) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 80, 64, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        rng = np.random.default_rng(0)
        for _ in range(n):
            img = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.parametrize("rate", [Fraction(1, 2), Fraction(2000)])
def test_implausible_frame_rates_are_labelled_on_the_video_own_frames(work, tmp_path, rate, caplog):
    video = _write_rate(tmp_path / "odd.mp4", rate, 24)
    with caplog.at_level("WARNING"):
        [s] = label_videos([video], work / "model", tmp_path / "out")
    assert "outside 1-1000 fps" in caplog.text
    times, probs, _ = gestures.read_probs_csv(tmp_path / "out" / "odd.probs.csv")
    assert len(times) == 24 and s["n_frames"] == 24 and not s["resampled"]  # not 48 s x 25 fps = 1,200 rows
    np.testing.assert_allclose(times[:3], np.arange(3) / float(rate), atol=1e-3)


def test_a_video_of_three_frames_at_a_thousandth_of_a_fps_is_refused_in_one_line(work, tmp_path):
    video = _write_rate(tmp_path / "slow.mp4", Fraction(1, 1000), 3)
    with pytest.raises(ParameterError, match="too short to label: 3 frames at 0.001 fps, a clip needs 16"):
        label_videos([video], work / "model", tmp_path / "out")


# --------------------------------------------------------------------------- train resumes
def _train(work, out, steps=None):
    return train_model([f"{work / 'perf.mp4'}={work / 'perf.eaf'}"], out, until=4.0, config=CFG, steps=steps)


@pytest.mark.parametrize("kill_at", [3, 15])  # 6 epochs a head: in fold 1's head; in the final head (after 2 folds)
def test_killed_training_resumes_to_the_same_model_bytes(work, tmp_path, monkeypatch, kill_at):
    from musicperf.train import loop

    _train(work, tmp_path / "whole")
    real, calls = loop.save_train_state, []

    def killed_after(*args, **kwargs):
        real(*args, **kwargs)  # the checkpoint is on disk, then the process dies
        calls.append(1)
        if len(calls) == kill_at:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_train_state", killed_after)
    with pytest.raises(KeyboardInterrupt):
        _train(work, tmp_path / "resumed")
    monkeypatch.setattr(loop, "save_train_state", real)
    assert (tmp_path / "resumed" / ".train-state" / "samples-0.npz").is_file()
    features = []

    def counted(*args, **kwargs):
        features.append(1)
        return gestures.collect_samples(*args, **kwargs)

    meta = _train(work, tmp_path / "resumed", steps=TrainSteps(collect_samples=counted))
    assert not features  # the clips' features were read back, not computed again
    assert (tmp_path / "resumed" / "head.safetensors").read_bytes() == (tmp_path / "whole" / "head.safetensors").read_bytes()
    assert sorted(p.name for p in (tmp_path / "resumed").iterdir()) == ["head.safetensors", "workflow.json"]
    whole = json.loads((tmp_path / "whole" / "workflow.json").read_text())
    assert meta["thresholds"] == whole["thresholds"] and meta["model_id"] == whole["model_id"]
    assert meta["training"]["final_loss"] == whole["training"]["final_loss"]


def test_changed_settings_do_not_resume_a_stale_state(work, tmp_path, monkeypatch):
    from musicperf.train import loop

    real = loop.save_train_state

    def killed(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_train_state", killed)
    with pytest.raises(KeyboardInterrupt):
        _train(work, tmp_path / "m")
    monkeypatch.setattr(loop, "save_train_state", real)
    other = GestureConfig(**{**CFG.to_dict(), "epochs": 5, "size": (32, 40), "hidden": (16,)})
    meta = train_model([f"{work / 'perf.mp4'}={work / 'perf.eaf'}"], tmp_path / "m", until=4.0, config=other)
    fresh = train_model([f"{work / 'perf.mp4'}={work / 'perf.eaf'}"], tmp_path / "n", until=4.0, config=other)
    assert meta["model_id"] == fresh["model_id"]


def _textgrid() -> str:
    return ('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 6\ntiers? <exists>\nsize = 1\n'
            'item []:\n    item [1]:\n        class = "IntervalTier"\n        name = "Wave"\n        xmin = 0\n'
            '        xmax = 6\n        intervals: size = 1\n        intervals [1]:\n            xmin = 0\n'
            '            xmax = 6\n            text = ""\n')



# --------------------------------------------------------------------------- the batch engine
def test_the_local_engine_keeps_the_same_rules(work, tmp_path):
    from musicperf.distributed.label import label_batch

    out = tmp_path / "out"
    out.mkdir()
    (out / "perf.eaf").write_bytes((work / "perf.eaf").read_bytes())  # a human file where the output goes
    pair = f"{work / 'perf.mp4'}={work / 'perf.eaf'}"
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="perf.eaf' was not written by musicperf label"):
            label_batch([pair], work / "model", out, engine="local", workers=1, overwrite=overwrite)
    (out / "perf.eaf").unlink()
    first = label_batch([pair], work / "model", out, engine="local", workers=1)
    assert first["counts"]["done"] == 1
    stamp = (out / "perf.labels.json").stat().st_mtime_ns
    assert label_batch([pair], work / "model", out, engine="local", workers=1)["skipped"] == 1
    eaf = work / "perf.eaf"  # the annotation file is corrected: the video is labelled again
    eaf.write_text(eaf.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    again = label_batch([pair], work / "model", out, engine="local", workers=1)
    assert again["skipped"] == 0 and (out / "perf.labels.json").stat().st_mtime_ns != stamp


def test_a_batch_whose_outputs_collide_is_refused_before_any_work(tmp_path):
    from musicperf.errors import ParameterError
    from musicperf.io.discover import Item
    from musicperf.tasks.gestures.outputs import check_batch_outputs

    a, b = tmp_path / "a" / "concert.mp4", tmp_path / "b" / "concert.mp4"
    with pytest.raises(ParameterError, match="would write the same outputs"):
        check_batch_outputs([Item(a, None), Item(b, None)], tmp_path / "out")
    human = tmp_path / "out" / "concert.eaf"
    with pytest.raises(ParameterError, match="would replace the human annotations"):
        check_batch_outputs([Item(a, human)], tmp_path / "out")
    check_batch_outputs([Item(a, tmp_path / "a" / "concert.eaf")], tmp_path / "out")  # fine


def test_from_is_checked_the_same_way_by_both_labellers():
    from musicperf.errors import ParameterError
    from musicperf.tasks.gestures.outputs import first_labelled_frame

    assert first_labelled_frame(None, duration=10.0, fps=25.0, video="v.mp4") == 0
    assert first_labelled_frame(2.0, duration=10.0, fps=25.0, video="v.mp4") == 50
    with pytest.raises(ParameterError, match="--from must be >= 0 seconds"):
        first_labelled_frame(-1.0, duration=10.0, fps=25.0, video="v.mp4")
    with pytest.raises(ParameterError, match=r"--from 10.0 s is beyond the end of 'v.mp4' \(10.00 s\)"):
        first_labelled_frame(10.0, duration=10.0, fps=25.0, video="v.mp4")
