"""2-D backbones (ResNet-2D, Inception-v3) and the audio CNNs of 003: shapes, training step,
torchvision key layouts and strict loading of users' weights."""

from __future__ import annotations

import pytest
import torch

from musicperf.errors import ModelError, ParameterError
from musicperf.models.audio2d import AUDIO_NETWORKS, audio_cnn_from_config, build_audio_cnn
from musicperf.models.resnet2d import (
    InceptionV3,
    InceptionV3Config,
    build_image_backbone,
    image_backbone_from_config,
    load_image_backbone,
    resnet2d,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny models: intra-op threads only add synchronisation cost on a loaded 2-core machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name,shape", [("resnet18", (2, 3, 48, 40)), ("resnet34", (2, 3, 48, 40)),
                                        ("resnet50", (2, 3, 48, 40)), ("inception_v3", (2, 3, 75, 80))])
def test_image_backbones_forward_backward(name, shape):
    torch.manual_seed(0)
    net = build_image_backbone(name, n_classes=5, width_factor=0.0625)
    out = net(torch.rand(shape))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad and p.dim() > 1 and "AuxLogits" not in str(p))
    feats = net.forward_features(torch.rand(shape))
    assert feats.shape == (2, net.feature_dim)
    # rebuilt from its configuration, the same state dict fits
    clone = image_backbone_from_config(net.config.to_dict())
    clone.load_state_dict(net.state_dict())


@pytest.mark.parametrize("name", AUDIO_NETWORKS)
def test_audio_cnns_forward_backward_any_length(name):
    torch.manual_seed(0)
    net = build_audio_cnn(name, n_mels=32, width_factor=0.0625)
    for frames in (1, 7, 40):
        out = net(torch.randn(3, 32, frames) * 20 - 40)
        assert out.shape == (3, net.feature_dim)
    out.sum().backward()
    clone = audio_cnn_from_config(net.config())
    clone.load_state_dict(net.state_dict())
    with pytest.raises(ParameterError, match="log-mel"):
        net(torch.zeros(2, 16, 10))


def test_xception_first_filter_is_48x3():
    net = build_audio_cnn("xception", n_mels=96, width_factor=0.0625)
    assert tuple(net.entry[0].weight.shape[2:]) == (48, 3)


def test_paper_sizes():
    # torchvision's published parameter counts: resnet18 11,689,512; inception_v3 (with aux) 27,161,264
    assert _n_params(resnet2d("resnet18")) == 11_689_512
    assert _n_params(InceptionV3(InceptionV3Config(aux_logits=True))) == 27_161_264
    # 003: Han 1.5M, Choi 2.4M, Xception 9.6M parameters (with the 1024-unit penultimate layer)
    for name, target in (("han", 1.5e6), ("choi", 2.4e6), ("xception", 9.6e6)):
        net = build_audio_cnn(name, n_mels=96)
        total = _n_params(net) + net.feature_dim * 1024 + 1024
        assert abs(total - target) / target < 0.15, (name, total)


def test_torchvision_key_names():
    keys = set(resnet2d("resnet18", width_factor=0.0625).state_dict())
    for k in ("conv1.weight", "bn1.running_var", "layer1.0.conv2.weight", "layer2.0.downsample.0.weight",
              "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.bias", "fc.weight"):
        assert k in keys
    keys = set(InceptionV3(InceptionV3Config(aux_logits=True, width_factor=0.0625)).state_dict())
    for k in ("Conv2d_1a_3x3.conv.weight", "Conv2d_4a_3x3.bn.running_mean", "Mixed_5b.branch_pool.conv.weight",
              "Mixed_6e.branch7x7dbl_5.bn.weight", "Mixed_7c.branch3x3dbl_3b.conv.weight",
              "AuxLogits.conv1.conv.weight", "AuxLogits.fc.bias", "fc.weight"):
        assert k in keys


def test_load_user_weights_strictly(tmp_path):
    torch.manual_seed(1)
    net = resnet2d("resnet34", n_classes=7, width_factor=0.0625).eval()
    path = tmp_path / "resnet34.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    loaded = load_image_backbone(path)
    x = torch.rand(2, 3, 40, 40)
    torch.testing.assert_close(loaded(x), net(x))
    assert loaded.config.depth == 34 and loaded.config.n_classes == 7

    inc = InceptionV3(InceptionV3Config(n_classes=4, aux_logits=True, width_factor=0.0625)).eval()
    torch.save(inc.state_dict(), tmp_path / "inc.pth")
    got = load_image_backbone(tmp_path / "inc.pth")
    x = torch.rand(2, 3, 80, 80)
    torch.testing.assert_close(got(x), inc(x))

    # a partial file lists what is missing; a foreign one says what it is not
    state = net.state_dict()
    del state["layer3.0.bn1.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ModelError, match="missing keys: layer3.0.bn1.weight.*unexpected keys: extra.weight"):
        load_image_backbone(tmp_path / "bad.pth")
    torch.save({"foo.weight": torch.zeros(2)}, tmp_path / "foreign.pth")
    with pytest.raises(ModelError, match="neither"):
        load_image_backbone(tmp_path / "foreign.pth")


def test_rgb_weights_adapted_to_spectrograms(tmp_path):
    torch.manual_seed(2)
    net = resnet2d("resnet18", n_classes=0, width_factor=0.0625).eval()
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    mono = load_image_backbone(tmp_path / "r18.pth", in_channels=1)
    x = torch.rand(2, 1, 32, 32)
    # a grey image replicated to RGB gives the same features
    torch.testing.assert_close(mono(x), net(x.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)
