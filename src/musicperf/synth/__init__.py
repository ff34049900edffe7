"""The synthetic performer: videos of music performances with exact ground truth.

``synthesize(out_dir, seconds=..., seed=...)`` writes ``performance.mp4``, ``performance.eaf``
and ``truth.json``; ``render(...)`` builds the same in memory for tests. Importing this package
loads numpy only; Pillow, PyAV and soundfile are imported when frames are drawn or files written.
"""

from musicperf.synth.core import Rendering, SynthResult, annotation_set, render, synthesize  # noqa: F401
from musicperf.synth.gestures import GESTURES, INSTRUMENTS, NORMAL_PLAY  # noqa: F401
from musicperf.synth.scene import BACKGROUNDS  # noqa: F401
from musicperf.synth.truth import LABEL_NAMES, frame_labels, load_truth  # noqa: F401
