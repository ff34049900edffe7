"""Load users' external video-backbone checkpoints into :class:`ResNet3D`.

Two external layouts are understood:

* **kenshohara/3D-ResNets-PyTorch** (Hara et al. 2018 and its 2020 update): a torch pickle
  ``{'epoch', 'arch', 'state_dict', 'optimizer'[, 'scheduler']}`` whose keys may carry the
  ``module.`` prefix of ``nn.DataParallel``; names ``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
  ``layer2.0.downsample.0/1`` (shortcut B only), ``fc``. A bare state dict is accepted too.
* **torchvision** ``r3d_18``: a state dict with ``stem.0`` / ``stem.1`` and blocks
  ``layerN.i.conv1.0`` (conv) / ``conv1.1`` (batch norm), ``conv2.0`` / ``conv2.1``.

Depth, block type, shortcut type (A when there are no ``downsample`` parameters), stage widths,
``conv1`` temporal size and the number of ``fc`` classes (400 / 700 / 1039 ...) are read from the
tensors, so no option is needed for published checkpoints. A checkpoint that does not fit the
detected architecture is a :class:`~musicperf.errors.ModelError` listing missing and unexpected
keys: nothing is loaded with ``strict=False``.

External ``.pth`` files are torch pickles; they are read with ``torch.load(weights_only=True)``,
the restricted unpickler that only builds tensors and plain containers. musicperf's own model files
are safetensors + JSON (:mod:`musicperf.models.files`).

Normalisation (what the checkpoint family was trained with, on clips scaled to [0, 1]):

* ``"hara2018"``: the 2017-2018 repository (``resnet-34-kinetics.pth`` and the other 400-class
  Kinetics models): its default options subtract the ActivityNet mean ``[114.7748, 107.7354,
  99.4750]`` from 0-255 pixel values and do not divide by a standard deviation (``--std_norm``
  off). Expressed on [0, 1] input: mean ``/ 255``, std ``1 / 255``.
* ``"hara2020"``: the updated repository (Kinetics-700 ``r3d*_K_200ep`` with 700 classes,
  ``*_KM_200ep`` with 1039): inputs in [0, 1], Kinetics mean ``[0.4345, 0.4051, 0.3775]`` and std
  ``[0.2768, 0.2713, 0.2737]`` (``--mean_dataset kinetics``, mean and std normalisation on).
* ``"torchvision"``: ``r3d_18`` Kinetics-400 weights, mean ``[0.43216, 0.394666, 0.37645]``,
  std ``[0.22803, 0.22145, 0.216989]``.

Detection (a choice, documented in docs/models.md): torchvision layout -> ``torchvision``;
Hara layout with a ``scheduler`` entry (only the updated repository saves one) or 700 / 1039
classes -> ``hara2020``; otherwise ``hara2018``. Pass ``normalization=`` to override.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from musicperf.errors import ModelError, ParameterError
from musicperf.models.resnet3d import DEPTHS, Bottleneck, ResNet3D, ResNetConfig


@dataclass(frozen=True)
class Normalization:
    """Per-channel normalisation of RGB clips scaled to [0, 1]: ``(x - mean) / std``.

    Attributes
    ----------
    name : str
        Preset name (``"hara2018"``, ``"hara2020"``, ``"torchvision"``) or ``"custom"``.
    mean, std : tuple of 3 floats
        RGB mean and standard deviation, in units of the [0, 1] pixel scale.
    """

    name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def to_dict(self) -> dict:
        return {"name": self.name, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalization":
        try:
            return cls(str(d["name"]), tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ParameterError(f"normalisation {d!r} needs 'name', 'mean' and 'std': {exc}") from exc

    def apply(self, clips: torch.Tensor) -> torch.Tensor:
        """Normalise clips ``(B, 3, T, H, W)`` with values in [0, 1]; returns a new tensor."""
        shape = (1, 3, 1, 1, 1)
        mean = torch.tensor(self.mean, dtype=clips.dtype, device=clips.device).view(shape)
        std = torch.tensor(self.std, dtype=clips.dtype, device=clips.device).view(shape)
        return (clips - mean) / std


NORMALIZATIONS: dict[str, Normalization] = {
    "hara2018": Normalization("hara2018", (114.7748 / 255, 107.7354 / 255, 99.4750 / 255), (1 / 255, 1 / 255, 1 / 255)),
    "hara2020": Normalization("hara2020", (0.4345, 0.4051, 0.3775), (0.2768, 0.2713, 0.2737)),
    "torchvision": Normalization("torchvision", (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)),
}


def get_normalization(name_or_norm: str | Normalization | dict) -> Normalization:
    """Return a :class:`Normalization` from a preset name, a dict or an instance."""
    if isinstance(name_or_norm, Normalization):
        return name_or_norm
    if isinstance(name_or_norm, dict):
        return Normalization.from_dict(name_or_norm)
    if name_or_norm not in NORMALIZATIONS:
        raise ParameterError(f"unknown normalisation {name_or_norm!r}; choose one of {', '.join(NORMALIZATIONS)}")
    return NORMALIZATIONS[name_or_norm]


# -- key layouts ------------------------------------------------------------------------------

_TV_TO_HARA = [
    (re.compile(r"^stem\.0\."), "conv1."),
    (re.compile(r"^stem\.1\."), "bn1."),
    (re.compile(r"^(layer\d\.\d+)\.conv1\.0\."), r"\1.conv1."),
    (re.compile(r"^(layer\d\.\d+)\.conv1\.1\."), r"\1.bn1."),
    (re.compile(r"^(layer\d\.\d+)\.conv2\.0\."), r"\1.conv2."),
    (re.compile(r"^(layer\d\.\d+)\.conv2\.1\."), r"\1.bn2."),
]
_HARA_TO_TV = [
    (re.compile(r"^conv1\."), "stem.0."),
    (re.compile(r"^bn1\."), "stem.1."),
    (re.compile(r"^(layer\d\.\d+)\.conv1\."), r"\1.conv1.0."),
    (re.compile(r"^(layer\d\.\d+)\.bn1\."), r"\1.conv1.1."),
    (re.compile(r"^(layer\d\.\d+)\.conv2\."), r"\1.conv2.0."),
    (re.compile(r"^(layer\d\.\d+)\.bn2\."), r"\1.conv2.1."),
]


def _rename(state: dict, rules) -> dict:
    out = {}
    for key, value in state.items():
        new = key
        for pattern, repl in rules:
            new, n = pattern.subn(repl, new)
            if n:
                break
        out[new] = value
    return out


def torchvision_to_hara_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename torchvision ``r3d_18`` state-dict keys to the Hara names used by :class:`ResNet3D`."""
    return _rename(state, _TV_TO_HARA)


