"""Read ``truth.json`` of a synthetic performance into arrays. Imports numpy only."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from musicperf.errors import AnnotationError
from musicperf.synth.gestures import GESTURES, NORMAL_PLAY

_FULL = {"pose": 33, "face": 468, "left_hand": 21, "right_hand": 21}


def load_truth(path: str | Path) -> dict:
    """Load ``truth.json`` (or accept an already loaded dict) and expand the key points.

    Returns
    -------
    dict
        The JSON content, where each ``performers[p]["keypoints"][part]`` additionally has
        ``"full"``: a ``(T, N, 2)`` float array in output pixels with NaN for landmarks that do
        not exist on the figure or are not visible (N = 33 pose, 468 face, 21 per hand, the
        MediaPipe index layouts), and ``"full_normalized"``: the same divided by (width, height).

    Raises
    ------
    AnnotationError
        When the file is not a musicperf synth truth file.
    """
    if isinstance(path, dict):
        truth = path
        where = "the truth dict"
    else:
        where = f"'{path}'"
        try:
            truth = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AnnotationError(f"cannot read truth file {where}: {exc}") from None
    if not isinstance(truth, dict) or truth.get("format") != "musicperf-synth-truth":
        raise AnnotationError(f"{where} is not a musicperf synth truth file (no format 'musicperf-synth-truth')")
    w, h = truth["video"]["width"], truth["video"]["height"]
    for pf in truth["performers"]:
        for part, n in _FULL.items():
            kp = pf["keypoints"][part]
            px = np.asarray(kp["pixels"], dtype=float).reshape(-1, len(kp["index"]), 2)
            vis = np.asarray(kp["visible"], dtype=bool).reshape(px.shape[:2])
            full = np.full((px.shape[0], n, 2), np.nan)
            full[:, kp["index"]] = np.where(vis[..., None], px, np.nan)
            kp["full"] = full
            kp["full_normalized"] = full / [w, h]
    return truth


def frame_labels(truth: dict, performer: int = 0, *, include_normal_play: bool = True) -> np.ndarray:
    """Frame-level labels of one performer, the rule of Section 3.1 of 001.

    A gesture is present in frame i (covering ``[i / fps, (i + 1) / fps)``) when any of its
    intervals overlaps that span.

    Returns
    -------
    numpy.ndarray
        ``(T, 18)`` float32 in {0, 1}, columns in the order of Table 2 of 001 (17 gestures then
        "Normal play" = no other gesture), or ``(T, 17)`` without Normal play.
    """
    fps = float(truth["video"]["fps"])
    n = int(truth["video"]["n_frames"])
    t0 = np.arange(n) / fps
    t1 = t0 + 1 / fps
    pf = truth["performers"][performer]
    y = np.zeros((n, len(GESTURES) + 1), dtype=np.float32)
    for k, g in enumerate(GESTURES):
        for s, e in pf["gestures"][g]:
            y[(t1 > s) & (t0 < e), k] = 1
    y[:, -1] = y[:, :-1].max(1) == 0
    return y if include_normal_play else y[:, :-1]


LABEL_NAMES = (*GESTURES, NORMAL_PLAY)
