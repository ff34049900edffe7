"""Tests of the audio encoders (musicperf.models.audio) and fusion models (musicperf.models.fusion)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from musicperf.errors import ParameterError  # noqa: E402
from musicperf.models.audio import AudioMLP, MelCNN  # noqa: E402
from musicperf.models.fusion import (  # noqa: E402
    EarlyFusion,
    LateFusion,
    build_fusion_model,
    fusion_from_config,
    parse_modalities,
)

N_CLASSES = 5


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _inputs(batch=4):
    return {"video": torch.randn(batch, 400), "audio": torch.randn(batch, 28, 108)}


def _assert_all_params_get_gradients(model):
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, missing
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


# ---------------------------------------------------------------------------------- encoders


def test_audio_mlp_is_figure_4a():
    net = AudioMLP()
    linear = [m for m in net.net if isinstance(m, torch.nn.Linear)]
    assert [l.in_features for l in linear] == [3024, 1024, 512, 512]  # 3 hidden layers
    assert linear[-1].out_features == 400
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.net) == 3
    assert isinstance(net.net[-2], torch.nn.Dropout)  # dropout at the end
    x = torch.randn(3, 28, 108, requires_grad=True)
    out = net(x)
    assert out.shape == (3, 400)
    out.sum().backward()
    _assert_all_params_get_gradients(net)
    assert x.grad is not None and x.grad.shape == x.shape
    # Flattened input gives the same result as the matrix.
    net.eval()
    torch.testing.assert_close(net(x.detach()), net(x.detach().reshape(3, -1)))


def test_audio_mlp_normalization_is_fitted_and_saved(tmp_path):
    from safetensors.torch import load_file, save_file

    x = torch.randn(64, 28, 108) * torch.linspace(0.01, 1000, 108) + 50
    net = AudioMLP().fit_normalization(x)
    z = (x.reshape(64, -1) - net.mean) / net.std
    torch.testing.assert_close(z.mean(0), torch.zeros(3024), atol=1e-3, rtol=0)
    torch.testing.assert_close(z.std(0), torch.ones(3024), atol=1e-3, rtol=0)
    save_file(net.state_dict(), tmp_path / "audio.safetensors")
    other = AudioMLP()
    other.load_state_dict(load_file(tmp_path / "audio.safetensors"))
    torch.testing.assert_close(other.mean, net.mean)
    net.eval(), other.eval()
    torch.testing.assert_close(other(x[:2]), net(x[:2]))


def test_audio_mlp_rejects_wrong_feature_count():
    with pytest.raises(ParameterError, match="3024 values per sample"):
        AudioMLP()(torch.zeros(2, 28, 132))
    with pytest.raises(ParameterError, match="at least 2"):
        AudioMLP().fit_normalization(torch.zeros(1, 28, 108))


@pytest.mark.parametrize("n_frames", [28, 5])
def test_mel_cnn_forward_backward(n_frames):
    net = MelCNN(n_mels=64, channels=(8, 16, 32, 32))
    x = torch.randn(3, 64, n_frames) * 20 - 40  # dB-like values
    out = net(x)
    assert out.shape == (3, 400)
    out.sum().backward()
    _assert_all_params_get_gradients(net)
    assert net(x[:, None]).shape == (3, 400)
    with pytest.raises(ParameterError, match=r"\(B, 64, n_frames\)"):
        net(torch.zeros(2, 128, 28))


# ------------------------------------------------------------------------------ modalities


@pytest.mark.parametrize(
    "given, expected",
    [
        (["video"], ("video",)),
        ("audio", ("audio",)),
        (["audio", "video"], ("video", "audio")),
        ("video, audio", ("video", "audio")),
        (("Video", "AUDIO"), ("video", "audio")),
    ],
)
def test_parse_modalities(given, expected):
    assert parse_modalities(given) == expected


@pytest.mark.parametrize("bad, match", [([], "empty"), (["sound"], "unknown"), (["audio", "audio"], "twice")])
def test_parse_modalities_errors(bad, match):
    with pytest.raises(ParameterError, match=match):
        parse_modalities(bad)


# ----------------------------------------------------------------------------- fusion models


@pytest.mark.parametrize("fusion", ["early", "late"])
@pytest.mark.parametrize("mods", [["video"], ["audio"], ["video", "audio"]])
def test_fusion_forward_backward_for_every_modality_switch(fusion, mods):
    model = build_fusion_model(modalities=mods, n_classes=N_CLASSES, fusion=fusion, combine="learned")
    assert model.modalities == parse_modalities(mods)
    inputs = {m: v for m, v in _inputs().items() if m in mods}
    out = model(**inputs)
    assert out.shape == (4, N_CLASSES)
    out.sum().backward()
    _assert_all_params_get_gradients(model)
    if "audio" not in mods:
        assert not any(isinstance(m, AudioMLP) for m in model.modules())


def test_early_fusion_concatenates_400_plus_400():
    model = build_fusion_model(modalities=["video", "audio"], n_classes=18)
    assert isinstance(model, EarlyFusion)
    first = model.classifier.net[0]
    assert first.in_features == 800  # Figure 4b: 400 video + 400 audio features
    linear = [m for m in model.classifier.net if isinstance(m, torch.nn.Linear)]
    assert len(linear) == 4 and linear[-1].out_features == 18  # 3 hidden layers + output
    # Zeroing the audio half of the first layer's weights makes the audio irrelevant: the
    # concatenation order is [video, audio].
    with torch.no_grad():
        first.weight[:, 400:] = 0
    model.eval()
    a, b = _inputs(), _inputs()
    torch.testing.assert_close(model(video=a["video"], audio=a["audio"]), model(video=a["video"], audio=b["audio"]))


def test_fusion_needs_its_inputs():
    model = build_fusion_model(modalities=["video", "audio"], n_classes=N_CLASSES)
    with pytest.raises(ParameterError, match="no audio input"):
        model(video=torch.zeros(2, 400))
    with pytest.raises(ParameterError, match="batch sizes differ"):
        model(video=torch.zeros(2, 400), audio=torch.zeros(3, 28, 108))
    with pytest.raises(ParameterError, match=r"expected \(B, 400\)"):
        model(video=torch.zeros(2, 512), audio=torch.zeros(2, 28, 108))
    with pytest.raises(ParameterError, match="fusion"):
        build_fusion_model(modalities=["video"], n_classes=3, fusion="middle")


def test_late_fusion_mean_averages_probabilities():
    model = build_fusion_model(modalities=["video", "audio"], n_classes=N_CLASSES, fusion="late")
    assert isinstance(model, LateFusion) and not list(p for n, p in model.named_parameters() if n == "mix")
    model.eval()
    x = _inputs()
    parts = model.modality_logits(**x)
    expected = (torch.sigmoid(parts["video"]) + torch.sigmoid(parts["audio"])) / 2
    torch.testing.assert_close(torch.sigmoid(model(**x)), expected, atol=1e-6, rtol=1e-5)


def test_late_fusion_learned_weights_start_uniform_and_move():
    model = build_fusion_model(modalities=["video", "audio"], n_classes=N_CLASSES, fusion="late", combine="learned")
    torch.testing.assert_close(model.weights(), torch.full((2, N_CLASSES), 0.5))
    model.eval()
    x = _inputs()
    parts = model.modality_logits(**x)
    # Saturated logits stay finite through the stable log-sum-exp combination.
    big = model.forward(video=x["video"] * 1e4, audio=x["audio"])
    assert torch.isfinite(big).all()
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**x), torch.ones(4, N_CLASSES))
    loss.backward()
    assert model.mix.grad is not None and model.mix.grad.abs().sum() > 0
    assert parts["video"].shape == (4, N_CLASSES)


def test_classifier_and_encoder_size_errors():
    with pytest.raises(ParameterError, match="no feature size"):
        EarlyFusion({"video": torch.nn.Identity()}, {}, 3)
    with pytest.raises(ParameterError, match="dropout"):
        AudioMLP(dropout=1.0)
    with pytest.raises(ParameterError, match="combine"):
        build_fusion_model(modalities=["video", "audio"], n_classes=3, fusion="late", combine="max")
    with pytest.raises(ParameterError, match="audio input"):
        build_fusion_model(modalities=["audio"], n_classes=3, audio_input="wave")


# --------------------------------------------------------------------------- tiny training


def _synthetic_set(rng, n, *, n_classes=3):
    """Audio carries the labels, video is noise: class c raises timbral columns 4c .. 4c + 3.

    The audio is 28 windows x 27 base features (``deltas=0``) to keep the test fast.
    """
    y = (rng.random((n, n_classes)) < 0.5).astype(np.float32)
    audio = rng.standard_normal((n, 28, 27)).astype(np.float32)
    for c in range(n_classes):
        audio[:, :, 4 * c : 4 * c + 4] += 1.5 * y[:, c : c + 1, None]
    video = rng.standard_normal((n, 400)).astype(np.float32)
    return torch.from_numpy(video), torch.from_numpy(audio), torch.from_numpy(y)


def _train_and_score(mods, fusion, data, test):
    torch.manual_seed(0)
    video, audio, y = data
    model = build_fusion_model(
        modalities=mods, n_classes=y.shape[1], fusion=fusion,
        audio_encoder=AudioMLP(28 * 27, hidden=(64, 32, 32), out_features=16, dropout=0.1),
        audio_dim=16, hidden=(32, 16, 16), dropout=0.1,
    )
    if "audio" in mods:
        model.encoders["audio"].fit_normalization(audio)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    inputs = {"video": video, "audio": audio}
    feed = {m: inputs[m] for m in model.modalities}
    for _ in range(200):
        opt.zero_grad()
        # MSE on the sigmoid outputs, the loss of 001 (section 5.3).
        loss = torch.nn.functional.mse_loss(torch.sigmoid(model(**feed)), y)
        loss.backward()
        opt.step()
    model.eval()
    tv, ta, ty = test
    with torch.no_grad():
        pred = torch.sigmoid(model(**{m: {"video": tv, "audio": ta}[m] for m in model.modalities})) > 0.5
    return (pred == ty.bool()).float().mean().item()


@pytest.fixture
def one_thread():
    # On a shared 2-core machine, torch's intra-op threads make these tiny matmuls up to 20x
    # slower under load; one thread keeps the training test at a few seconds.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_tiny_training_learns_label_carried_by_audio(one_thread):
    rng = np.random.default_rng(0)
    train, test = _synthetic_set(rng, 192), _synthetic_set(rng, 128)
    acc_video = _train_and_score(["video"], "early", train, test)
    acc_audio = _train_and_score(["audio"], "early", train, test)
    acc_early = _train_and_score(["video", "audio"], "early", train, test)
    acc_late = _train_and_score(["video", "audio"], "late", train, test)
    assert acc_video < 0.65  # video is noise: chance level on held-out data
    assert acc_audio > 0.95
    assert acc_early > 0.9
    assert acc_late > 0.9


@pytest.mark.parametrize("fusion, audio_input", [("early", "timbral"), ("late", "mel")])
def test_config_round_trip_through_safetensors(fusion, audio_input, tmp_path):
    import json

    from safetensors.torch import load_file, save_file

    model = build_fusion_model(modalities=["video", "audio"], n_classes=4, fusion=fusion, combine="learned",
                               audio_input=audio_input, n_mels=32)
    if audio_input == "timbral":
        model.encoders["audio"].fit_normalization(torch.randn(8, 28, 108) * 7 + 3)
    text = json.dumps(model.config())
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp_path / "m.safetensors")
    again = fusion_from_config(json.loads(text))
    again.load_state_dict(load_file(tmp_path / "m.safetensors"))
    model.eval(), again.eval()
    audio = torch.randn(2, 28, 108) if audio_input == "timbral" else torch.randn(2, 32, 28)
    x = {"video": torch.randn(2, 400), "audio": audio}
    torch.testing.assert_close(again(**x), model(**x))
    with pytest.raises(ParameterError, match="malformed"):
        fusion_from_config({"modalities": ["audio"]})


def test_any_mel_cnn_of_003_plugs_in_as_audio_encoder():
    audio2d = pytest.importorskip("musicperf.models.audio2d")
    net = audio2d.ChoiCNN(n_mels=32, width_factor=0.125)
    model = build_fusion_model(modalities=["video", "audio"], n_classes=3, audio_encoder=net,
                               audio_dim=net.feature_dim)
    out = model(video=torch.randn(2, 400), audio=torch.randn(2, 32, 28))  # mel_patches layout
    assert out.shape == (2, 3)
    out.sum().backward()
    assert model.config()["encoders"]["audio"]["type"] == "choi"


def test_freeze_is_learned_from_the_sound_of_synthetic_performances(one_thread):
    """End to end on the synthetic performer's audio: a Freeze is silent, so the [audio] model
    learns it from timbral features of two performances and finds it in a third."""
    synth = pytest.importorskip("musicperf.synth")
    from musicperf.features.audio import timbral_features
    from musicperf.labels.samples import sample_labels, sample_starts
    from musicperf.synth.truth import LABEL_NAMES, frame_labels

    def performance(seed):
        r = synth.render(seconds=20, seed=seed, gestures=["Freeze", "Nodding"], ensure_all=True, gesture_rate=3)
        starts = sample_starts(r.n_frames, length=16, stride=16)
        # at the performer's own 48 kHz (resampling is load_performance_audio's job, tested elsewhere)
        x = timbral_features(r.audio, r.sr, segment_starts=starts / r.fps, segment_duration=16 / r.fps)
        labels = frame_labels(r.truth)[:, [LABEL_NAMES.index("Freeze")]]
        return torch.from_numpy(x), torch.from_numpy(sample_labels(labels, starts, length=16))

    (xa, ya), (xb, yb), (xt, yt) = performance(1), performance(2), performance(3)
    x, y = torch.cat([xa, xb]), torch.cat([ya, yb])
    assert 5 <= y.sum() <= len(y) - 5 and yt.sum() >= 3
    torch.manual_seed(0)
    encoder = AudioMLP(hidden=(64, 32, 32), out_features=16, dropout=0.1).fit_normalization(x)
    model = build_fusion_model(modalities=["audio"], n_classes=1, audio_encoder=encoder, audio_dim=16,
                               hidden=(32, 16, 16), dropout=0.1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(100):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(audio=x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        pred = torch.sigmoid(model(audio=xt)) > 0.5
    truth = yt > 0
    f1 = 2 * (pred & truth).sum().item() / max(pred.sum().item() + truth.sum().item(), 1)
    assert f1 > 0.75, f1  # 0.90 measured
