"""Landmark and audio features in the labelling workflow (``musicperf train --frame-features``).

One 30 s synthetic guitarist who nods now and then (seed 3: four nods in the first 18 s, three
after); the landmarks come from its truth with detector-like noise (``--landmarks-from-truth``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from musicperf import api
from musicperf.cli import main
from musicperf.errors import ModelError, NoAudioError, ParameterError
from musicperf.tasks import framefeatures
from musicperf.tasks.gestures import GestureConfig

SECONDS, UNTIL = 30.0, 18.0
SMALL = dict(size=(32, 40), grid=4, epochs=40, folds=2, train_stride=4)


@pytest.fixture(scope="module")
def perf(tmp_path_factory):
    from musicperf.synth import synthesize

    folder = tmp_path_factory.mktemp("lmperf")
    r = synthesize(folder / "video", seconds=SECONDS, seed=3, size=(160, 120), gestures=["Nodding"],
                   gesture_rate=2.0)
    nods = r.truth["performers"][0]["gestures"]["Nodding"]
    assert sum(s < UNTIL for s, _ in nods) >= 3 and sum(s >= UNTIL for s, _ in nods) >= 2
    # The human annotated the Nodding tier of the first UNTIL seconds only.
    from musicperf.io.annotations import Annotation, AnnotationSet, Tier
    from musicperf.io.elan import write_eaf

    human = AnnotationSet(tiers={"Nodding": Tier("Nodding", [Annotation(s, min(e, UNTIL), "Nodding")
                                                             for s, e in nods if s < UNTIL])})
    write_eaf(human, folder / "human.eaf", media=r.video)
    return {"folder": folder, "video": r.video, "truth": r.eaf, "human": folder / "human.eaf"}


def _config_file(folder, **extra) -> str:
    p = folder / f"cfg_{len(list(folder.glob('cfg_*.yaml')))}.yaml"
    lines = [f"{k}: {list(v) if isinstance(v, tuple) else v}" for k, v in {**SMALL, **extra}.items()]
    p.write_text("\n".join(lines) + "\n")
    return str(p)


def test_cli_landmark_model_trains_labels_and_beats_constant(perf, tmp_path, capsys):
    model = tmp_path / "model"
    pair = f"{perf['video']}={perf['human']}"
    rc = main(["train", pair, "-o", str(model), "--until", str(UNTIL), "--config", _config_file(tmp_path),
               "--frame-features", "landmarks", "--temporal", "tcn", "--landmarks-from-truth", "-q"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "features: landmarks (tcn), modalities: video" in captured.out
    meta = json.loads((model / "workflow.json").read_text())
    # The model directory records the choice: label needs no flags.
    assert meta["config"]["frame_features"] == "landmarks" and meta["config"]["landmark_source"] == "truth"
    assert meta["head"]["type"] == "frame-temporal" and meta["head"]["model"]["name"] == "tcn"
    assert meta["head"]["n_grid"] == 0 and meta["head"]["n_audio"] == 0
    assert meta["features"]["frame"]["landmarks"]["name"] == "landmarks"
    assert meta["features"]["n_features"] == 16 * 32
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["label", str(perf["video"]), "-m", str(model), "-o", str(out), "--from", str(UNTIL), "-q"]) == 0
    capsys.readouterr()
    assert main(["score", str(perf["truth"]), str(out / "performance.eaf"), "--from", str(UNTIL), "--to",
                 str(SECONDS), "--tiers", "Nodding", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["tiers"]["Nodding"]
    prevalence = row["support"] / row["frames"]
    constant_f1 = 2 * prevalence / (1 + prevalence)  # "always nodding"
    assert row["f1"] > constant_f1 + 0.15, (row, constant_f1)
    assert row["kappa"] > 0.3, row


def test_landmarks_with_audio_fuse_and_label(perf, tmp_path):
    # Few epochs: this checks the wiring (fusion head, audio columns, model file), not accuracy.
    cfg = GestureConfig(**{**SMALL, "epochs": 6}, frame_features="grid+landmarks", temporal="gru",
                         modalities=("video", "audio"), landmark_source="truth")
    meta = api.train([f"{perf['video']}={perf['human']}"], tmp_path / "m", until=UNTIL, config=cfg)
    head = meta["head"]
    assert head["model"]["name"] == "fusion" and head["model"]["temporal"] == "gru"
    assert head["n_audio"] == framefeatures.audio_width() == 216
    assert head["n_grid"] == meta["features"]["n_features"] - 16 * 32 - 216 > 0
    [summary] = api.label([perf["video"]], tmp_path / "m", tmp_path / "o", after=UNTIL)
    assert summary["complete"] and set(summary["predicted"]) == {"Nodding"}


def test_audio_only_modality_uses_timbral_features(perf, tmp_path):
    cfg = GestureConfig(**{**SMALL, "epochs": 5}, modalities=("audio",))
    meta = api.train([f"{perf['video']}={perf['human']}"], tmp_path / "m", until=UNTIL, config=cfg)
    assert meta["head"]["type"] == "single" and meta["features"]["n_features"] == 216
    assert meta["features"]["frame"]["audio"]["kind"] == "timbral-001"
    [summary] = api.label([perf["video"]], tmp_path / "m", tmp_path / "o", after=UNTIL)
    assert summary["complete"]


@pytest.fixture(scope="module")
def silent(tmp_path_factory):
    from musicperf.synth import synthesize

    folder = tmp_path_factory.mktemp("silent")
    r = synthesize(folder, seconds=3.0, seed=1, size=(80, 60), audio=False, gestures=["Nodding"])
    return r


def test_audio_requested_on_video_without_sound_is_one_line_exit_2(silent, tmp_path, capsys):
    rc = main(["train", f"{silent.video}={silent.eaf}", "-o", str(tmp_path / "m"), "--modalities", "video,audio",
               "-q"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(silent.video) in err and "no audio" in err
    assert not (tmp_path / "m").exists()
    with pytest.raises(NoAudioError, match="performance.mp4"):
        framefeatures.check_inputs(GestureConfig(modalities=("audio",)), [silent.video])


def test_landmarks_from_truth_needs_truth_json(silent, tmp_path):
    lonely = tmp_path / "lonely.mp4"
    lonely.symlink_to(silent.video)
    with pytest.raises(ParameterError, match="truth.json"):
        framefeatures.check_inputs(GestureConfig(frame_features="landmarks", landmark_source="truth"), [lonely])


def test_config_validation_and_modalities():
    assert framefeatures.parse_modalities("audio, video") == ("video", "audio")
    assert framefeatures.parse_modalities(["audio"]) == ("audio",)
    assert GestureConfig(modalities="video+audio").to_dict()["modalities"] == ["video", "audio"]
    for bad in ({"frame_features": "pose"}, {"temporal": "lstm"}, {"modalities": "smell"},
                {"modalities": ()}, {"landmark_source": "oracle"}):
        with pytest.raises(ParameterError):
            GestureConfig(**bad)
    # Old model files (no frame settings) read as the grid model.
    assert framefeatures.is_default(GestureConfig.from_dict({"epochs": 3}))


def test_frame_head_forward_backward_and_rebuild():
    import torch

    for n_grid, n_audio, temporal in ((0, 0, "tcn"), (5, 0, "gru"), (0, 7, "tcn"), (5, 7, "gru")):
        cfg = GestureConfig(frame_features="grid+landmarks" if n_grid else "landmarks", temporal=temporal,
                             modalities=("video", "audio") if n_audio else ("video",), clip_length=4,
                             label_stride=2)
        n = n_grid + 4 * 32 + n_audio
        if n_audio:  # the real audio width is 216; build_head checks the layout
            with pytest.raises(ParameterError, match="do not fit"):
                framefeatures.build_head(n, 3, cfg)
            from musicperf.models.framehead import FrameFeatureHead

            head = FrameFeatureHead(n_grid=n_grid, length=4, n_landmarks=32, n_audio=n_audio, n_classes=3,
                                    temporal=temporal)
        else:
            head = framefeatures.build_head(n, 3, cfg)
        x = torch.randn(2, n, requires_grad=True)
        y = head(x)
        assert y.shape == (2, 3)
        y.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        again = framefeatures.head_from_config(json.loads(json.dumps(head.config())))
        again.load_state_dict(head.state_dict())
        head.eval(), again.eval()
        assert torch.allclose(head(x), again(x))
    with pytest.raises(ParameterError, match="expected feature rows"):
        head(torch.zeros(2, 3))
    with pytest.raises(ModelError, match="malformed"):
        framefeatures.head_from_config({"type": "frame-temporal", "n_grid": 1})


def test_windows_fill_missing_and_pad_the_end():
    v = np.arange(12, dtype=np.float32).reshape(6, 2)
    v[2, 0] = np.nan
    filled = framefeatures._fill_missing(v)
    assert filled[2, 0] == np.nanmedian(v[:, 0]) and np.isfinite(filled).all()
    w = framefeatures.landmark_windows(filled, np.array([0, 4]), length=4)
    assert w.shape == (2, 4, 2)
    np.testing.assert_array_equal(w[1, 2:], np.repeat(filled[-1:], 2, axis=0))  # past the end: last frame held
