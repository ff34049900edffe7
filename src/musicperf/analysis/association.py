"""Player-to-track association by onset correlation (002 Section V-A, after Li et al. [18]).

"Many notes of string instruments are started with a new bow stroke and different tracks often
show different onset patterns": each player's motion onset curve (how much the mean motion
vector of their bowing/strumming region changes from frame to frame: a bow change reverses it,
a strum or a hit starts it) is correlated with the onset strength of each audio track (or the
note onsets of each score part), allowing a small lag, and players are assigned to tracks by
the Hungarian algorithm on the correlation matrix.

numpy/scipy at top level; librosa inside :func:`audio_onset_strength`. Must not import torch,
cv2 or matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicperf.errors import ParameterError, require

__all__ = ["motion_onset_strength", "audio_onset_strength", "onsets_to_envelope", "association_matrix",
           "Association", "associate"]


def motion_onset_strength(velocity: np.ndarray) -> np.ndarray:
    """Motion onset curve: the norm of the change of the mean motion vector, ``||u(t) - u(t-1)||``.

    Parameters
    ----------
    velocity : np.ndarray, shape (T, 2) or (T, P, 2)
        Mean motion vector per frame (pixels per frame), one per player with a ``P`` axis.

    Returns
    -------
    np.ndarray, shape (T,) or (T, P)
        Row 0 is 0.
    """
    v = np.asarray(velocity, float)
    if v.shape[-1] != 2 or v.ndim not in (2, 3):
        raise ParameterError(f"velocity must have shape (T, 2) or (T, P, 2), got {v.shape}")
    d = np.zeros(v.shape[:-1])
    d[1:] = np.linalg.norm(np.diff(v, axis=0), axis=-1)
    return d


def audio_onset_strength(y: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """Onset strength of a track (librosa's spectral flux) pooled to video frames by maximum.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        Frame ``i`` covers ``[i / fps, (i + 1) / fps)`` s.
    """
    librosa = require("librosa", purpose="onset detection")
    y = np.asarray(y, np.float32)
    hop = 256
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=hop)
    t = np.arange(len(env)) * hop / sr
    idx = np.floor(t * fps).astype(int)
    out = np.zeros(n_frames)
    ok = idx < n_frames
    np.maximum.at(out, idx[ok], env[ok])
    return out


def onsets_to_envelope(onsets, fps: float, n_frames: int) -> np.ndarray:
    """Impulses at note onsets (a score part) on the video frame grid, shape (n_frames,)."""
    out = np.zeros(n_frames)
    for t in onsets:
        i = int(np.floor(float(t) * fps))
        if 0 <= i < n_frames:
            out[i] = 1.0
    return out


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(x, sigma, axis=0, mode="nearest") if sigma > 0 else x


def association_matrix(motion: np.ndarray, tracks: np.ndarray, *, max_lag: int = 2,
                       sigma: float = 1.0, playing: np.ndarray | None = None) -> np.ndarray:
    """Correlation of each player's motion onsets with each track's onsets.

    Parameters
    ----------
    motion : np.ndarray, shape (T, P)
        Motion onset curves (:func:`motion_onset_strength`).
    tracks : np.ndarray, shape (T, Q)
        Audio onset strengths (:func:`audio_onset_strength`) or score onset impulses.
    max_lag : int
        Frames of audio-video offset tolerated (either way); the best lag counts.
    sigma : float
        Gaussian smoothing in frames applied to both (onsets a frame apart still match).
    playing : np.ndarray of bool, shape (T, P), optional
        Frames in which each player plays (e.g. :func:`~musicperf.analysis.playing.playing_audio_visual`).
        Each player's correlations are then computed over those frames only, so that the idle
        motion of a resting player (breathing, lowering the bow, fidgeting) is matched to no
        track (ours: 002 V-A correlates whole performances). A player with fewer than 10
        playing frames keeps all frames.

    Returns
    -------
    np.ndarray, shape (P, Q)
        Pearson correlations in [-1, 1].
    """
    m = np.asarray(motion, float)
    a = np.asarray(tracks, float)
    m = m[:, None] if m.ndim == 1 else m
    a = a[:, None] if a.ndim == 1 else a
    if len(m) != len(a):
        raise ParameterError(f"motion has {len(m)} frames but the tracks {len(a)}")
    m, a = _smooth(m, sigma), _smooth(a, sigma)
    T = len(m)
    if playing is not None:
        pl = np.asarray(playing, bool)
        pl = pl[:, None] if pl.ndim == 1 else pl
        if pl.shape != m.shape:
            raise ParameterError(f"playing has shape {pl.shape}, the motion {m.shape}")
        return np.concatenate([association_matrix(m[:, [p]], a, max_lag=max_lag, sigma=0.0)
                               if pl[:, p].sum() < 10 else _masked(m[:, p], a, pl[:, p], max_lag)
                               for p in range(m.shape[1])])
    out = np.full((m.shape[1], a.shape[1]), -1.0)
    for lag in range(-max_lag, max_lag + 1):
        ms = m[max(0, lag):T + min(0, lag)]
        as_ = a[max(0, -lag):T + min(0, -lag)]
        mz = (ms - ms.mean(0)) / (ms.std(0) + 1e-12)
        az = (as_ - as_.mean(0)) / (as_.std(0) + 1e-12)
        out = np.maximum(out, mz.T @ az / len(mz))
    return out


def _masked(m: np.ndarray, a: np.ndarray, keep: np.ndarray, max_lag: int) -> np.ndarray:
    """Best-lag correlations of one motion curve (T,) with tracks (T, Q) over ``keep`` frames."""
    T = len(m)
    out = np.full((1, a.shape[1]), -1.0)
    for lag in range(-max_lag, max_lag + 1):
        sel = keep[max(0, lag):T + min(0, lag)]
        ms = m[max(0, lag):T + min(0, lag)][sel]
        as_ = a[max(0, -lag):T + min(0, -lag)][sel]
        if len(ms) < 3:
            continue
        mz = (ms - ms.mean()) / (ms.std() + 1e-12)
        az = (as_ - as_.mean(0)) / (as_.std(0) + 1e-12)
        out = np.maximum(out, (mz @ az / len(mz))[None])
    return out


@dataclass
class Association:
    """Players assigned to tracks.

    Attributes
    ----------
    matrix : np.ndarray, shape (P, Q)
        Correlations.
    track_of_player : list of int
        Track index of each player (-1 where there are more players than tracks).
    """

    matrix: np.ndarray
    track_of_player: list

    def to_dict(self) -> dict:
        return dict(track_of_player=self.track_of_player, correlation=np.round(self.matrix, 4).tolist())


def associate(motion: np.ndarray, tracks: np.ndarray, **kwargs) -> Association:
    """Assign players to tracks maximising the summed onset correlation (Hungarian algorithm).

    Parameters
    ----------
    motion : np.ndarray, shape (T, P)
    tracks : np.ndarray, shape (T, Q)
    **kwargs
        Passed to :func:`association_matrix`.
    """
    from scipy.optimize import linear_sum_assignment

    C = association_matrix(motion, tracks, **kwargs)
    rows, cols = linear_sum_assignment(-C)
    tp = [-1] * C.shape[0]
    for r, c in zip(rows, cols):
        tp[int(r)] = int(c)
    return Association(matrix=C, track_of_player=tp)
