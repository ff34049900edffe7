"""musicperf.analysis: the audio-visual analyses of the survey (002).

* :mod:`~musicperf.analysis.vibrato` - vibrato from the fingering hand's motion (V-B, Equation 1)
* :mod:`~musicperf.analysis.vibrato_frames` - frame-wise vibrato areas, rate and extent from the pitch
* :mod:`~musicperf.analysis.hand` - the fingering hand's box from MediaPipe landmarks (V-B)
* :mod:`~musicperf.analysis.playing` - playing / non-playing per performer (IV-B, Figure 2)
* :mod:`~musicperf.analysis.separation` - motion-informed NMF source separation (VI-B, Equation 2)
* :mod:`~musicperf.analysis.association` - player-to-track association by onsets (V-A)
* :mod:`~musicperf.analysis.motion`, :mod:`~musicperf.analysis.pitch` - optical flow in regions,
  pitch contours and notes

Importing this package loads nothing; the submodules import numpy/scipy, and OpenCV, librosa
and mir_eval inside their functions. Never torch or matplotlib.
"""
