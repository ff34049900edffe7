"""3D ResNet backbones: every registered model forward and backward on a tiny input, the
papers' shapes on a full ResNet-34, shortcut A, trainable modes, heads and GestureNet."""

import pytest
import torch
import torch.nn.functional as F

from _models_synth import one_thread
from musicperf.errors import ParameterError
from musicperf.models import (
    BACKBONES,
    GestureNet,
    PerClassHead,
    SingleModelHead,
    build_backbone,
    scores_from_logits,
    set_trainable,
)
from musicperf.models.resnet3d import ZeroPadShortcut


@pytest.fixture(autouse=True, scope="module")
def _threads():
    with one_thread():
        yield


@pytest.mark.parametrize("name", BACKBONES)
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_every_backbone_forward_backward(name, shortcut):
    torch.manual_seed(0)
    net = build_backbone(name, shortcut=shortcut, width_factor=0.0625, n_classes=3)
    x = torch.rand(2, 3, 8, 32, 32, requires_grad=True)
    y = net(x)
    assert y.shape == (2, 3)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.parameters())
    feats = net.forward_features(x)
    assert feats.shape == (2, net.feature_dim)
    assert torch.allclose(net.fc(feats), y, atol=1e-6)
    has_down = any("downsample" in k for k in net.state_dict())
    assert has_down == (shortcut == "B" or name == "r3d_18")  # r3d_18 is always shortcut B


def test_resnet34_paper_shapes():
    torch.manual_seed(0)
    net = build_backbone("resnet34").eval()
    clip = torch.rand(1, 3, 16, 112, 112)
    with torch.no_grad():
        h = net.forward_conv4(clip)
        assert h.shape == (1, 256, 2, 7, 7)  # conv4 output cached for fine-tuning conv5
        f = net.forward_features_from_conv4(h)
        assert f.shape == (1, 512)
        assert net.fc(f).shape == (1, 400)
    n_params = sum(p.numel() for p in net.parameters())
    assert 63_000_000 < n_params < 64_000_000  # Hara et al. ResNet-34 (shortcut B): 63.7 M


def test_layer_structure_matches_hara():
    net = build_backbone("resnet50", n_classes=400)
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert net.conv1.kernel_size == (7, 7, 7) and net.conv1.stride == (1, 2, 2) and net.conv1.padding == (3, 3, 3)
    assert net.feature_dim == 2048
    tv = build_backbone("r3d_18")
    assert tv.conv1.kernel_size == (3, 7, 7) and tv.conv1.padding == (1, 3, 3)
    assert isinstance(tv.maxpool, torch.nn.Identity)


def test_shortcut_a_is_subsample_then_zero_pad(rng):
    x = torch.from_numpy(rng.normal(size=(2, 4, 5, 6, 7)).astype("float32"))
    out = ZeroPadShortcut(planes=10, stride=2)(x)
    expected = torch.zeros(2, 10, 3, 3, 4)
    expected[:, :4] = x[:, :, ::2, ::2, ::2]
    assert torch.equal(out, expected)
    assert torch.equal(F.avg_pool3d(x, 1, stride=2), x[:, :, ::2, ::2, ::2])


def test_bad_names_raise():
    with pytest.raises(ParameterError, match="unknown backbone"):
        build_backbone("i3d")
    with pytest.raises(ParameterError, match="depth 101"):
        build_backbone("resnet101")
    with pytest.raises(ParameterError, match="shortcut"):
        build_backbone("resnet18", shortcut="C")


def test_set_trainable_conv5_freezes_trunk_and_its_batchnorm():
    net = build_backbone("resnet18", width_factor=0.0625, n_classes=4)
    set_trainable(net, "conv5")
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert frozen and all(n.split(".")[0] in ("conv1", "bn1", "layer1", "layer2", "layer3") for n in frozen)
    assert all(p.requires_grad for n, p in net.named_parameters() if n.startswith(("layer4", "fc")))
    net.train()
    assert not net.layer3[0].bn1.training and not net.bn1.training and net.layer4[0].bn1.training
    before = net.layer2[0].bn1.running_mean.clone()
    net(torch.rand(2, 3, 8, 32, 32))
    assert torch.equal(before, net.layer2[0].bn1.running_mean)
    set_trainable(net, "none")
    assert not any(p.requires_grad for p in net.parameters())
    set_trainable(net, "all")
    assert all(p.requires_grad for p in net.parameters())
    with pytest.raises(ParameterError):
        set_trainable(net, "conv4")


@pytest.mark.parametrize("variant,n_linear,relus", [("100+50", 3, 0), ("300+150+100+50", 5, 0), ("200+50", 3, 0), ("200+50+ReLUs", 3, 2)])
def test_per_class_head_variants(variant, n_linear, relus):
    head = PerClassHead(512, variant)
    mods = list(head.net)
    assert sum(isinstance(m, torch.nn.Linear) for m in mods) == n_linear
    assert sum(isinstance(m, torch.nn.ReLU) for m in mods) == relus
    assert head(torch.rand(3, 512)).shape == (3, 2)
    with pytest.raises(ParameterError, match="Table 2"):
        PerClassHead(512, "10+5")


def test_single_model_head_three_hidden_relu_dropout():
    head = SingleModelHead(400, 7, hidden=(64, 32, 16), dropout=0.25)
    kinds = [type(m).__name__ for m in head.net]
    assert kinds == ["Linear", "ReLU", "Dropout"] * 3 + ["Linear"]
    assert head(torch.rand(5, 400)).shape == (5, 7)


def test_gesturenet_designs_and_input_stages():
    torch.manual_seed(0)
    clips = torch.rand(2, 3, 8, 32, 32)
    single = GestureNet(build_backbone("resnet10", width_factor=0.0625, n_classes=0), 3, hidden=(8, 8, 8)).eval()
    out = single(clips)
    assert out.shape == (2, 3)
    h = single.conv4(clips)
    single.input_stage = "conv4"
    assert torch.allclose(single(h), out, atol=1e-6)
    probs = scores_from_logits(out)
    assert ((probs > 0) & (probs < 1)).all()

    fc_net = GestureNet(build_backbone("resnet10", width_factor=0.0625, n_classes=400), 3, keep_fc=True)
    assert fc_net.head.in_features == 400 and fc_net(clips).shape == (2, 3)  # 001: the 400 fc outputs

    per = GestureNet(build_backbone("resnet10", width_factor=0.0625, n_classes=0), 4, design="per_class", variant="100+50").eval()
    logits = per(clips)
    assert logits.shape == (2, 4, 2)
    assert torch.allclose(per.predict_proba(clips), torch.sigmoid(logits[..., 0]))
    # each class has its own conv5 (000: one network per class), all fine-tuned
    assert len(per.head.conv5) == 4 and all(p.requires_grad for p in per.head.conv5.parameters())
    assert not any(p.requires_grad for p in per.backbone.layer3.parameters())
    logits.sum().backward()


def test_gesturenet_normalises_inputs():
    bb = build_backbone("resnet10", width_factor=0.0625, n_classes=0)
    net = GestureNet(bb, 2, normalization="hara2018").eval()
    clips = torch.rand(1, 3, 8, 32, 32)
    manual = bb.forward_conv4((clips * 255 - torch.tensor([114.7748, 107.7354, 99.4750]).view(1, 3, 1, 1, 1)))
    assert torch.allclose(net.conv4(clips), manual, rtol=1e-4, atol=1e-4)
