"""The Python API mirrors the CLI: each call on tiny inputs, and the same result as its command.

One synthetic 3 s duet (160 x 120, violin + guitar) serves the analysis calls; instrument and
skill run on two tiny synthetic videos per class with the smallest networks of their own tests.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import musicperf.api as mp
from musicperf.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_stats import video1, write_eaf  # noqa: E402


@pytest.fixture(scope="module")
def duet(tmp_path_factory):
    out = tmp_path_factory.mktemp("duet")
    res = mp.synth(out, seconds=3.0, seed=3, performers=2, instrument=["violin", "guitar"], size=(160, 120),
                   schedule=[{"Freeze": [(1.0, 2.5)]}, {}])
    return res


def _stems(duet) -> list[str]:
    return [str(duet.out_dir / s) for s in duet.truth["audio"]["stems"]]


def test_synth_and_info(duet):
    assert duet.video.is_file() and duet.eaf.is_file() and len(duet.stems) == 2
    info = mp.info(duet.video)
    assert info.fps == 25 and info.n_frames == 75 and (info.width, info.height) == (160, 120)
    assert info.frame_count_exact and not mp.info(duet.video, fast=True).frame_count_exact


def test_playing_gives_what_the_command_prints(duet, capsys):
    res = mp.playing(duet.video, regions="halves")
    assert res.method == "motion+audio" and res.names == ["performer1", "performer2"]
    assert res.timeline.shape == (75, 2) and res.activity.shape == (75, 2)
    assert main(["playing", str(duet.video), "--regions", "halves", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(res.to_dict()))
    silent = mp.playing(duet.video, regions=["0,0,80,120", "80,0,80,120"], audio=False)
    assert silent.method == "motion" and silent.timeline.shape == (75, 2)


def test_separate_writes_and_scores(duet, tmp_path):
    kw = dict(regions="halves", n_components=6, n_iter=15, restarts=1)
    res = mp.separate(duet.video, tmp_path / "sep", motion=duet.video, references=_stems(duet), **kw)
    assert res.method == "motion-nmf" and res.sources.shape[0] == 2 and res.sr == 16000
    assert [Path(f).name for f in res.files] == ["source1.wav", "source2.wav"]
    assert set(res.metrics) >= {"sdr", "sir", "sar", "sdr_mean"} and np.isfinite(res.metrics["sdr_mean"])
    # a speed matrix in memory instead of a video; no output folder: nothing written
    speeds = np.abs(np.random.default_rng(0).normal(size=(75, 2)))
    mem = mp.separate(duet.video, motion=speeds, motion_fps=25.0, n_components=6, n_iter=10, restarts=1)
    assert mem.files == [] and mem.sources.shape == res.sources.shape
    audio_only = mp.separate(duet.video, n_sources=2, n_components=6, n_iter=10, restarts=1)
    assert audio_only.method == "audio-nmf" and audio_only.to_dict()["metrics"] is None


def test_associate_gives_what_the_command_prints(duet, capsys):
    stems = _stems(duet)
    res = mp.associate(duet.video, tracks=stems[::-1], regions="halves")
    assert sorted(res.track_of_player) == [0, 1] and res.matrix.shape == (2, 2)
    assert main(["associate", str(duet.video), "--tracks", *stems[::-1], "--regions", "halves", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(res.to_dict()))
    from musicperf.errors import ParameterError

    with pytest.raises(ParameterError, match="either tracks"):
        mp.associate(duet.video, regions="halves")


def test_vibrato_on_a_stem(duet, tmp_path):
    res = mp.vibrato(_stems(duet)[0], max_seconds=3.0)
    assert res.region is None and isinstance(res.segments(), list) and len(res.notes) > 0


def test_features_and_stats(duet, tmp_path):
    f = mp.features(duet.video, tmp_path / "f.npy")
    assert f.array.shape == (4, 28, 108) and f.info["shape"] == [4, 28, 108]  # 75 frames: 4 samples of 16
    assert np.array_equal(np.load(tmp_path / "f.npy"), f.array)
    mel = mp.features(duet.video, kind="mel", n_mels=32)
    assert mel.array.shape[:2] == (4, 32) and mel.info["output"] is None
    eaf = write_eaf(video1(), tmp_path / "v1.eaf")
    st = mp.stats([eaf, (duet.video, duet.eaf)], tmp_path / "stats", fps=25, duration=4, taxonomy="tiers")
    assert set(st.tables) == {"table2_frames", "table3_occurrences", "table5_samples"}
    assert [v.name for v in st.videos] == ["v1", "performance"]
    assert len(st.written) == 6 + 2 * 3 and all(p.is_file() for p in st.written)  # 3 heatmaps: v1, performance, all


def test_landmarks(duet, tmp_path):
    pytest.importorskip("mediapipe")
    run = mp.landmarks(duet.video, tmp_path / "lm.npz", max_frames=4, cache=False, workers=1,
                       features=tmp_path / "g.csv")
    assert run.written == [str(tmp_path / "lm.npz"), str(tmp_path / "g.csv")]
    assert run.summary()["frames"] == 4


def test_instrument_calls(tmp_path):
    from musicperf.tasks.instrument import InstrumentConfig
    from musicperf.train.loop import TrainConfig

    csv = mp.instrument_synth(tmp_path / "ds", instruments=["guitar", "flute"], per_class=2, seconds=1.0,
                              size=(64, 48))
    cfg = InstrumentConfig(k_frames=2, frame_backbone="resnet18", frame_size=(48, 64), audio_network="choi",
                           n_mels=16, audio_seconds=0.5, embed_dim=8, fusion_hidden=8, width_factor=0.0625,
                           audio_width_factor=0.0625, augment="none")
    model = mp.instrument_train(csv, tmp_path / "model", config=cfg, val_fraction=0.0, fusion_epochs=1,
                                train_config=TrainConfig(epochs=1, batch_size=4, patience=None, seed=0))
    assert (tmp_path / "model" / "model.json").is_file() and sorted(model.classes) == ["flute", "guitar"]
    video = next((tmp_path / "ds").rglob("*.mp4"))
    (p,) = mp.instrument_predict(video, tmp_path / "model")
    assert p["prediction"] in model.classes and len(p["probabilities"]["fusion"]) == 2
    rep = mp.instrument_evaluate(csv, model)
    assert rep["n_videos"] == 4 and 0 <= rep["fusion"]["hit@1"] <= 1


def test_skill_calls(tmp_path):
    from musicperf.tasks.skill import SkillConfig
    from musicperf.train.loop import TrainConfig

    ann = mp.skill_synth(tmp_path / "ds", skills=[0, 9], per_level=2, seconds=1.0, size=(64, 48))
    cfg = SkillConfig(clip_length=8, clip_stride=8, clip_size=(32, 32), max_clips=2, roi="full", audio_seconds=0.5,
                      n_mels=16, n_fft=512, width_factor=0.0625, audio_width_factor=0.0625, video_features=8,
                      audio_features=8)
    model = mp.skill_train(ann, tmp_path / "model", config=cfg, val_fraction=0.0,
                           train_config=TrainConfig(epochs=1, batch_size=4, patience=None, seed=0))
    assert (tmp_path / "model" / "model.json").is_file() and model.classes == ["1", "10"]
    video = next((tmp_path / "ds").rglob("*.mp4"))
    (p,) = mp.skill_predict(video, model)
    assert p["prediction"] in model.classes and p["n_clips"] >= 1
    rep = mp.skill_evaluate(ann, model)
    assert rep["n_videos"] == 4


def test_extract_experiment_and_demo_calls(tmp_path):
    from _workflow_video import write_performance

    from musicperf.distributed.extract import features_path, load_features
    from musicperf.errors import ParameterError
    from musicperf.tasks.gestures import WorkflowConfig

    video, _eaf, _ = write_performance(tmp_path / "data", "perf", 3.0, seed=5)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps(WorkflowConfig(size=(32, 40), grid=4, roi="full").to_dict()))
    summary = mp.extract([video], tmp_path / "features", config=cfg, workers=1)
    assert summary["counts"] == {"done": 1, "failed": 0, "pending": 0}
    arrays, meta = load_features(features_path(tmp_path / "features", video))
    assert meta["roi"] == [0.0, 1.0, 0.0, 1.0]
    # the experiment and the demo are long: their wiring is checked by what they refuse first
    with pytest.raises(ParameterError):
        mp.experiment("table9", [video], tmp_path / "results")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x.txt").write_text("x")
    with pytest.raises(ParameterError, match="--overwrite"):
        mp.demo(busy, seconds=18.0)


# --------------------------------------------------------------------------- report, annotations
from test_report_html import _data, labelled  # noqa: E402,F401  (the fixture: outputs shaped like `label`'s)


def test_report_writes_what_the_command_writes(labelled, tmp_path, capsys):  # noqa: F811
    from musicperf.errors import OutputError, ParameterError

    pages = mp.report(labelled["summary"], tmp_path / "api.html", reference=labelled["truth"], link_video=True)
    assert pages == [tmp_path / "api.html"]
    assert main(["report", str(labelled["summary"]), "-o", str(tmp_path / "cli.html"), "--reference",
                 str(labelled["truth"]), "--link-video"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'cli.html'}"
    api_data, cli_data = (_data(p.read_text(encoding="utf-8")) for p in pages + [tmp_path / "cli.html"])
    assert api_data == cli_data and api_data["scored"] == [0.52, 6.0] and api_data["lanes"][0]["errors"]
    written = []
    folder = mp.report([labelled["summary"].parent], tmp_path / "pages", on_written=written.append)
    assert folder == written == [tmp_path / "pages" / "clip.html"] and folder[0].is_file()
    with pytest.raises(ParameterError, match="--overwrite"):
        mp.report(labelled["summary"], tmp_path / "api.html")
    assert mp.report(labelled["summary"], tmp_path / "api.html", overwrite=True) == pages
    with pytest.raises(ParameterError, match="one video"):
        mp.report([labelled["summary"], labelled["summary"]], tmp_path / "two", reference=labelled["truth"])
    with pytest.raises(ParameterError, match="need an output folder"):
        mp.report([labelled["summary"], labelled["summary"]], tmp_path / "two.html")
    with pytest.raises(ParameterError, match=r"no \*\.labels\.json in folder"):
        mp.report(tmp_path / "pages", tmp_path / "x")
    with pytest.raises(ParameterError, match="does not exist"):
        mp.report(tmp_path / "missing.labels.json", tmp_path / "x")
    with pytest.raises(OutputError, match="existing file"):
        mp.report(labelled["summary"], labelled["truth"])  # a folder is wanted: checked before any page


def test_annotations_show_and_convert(duet, tmp_path, capsys):
    from musicperf.errors import AnnotationError
    from musicperf.io import read_annotations
    from musicperf.io.annotations import Annotation, AnnotationSet, Tier

    aset = AnnotationSet()
    aset.add_tier(Tier("Nodding", [Annotation(0.0, 0.4, "nod"), Annotation(1.0, 1.6, "nod")]))
    aset.add_tier(Tier("frowning", [Annotation(0.2, 0.5, "frown")]))
    aset.add_tier(Tier("Eyes closed", [Annotation(3.0, 3.8, "closed")]))
    aset.add_tier(Tier("Bowing", [Annotation(0.5, 2.0, "up")]))
    eaf = write_eaf(aset, tmp_path / "v1.eaf")
    shown = mp.annotations_show(eaf)
    assert main(["annotations", "show", str(eaf), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == shown
    assert shown["format"] == "ELAN EAF" and shown["n_tiers"] == 4 and shown["n_annotations"] == 5
    nod = next(t for t in shown["tiers"] if t["name"] == "Nodding")
    assert nod["count"] == 2 and nod["values"] == {"nod": 2} and (nod["start"], nod["end"]) == (0.0, 1.6)
    assert [t["name"] for t in mp.annotations_show(eaf, tiers="N*")["tiers"]] == ["Nodding"]
    for suffix, fmt in ((".TextGrid", "Praat TextGrid"), (".csv", "musicperf CSV"), (".txt", "ELAN tab-delimited text")):
        res = mp.annotations_convert(eaf, tmp_path / f"v1{suffix}", tiers="[NE]*")
        assert res == {"output": str(tmp_path / f"v1{suffix}"), "format": fmt, "n_tiers": 2, "n_annotations": 3}
        back = read_annotations(tmp_path / f"v1{suffix}")
        assert sorted(t.name for t in back) == ["Eyes closed", "Nodding"], suffix
    # a new .eaf linked to the 3 s video: the eyes close at 3.8 s, after it (0.5 s of tolerance)
    with pytest.raises(AnnotationError, match="exceeds the duration 3.000 s.*v1.eaf"):
        mp.annotations_convert(eaf, tmp_path / "linked.eaf", media=duet.video)
    assert not (tmp_path / "linked.eaf").exists()
    mp.annotations_convert(eaf, tmp_path / "linked.eaf", media=duet.video, tiers="N*")
    assert [Path(m.url).name for m in read_annotations(tmp_path / "linked.eaf").media] == [duet.video.name]
    with pytest.raises(AnnotationError, match="exceeds"):
        mp.annotations_show(eaf, media=duet.video)
    res = mp.annotations_convert(tmp_path / "v1.csv", tmp_path / "new.eaf", vocabularies=False)
    assert res["n_annotations"] == 3 and read_annotations(tmp_path / "new.eaf").vocabularies == {}
    with pytest.raises(AnnotationError, match=r"unknown annotation format '\.docx'"):
        mp.annotations_convert(tmp_path / "missing.eaf", tmp_path / "out.docx")
    assert main(["annotations", "convert", str(eaf), str(tmp_path / "cli.csv")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'cli.csv'}: 4 tiers, 5 annotations (musicperf CSV)"
