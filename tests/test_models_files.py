"""musicperf model files: safetensors + JSON round trip, never pickles, clear errors."""

import json

import pytest
import torch
from safetensors import safe_open

from _models_synth import one_thread
from musicperf.errors import ModelError, ParameterError
from musicperf.models import GestureNet, build_backbone, load_model, save_model


@pytest.fixture(autouse=True, scope="module")
def _threads():
    with one_thread():
        yield


META = {"classes": ["nodding", "freeze", "vibrato"], "fps": 25.0, "clip_length": 16, "taxonomy": "18 classes (Table 2 of 001)"}


@pytest.mark.parametrize("design", ["single", "per_class"])
def test_roundtrip_identical_outputs(tmp_path, design):
    torch.manual_seed(0)
    net = GestureNet(build_backbone("resnet10", width_factor=0.0625, n_classes=0), 3, design=design,
                     hidden=(8, 8, 8), normalization="hara2018").eval()
    clips = torch.rand(2, 3, 8, 32, 32)
    save_model(tmp_path / "m", net, META)
    model, meta = load_model(tmp_path / "m")
    assert not model.training
    with torch.no_grad():
        assert torch.equal(model(clips), net(clips))
    assert meta["classes"] == META["classes"] and meta["fps"] == 25.0 and meta["clip_length"] == 16
    assert meta["architecture"]["normalization"]["name"] == "hara2018"
    assert meta["architecture"]["backbone"]["depth"] == 10
    with safe_open(str(tmp_path / "m" / "model.safetensors"), framework="pt") as f:
        assert f.metadata()["format"] == "musicperf-gesturenet"
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]


def test_save_requires_metadata(tmp_path):
    net = GestureNet(build_backbone("resnet10", width_factor=0.0625, n_classes=0), 2)
    with pytest.raises(ParameterError, match="fps"):
        save_model(tmp_path / "m", net, {"classes": ["a", "b"], "clip_length": 16})
    with pytest.raises(ParameterError, match="3 classes but the model has 2"):
        save_model(tmp_path / "m", net, {**META})


def test_load_errors(tmp_path):
    with pytest.raises(ModelError, match="model.json is missing"):
        load_model(tmp_path)
    net = GestureNet(build_backbone("resnet10", width_factor=0.0625, n_classes=0), 3)
    save_model(tmp_path / "m", net, META)
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    doc["architecture"]["head"]["n_classes"] = 4
    doc["classes"].append("x")
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="wrong shapes"):
        load_model(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot read"):
        load_model(tmp_path / "m")


def test_weights_written_on_a_full_disk_give_one_line_and_no_file(tmp_path, monkeypatch):
    """safetensors raises its own error (not an OSError) when the disk fills: it becomes an
    OutputError naming the file, and nothing half-written is left."""
    import safetensors.torch
    import torch
    from safetensors import SafetensorError

    from musicperf.errors import OutputError
    from musicperf.models.files import write_weights

    def full(tensors, filename, metadata=None):
        open(filename, "wb").write(b"half")
        raise SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(OutputError, match=r"cannot write model weights '.*head.safetensors': SafetensorError"):
        write_weights(tmp_path / "m" / "head.safetensors", {"w": torch.zeros(2)})
    assert [p.name for p in (tmp_path / "m").iterdir()] == []
