"""Piano skill assessment (004): a tiny model learns synthetic skill 0 vs 9 (levels 1 vs 10) and
tells held-out videos apart; PISA-style annotations, the region of interest, the fusion head that
does not back-propagate into the backbones, per-video linear averaging, inputs cached on disk,
exact resume, model files, the CLI on synthetic videos and on a real video (pianist.avi)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from musicperf.cli import main
from musicperf.errors import AnnotationError, ParameterError
from musicperf.tasks import skill as skill_mod
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
PER_LEVEL, N_TEST = 10, 4          # 6 training and 4 held-out videos per level
EPOCHS = 16
# Offline margin (README, tests): with these settings and training seed 0, synthetic data seeds
# 0-7 give a fused accuracy of 1.0 on seven and 0.75 on one; data seed 2 with training seeds
# 0-3 gives 1.0, 0.875, 1.0, 1.0.
DATA_SEED = 2


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("skill")
    ann = synth_skill_dataset(root, skills=(0, 9), per_level=PER_LEVEL, seconds=2.0, size=(96, 72), seed=DATA_SEED)
    items = read_skill_annotations(ann)
    inputs = load_skill_inputs(items, CFG, cache_dir=root / "cache")     # on disk, memory-mapped
    return root, ann, items, inputs


def _split(items):
    test = [i for lvl in ("1", "10") for i in [j for j, it in enumerate(items) if it.label == lvl][-N_TEST:]]
    return [i for i in range(len(items)) if i not in test], test


@pytest.fixture(scope="module")
def trained(data):
    root, _, items, inputs = data
    train, _ = _split(items)
    model = train_skill([items[i] for i in train], CFG,
                        TrainConfig(epochs=EPOCHS, batch_size=8, weight_decay=1e-4, patience=None, seed=0),
                        val_fraction=0.0, inputs=[inputs[i] for i in train])
    model.save(root / "model")
    return model


def test_learns_skill_and_tells_held_out_videos_apart(trained, data):
    """The synthetic skill cue (synth/score.py: unsteady timing, hesitations, uneven dynamics,
    choppy release, tense jerky hands) is learnt by tiny networks from 6 short videos per level:
    per-video accuracy on 8 held-out videos, chance 0.5."""
    _, _, items, inputs = data
    _, test = _split(items)
    rep = evaluate_skill(trained, [items[i] for i in test], inputs=[inputs[i] for i in test])
    assert rep["n_videos"] == 8 and rep["chance"] == 0.5
    acc = {b: rep[b]["accuracy"] for b in ("video", "audio", "fusion")}
    assert acc["fusion"] >= 0.75, acc
    assert max(acc["video"], acc["audio"]) >= 0.75, acc


def test_synthetic_levels_and_annotation_formats(tmp_path, data):
    root, ann, items, _ = data
    assert synth_skill_level(0) == 1 and synth_skill_level(9) == 10
    with pytest.raises(ParameterError):
        synth_skill_level(10)
    assert [it.label for it in items] == ["1"] * PER_LEVEL + ["10"] * PER_LEVEL
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
    assert inputs[0].roi == box and inputs[0].arrays()[0].shape[1:] == (8, 32, 32, 3)
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
    assert v.arrays()[1].shape == (v.n_clips, 32, 44)
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
    clips, mel = (np.array(a) for a in inputs.arrays())
    with torch.no_grad():
        c = torch.from_numpy(clips).permute(0, 4, 1, 2, 3).float() / 255
        logits = trained.net(c, torch.from_numpy(mel))         # (n, 3, K)
    for b, name in enumerate(("video", "audio", "fusion")):
        np.testing.assert_allclose(p[name], torch.softmax(logits[:, b].mean(0), 0).numpy(), rtol=1e-4, atol=1e-5)
    assert p["clips"].shape == (inputs.n_clips, 2)


def test_train_evaluate_and_model_files(trained, data):
    root, ann, items, inputs = data
    assert trained.classes == ["1", "10"]
    hist = trained.meta["training"]["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    rep = evaluate_skill(trained, items[:2] + items[-2:], inputs=inputs[:2] + inputs[-2:])
    assert set(rep) >= {"video", "audio", "fusion", "chance"} and rep["n_videos"] == 4
    loaded = SkillModel.load(root / "model")
    a, b = trained.predict_inputs(inputs[1]), loaded.predict_inputs(inputs[1])
    np.testing.assert_allclose(a["fusion"], b["fusion"], rtol=1e-5, atol=1e-6)
    assert loaded.config == CFG


def test_inputs_cached_on_disk(data, monkeypatch):
    root, _, items, inputs = data
    direct = skill_mod.skill_inputs(items[3].path, CFG)
    clips, mel = inputs[3].arrays()
    assert isinstance(inputs[3].clips, type(root)) and isinstance(clips, np.memmap)
    np.testing.assert_array_equal(direct.clips, clips)
    np.testing.assert_array_equal(direct.mel, mel)
    assert inputs[3].roi == direct.roi and np.allclose(inputs[3].times, direct.times)

    def no_decoding(*a, **k):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(skill_mod, "skill_inputs", no_decoding)
    again = load_skill_inputs(items[3:4], CFG, cache_dir=root / "cache")
    assert again[0].clips == inputs[3].clips
    with pytest.raises(AssertionError, match="cache"):       # other data settings: another entry
        load_skill_inputs(items[3:4], SkillConfig(**{**CFG.__dict__, "clip_length": 4}), cache_dir=root / "cache")


def test_training_from_disk_equals_memory_and_resumes_exactly(data, tmp_path):
    """Cached (memory-mapped) and in-memory inputs train the same weights; a run interrupted after
    one epoch and resumed from its checkpoint ends bit-identical to an uninterrupted run."""
    _, _, items, inputs = data
    sub = [0, 1, PER_LEVEL, PER_LEVEL + 1]
    its, cached = [items[i] for i in sub], [inputs[i] for i in sub]
    memory = [skill_mod.SkillInputs(*(np.array(a) for a in v.arrays()), v.times, v.roi, v.roi_source) for v in cached]
    tc = TrainConfig(epochs=3, batch_size=8, weight_decay=1e-4, patience=None, seed=1)
    straight = train_skill(its, CFG, tc, val_fraction=0.0, inputs=memory)
    train_skill(its, CFG, TrainConfig(**{**tc.to_dict(), "epochs": 1}), val_fraction=0.0, inputs=cached,
                checkpoint_dir=tmp_path)
    resumed = train_skill(its, CFG, tc, val_fraction=0.0, inputs=cached, checkpoint_dir=tmp_path)
    assert resumed.meta["training"]["resumed_from"] == 1
    a, b = straight.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ParameterError, match="other training data"):
        train_skill(its[:3] + items[-1:], CFG, tc, val_fraction=0.0, inputs=cached[:3] + inputs[-1:],
                    checkpoint_dir=tmp_path)


def test_clip_augmentation_flips_and_permutes_colours():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 2, 4, 5)
    m = torch.randn(64, 8, 6)
    y, m2 = skill_mod.augment_clips([x, m])
    assert m2 is m and y.shape == x.shape
    same = [torch.equal(y[i], x[i]) for i in range(64)]
    assert 0 < sum(same) < 32                       # most clips changed, a few by chance not
    for i in range(64):                             # each clip: its own colours, maybe mirrored
        ok = [torch.equal(torch.sort(y[i], 0).values, torch.sort(x[i].flip(-1) if f else x[i], 0).values)
              for f in (False, True)]
        assert any(ok)
    y2 = skill_mod.augment_clips([x, m], color=False)[0]
    assert all(torch.equal(y2[i], x[i]) or torch.equal(y2[i], x[i].flip(-1)) for i in range(64))
    with pytest.raises(ParameterError, match="augment"):
        SkillConfig(augment="mixup")


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
    small = root / "small.csv"
    small.write_text("".join(ann.read_text().splitlines(keepends=True)[i] for i in (0, 1, 2, -2, -1)))
    assert main(["skill", "evaluate", str(small), "-m", str(root / "model"), "--json"]) == 0
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


def test_cli_train_tiny_and_resume(tmp_path, data, capsys):
    root, ann = data[0], data[1]
    small = tmp_path / "small.csv"
    lines = ann.read_text().splitlines(keepends=True)
    small.write_text("video_id,player_level\n" + "".join(lines[1:4] + lines[-3:]))
    args = ["skill", "train", str(small), "--videos", str(root), "-o", str(tmp_path / "m"), "--clip-length", "8", "--clip-size", "32x32",
            "--max-clips", "2", "--n-mels", "32", "--width-factor", "0.0625", "--audio-width-factor", "0.0625",
            "--features", "8:4", "--val-fraction", "0.34"]
    assert main(args + ["--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "resumed" not in out
    assert (tmp_path / "m" / "train_state.safetensors").is_file() and any((tmp_path / "m" / "cache").iterdir())
    m = SkillModel.load(tmp_path / "m")
    assert m.classes == ["1", "10"] and m.net.fusion_head.in_features == 12
    assert main(args + ["--epochs", "2"]) == 0               # more epochs: continues from epoch 1
    assert "resumed from the checkpoint after epoch 1" in capsys.readouterr().out
    assert main(args + ["--epochs", "2", "--fresh", "--cache", "none"]) == 0
    assert "resumed" not in capsys.readouterr().out
    assert main(["skill", "train", str(ann), "-o", str(tmp_path / "m2"), "--roi", "1,2"]) == 2
    assert "x0,y0,x1,y1" in capsys.readouterr().err
