"""Labels: taxonomies, per-frame label matrices, fixed-length samples, temporal smoothing,
intervals from predictions and dataset statistics.

Imports numpy only (PyYAML when a mapping file is read); never torch, av or matplotlib.
"""

from musicperf.labels.frames import (
    add_background,
    frame_labels,
    frames_to_time,
    interval_frames,
    intervals_to_frames,
    time_to_frames,
)
from musicperf.labels.intervals import intervals_from_frames, labels_to_annotationset, merge_intervals
from musicperf.labels.samples import sample_labels, sample_starts, temporal_smoothing
from musicperf.labels.taxonomy import (
    GESTURES17,
    GESTURES18,
    NORMAL_PLAY,
    SUPERCLASSES,
    SUPERCLASSES7,
    Taxonomy,
    normalize_name,
)

__all__ = [
    "GESTURES17",
    "GESTURES18",
    "NORMAL_PLAY",
    "SUPERCLASSES",
    "SUPERCLASSES7",
    "Taxonomy",
    "add_background",
    "frame_labels",
    "frames_to_time",
    "interval_frames",
    "intervals_from_frames",
    "intervals_to_frames",
    "labels_to_annotationset",
    "merge_intervals",
    "normalize_name",
    "sample_labels",
    "sample_starts",
    "temporal_smoothing",
    "time_to_frames",
]
