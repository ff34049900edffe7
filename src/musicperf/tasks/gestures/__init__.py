"""The gesture task: annotate part of a video, train, label the rest.

Paper 001 concludes that "one could annotate a part of the video and the rest of the annotation
could be automated, with corrections added by a human expert". This package wires the pieces of
musicperf into that path:

1. :func:`discover` finds ``(video, annotations)`` pairs from ``VIDEO=ANNOTATIONS`` strings,
   folders of videos with same-named ``.eaf`` files, or a YAML manifest.
2. :func:`train_model` streams 16-frame clips (Section 5.1 of 001) of the annotated part of each
   video (``until`` seconds), turns each clip into a feature vector (cheap motion/appearance
   statistics, optionally concatenated with features of a frozen 3D-ResNet backbone), trains a
   small multi-label head on them and tunes one threshold per class on a held-out block, then
   writes a self-describing model directory.
3. :func:`label_videos` streams every video through the model (memory stays flat: only the
   per-frame probabilities are kept, never the frames), spreads the per-clip probabilities onto
   frames, turns them into intervals (threshold, gap closing, minimum duration) and writes, per
   video, an ``.eaf`` (human tiers kept untouched, predicted tiers named ``auto: <class>``), a
   CSV of per-frame probabilities and a JSON summary, each atomically. Decoding runs in a
   background thread overlapping the feature computation, the 3D-CNN backbone runs in the
   numeric mode chosen online (:class:`musicperf.features.fastpath.BackboneRunner`), and with
   ``feature_cache`` the clip features are stored so a retrained head relabels without
   decoding again (README.md (section 'Performance')).

Choices where the papers are silent or do not fit a short annotated part (see README.md (section 'Label a performance')):

* training clips overlap (``train_stride`` 4 frames, the papers use none) because the annotated
  part of one video is short; labelling clips overlap by half (``label_stride`` 8) and the
  probability of a frame is the mean over the clips that contain it;
* the sample target is the temporal-smoothing label of Equation 6 of 001 and the loss MSE with
  Dynamic Batch Balance (Section 4.2 of 001);
* one threshold per class is tuned on out-of-fold predictions of a blocked cross-validation
  over the annotated part (contiguous blocks of time: neighbouring overlapping clips would leak
  into a random split), then the head is trained on all annotated clips.

The package is split by concern (see docs/architecture.md):

* :mod:`.config` -- :class:`GestureConfig`, the settings, by section, validated in one place;
* :mod:`.train` -- :func:`train_model` and its steps (:class:`TrainSteps`, the extension points);
* :mod:`.model` -- the model folder (:class:`GestureModel`, :func:`load_gesture_model`);
* :mod:`.label` -- :func:`label_videos`, :func:`label_video`, :func:`predict_video`.

What is not task logic lives below: input discovery in :mod:`musicperf.io.discover`, clip
streaming and features in :mod:`musicperf.features.clips`, frame spreading in
:mod:`musicperf.labels.spread`, the probability CSV in :mod:`musicperf.io.probs`. Every public name
of the former single module is re-exported here, so ``from musicperf.tasks.gestures import X``
keeps working.

Vocabulary: *gesture* names the task and its objects (``GestureConfig``, ``GestureModel``,
``load_gesture_model``); the older *workflow* names stay as aliases (``WorkflowConfig``,
``load_workflow_model``) and in the model folder's file names (``workflow.json``,
``musicperf-workflow``), which old folders need.

Imports numpy and the standard library at module level; torch, PyAV and PyYAML are imported
inside the functions that need them.
"""

from __future__ import annotations


from musicperf.features.clips import (  # noqa: F401
    FeatureExtractor,
    clip_features,
    estimate_roi,
    iter_clips,
    video_fps,
)
from musicperf.features.clips import _weights_hash  # noqa: F401
from musicperf.features.clipfeatures import FEATURE_VERSION, grid_features, n_grid_features  # noqa: F401
from musicperf.io import read_annotations  # noqa: F401
from musicperf.io.discover import (  # noqa: F401
    ANNOTATION_SUFFIXES,
    VIDEO_SUFFIXES,
    Item,
    companion_annotations,
    discover,
)
from musicperf.io.probs import read_probs_csv, write_probs_csv  # noqa: F401
from musicperf.labels.spread import spread_to_frames  # noqa: F401
from musicperf.tasks.gestures.config import SECTIONS, GestureConfig, WorkflowConfig  # noqa: F401
from musicperf.tasks.gestures.label import (  # noqa: F401
    BACKBONE_BATCH,
    label_video,
    label_videos,
    predict_video,
)
from musicperf.tasks.gestures.outputs import fingerprint, output_paths  # noqa: F401
from musicperf.tasks.gestures.model import (  # noqa: F401
    BACKBONE_FILE,
    META_FILE,
    MODEL_FILE,
    MODEL_FORMAT,
    GestureModel,
    load_gesture_model,
    load_workflow_model,
    make_backbone,
    predict_head,
    save_meta,
    save_weights,
)
from musicperf.tasks.gestures.train import (  # noqa: F401
    NEVER,
    TrainSteps,
    VideoSamples,
    collect_samples,
    fit_head,
    fold_indices,
    merged_taxonomy,
    train_model,
    tune,
)

# Former private names, kept for code written against the single module.
_make_backbone = make_backbone
_merged_taxonomy = merged_taxonomy
_write_probs_csv = write_probs_csv