def hara_to_torchvision_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename :class:`ResNet3D` (``stem="torchvision"``) keys to torchvision ``r3d_18`` names."""
    return _rename(state, _HARA_TO_TV)


def detect_layout(state: dict[str, torch.Tensor]) -> str:
    """``"torchvision"`` when the keys have a ``stem.`` prefix, ``"hara"`` when they have ``conv1.``."""
    if any(k.startswith("stem.") for k in state):
        return "torchvision"
    if any(k.startswith(("conv1.", "layer1.")) for k in state):
        return "hara"
    raise ModelError(f"state dict has neither Hara ('conv1.', 'layer1.') nor torchvision ('stem.') keys; first keys: {list(state)[:5]}")


# -- reading ------------------------------------------------------------------------------------

def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read an external checkpoint safely.

    Parameters
    ----------
    path : str or Path
        A ``.pth``/``.pt`` torch file: a Hara checkpoint dict or a bare state dict.

    Returns
    -------
    state : dict of str to Tensor
        The state dict, ``module.`` prefixes removed.
    info : dict
        ``arch`` (str or None), ``epoch`` (int or None), ``has_scheduler`` (bool).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint '{path}' does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot read checkpoint '{path}' with the safe loader (weights_only=True): {msg}") from exc
    if not isinstance(obj, dict):
        raise ModelError(f"checkpoint '{path}' holds a {type(obj).__name__}, not a state dict or a checkpoint dict")
    info = {"arch": None, "epoch": None, "has_scheduler": False}
    if "state_dict" in obj:
        info["arch"] = obj.get("arch") if isinstance(obj.get("arch"), str) else None
        info["epoch"] = obj.get("epoch") if isinstance(obj.get("epoch"), int) else None
        info["has_scheduler"] = "scheduler" in obj
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelError(f"checkpoint '{path}' does not contain a state dict of tensors")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}
    return state, info


def infer_config(state: dict[str, torch.Tensor], *, arch: str | None = None, source: str = "state dict") -> ResNetConfig:
    """Infer the :class:`ResNetConfig` of a Hara-named state dict from its tensors.

    Parameters
    ----------
    state : dict of str to Tensor
        Hara key names (convert torchvision ones with :func:`torchvision_to_hara_keys` first).
    arch : str, optional
        The checkpoint's ``arch`` entry (e.g. ``"resnet-34"``), used only when the blocks are
        incomplete and the depth cannot be read from the keys.
    source : str
        Name of the file, for messages.
    """
    if "conv1.weight" not in state:
        raise ModelError(f"{source}: no 'conv1.weight'; this is not a 3D ResNet checkpoint")
    conv1 = state["conv1.weight"]
    if conv1.ndim != 5:
        raise ModelError(f"{source}: conv1.weight has shape {tuple(conv1.shape)}; a 3D ResNet needs a 5-D kernel (is this a 2D model?)")
    blocks = []
    for i in range(1, 5):
        idx = {int(m.group(1)) for k in state for m in [re.match(rf"layer{i}\.(\d+)\.", k)] if m}
        blocks.append(max(idx) + 1 if idx else 0)
    bottleneck = any(re.match(r"layer\d\.\d+\.conv3\.", k) for k in state)
    depth = None
    for d, (block, layers) in DEPTHS.items():
        if (block is Bottleneck) == bottleneck and all(b in (0, n) for b, n in zip(blocks, layers)) and any(blocks):
            if depth is None:
                depth = d
            elif 0 in blocks:  # ambiguous only for partial checkpoints
                depth = None
                break
    if depth is None and arch:
        m = re.search(r"(\d+)$", arch)
        if m and int(m.group(1)) in DEPTHS:
            depth = int(m.group(1))
    if depth is None:
        kind = "Bottleneck" if bottleneck else "BasicBlock"
        raise ModelError(
            f"{source}: blocks per stage {tuple(blocks)} ({kind}) match no supported depth "
            f"(10: (1,1,1,1), 18: (2,2,2,2), 34: (3,4,6,3), 50: (3,4,6,3) Bottleneck)"
        )
    # stage width = output channels of the block's first convolution (``planes``); a stage absent
    # from a partial checkpoint gets twice the previous width so the key comparison can report it
    widths = [int(conv1.shape[0]), 0, 0, 0]
    for i in range(1, 5):
        key = f"layer{i}.0.conv1.weight"
        if key in state:
            widths[i - 1] = int(state[key].shape[0])
        elif i > 1:
            widths[i - 1] = widths[i - 2] * 2
    n_classes = int(state["fc.weight"].shape[0]) if "fc.weight" in state else 0
    shortcut = "B" if any(".downsample." in k for k in state) else "A"
    return ResNetConfig(depth=depth, shortcut=shortcut, n_classes=n_classes, widths=tuple(widths),
                        stem="hara", conv1_t_size=int(conv1.shape[2]))


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` into ``model`` or raise :class:`ModelError` listing every mismatch.

    Missing ``num_batches_tracked`` buffers (checkpoints saved before PyTorch 0.4.1) are the only
    tolerated difference: they count batches for momentum-free batch norm and do not change the
    output in eval mode.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} (model {tuple(v.shape)})" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        def fmt(items):
            return ", ".join(items[:12]) + (f" ... ({len(items)} in all)" if len(items) > 12 else "")
        parts = []
        if missing:
            parts.append(f"missing keys: {fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {fmt(unexpected)}")
        if wrong:
            parts.append(f"wrong shapes: {fmt(wrong)}")
        raise ModelError(f"{source} does not fit the architecture; " + "; ".join(parts))
    full = dict(expected)
    full.update(state)
    model.load_state_dict(full, strict=True)


def load_video_backbone(
    path: str | Path,
    *,
    keep_head: bool = True,
    normalization: str | Normalization | None = None,
    conv1_t_stride: int = 1,
    no_max_pool: bool = False,
) -> ResNet3D:
    """Load a Hara (kenshohara/3D-ResNets-PyTorch) or torchvision ``r3d_18`` checkpoint.

    Parameters
    ----------
    path : str or Path
        The ``.pth`` file.
    keep_head : bool
        True: the model's output is the checkpoint's ``fc`` logits ``(B, n_classes)``, equal to the
        original implementation's for the same input. False: ``fc`` is dropped and the output is
        the pooled features ``(B, feature_dim)`` (512 for ResNet-10/18/34, 2048 for ResNet-50).
    normalization : str or Normalization, optional
        Override the detected input normalisation (see the module docstring).
    conv1_t_stride, no_max_pool
        Options of the updated Hara repository that leave no trace in the weights; the published
        checkpoints use the defaults.

    Returns
    -------
    ResNet3D
        In eval mode, on CPU, with attributes ``normalization`` (:class:`Normalization`; inputs must
        be normalised with it, e.g. ``model.normalization.apply(clips)``) and ``source`` (dict:
        ``path``, ``layout``, ``arch``, ``epoch``).

    Raises
    ------
    ModelError
        The file is unreadable, unsafe to unpickle, or its tensors do not fit a supported 3D ResNet
        (the message lists missing, unexpected and wrongly shaped keys).
    """
    path = Path(path)
    state, info = read_checkpoint(path)
    layout = detect_layout(state)
    if layout == "torchvision":
        state = torchvision_to_hara_keys(state)
    cfg = infer_config(state, arch=info["arch"], source=f"checkpoint '{path}'")
    if layout == "torchvision":
        cfg = ResNetConfig(**{**cfg.to_dict(), "widths": cfg.widths, "stem": "torchvision", "conv1_t_size": 3, "no_max_pool": True})
        if cfg.conv1_t_size != int(state["conv1.weight"].shape[2]):
            raise ModelError(f"checkpoint '{path}': torchvision stem must have a (3, 7, 7) kernel, got {tuple(state['conv1.weight'].shape[2:])}")
    else:
        cfg = ResNetConfig(**{**cfg.to_dict(), "widths": cfg.widths, "conv1_t_stride": conv1_t_stride, "no_max_pool": no_max_pool})
    model = ResNet3D(cfg)
    load_state_strict(model, state, source=f"checkpoint '{path}'")
    if normalization is None:
        if layout == "torchvision":
            normalization = "torchvision"
        elif info["has_scheduler"] or cfg.n_classes in (700, 1039):
            normalization = "hara2020"
        else:
            normalization = "hara2018"
    model.normalization = get_normalization(normalization)
    model.source = {"path": str(path), "layout": layout, "arch": info["arch"], "epoch": info["epoch"]}
    if not keep_head:
        model.fc = torch.nn.Identity()
    return model.eval()
