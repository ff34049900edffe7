"""Instrument recognition (003) end to end on tiny synthetic videos: dataset files, frame sampling,
mel patches, the three training stages, Hit@k/F1 evaluation, model files and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from musicperf.cli import main
from musicperf.errors import AnnotationError, ModelError, ParameterError
from musicperf.tasks._classify import ClassLabelledVideo, read_labelled_videos, write_labelled_videos
from musicperf.tasks.instrument import (
    InstrumentConfig,
    InstrumentModel,
    LateFusion,
    evaluate_instrument,
    load_inputs,
    modality_dropout,
    sample_frames,
    synth_instrument_dataset,
    train_instrument,
    video_inputs,
)
from musicperf.train.loop import TrainConfig

INSTRUMENTS = ("guitar", "drums", "flute")
PER_CLASS = 5          # 3 for training, 2 for testing
CFG = InstrumentConfig(k_frames=4, frame_backbone="resnet18", frame_size=(72, 96), audio_network="choi", n_mels=32,
                       audio_seconds=0.5, embed_dim=24, fusion_hidden=32, width_factor=0.125, audio_width_factor=0.125,
                       augment="flip+color")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("instrument")
    csv = synth_instrument_dataset(root, instruments=INSTRUMENTS, per_class=PER_CLASS, seconds=1.5, size=(96, 72), seed=3)
    items = read_labelled_videos(csv)
    inputs = load_inputs(items, CFG, cache_dir=root / "cache")
    test = [i for i in range(len(items)) if i % PER_CLASS >= 3]
    train = [i for i in range(len(items)) if i not in test]
    return root, items, inputs, train, test


@pytest.fixture(scope="module")
def trained(data):
    root, items, inputs, train, test = data
    model = train_instrument([items[i] for i in train], CFG,
                             TrainConfig(epochs=15, batch_size=12, weight_decay=1e-4, patience=None, seed=0),
                             val_fraction=0.0, fusion_epochs=80, inputs=[inputs[i] for i in train])
    model.save(root / "model")
    return model


def test_dataset_csv_and_inputs(data):
    root, items, inputs, _, _ = data
    assert [it.label for it in items] == [c for c in INSTRUMENTS for _ in range(PER_CLASS)]
    v = inputs[0]
    frames, mel = v.arrays()                 # cached on disk: memory-mapped .npy files
    assert isinstance(frames, np.memmap) and v.frames.suffix == ".npy"
    assert frames.shape == (4, 72, 96, 3) and frames.dtype == np.uint8
    # frames at the centres of 4 equal spans of 1.5 s (25 fps: within one frame)
    np.testing.assert_allclose(v.frame_times, (np.arange(4) + 0.5) * 1.5 / 4, atol=0.041)
    assert mel.shape == (3, 32, 22) and v.has_audio and v.n_mel == 3
    assert len(list((root / "cache").glob("*/inputs.json"))) == len(items)
    direct = video_inputs(items[0].path, CFG)                # no cache: arrays in memory
    np.testing.assert_array_equal(direct.frames, frames)
    np.testing.assert_array_equal(direct.mel, mel)


def test_sample_frames_matches_sequential_decode(data):
    from musicperf.io.video import VideoReader

    path = data[1][0].path
    frames, times = sample_frames(path, 3, size=(72, 96))
    with VideoReader(path, size=(72, 96)) as r:
        seq = list(r.frames())
    for f, t in zip(frames, times):
        j = min(range(len(seq)), key=lambda i: abs(seq[i][0] - t))
        np.testing.assert_array_equal(f, seq[j][1])


def test_folder_dataset_and_errors(tmp_path, data):
    src = data[1][0].path
    for cls in ("a", "b"):
        (tmp_path / "ds" / cls).mkdir(parents=True)
        (tmp_path / "ds" / cls / "x.mp4").symlink_to(src)
    got = read_labelled_videos(tmp_path / "ds")
    assert [(p.path.parent.name, p.label) for p in got] == [("a", "a"), ("b", "b")]
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nmissing.mp4,guitar\n")
    with pytest.raises(AnnotationError, match="does not exist"):
        read_labelled_videos(bad)
    bad.write_text("only-one-column\n")
    with pytest.raises(AnnotationError, match="path,label"):
        read_labelled_videos(bad)
    out = write_labelled_videos(tmp_path / "ds" / "labels.csv", [ClassLabelledVideo(tmp_path / "ds" / "a" / "x.mp4", "a")])
    assert out.read_text().splitlines()[1] == "a/x.mp4,a"


def test_late_fusion_shape_and_modality_dropout():
    torch.manual_seed(0)
    fus = LateFusion(5, 8, 3, hidden=16)
    assert fus(torch.randn(4, 5, 8)).shape == (4, 3)
    with pytest.raises(ParameterError, match=r"\(B, 5, 8\)"):
        fus(torch.randn(4, 6, 8))
    x = torch.ones(4000, 5, 8)
    d = modality_dropout(x, 0.3)
    frames_gone = (d[:, :4].sum((1, 2)) == 0).float().mean()
    audio_gone = (d[:, 4].sum(1) == 0).float().mean()
    assert abs(frames_gone - 0.3) < 0.03 and abs(audio_gone - 0.3) < 0.03
    assert not ((d[:, :4].sum((1, 2)) == 0) & (d[:, 4].sum(1) == 0)).any()   # never both


def test_training_beats_chance_on_held_out_videos(data, trained):
    _, items, inputs, _, test = data
    rep = evaluate_instrument(trained, [items[i] for i in test], inputs=[inputs[i] for i in test])
    assert rep["chance"] == pytest.approx(1 / 3)
    # 6 held-out videos, 3 classes: chance is 2 right; 5 or more happens by luck 1.8 % of the time.
    # Measured over training seeds 0-5 (deterministic synthetic videos): audio 6/6 on every seed,
    # fusion 4/6-6/6 (the frame network, from 3 training videos per class, stays at chance and
    # sometimes pulls the fusion down; docs/instrument-skill.md has the larger benchmark). So
    # the audio branch is held to 5/6 and the fusion to 3/6, one video below its worst seed.
    assert rep["audio"]["accuracy"] >= 5 / 6, rep
    assert rep["fusion"]["accuracy"] >= 3 / 6, rep
    assert rep["fusion"]["hit@3"] == 1.0
    # The frame network fits its training set: cross-entropy from ~ln 3 = 1.10 down to 0.43-0.59
    # over training seeds 0-5 on an AVX-512 BF16 machine (0.52-0.54 reported on AMX), final/first
    # 0.39-0.51. The bounds keep a margin over those seeds and CPUs.
    history = trained.meta["training"]["frame"]["history"]
    assert history[-1]["train_loss"] < 0.75, history
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"], history
    assert set(rep["fusion"]["per_class"]) == {"drums", "flute", "guitar"}


def test_model_file_round_trip(data, trained):
    root, items, inputs, _, test = data
    loaded = InstrumentModel.load(root / "model")
    a = trained.predict_inputs(inputs[test[0]])
    b = loaded.predict_inputs(inputs[test[0]])
    for k in ("video", "audio", "fusion"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
    doc = json.loads((root / "model" / "model.json").read_text())
    assert doc["classes"] == ["drums", "flute", "guitar"] and doc["config"]["k_frames"] == 4
    with pytest.raises(ModelError, match="not a 'musicperf-skill'"):
        from musicperf.tasks._classify import load_task_model

        load_task_model(root / "model", "musicperf-skill")


def test_cli_predict_and_evaluate(data, trained, capsys):
    root, items, _, _, test = data
    csv = write_labelled_videos(root / "test.csv", [items[i] for i in test])
    assert main(["instrument", "evaluate", str(csv), "-m", str(root / "model"), "--cache", str(root / "cache"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_videos"] == 6 and rep["audio"]["accuracy"] >= 5 / 6 and rep["fusion"]["accuracy"] >= 3 / 6
    assert main(["instrument", "predict", str(items[test[0]].path), "-m", str(root / "model")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(str(items[test[0]].path)) and "fusion:" in out
    assert main(["instrument", "predict", str(items[0].path), "-m", str(root / "nothing")]) == 2
    assert "model.json is missing" in capsys.readouterr().err


def test_cli_train_tiny(tmp_path, data, capsys):
    root, items, _, train, _ = data
    csv = write_labelled_videos(root / "train_small.csv", [items[i] for i in train[:2] + train[3:5]])
    rc = main(["instrument", "train", str(csv), "-o", str(tmp_path / "m"), "--frames", "4", "--frame-backbone", "resnet18",
               "--frame-size", "72x96", "--n-mels", "32", "--audio-seconds", "0.5", "--embed-dim", "8",
               "--width-factor", "0.0625", "--audio-width-factor", "0.0625", "--epochs", "1", "--fusion-epochs", "1",
               "--val-fraction", "0", "--cache", str(root / "cache")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "resumed" not in out
    assert InstrumentModel.load(tmp_path / "m").classes == ["drums", "guitar"]
    assert sorted(f.name for f in (tmp_path / "m").glob("train_state.*")) == [
        f"train_state.{s}.safetensors" for s in ("audio", "frame", "fusion")]


class _Interrupted(Exception):
    """A simulated crash (Ctrl-C, a killed job) in the middle of training."""


def test_three_stages_resume_exactly(tmp_path, data, monkeypatch):
    """A run interrupted in the audio stage, resumed, interrupted again in the fusion stage and
    resumed: the same weights as an uninterrupted run, bit for bit (frame network with
    augmentation, audio network, fusion with modality dropout)."""
    import musicperf.tasks.instrument as inst

    root, items, inputs, train, _ = data
    sub = train[:2] + train[3:5]
    its, ins = [items[i] for i in sub], [inputs[i] for i in sub]
    cfg = InstrumentConfig(**{**CFG.__dict__, "width_factor": 0.0625, "audio_width_factor": 0.0625, "embed_dim": 8})
    tc = TrainConfig(epochs=2, batch_size=8, weight_decay=1e-4, patience=None, seed=4)
    straight = train_instrument(its, cfg, tc, val_fraction=0.0, fusion_epochs=3, inputs=ins)

    real_fit = inst.fit_classifier

    def crash_in(stage):
        def fit(*args, checkpoint=None, **kw):
            if checkpoint is not None and f".{stage}." in checkpoint.name:
                cfg1 = TrainConfig(**{**args[5].to_dict(), "epochs": 1})
                real_fit(*args[:5], cfg1, checkpoint=checkpoint, **kw)
                raise _Interrupted(stage)
            return real_fit(*args, checkpoint=checkpoint, **kw)
        return fit

    for stage in ("audio", "fusion"):
        monkeypatch.setattr(inst, "fit_classifier", crash_in(stage))
        with pytest.raises(_Interrupted):
            train_instrument(its, cfg, tc, val_fraction=0.0, fusion_epochs=3, inputs=ins, checkpoint_dir=tmp_path)
    monkeypatch.setattr(inst, "fit_classifier", real_fit)
    resumed = train_instrument(its, cfg, tc, val_fraction=0.0, fusion_epochs=3, inputs=ins, checkpoint_dir=tmp_path)
    assert [resumed.meta["training"][s]["resumed_from"] for s in ("frame", "audio", "fusion")] == [2, 2, 1]
    for a, b in ((straight.frame_net, resumed.frame_net), (straight.audio_net, resumed.audio_net),
                 (straight.fusion, resumed.fusion)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_old_labelled_video_name_is_a_deprecated_alias():
    import musicperf.tasks._classify as classify
    from musicperf.tasks import instrument, skill

    for mod in (classify, instrument, skill):
        with pytest.warns(DeprecationWarning, match="ClassLabelledVideo"):
            assert mod.LabelledVideo is ClassLabelledVideo
    with pytest.raises(AttributeError):
        instrument.NoSuchName
