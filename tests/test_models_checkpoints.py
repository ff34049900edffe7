"""External checkpoints: kenshohara/3D-ResNets-PyTorch and torchvision r3d_18 files, written in
the test with the reference key names, load into models that give identical outputs."""

import pickle

import pytest
import torch
from torch import nn

from _models_synth import one_thread
from musicperf.errors import ModelError
from musicperf.models import build_backbone, load_video_backbone
from musicperf.models.checkpoints import NORMALIZATIONS, torchvision_to_hara_keys


@pytest.fixture(autouse=True, scope="module")
def _threads():
    with one_thread():
        yield


def _randomise_bn(model, seed=0):
    """Random batch-norm statistics and affine parameters, so a wrong mapping shows in outputs."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model


def _hara_checkpoint(path, model, arch, *, data_parallel=True, scheduler=False):
    """Save as kenshohara's main.py does: {'epoch', 'arch', 'state_dict', 'optimizer'} (+scheduler)."""
    sd = model.state_dict()
    if data_parallel:
        sd = {f"module.{k}": v for k, v in sd.items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    ckpt = {"epoch": 200, "arch": arch, "state_dict": sd, "optimizer": opt.state_dict()}
    if scheduler:
        ckpt["scheduler"] = torch.optim.lr_scheduler.ReduceLROnPlateau(opt).state_dict()
    torch.save(ckpt, path)


CLIP = torch.rand(2, 3, 16, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("depth", [10, 18, 34, 50])
@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_hara_checkpoint_roundtrip(tmp_path, depth, shortcut):
    torch.manual_seed(depth)
    ref = _randomise_bn(build_backbone(f"resnet{depth}", shortcut=shortcut, width_factor=0.0625, n_classes=400)).eval()
    path = tmp_path / f"resnet-{depth}-kinetics.pth"
    _hara_checkpoint(path, ref, f"resnet-{depth}")
    model = load_video_backbone(path)
    assert not model.training
    assert model.config.depth == depth and model.config.shortcut == shortcut
    with torch.no_grad():
        assert torch.equal(model(CLIP), ref(CLIP))
        feats = load_video_backbone(path, keep_head=False)(CLIP)
        assert torch.equal(feats, ref.forward_features(CLIP))
    assert feats.shape == (2, ref.feature_dim)
    assert model.normalization == NORMALIZATIONS["hara2018"]
    assert model.source["arch"] == f"resnet-{depth}" and model.source["layout"] == "hara"


@pytest.mark.parametrize("n_classes", [700, 1039])
def test_hara2020_checkpoints_detected(tmp_path, n_classes):
    ref = _randomise_bn(build_backbone("resnet18", width_factor=0.0625, n_classes=n_classes)).eval()
    path = tmp_path / "r3d18_K_200ep.pth"
    _hara_checkpoint(path, ref, "resnet-18", data_parallel=False, scheduler=True)
    model = load_video_backbone(path)
    assert model.config.n_classes == n_classes
    assert model.normalization.name == "hara2020"
    with torch.no_grad():
        assert torch.equal(model(CLIP), ref(CLIP))


def test_old_checkpoint_without_num_batches_tracked(tmp_path):
    ref = _randomise_bn(build_backbone("resnet34", shortcut="A", width_factor=0.0625)).eval()
    sd = {f"module.{k}": v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save({"epoch": 1, "arch": "resnet-34", "state_dict": sd, "optimizer": {}}, tmp_path / "old.pth")
    with torch.no_grad():
        assert torch.equal(load_video_backbone(tmp_path / "old.pth")(CLIP), ref(CLIP))


# -- an independent re-implementation of torchvision's r3d_18 module layout ------------------

class _TVBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(inp, planes, 3, stride=stride, padding=1, bias=False), nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv3d(planes, planes, 3, padding=1, bias=False), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inp != planes:
            self.downsample = nn.Sequential(nn.Conv3d(inp, planes, 1, stride=stride, bias=False), nn.BatchNorm3d(planes))

    def forward(self, x):
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + res)


class _TorchvisionR3D18(nn.Module):
    def __init__(self, widths=(4, 8, 16, 32), n_classes=400):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, widths[0], (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
                                  nn.BatchNorm3d(widths[0]), nn.ReLU(inplace=True))
        inp = widths[0]
        for i, (w, s) in enumerate(zip(widths, (1, 2, 2, 2)), start=1):
            setattr(self, f"layer{i}", nn.Sequential(_TVBlock(inp, w, s), _TVBlock(w, w, 1)))
            inp = w
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(inp, n_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def test_torchvision_r3d_18_state_dict(tmp_path):
    torch.manual_seed(3)
    ref = _randomise_bn(_TorchvisionR3D18()).eval()
    keys = set(ref.state_dict())
    assert {"stem.0.weight", "stem.1.running_var", "layer1.0.conv1.0.weight", "layer1.0.conv1.1.bias",
            "layer2.0.conv2.1.weight", "layer2.0.downsample.0.weight", "layer4.1.conv2.0.weight", "fc.bias"} <= keys
    torch.save(ref.state_dict(), tmp_path / "r3d_18-b3b3357e.pth")
    model = load_video_backbone(tmp_path / "r3d_18-b3b3357e.pth")
    assert model.config.stem == "torchvision" and model.normalization.name == "torchvision"
    with torch.no_grad():
        assert torch.equal(model(CLIP), ref(CLIP))
        pooled = ref.avgpool(ref.layer4(ref.layer3(ref.layer2(ref.layer1(ref.stem(CLIP)))))).flatten(1)
        assert torch.equal(load_video_backbone(tmp_path / "r3d_18-b3b3357e.pth", keep_head=False)(CLIP), pooled)
    assert "layer1.0.bn1.weight" in torchvision_to_hara_keys(ref.state_dict())


def test_partial_checkpoint_lists_missing_keys(tmp_path):
    ref = build_backbone("resnet18", width_factor=0.0625)
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith("layer4.1.")}
    torch.save({"arch": "resnet-18", "state_dict": sd}, tmp_path / "partial.pth")
    with pytest.raises(ModelError, match=r"missing keys: layer4\.1\.conv1\.weight"):
        load_video_backbone(tmp_path / "partial.pth")


def test_unexpected_and_misshaped_keys_are_listed(tmp_path):
    ref = build_backbone("resnet18", width_factor=0.0625)
    sd = dict(ref.state_dict())
    sd["extra.weight"] = torch.zeros(3)
    sd["layer2.0.conv2.weight"] = torch.zeros(8, 8, 1, 3, 3)
    torch.save({"arch": "resnet-18", "state_dict": sd}, tmp_path / "bad.pth")
    with pytest.raises(ModelError) as err:
        load_video_backbone(tmp_path / "bad.pth")
    assert "unexpected keys: extra.weight" in str(err.value) and "wrong shapes: layer2.0.conv2.weight" in str(err.value)
    assert "bad.pth" in str(err.value)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_unsafe_or_wrong_files_are_refused(tmp_path, capsys):
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"state_dict": _Evil()}))
    with pytest.raises(ModelError, match="safe loader"):
        load_video_backbone(tmp_path / "evil.pth")
    assert "must never run" not in capsys.readouterr().out
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(ModelError, match="text.pth"):
        load_video_backbone(tmp_path / "text.pth")
    with pytest.raises(ModelError, match="does not exist"):
        load_video_backbone(tmp_path / "missing.pth")
    torch.save({"state_dict": {"conv1.weight": torch.zeros(8, 3, 7, 7)}}, tmp_path / "2d.pth")
    with pytest.raises(ModelError, match="2D model"):
        load_video_backbone(tmp_path / "2d.pth")
    torch.save({"encoder.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(ModelError, match="neither Hara"):
        load_video_backbone(tmp_path / "other.pth")
