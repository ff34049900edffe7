"""Video models for gesture labelling: 3D ResNet backbones, checkpoint loading, heads, model files.

Importing this package is cheap: the names below are loaded from their modules on first use
(those modules import torch). So :mod:`musicperf.models.files`, the reader and writer of model
folders, can be used without torch being imported until weights are read or written.

Public API
----------
build_backbone, load_video_backbone, set_trainable, ResNet3D
SingleModelHead, PerClassHead, GestureNet, scores_from_logits
save_model, load_model, Normalization, NORMALIZATIONS
AudioMLP, MelCNN, audio_encoder_from_config (audio branch of 001 Figure 4a)
EarlyFusion, LateFusion, build_fusion_model, fusion_from_config, parse_modalities, MODALITIES
"""

import importlib

_EXPORTS = {
    "checkpoints": ("NORMALIZATIONS", "Normalization", "get_normalization", "hara_to_torchvision_keys",
                    "load_video_backbone", "read_checkpoint", "torchvision_to_hara_keys"),
    "files": ("load_model", "save_model"),
    "gesturenet": ("GestureNet", "PerClassHeads", "scores_from_logits"),
    "heads": ("PER_CLASS_VARIANTS", "PerClassHead", "SingleModelHead"),
    "resnet3d": ("BACKBONES", "ResNet3D", "ResNetConfig", "build_backbone", "set_trainable"),
    "audio": ("AudioMLP", "MelCNN", "audio_encoder_from_config"),
    "fusion": ("MODALITIES", "EarlyFusion", "LateFusion", "build_fusion_model", "fusion_from_config",
               "parse_modalities"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'musicperf.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"musicperf.models.{module}"), name)


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
