"""Piano skill assessment (004): PISA-style annotations, the region of interest, the fusion head
that does not back-propagate into the backbones, per-video linear averaging, model files, the
CLI on synthetic videos and on a real video (pianist.avi)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from musicperf.cli import main
from musicperf.errors import AnnotationError, ParameterError
from musicperf.tasks.skill import (
    SkillConfig,
    SkillModel,
    SkillNet,
    evaluate_skill,
    find_roi,
    load_skill_inputs,
    parse_roi,
    read_skill_annotations,
    skill_loss,
    synth_skill_dataset,
    synth_skill_level,
    train_skill,
)
from musicperf.train.loop import TrainConfig

CFG = SkillConfig(clip_length=8, clip_stride=8, clip_size=(32, 32), max_clips=6, roi="auto", audio_seconds=1.0,
                  n_mels=32, n_fft=1024, width_factor=0.0625, audio_width_factor=0.0625,
                  video_features=8, audio_features=8)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("skill")
    ann = synth_skill_dataset(root, skills=(0, 9), per_level=2, seconds=2.0, size=(96, 72), seed=5)
    items = read_skill_annotations(ann)
    inputs = load_skill_inputs(items, CFG)
    return root, ann, items, inputs


@pytest.fixture(scope="module")
def trained(data):
    root, _, items, inputs = data
    model = train_skill(items, CFG, TrainConfig(epochs=8, batch_size=8, weight_decay=1e-4, patience=None, seed=0),
                        val_fraction=0.0, inputs=inputs)
    model.save(root / "model")
    return model


def test_synthetic_levels_and_annotation_formats(tmp_path, data):
    root, ann, items, _ = data
    assert synth_skill_level(0) == 1 and synth_skill_level(9) == 10
    with pytest.raises(ParameterError):
        synth_skill_level(10)
    assert [it.label for it in items] == ["1", "1", "10", "10"]
    assert items[0].path.name == "performance.mp4"
    # PISA-like variants: whitespace-separated without header, extra song-level column, ids
    # without folder found recursively, TSV with named columns in another order
    v = items[0].path
    (tmp_path / "vids").mkdir()
    (tmp_path / "vids" / "17.mp4").symlink_to(v)
    (tmp_path / "a.txt").write_text("# id PL SL\n17 7 3\n")
    got = read_skill_annotations(tmp_path / "a.txt", video_dir=tmp_path / "vids")
    assert got[0].label == "7" and got[0].path.name == "17.mp4"
    (tmp_path / "b.tsv").write_text("song_level\tplayer_level\tvideo_id\n3\t7.0\t17\n")
    got = read_skill_annotations(tmp_path / "b.tsv", video_dir=tmp_path / "vids")
    assert got[0].label == "7"
    (tmp_path / "c.csv").write_text("video_id,player_level\n99,4\n")
    with pytest.raises(AnnotationError, match="no video for id '99'"):
        read_skill_annotations(tmp_path / "c.csv", video_dir=tmp_path / "vids")


def test_roi_from_truth_given_and_full(data):
    root, _, items, inputs = data
    box, source = find_roi(items[0].path, "auto")
    truth = json.loads((items[0].path.parent / "truth.json").read_text())
    kp = truth["performers"][0]["keypoints"]
    pts = np.concatenate([np.asarray(kp[h]["pixels"])[np.asarray(kp[h]["visible"], bool)] for h in ("left_hand", "right_hand")])
    assert source == "synthetic truth"
    x0, y0, x1, y1 = box
    inside = (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)
    assert inside.mean() > 0.97
    assert (x1 - x0) * (y1 - y0) < 0.5 * 96 * 72      # a crop, not the frame
    assert inputs[0].roi == box and inputs[0].clips.shape[1:] == (8, 32, 32, 3)
    assert find_roi(items[0].path, "10,20,50,60") == ((10, 20, 50, 60), "given")
    assert find_roi(items[0].path, "full") == ((0, 0, 96, 72), "full")
    with pytest.raises(ParameterError, match="x0,y0,x1,y1"):
        parse_roi("10,20")
    with pytest.raises(ParameterError, match="outside"):
        find_roi(items[0].path, (200, 200, 300, 300))


def test_mel_windows_are_centred_on_clips(data):
    inputs = data[3]
    v = inputs[0]
    # 1 s windows around 8-frame (0.32 s) clips at 22050 Hz / 512 hop: 44 columns each
    assert v.mel.shape == (len(v.clips), 32, 44)
    assert np.allclose(np.diff(v.times), 8 / 25)


def test_fusion_head_does_not_backpropagate_into_backbones():
    from musicperf.models.resnet2d import resnet2d
    from musicperf.models.resnet3d import build_backbone

    torch.manual_seed(0)
    net = SkillNet(build_backbone("resnet18", n_classes=0, width_factor=0.0625),
                   resnet2d("resnet18", in_channels=1, n_classes=0, width_factor=0.0625), 3,
                   video_features=8, audio_features=4)
    clips, mel, y = torch.rand(2, 3, 8, 32, 32), torch.randn(2, 16, 20), torch.tensor([0, 2])
    logits = net(clips, mel)
    assert logits.shape == (2, 3, 3)
    F = torch.nn.functional
    F.cross_entropy(logits[:, 2], y).backward()             # the fusion branch alone
    assert net.fusion_head.weight.grad is not None and net.fusion_head.weight.grad.abs().sum() > 0
    shared = [p for m in (net.video_backbone, net.audio_backbone, net.video_proj, net.audio_proj, net.video_head,
                          net.audio_head) for p in m.parameters()]
    assert all(p.grad is None or not p.grad.any() for p in shared)
    # the full loss gives the backbones exactly the gradient of the two per-modality losses
    net.zero_grad()
    skill_loss(net(clips, mel), y).backward()
    full = [p.grad.clone() for p in shared]
    net.zero_grad()
    out = net(clips, mel)
    (F.cross_entropy(out[:, 0], y) + F.cross_entropy(out[:, 1], y)).backward()
    for g, p in zip(full, shared):
        torch.testing.assert_close(g, p.grad)
    assert net.video_backbone.conv1.weight.grad.abs().sum() > 0
    assert net.audio_backbone.conv1.weight.grad.abs().sum() > 0


def test_video_prediction_is_the_linear_average_of_clips(trained, data):
    inputs = data[3][0]
    p = trained.predict_inputs(inputs)
    with torch.no_grad():
        c = torch.from_numpy(inputs.clips).permute(0, 4, 1, 2, 3).float() / 255
        logits = trained.net(c, torch.from_numpy(inputs.mel))         # (n, 3, K)
    for b, name in enumerate(("video", "audio", "fusion")):
        np.testing.assert_allclose(p[name], torch.softmax(logits[:, b].mean(0), 0).numpy(), rtol=1e-4, atol=1e-5)
    assert p["clips"].shape == (len(inputs.clips), 2)


def test_train_evaluate_and_model_files(trained, data):
    root, ann, items, inputs = data
    assert trained.classes == ["1", "10"]
    hist = trained.meta["training"]["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    rep = evaluate_skill(trained, items, inputs=inputs)
    assert set(rep) >= {"video", "audio", "fusion", "chance"} and rep["n_videos"] == 4
    loaded = SkillModel.load(root / "model")
    a, b = trained.predict_inputs(inputs[1]), loaded.predict_inputs(inputs[1])
    np.testing.assert_allclose(a["fusion"], b["fusion"], rtol=1e-5, atol=1e-6)
    assert loaded.config == CFG


def test_feature_ratio_option():
    from musicperf.models.resnet2d import resnet2d
    from musicperf.models.resnet3d import build_backbone

    net = SkillNet(build_backbone("resnet18", n_classes=0, width_factor=0.0625),
                   resnet2d("resnet18", in_channels=1, n_classes=0, width_factor=0.0625), 2,
                   video_features=64, audio_features=8)                       # 8 : 1 (Table 2)
    assert net.fusion_head.in_features == 72 and net.video_proj.out_features == 64
    with pytest.raises(ParameterError, match="feature sizes"):
        SkillConfig(video_features=0)


def test_cli_evaluate_predict_synthetic(trained, data, capsys):
    root, ann, items, _ = data
    assert main(["skill", "evaluate", str(ann), "-m", str(root / "model"), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["n_videos"] == 4 and 0 <= rep["fusion"]["accuracy"] <= 1
    assert main(["skill", "predict", str(items[0].path), "-m", str(root / "model")]) == 0
    out = capsys.readouterr().out
    assert "level" in out and "synthetic truth" in out


def test_cli_predict_real_video(trained, data, shared_data, capsys):
    """A synthetic-trained model on a real recording (640x480, 30 fps, MP3 sound): it must run and
    say what it predicts."""
    root = data[0]
    video = shared_data / "video" / "pianist.avi"
    rc = main(["skill", "predict", str(video), "-m", str(root / "model"), "--roi", "300,150,600,400",
               "--max-seconds", "2", "--json"])
    assert rc == 0
    res = json.loads(capsys.readouterr().out)
    assert res["prediction"] in ("1", "10") and res["roi"] == [300, 150, 600, 400] and res["n_clips"] >= 1
    assert abs(sum(res["fusion"]) - 1) < 1e-5


def test_cli_train_tiny(tmp_path, data, capsys):
    ann = data[1]
    rc = main(["skill", "train", str(ann), "-o", str(tmp_path / "m"), "--clip-length", "8", "--clip-size", "32x32",
               "--max-clips", "2", "--n-mels", "32", "--width-factor", "0.0625", "--audio-width-factor", "0.0625",
               "--features", "8:4", "--epochs", "1", "--val-fraction", "0.5"])
    assert rc == 0 and "wrote" in capsys.readouterr().out
    m = SkillModel.load(tmp_path / "m")
    assert m.classes == ["1", "10"] and m.net.fusion_head.in_features == 12
    assert main(["skill", "train", str(ann), "-o", str(tmp_path / "m2"), "--roi", "1,2"]) == 2
    assert "x0,y0,x1,y1" in capsys.readouterr().err
