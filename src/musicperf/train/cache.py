"""Cache of frozen conv4 (``layer3``) activations, so fine-tuning conv5 never re-decodes video.

When conv1-conv4 are frozen (the papers' setting) their output for a clip never changes. It is
computed once per clip and stored in float16 (``(256, 2, 7, 7)`` for ResNet-34 on a 16x112x112
clip: 25,088 values, 49 KiB per clip). Files are safetensors, one per video, under a folder named
by the backbone hash::

    <root>/<backbone_hash>/<video_id>.safetensors   tensors "features" (n, C, T', H', W') fp16,
                                                     "clip_index" (n,) int64

The hash covers the trunk weights, the backbone configuration and the normalisation, so a
different checkpoint never reads stale activations. ``clip_index`` is the caller's key for a clip
within its video (e.g. its first frame index).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from musicperf._util import atomic_path
from musicperf.errors import ModelError, ParameterError


def backbone_hash(model) -> str:
    """16 hex digits identifying the frozen part (conv1-conv4 + normalisation) of a GestureNet."""
    h = hashlib.sha256()
    bb = model.backbone
    h.update(json.dumps(bb.config.to_dict(), sort_keys=True).encode())
    h.update(json.dumps(model.normalization.to_dict(), sort_keys=True).encode())
    for i, m in enumerate(bb.trunk_modules()):
        for k, v in sorted(m.state_dict().items()):
            h.update(f"{i}.{k}".encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@torch.no_grad()
def compute_conv4(model, clips, *, batch_size: int = 8, device: str = "cpu", amp: bool = False,
                  channels_last: bool = True) -> torch.Tensor:
    """conv4 activations of clips, float16.

    Parameters
    ----------
    model : GestureNet
    clips : Tensor or ndarray, shape (N, 3, T, H, W), values in [0, 1]
    batch_size : int
    amp : bool
        bfloat16 autocast: faster only where the hardware has native bf16 (it is emulated, about
        50x slower, on AVX2-only CPUs; see ``benchmarks/bench_backbone.py``); about 4e-3 relative
        error.
    channels_last : bool
        Run in ``channels_last_3d`` memory format (1.6x faster on the development CPU, same
        values to 1e-6); the model is put back in the default format afterwards.

    Returns
    -------
    Tensor, shape (N, C, T', H', W'), float16, on CPU
    """
    clips = torch.as_tensor(clips)
    if clips.ndim != 5 or clips.shape[1] != 3:
        raise ParameterError(f"clips must be (N, 3, T, H, W), got shape {tuple(clips.shape)}")
    was = model.training
    model.eval()
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    out = []
    try:
        for i in range(0, len(clips), batch_size):
            x = clips[i:i + batch_size].to(device).float().contiguous(memory_format=fmt)
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
                out.append(model.conv4(x).float().half().cpu().contiguous())
    finally:
        model.to(memory_format=torch.contiguous_format)
        model.train(was)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float16)


_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


class FeatureCache:
    """conv4 activations on disk, keyed by backbone hash, video id and clip index.

    Parameters
    ----------
    root : str or Path
        Cache folder.
    model : GestureNet
        Its frozen trunk computes the activations.
    batch_size, device, amp, channels_last
        Passed to :func:`compute_conv4`.
    """

    def __init__(self, root: str | Path, model, *, batch_size: int = 8, device: str = "cpu", amp: bool = False,
                 channels_last: bool = True):
        self.model = model
        self.key = backbone_hash(model)
        self.dir = Path(root) / self.key
        self.batch_size, self.device, self.amp, self.channels_last = batch_size, device, amp, channels_last

    def path(self, video_id: str) -> Path:
        name = _SAFE_ID.sub("_", str(video_id))
        return self.dir / f"{name}-{hashlib.sha1(str(video_id).encode()).hexdigest()[:8]}.safetensors"

    def load(self, video_id: str) -> tuple[torch.Tensor, np.ndarray]:
        """Stored ``(features (n, C, T', H', W') fp16, clip_index (n,))`` of a video (empty if none)."""
        from safetensors.torch import load_file

        p = self.path(video_id)
        if not p.is_file():
            return torch.empty(0, dtype=torch.float16), np.empty(0, dtype=np.int64)
        try:
            d = load_file(str(p))
        except Exception as exc:  # safetensors raises its own error types for damaged files
            raise ModelError(f"feature cache file '{p}' is unreadable ({exc}); delete it to recompute") from exc
        return d["features"], d["clip_index"].numpy()

    def features(self, video_id: str, clip_index: Sequence[int], load_clips: Callable[[np.ndarray], object]) -> torch.Tensor:
        """conv4 activations of the given clips, computing and storing only the missing ones.

        Parameters
        ----------
        video_id : str
        clip_index : sequence of int, length n
            Keys of the wanted clips.
        load_clips : callable
            ``load_clips(missing_index) -> (m, 3, T, H, W)`` clips in [0, 1], decoded only for
            clips not yet cached.

        Returns
        -------
        Tensor, shape (n, C, T', H', W'), float16, in the order of ``clip_index``
        """
        want = np.asarray(clip_index, dtype=np.int64)
        feats, have = self.load(video_id)
        missing = np.setdiff1d(np.unique(want), have)
        if len(missing):
            new = compute_conv4(self.model, load_clips(missing), batch_size=self.batch_size, device=self.device,
                                amp=self.amp, channels_last=self.channels_last)
            if len(new) != len(missing):
                raise ParameterError(f"load_clips returned {len(new)} clips for {len(missing)} requested in video {video_id!r}")
            feats = torch.cat([feats, new]) if len(have) else new
            have = np.concatenate([have, missing])
            order = np.argsort(have, kind="stable")
            feats, have = feats[torch.from_numpy(order)], have[order]
            self._store(video_id, feats, have)
        pos = np.searchsorted(have, want)
        return feats[torch.from_numpy(pos)]

    def _store(self, video_id: str, feats: torch.Tensor, index: np.ndarray) -> None:
        from safetensors.torch import save_file

        p = self.path(video_id)
        p.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(p) as tmp:
            save_file({"features": feats.contiguous(), "clip_index": torch.from_numpy(index.astype(np.int64))}, str(tmp),
                      metadata={"video_id": str(video_id), "backbone_hash": self.key})


class CachedFeatureDataset(Dataset):
    """``(conv4 activations, targets)`` pairs for :func:`musicperf.train.loop.fit`.

    Parameters
    ----------
    features : Tensor, shape (n, C, T', H', W'), float16
    targets : array, shape (n, K)

    Items are ``(float32 features, float32 targets)``; train with ``model.input_stage = "conv4"``.
    """

    def __init__(self, features: torch.Tensor, targets):
        self.features = torch.as_tensor(features)
        self.targets = torch.as_tensor(np.asarray(targets, dtype=np.float32))
        if len(self.features) != len(self.targets):
            raise ParameterError(f"{len(self.features)} feature rows for {len(self.targets)} target rows")

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        return self.features[i].float(), self.targets[i]
