"""Video models for gesture labelling: 3D ResNet backbones, checkpoint loading, heads, model files.

Importing this package imports torch (``import musicperf`` alone does not).

Public API
----------
build_backbone, load_video_backbone, set_trainable, ResNet3D
SingleModelHead, PerClassHead, GestureNet, scores_from_logits
save_model, load_model, Normalization, NORMALIZATIONS
AudioMLP, MelCNN, audio_encoder_from_config (audio branch of 001 Figure 4a)
EarlyFusion, LateFusion, build_fusion_model, fusion_from_config, parse_modalities, MODALITIES
"""

from musicperf.models.checkpoints import (  # noqa: F401
    NORMALIZATIONS,
    Normalization,
    get_normalization,
    hara_to_torchvision_keys,
    load_video_backbone,
    read_checkpoint,
    torchvision_to_hara_keys,
)
from musicperf.models.files import load_model, save_model  # noqa: F401
from musicperf.models.gesturenet import GestureNet, PerClassHeads, scores_from_logits  # noqa: F401
from musicperf.models.heads import PER_CLASS_VARIANTS, PerClassHead, SingleModelHead  # noqa: F401
from musicperf.models.resnet3d import (  # noqa: F401
    BACKBONES,
    ResNet3D,
    ResNetConfig,
    build_backbone,
    set_trainable,
)
from musicperf.models.audio import AudioMLP, MelCNN, audio_encoder_from_config  # noqa: F401
from musicperf.models.fusion import (  # noqa: F401
    MODALITIES,
    EarlyFusion,
    LateFusion,
    build_fusion_model,
    fusion_from_config,
    parse_modalities,
)
