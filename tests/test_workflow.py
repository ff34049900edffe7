"""The labelling workflow end to end: train on the first part, label the rest, score.

A 12 s synthetic performance (tests/_workflow_video.py: a square that "waves" top-left and
one that "nods" bottom-right) keeps the whole file under ~30 s on 2 cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _workflow_video import write_performance, write_video  # noqa: E402

from musicperf import api  # noqa: E402
from musicperf.cli import main  # noqa: E402
from musicperf.errors import AnnotationError, ModelError, ParameterError  # noqa: E402
from musicperf.tasks import gestures  # noqa: E402
from musicperf.tasks.gestures import GestureConfig  # noqa: E402

SECONDS, UNTIL = 16.0, 10.0
CFG = GestureConfig(size=(32, 40), grid=4, epochs=40, hidden=(64, 32), train_stride=4, folds=2)


@pytest.fixture(scope="module")
def perf(tmp_path_factory):
    folder = tmp_path_factory.mktemp("perf")
    video, eaf, events = write_performance(folder / "truth", "perf", SECONDS, seed=3)
    # What a user has: the video and a human .eaf of its first UNTIL seconds only.
    from musicperf.io.annotations import Annotation, AnnotationSet, Tier
    from musicperf.io.elan import write_eaf

    work = folder / "work"
    work.mkdir()
    human_video = work / "perf.mp4"
    human_video.write_bytes(video.read_bytes())
    human = AnnotationSet(tiers={
        k: Tier(k, [Annotation(s, min(e, UNTIL), k) for s, e in iv if s < UNTIL]) for k, iv in events.items()
    })
    human.add_tier(Tier("Comments", [Annotation(1.0, 2.0, "nice phrase")]))
    write_eaf(human, work / "perf.eaf", media=human_video)
    return {"folder": folder, "truth_video": video, "truth": eaf, "events": events,
            "video": human_video, "human": work / "perf.eaf"}


@pytest.fixture(scope="module")
def model(perf):
    out = perf["folder"] / "model"
    with pytest.warns(UserWarning, match="unknown to taxonomy.*Comments"):
        meta = api.train([f"{perf['video']}={perf['human']}"], out, until=UNTIL, config=CFG,
                         taxonomy=_yaml_taxonomy(perf))
    return out, meta


def _yaml_taxonomy(perf) -> Path:
    # Classes from a mapping file: the free-text "Comments" tier is not a class.
    p = perf["folder"] / "classes.yaml"
    p.write_text("classes: [Wave, Nod]\n")
    return p


def test_python_api_trains_labels_and_beats_a_constant_predictor(perf, model, tmp_path):
    model_dir, meta = model
    assert meta["classes"] == ["Wave", "Nod"]
    assert meta["training"]["until"] == UNTIL
    assert {"head.safetensors", "workflow.json"} <= {p.name for p in model_dir.iterdir()}
    out = tmp_path / "labelled"
    [summary] = api.label([perf["video"]], model_dir, out, after=UNTIL)
    assert summary["complete"] and summary["labelled_from"] == UNTIL
    result = api.score(perf["truth"], out / "perf.eaf", start=UNTIL, end=SECONDS)
    assert set(result["tiers"]) == {"Wave", "Nod"}
    print({k: (round(r["f1"], 3), round(r["kappa"], 3), r["support"], r["frames"]) for k, r in result["tiers"].items()})
    for name, row in result["tiers"].items():
        prevalence = row["support"] / row["frames"]
        constant_f1 = 2 * prevalence / (1 + prevalence)  # "always present" predictor
        assert row["f1"] > constant_f1 + 0.1, (name, row, constant_f1)
        assert row["kappa"] > 0.3, (name, row)


def test_label_output_keeps_human_tiers_and_adds_auto_tiers(perf, model, tmp_path):
    from musicperf.io.elan import read_eaf

    model_dir, _ = model
    out = tmp_path / "o"
    api.label([perf["video"]], model_dir, out, after=UNTIL)
    human = read_eaf(perf["human"])
    result = read_eaf(out / "perf.eaf")
    assert list(result.tiers)[: len(human.tiers)] == list(human.tiers)
    for name, tier in human.tiers.items():
        assert result.tiers[name].annotations == tier.annotations
    assert {"auto: Wave", "auto: Nod"} <= set(result.tiers)
    for name in ("auto: Wave", "auto: Nod"):
        assert all(a.start >= UNTIL for a in result.tiers[name].annotations)
    times, probs, classes = gestures.read_probs_csv(out / "perf.probs.csv")
    assert classes == ["Wave", "Nod"]
    assert probs.shape == (len(times), 2) and ((0 <= probs) & (probs <= 1)).all()
    assert times[0] <= UNTIL < times[0] + 16 / 25 and times[-1] == pytest.approx(SECONDS - 1 / 25, abs=1e-3)
    summary = json.loads((out / "perf.labels.json").read_text())
    assert summary["human_tiers_kept"] == ["Wave", "Nod", "Comments"]
    assert summary["tiers_unknown_to_model"] == ["Comments"]
    # The predicted tiers have a linguistic type of their own whose controlled vocabulary is the
    # model's classes, each annotation referring to its class's entry; the human tiers keep theirs.
    import xml.etree.ElementTree as ET

    root = ET.parse(out / "perf.eaf").getroot()
    tiers = {t.get("TIER_ID"): t for t in root.iter("TIER")}
    assert {tiers[n].get("LINGUISTIC_TYPE_REF") for n in ("auto: Wave", "auto: Nod")} == {"musicperf-prediction"}
    assert tiers["Wave"].get("LINGUISTIC_TYPE_REF") != "musicperf-prediction"
    (lt,) = [t for t in root.iter("LINGUISTIC_TYPE") if t.get("LINGUISTIC_TYPE_ID") == "musicperf-prediction"]
    (cv,) = [c for c in root.iter("CONTROLLED_VOCABULARY") if c.get("CV_ID") == lt.get("CONTROLLED_VOCABULARY_REF")]
    entries = {e.get("CVE_ID"): e.findtext("CVE_VALUE") for e in cv.iter("CV_ENTRY_ML")}
    assert sorted(entries.values()) == ["Nod", "Wave"]
    predicted = [(name, a) for name in ("auto: Wave", "auto: Nod") for a in tiers[name].iter("ALIGNABLE_ANNOTATION")]
    assert predicted
    for name, a in predicted:
        assert entries[a.get("CVE_REF")] == name.removeprefix("auto: ") == a.findtext("ANNOTATION_VALUE")


def test_rerun_skips_finished_and_refuses_foreign_outputs(perf, model, tmp_path):
    model_dir, _ = model
    out = tmp_path / "o"
    first = api.label([perf["video"]], model_dir, out)
    stamp = (out / "perf.eaf").stat().st_mtime_ns
    again = api.label([perf["video"]], model_dir, out)
    assert again[0]["skipped"] and (out / "perf.eaf").stat().st_mtime_ns == stamp
    # A different request (other --from) on the same outputs is refused without --overwrite.
    with pytest.raises(ParameterError, match="overwrite"):
        api.label([perf["video"]], model_dir, out, after=4.0)
    redone = api.label([perf["video"]], model_dir, out, after=4.0, overwrite=True)
    assert not redone[0].get("skipped") and redone[0]["after"] == 4.0
    assert first[0]["after"] is None


def test_interrupted_batch_resumes_where_it_stopped(perf, model, tmp_path, monkeypatch):
    model_dir, _ = model
    vids = tmp_path / "vids"
    vids.mkdir()
    for name in ("a", "b"):
        (vids / f"{name}.mp4").write_bytes(perf["video"].read_bytes())
    real = gestures.label_video
    calls = []

    def crash_on_second(*args, **kwargs):
        calls.append(args[1].video.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gestures.label, "label_video", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        api.label([vids], model_dir, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.eaf", "a.labels.json", "a.probs.csv"]
    monkeypatch.setattr(gestures.label, "label_video", real)
    results = api.label([vids], model_dir, tmp_path / "out")
    assert [r.get("skipped", False) for r in results] == [True, False]


def test_cli_train_label_score(perf, tmp_path, capsys):
    model_dir = tmp_path / "m"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("size: [32, 40]\ngrid: 4\nepochs: 30\nhidden: [64, 32]\nfolds: 2\n")
    truth_dir = perf["truth"].parent
    rc = main(["train", str(truth_dir), "-o", str(model_dir), "--until", str(UNTIL), "--config", str(cfg), "-q"])
    assert rc == 0
    assert "model written to" in capsys.readouterr().out
    # The model directory exists now: training again into it is refused, unless --overwrite.
    assert main(["train", str(truth_dir), "-o", str(model_dir), "--config", str(cfg), "-q"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    out = tmp_path / "out"
    assert main(["label", str(perf["truth_video"]), "-m", str(model_dir), "-o", str(out), "--from", str(UNTIL), "-q"]) == 0
    assert "intervals" in capsys.readouterr().out
    assert main(["score", str(perf["truth"]), str(out / "perf.eaf"), "--from", str(UNTIL), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["macro"]["f1"] > 0.5
    # The truth .eaf sat beside the video: its tiers are kept, so they are reported as unscored.
    assert result["unmatched_prediction"] == ["Wave", "Nod"]


def test_video_at_another_frame_rate_is_resampled(perf, model, tmp_path, caplog):
    model_dir, _ = model
    video = write_video(tmp_path / "slow.mp4", 4.0, {k: v for k, v in perf["events"].items()}, fps=20.0)
    [summary] = api.label([video], model_dir, tmp_path / "o")
    assert summary["resampled"] and summary["video_fps"] == 20.0 and summary["fps"] == 25.0
    assert "resampled" in caplog.text
    times, probs, _ = gestures.read_probs_csv(tmp_path / "o" / "slow.probs.csv")
    assert len(times) == 100  # 4 s on the model's 25 fps grid


def test_iter_clips_streams_frames_in_order_and_resamples(tmp_path):
    # Brightness encodes the frame index, so the clips' content can be checked.
    import av

    path = tmp_path / "ramp.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.options = {"crf": "0", "preset": "ultrafast"}
        for i in range(40):
            img = np.full((32, 32, 3), 5 * i + 20, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    batches = list(gestures.iter_clips(path, fps=10.0, size=(16, 16), length=8, stride=4, batch=3))
    starts = np.concatenate([b[0] for b in batches])
    clips = np.concatenate([b[1] for b in batches])
    assert starts.tolist() == list(range(0, 33, 4))
    level = clips[..., 0].mean(axis=(2, 3))  # (N, 8)
    expected = 5 * (starts[:, None] + np.arange(8)) + 20
    assert np.abs(level - expected).max() < 3
    # At 20 fps every video frame is shown twice; a window bounds the clips.
    batches = list(gestures.iter_clips(path, fps=20.0, size=(16, 16), length=8, stride=8, start=1.0, end=3.0))
    starts = np.concatenate([b[0] for b in batches])
    assert starts.tolist() == [24, 32, 40, 48]  # [1.2, 1.6), ..., all inside [1.0, 3.0)
    level = np.concatenate([b[1] for b in batches])[..., 0].mean(axis=(2, 3))
    expected = 5 * ((starts[:, None] + np.arange(8)) // 2) + 20
    assert np.abs(level - expected).max() < 3


def test_broken_model_directories_are_refused(model, tmp_path):
    import shutil

    model_dir, _ = model
    with pytest.raises(ModelError, match="does not exist"):
        api.label([], tmp_path / "nope", tmp_path / "o")
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "head.safetensors").unlink()
    with pytest.raises(ModelError, match="head.safetensors is missing"):
        gestures.load_gesture_model(broken)
    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    meta = json.loads((old / "workflow.json").read_text())
    meta["format_version"] = 0
    (old / "workflow.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format version 0.*retrain"):
        gestures.load_gesture_model(old)
    (old / "workflow.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        gestures.load_gesture_model(old)


def test_discover_pairs_folders_and_manifests(perf, tmp_path):
    video, human = perf["video"], perf["human"]
    assert gestures.discover([f"{video}={human}"]) == [gestures.Item(video, human)]
    assert gestures.discover([video.parent]) == [gestures.Item(video, human)]
    manifest = tmp_path / "m.yaml"
    manifest.write_text(f"videos:\n  - video: {video}\n    annotations: {human}\n")
    assert gestures.discover([manifest]) == [gestures.Item(video, human)]
    lone = tmp_path / "lone.mp4"
    lone.write_bytes(b"")
    with pytest.raises(AnnotationError, match="no annotation file"):
        gestures.discover([lone])
    assert gestures.discover([lone], need_annotations=False) == [gestures.Item(lone, None)]
    with pytest.raises(ParameterError, match="does not exist"):
        gestures.discover([f"{tmp_path / 'x.mp4'}={human}"])
    with pytest.raises(ParameterError, match="listed twice"):
        gestures.discover([video, f"{video}={human}"])
    with pytest.raises(ParameterError, match="unknown setting"):
        GestureConfig.from_dict({"epochz": 3})


def test_label_refuses_to_overwrite_the_human_annotations(perf, model):
    model_dir, _ = model
    with pytest.raises(ParameterError, match="human annotations"):
        api.label([perf["video"]], model_dir, perf["video"].parent)


def test_region_of_interest_frames_the_moving_part(tmp_path):
    # Only the top-left square moves (Wave all the time): the region must contain it and
    # leave out most of the still bottom-right half.
    video = write_video(tmp_path / "v.mp4", 2.0, {"Wave": [(0.0, 2.0)]}, size=(64, 80))
    top, bottom, left, right = gestures.estimate_roi([video], until=None)
    # the square spans rows 8-20 of 64 and columns 4-28 of 80 when waving
    assert top <= 8 / 64 and bottom >= 20 / 64 and left <= 4 / 80 + 0.02 and right >= 28 / 80 - 0.02
    assert bottom <= 0.6 and right <= 0.6
    ext = gestures.FeatureExtractor(GestureConfig(size=(32, 40), grid=4), roi=(top, bottom, left, right))
    h, w = ext.decode_size
    clips = np.zeros((1, 4, h, w, 3), np.uint8)
    assert ext.crop(clips).shape[2:4] == (32, 40)
    assert ext(clips).shape == (1, gestures.n_grid_features(4))


def test_classes_without_training_annotations_are_left_out(perf, tmp_path, caplog):
    from musicperf.io.annotations import Annotation, Tier
    from musicperf.io.elan import write_eaf
    from musicperf.io.elan import read_eaf

    aset = read_eaf(perf["human"])
    aset.tiers.pop("Comments")
    aset.add_tier(Tier("Late", [Annotation(14.0, 15.0, "x")]))  # only after --until
    aset.add_tier(Tier("Empty", []))
    write_eaf(aset, tmp_path / "h.eaf")
    meta = api.train([f"{perf['video']}={tmp_path / 'h.eaf'}"], tmp_path / "m", until=UNTIL,
                     config=dataclasses_replace(CFG, epochs=5))
    assert meta["classes"] == ["Wave", "Nod"]
    assert "'Late', 'Empty'" in caplog.text


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_cli_label_feature_cache_is_read_on_relabel(perf, model, tmp_path):
    model_dir, _ = model
    cache = tmp_path / "cache"
    for run, hit in (("a", False), ("b", True)):
        out = tmp_path / run
        assert main(["label", str(perf["truth_video"]), "-m", str(model_dir), "-o", str(out),
                     "--feature-cache", str(cache), "-q"]) == 0
        summary = json.loads((out / "perf.labels.json").read_text())
        assert summary["feature_cache_hit"] is hit
    assert any(cache.iterdir())
