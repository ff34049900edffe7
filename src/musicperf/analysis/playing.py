"""Playing / non-playing (P/NP) detection per performer over time (002 Section IV-B, Figure 2).

Two methods:

* **Motion, posture and audio activity** (a solo or a few visible players): a soloist plays
  while the motion in their sound-producing region (bowing/strumming hand, or the whole player)
  is active *and* the audio is not silent (:func:`playing_from_motion`); with several players,
  everyone plays while the mixture sounds except a player who stays still for long
  (:func:`playing_audio_visual`) or holds a rare resting posture for long, bow, flute or hands
  lowered (:func:`rest_postures`): a resting player's idle motion is no evidence either way.
* **The clustering pipeline of Figure 2** (ensembles): key frames at regular intervals, face
  detection (MediaPipe's full-range BlazeFace, OpenCV's Haar cascade as a fallback), hair and
  upper-body boxes inferred from each face, features,
  clustering of the faces into musicians (musician diarization), a second clustering of each
  musician's images into sub-clusters, and a labelling step in which a human names each
  sub-cluster playing or non-playing: :func:`ensemble_observations`, :func:`cluster_musicians`,
  :func:`sub_cluster`, then labels from a file (:func:`read_cluster_labels`) or from a simulated
  annotator (:func:`simulate_annotator`, as 002 simulates annotators with dominance thresholds).

numpy/scipy at top level; OpenCV, MediaPipe and librosa inside the functions. Must not import torch
or matplotlib.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicperf.errors import AnnotationError, ParameterError, require
from musicperf.features.flow import farneback

__all__ = ["frame_rms", "playing_from_motion", "playing_audio_visual", "region_thumbnails", "thumbnail_tap",
           "rest_postures", "playing_decision", "intervals_from_mask", "mask_from_intervals",
           "Observation", "detect_faces", "upper_body_box", "ensemble_observations", "cluster_musicians",
           "sub_cluster", "simulate_annotator", "read_cluster_labels", "cluster_labels_template",
           "ensemble_timeline", "accuracy"]


# --------------------------------------------------------------------------------------------
# motion + audio activity


def frame_rms(y: np.ndarray, sr: int, fps: float, n_frames: int) -> np.ndarray:
    """RMS of the audio over each video frame's duration.

    Returns
    -------
    np.ndarray, shape (n_frames,)
        Linear RMS; frame ``i`` covers ``[i / fps, (i + 1) / fps)`` s (0 past the audio end).
    """
    y = np.asarray(y, float)
    out = np.zeros(n_frames)
    for i in range(n_frames):
        a, b = int(round(i / fps * sr)), int(round((i + 1) / fps * sr))
        seg = y[a:b]
        out[i] = float(np.sqrt(np.mean(seg ** 2))) if seg.size else 0.0
    return out


def playing_from_motion(speed: np.ndarray, fps: float, *, audio_rms: np.ndarray | None = None,
                        window: float = 0.5, threshold: float = 0.3, silence_db: float = -40.0,
                        min_duration: float = 0.4) -> np.ndarray:
    """Per-frame playing decision from region motion and audio activity.

    Parameters
    ----------
    speed : np.ndarray, shape (T, P)
        Average motion speed in each performer's sound-producing region (pixels per frame),
        e.g. ``RegionMotion.speed``.
    fps : float
    audio_rms : np.ndarray, shape (T,), optional
        Mixture RMS per video frame (:func:`frame_rms`); frames quieter than ``silence_db``
        below its 99th percentile are non-playing for everyone.
    window : float
        Seconds of the centred moving maximum then moving average that turn bow or strum
        strokes into a continuous activity (bows change direction and strums are brief, so the
        instantaneous speed dips while the player is still playing).
    threshold : float
        With one performer: the fraction of their 95th-percentile activity above which they
        play (relative, as the camera distance scales motion). With several: three times the
        lowest 5th-percentile activity of all performers (the level of idle motion), kept
        between ``threshold / 3`` and 0.5 times the performer's 95th percentile.
    min_duration : float
        Playing or non-playing runs shorter than this (seconds) are absorbed by their neighbours.

    Returns
    -------
    np.ndarray of bool, shape (T, P)
    """
    from scipy.ndimage import maximum_filter1d, uniform_filter1d

    s = np.asarray(speed, float)
    if s.ndim == 1:
        s = s[:, None]
    if s.ndim != 2 or len(s) == 0:
        raise ParameterError(f"speed must have shape (T, P), got {s.shape}")
    w = max(1, int(round(window * fps)))
    act = uniform_filter1d(maximum_filter1d(s, w, axis=0, mode="nearest"), w, axis=0, mode="nearest")
    hi = np.maximum(np.percentile(act, 95, axis=0), 1e-9)
    # The stillest performer's quiet moments give the level of "no playing motion" (noise,
    # breathing, idle sway); playing is well above it. A player's own low percentile cannot
    # serve: a player who never rests has a high one.
    floor = float(np.min(np.percentile(act, 5, axis=0)))
    thr = np.clip(3.0 * floor, threshold * hi / 3.0, 0.5 * hi) if s.shape[1] > 1 else threshold * hi
    play = act > thr
    if audio_rms is not None:
        a = np.asarray(audio_rms, float)
        if len(a) != len(s):
            raise ParameterError(f"audio_rms has {len(a)} frames, motion {len(s)}")
        a = uniform_filter1d(a, w, mode="nearest")
        top = np.percentile(a, 99)
        loud = a > top * 10 ** (silence_db / 20) if top > 0 else np.zeros(len(a), bool)
        play &= loud[:, None]
    k = max(1, int(round(min_duration * fps)))
    return np.stack([_absorb_short(play[:, p], k) for p in range(play.shape[1])], 1)


def playing_audio_visual(velocity: np.ndarray, fps: float, *, y: np.ndarray, sr: int,
                         speed: np.ndarray | None = None, still: float = 0.3, min_still: float = 1.0,
                         min_silence: float = 0.3,
                         sync_threshold: float = -1.0, segment: float = 1.0, max_lag: int = 2,
                         explain_audio: bool = True, **kwargs) -> np.ndarray:
    """Per-frame playing decision of several performers from the mixture and each one's motion.

    Ours (002 IV-B names the task, not a method). With one performer the mixture is their own
    sound: :func:`playing_from_motion` with the mixture's RMS decides (motion active and audio
    not silent). With several, the cues are, in order:

    1. *Nobody plays in silence; while the mixture sounds, everyone plays* unless a cue below
       says otherwise. Silence is judged per video frame (the mixture's RMS over the frame
       ``silence_db`` below its 99th percentile), and silent stretches of ``min_silence``
       seconds or less in the middle count as sounding. Players play most of the time, and
       the size of the sound-producing motion says little: a flautist's or pianist's fingers
       barely move their region, while a resting player's idle motion (bow lowered, hands
       drifting and fidgeting) is as large as bowing. (The earlier decision also required
       motion above a share of each player's 95th-percentile activity: it lost a third of a
       flautist's or pianist's playing frames.)
    2. *Long stillness*: a player whose activity (``window``-second moving maximum then mean of
       ``speed``) stays below ``still`` times their own 75th-percentile activity (their playing
       level, as long as they play a quarter of the time) for at least ``min_still`` seconds
       does not play (a freeze, hands in the lap, the instrument held still). Relative to the
       player's own level, as a flautist's playing motion is as small as another player's
       noise. A guitarist's hand is still between strums for up to a second or so, hence the
       minimum (the moving maximum shortens a still stretch by up to ``window``: a 2 s freeze
       is found with the default 1 s, not with 1.5 s).
    3. *Synchrony with the sound* (optional, off by default): every playing run is cut into
       ``segment``-second pieces and a piece is turned to non-playing when the correlation of
       the player's motion onset curve (:func:`~musicperf.analysis.association.motion_onset_strength`)
       with the mixture's onset strength, best over +-``max_lag`` frames, is below 0.3 and does
       not exceed its chance level (the same at lags 7-15 frames away) by ``sync_threshold``.
       On 42 synthetic duets (seeds 5-11 of ``benchmarks/bench_duets.py``, not its reported
       seeds) it lowers the accuracy with idle rests from 0.862 to 0.793 at -0.3 and to 0.757
       at 0 (it turns a flautist's or pianist's playing, whose fingers move out of step with
       the region's motion onsets, to non-playing), so it is off; :func:`rest_postures` finds
       idle rests instead.
    4. *One sound needs a player* (``explain_audio``): where the mixture sounds but cues 2-3
       left nobody playing, the player most active relative to their own level plays.

    A resting posture (bow, flute or hands lowered) is not seen from motion vectors: combine
    with :func:`rest_postures` (``musicperf playing`` does).

    Parameters
    ----------
    velocity : np.ndarray, shape (T, P, 2)
        Mean motion vector of each player's sound-producing region (pixels per frame),
        ``RegionMotion.velocity``.
    fps : float
    y : np.ndarray, shape (n,)
        Mono mixture.
    sr : int
    speed : np.ndarray, shape (T, P), optional
        Average speed per region (``RegionMotion.speed``); default the norm of ``velocity``.
    still : float
        Cue 2: share of the player's 75th-percentile activity below which they are still; ``0``
        turns cue 2 off. Chosen on seeds 5-11 of the benchmark with idle and freeze rests
        (accuracy idle / freeze with the resting postures, ``min_still`` 1.5 s: 0.3 x 75th
        percentile 0.862 / 0.868, 0.4 x 75th 0.848 / 0.870, 0.5 x median 0.862 / 0.870, 0.3 x
        90th 0.809 / 0.867; the median fails a player who rests more than half of the time).
    min_still : float
        Cue 2: seconds of stillness needed (1.0 s: 0.858 / 0.868; 1.5 s misses freezes under
        2 s).
    min_silence : float
        Cue 1: longest silence (seconds) taken for a gap. Silence per frame finds the pauses
        of both players (phrase ends, the first notes' entry): seeds 5-12 accuracy idle /
        freeze with the resting postures 0.878 / 0.867 with the RMS smoothed over 0.5 s as
        before, 0.904 / 0.890 over 0.12 s, 0.910 / 0.896 per frame; per frame with gaps
        bridged up to 0.16 s 0.909 / 0.896, 0.3 s (the default: staccato gaps and the flicker
        of real audio are no pause) 0.910 / 0.896, 0.5 s 0.906 / 0.894.
    sync_threshold : float
        Cue 3: margin of the correlation over its chance level below which a playing piece is
        idle motion; ``-1`` or less (the default) turns cue 3 off.
    segment : float
        Cue 3: seconds per piece (shorter pieces are checked with their neighbours).
    max_lag : int
        Cue 3: frames of audio-video offset tolerated.
    explain_audio : bool
        Cue 4.
    **kwargs
        ``window`` (default 0.5 s: the moving maximum and mean of the activity) and
        ``silence_db`` (default -40 dB); with one performer also ``threshold`` and
        ``min_duration`` of :func:`playing_from_motion` (which smooths the RMS over ``window``).

    Returns
    -------
    np.ndarray of bool, shape (T, P)
    """
    from scipy.ndimage import gaussian_filter1d, maximum_filter1d, uniform_filter1d

    v = np.asarray(velocity, float)
    if v.ndim == 2:
        v = v[:, None]
    if v.ndim != 3 or v.shape[-1] != 2 or len(v) < 2:
        raise ParameterError(f"velocity must have shape (T, P, 2), got {v.shape}")
    unknown = set(kwargs) - {"window", "threshold", "silence_db", "min_duration"}
    if unknown:
        raise ParameterError(f"playing_audio_visual got unknown options {sorted(unknown)}")
    T, P = v.shape[:2]
    s = np.linalg.norm(v, axis=-1) if speed is None else np.asarray(speed, float).reshape(T, -1)
    if s.shape != (T, P):
        raise ParameterError(f"speed {s.shape} does not match velocity {v.shape[:2]}")
    rms = frame_rms(y, sr, fps, T)
    if P == 1:  # a soloist's audio is their own: motion activity with audio activity
        return playing_from_motion(s, fps, audio_rms=rms, **kwargs)
    window, silence_db = kwargs.get("window", 0.5), kwargs.get("silence_db", -40.0)
    w = max(1, int(round(window * fps)))
    top = np.percentile(rms, 99)
    loud = rms > top * 10 ** (silence_db / 20) if top > 0 else np.zeros(T, bool)
    k_gap = int(round(min_silence * fps))
    for a0, b0, val in _runs(loud.copy()):
        if not val and b0 - a0 <= k_gap and a0 > 0 and b0 < T:
            loud[a0:b0] = True  # a silence this short is a gap between notes, or noise
    play = np.repeat(loud[:, None], P, 1)  # cue 1
    act = uniform_filter1d(maximum_filter1d(s, w, axis=0, mode="nearest"), w, axis=0, mode="nearest")
    rel = act / np.maximum(np.percentile(act, 75, axis=0), 1e-9)
    if still > 0:  # cue 2
        k = max(1, int(round(min_still * fps)))
        for p in range(P):
            for a0, b0, val in _runs(rel[:, p] < still):
                if val and b0 - a0 >= k:
                    play[a0:b0, p] = False
    if sync_threshold > -1:  # cue 3
        from musicperf.analysis.association import audio_onset_strength, motion_onset_strength

        mo = gaussian_filter1d(motion_onset_strength(v), 1.0, axis=0)
        on = gaussian_filter1d(audio_onset_strength(y, sr, fps, T), 1.0)
        L = max(5, int(round(segment * fps)))
        for p in range(P):
            for a0, b0, val in _runs(play[:, p].copy()):
                if not val:
                    continue
                for a2 in range(a0, b0, L):
                    if a2 != a0 and b0 - a2 < L // 2:
                        break  # a short tail was checked with the piece before it
                    b2 = b0 if b0 - (a2 + L) < L // 2 else a2 + L
                    if _sync_score(mo[:, p], on, a2, b2, max_lag) < sync_threshold:
                        play[a2:b2, p] = False
    if explain_audio:  # cue 4
        none = loud & ~play.any(1)
        play[none, np.argmax(rel[none], 1)] = True
    return play


def region_thumbnails(frames, regions, *, size: int = 20) -> np.ndarray:
    """Small normalised grey images of each region in every frame (posture descriptors).

    Parameters
    ----------
    frames : iterable of np.ndarray, shape (H, W, 3) uint8 RGB
        Consumed once.
    regions : sequence of Region
        ``musicperf.analysis.motion.Region`` boxes in pixels (fixed over the video).
    size : int
        Thumbnail side in pixels.

    Returns
    -------
    np.ndarray, shape (T, P, size * size)
        Each thumbnail with zero mean and unit variance.
    """
    cv2 = require("cv2", extra="analysis", purpose="posture thumbnails", package="opencv-contrib-python")
    out = []
    for f in frames:
        H, W = f.shape[:2]
        row = []
        for r in regions:
            x0, y0 = int(np.clip(r.x, 0, W - 2)), int(np.clip(r.y, 0, H - 2))
            x1, y1 = int(np.clip(r.x + r.w, x0 + 2, W)), int(np.clip(r.y + r.h, y0 + 2, H))
            g = cv2.cvtColor(np.ascontiguousarray(f[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
            t = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA).ravel().astype(float)
            row.append((t - t.mean()) / (t.std() + 1e-9))
        out.append(row)
    if not out:
        raise ParameterError("no frames to take thumbnails from")
    return np.asarray(out)


def thumbnail_tap(frames, regions, out: list):
    """Yield ``frames`` unchanged, appending each one's :func:`region_thumbnails` row to ``out``.

    Takes the posture thumbnails in the same pass as the motion (``region_motion(thumbnail_tap(
    frames, regions, thumbs), ...)``) without keeping the frames; ``np.asarray(out)`` then has
    shape (T, P, size * size).
    """
    for f in frames:
        out.append(region_thumbnails([f], regions)[0])
        yield f


def playing_decision(velocity: np.ndarray, fps: float, *, y: np.ndarray, sr: int, speed: np.ndarray | None = None,
                     thumbs: np.ndarray | None = None, **kwargs) -> np.ndarray:
    """The decision ``musicperf playing`` makes with audio: the mixture and motion, then resting postures.

    :func:`playing_audio_visual` (``kwargs`` go to it), and with two or more performers and
    their posture ``thumbs`` (:func:`region_thumbnails`, shape (T, P, D)) the frames of a
    resting posture (:func:`rest_postures`) turned to non-playing. ``musicperf separate
    --playing auto`` gates the motion with the same decision.

    Returns
    -------
    np.ndarray of bool, shape (T, P)
    """
    pred = playing_audio_visual(velocity, fps, y=y, sr=sr, speed=speed, **kwargs)
    if thumbs is not None and pred.shape[1] > 1:  # a resting posture (bow, flute, hands lowered)
        pred &= ~rest_postures(np.asarray(thumbs), pred, fps)
    return pred


def rest_postures(thumbs: np.ndarray, playing: np.ndarray | None, fps: float, *, min_rest: float = 1.5,
                  separation: float = 1.0, share: tuple[float, float] = (0.05, 0.45), min_gap: float | None = None,
                  n_postures: int = 3, smooth: float = 0.4, interior: bool = True, grow: float = 0.2,
                  seed: int = 0) -> np.ndarray:
    """Frames in which a player holds a resting posture (bow, flute or hands lowered).

    Per player, the thumbnails (:func:`region_thumbnails`), averaged over ``smooth`` seconds
    (a bow stroke or a strum then blurs into one playing posture), are clustered into
    ``n_postures`` postures by k-means, and postures whose centroids are not apart (distance
    over the pooled within-posture spread at most ``separation``) are merged into the most
    frequent one, the playing posture (players play most of the time). Every other posture is
    a *resting posture* when, after absorbing runs under 1 s:

    * it covers a share of the video within ``share``;
    * every run of it lasts at least ``min_rest`` seconds (rests are long; a guitarist's
      strumming hand also holds two positions, but for shorter stretches);
    * if ``min_gap`` is given: ``playing`` (another cue) finds the player playing in it less
      often than in the playing posture, by at least ``min_gap``.

    Its runs are the rests, except (``interior``) a run held from the first frame or to the
    last, which cannot be told from a player who moved their instrument to a new playing
    position, and each grows by ``grow`` seconds either way: the smoothed posture changes
    halfway through lowering the instrument, and the rest (silence) began when it started.
    Where every player would rest while ``playing`` has someone playing (the mixture sounds),
    the sound needs a player: only the player whose resting posture is the most distinct from
    their playing posture (centroid distance over pooled spread) rests there.

    Ours: Figure 2 of 002 separates playing from non-playing images of a musician by clustering
    their appearance and lets a person name the clusters; here the naming is automatic, by the
    assumptions above. Chosen on seeds 5-12 of ``benchmarks/bench_duets.py`` (not its reported
    seeds), with idle rests, combined with the mixture's activity (before ``interior`` and
    ``grow``): accuracy 0.849 with two postures, 0.857 with three, 0.835 smoothing 0.8 s, 0.833
    with 0.2 s. With :func:`playing_audio_visual`: 0.854 / 0.858 (idle / freeze rests), with
    ``interior`` 0.866 / 0.873, growing 0.1 s 0.872 / 0.871, 0.2 s 0.878 / 0.867, 0.3 s
    0.877 / 0.864. The ``playing`` gate (``min_gap=0.15`` before) is off by default: the cues of
    :func:`playing_audio_visual` cannot see an idle rest, so they give it no evidence.

    Parameters
    ----------
    thumbs : np.ndarray, shape (T, P, d)
        :func:`region_thumbnails`.
    playing : np.ndarray of bool, shape (T, P), or None
        Another cue (:func:`playing_audio_visual`): where someone plays, not everyone rests;
        and with ``min_gap``, see above.
    fps : float
    min_rest : float
        Seconds.
    separation : float
        Postures closer than this (centroid distance over the pooled spread) are one.
    share : (float, float)
        Open interval of the share of frames a resting posture covers.
    min_gap : float, optional
        See above; None (default) turns the gate off.
    n_postures : int
        Clusters per player before merging (2 or more).
    smooth : float
        Seconds of moving average over the thumbnails.
    interior : bool
        Skip runs that touch the first or the last frame.
    grow : float
        Seconds added to each run at both ends.
    seed : int
        k-means initialisation.

    Returns
    -------
    np.ndarray of bool, shape (T, P)
        True in a resting posture.
    """
    from scipy.ndimage import uniform_filter1d

    from musicperf.analysis.separation import _kmeans

    X = np.asarray(thumbs, float)
    if X.ndim != 3:
        raise ParameterError(f"thumbs must have shape (T, P, d), got {X.shape}")
    T, P = X.shape[:2]
    pl = None if playing is None else np.asarray(playing, bool)
    if pl is not None and pl.shape != (T, P):
        raise ParameterError(f"thumbs (T, P, d) {X.shape} and playing (T, P) {pl.shape} do not match")
    if min_gap is not None and pl is None:
        raise ParameterError("rest_postures: min_gap needs the playing cue")
    if n_postures < 2:
        raise ParameterError(f"n_postures must be 2 or more, got {n_postures}")
    out = np.zeros((T, P), bool)
    if T < 10:
        return out
    k_grow = int(round(grow * fps))
    distinct = np.zeros(P)
    for p in range(P):
        Xs = uniform_filter1d(X[:, p], max(1, int(round(smooth * fps))), axis=0, mode="nearest")
        lab = _kmeans(Xs, n_postures, seed=seed)
        ks = [j for j in range(n_postures) if (lab == j).sum() >= 2]
        if len(ks) < 2:
            continue
        cen = {j: Xs[lab == j].mean(0) for j in ks}
        spr = {j: Xs[lab == j].var(0).sum() for j in ks}
        # merge postures that are not apart, most frequent first (the playing posture absorbs)
        groups: list[list[int]] = []
        for j in sorted(ks, key=lambda j: -(lab == j).sum()):
            for g in groups:
                if np.linalg.norm(cen[g[0]] - cen[j]) / max(np.sqrt((spr[g[0]] + spr[j]) / 2), 1e-9) <= separation:
                    g.append(j)
                    break
            else:
                groups.append([j])
        if len(groups) < 2:
            continue
        major = np.isin(lab, groups[0])
        for g in groups[1:]:
            minor = _absorb_short(np.isin(lab, g), max(1, int(round(fps))))
            runs = [(a, b) for a, b, v in _runs(minor) if v]
            if not runs or not share[0] < minor.mean() < share[1]:
                continue
            if any(b - a < min_rest * fps for a, b in runs):
                continue
            if min_gap is not None and pl[major, p].mean() - pl[minor, p].mean() < min_gap:
                continue
            for a, b in runs:
                if interior and (a == 0 or b == T):
                    continue  # held from the start or to the end: maybe a new playing position
                out[max(0, a - k_grow):b + k_grow, p] = True
            spread = np.sqrt((Xs[minor].var(0).sum() + Xs[~minor].var(0).sum()) / 2)
            distinct[p] = max(distinct[p], np.linalg.norm(Xs[minor].mean(0) - Xs[~minor].mean(0)) / max(spread, 1e-9))
    if pl is not None:
        # a sound needs a player: where everyone would rest while the other cue hears playing,
        # only the most distinct resting posture is a rest
        clash = out.all(1) & pl.any(1)
        keep = np.zeros(P, bool)
        keep[int(np.argmax(distinct))] = True
        out[clash] = keep
    return out


def _sync_score(m: np.ndarray, a: np.ndarray, s: int, e: int, max_lag: int) -> float:
    """Synchrony of a motion onset curve with audio onsets over frames ``s:e``.

    The best correlation at lags within +-``max_lag`` frames minus its chance level: the mean
    best correlation of lag windows centred 7, 11 and 15 frames away either way (a smooth or a
    periodic curve matches onsets at some lag by chance, and the best of five lags is biased
    upwards). A best correlation of :data:`_NEAR_OK` or more counts as synchronous as it is.
    """
    near = _best_corr(m, a, s, e, max_lag)
    if near >= _NEAR_OK:
        return np.inf
    far = [_best_corr(m, a, s, e, max_lag, centre=c) for c in (-15, -11, -7, 7, 11, 15)]
    return near - float(np.mean(far))


_NEAR_OK = 0.3


def _best_corr(m: np.ndarray, a: np.ndarray, s: int, e: int, max_lag: int, centre: int = 0) -> float:
    """Pearson correlation of ``m[s:e]`` with ``a`` shifted by up to ``max_lag`` frames (best)."""
    best = -1.0
    for lag in range(centre - max_lag, centre + max_lag + 1):
        lo, hi = max(s, s - lag, 0), min(e, e - lag, len(a))
        if hi - lo < 5:
            continue
        x, z = m[lo:hi], a[lo + lag:hi + lag]
        if x.std() > 0 and z.std() > 0:
            best = max(best, float(np.corrcoef(x, z)[0, 1]))
    return best


def _absorb_short(mask: np.ndarray, k: int) -> np.ndarray:
    m = mask.copy()
    for _ in range(2):
        runs = _runs(m)
        for s, e, v in runs:
            if e - s < k and len(runs) > 1:
                m[s:e] = not v
    return m


def _runs(m: np.ndarray):
    out, s = [], 0
    for i in range(1, len(m) + 1):
        if i == len(m) or m[i] != m[s]:
            out.append((s, i, bool(m[s])))
            s = i
    return out


def intervals_from_mask(mask: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """``[(start, end), ...]`` seconds of the True runs of a per-frame mask."""
    return [(round(s / fps, 4), round(e / fps, 4)) for s, e, v in _runs(np.asarray(mask, bool)) if v]


def mask_from_intervals(intervals, fps: float, n_frames: int) -> np.ndarray:
    """Per-frame mask (frame ``i`` at ``i / fps`` s) of ``[(start, end), ...]`` seconds."""
    t = np.arange(n_frames) / fps
    m = np.zeros(n_frames, bool)
    for s, e in intervals:
        m |= (t >= s) & (t < e)
    return m


def accuracy(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of frames (over all performers) where ``pred == truth``."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ParameterError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    return float(np.mean(pred == truth))


# --------------------------------------------------------------------------------------------
# the clustering pipeline of Figure 2


@dataclass
class Observation:
    """One face seen in one key frame.

    Attributes
    ----------
    time : float
        Seconds.
    face : tuple of int
        ``(x0, y0, x1, y1)`` pixels.
    body : tuple of int
        The inferred upper-body box (below the face, three faces wide).
    features : np.ndarray, shape (d,)
        Musician features: face centre (relative to the image), colour histograms of hair/face
        and upper body.
    pose_features : np.ndarray, shape (e,)
        Sub-cluster features: HOG of the upper body and its motion energy to the next frame.
    musician : int
        Set by :func:`cluster_musicians`.
    sub : int
        Set by :func:`sub_cluster`.
    """

    time: float
    face: tuple
    body: tuple
    features: np.ndarray
    pose_features: np.ndarray
    musician: int = -1
    sub: int = -1
    thumb: np.ndarray | None = field(default=None, repr=False)


def detect_faces(frame: np.ndarray, *, min_size: int = 12, method: str = "auto",
                 min_confidence: float = 0.3) -> np.ndarray:
    """Faces in one frame, boxes ``(n, 4)`` as ``x0, y0, x1, y1`` pixels, sorted left to right.

    Parameters
    ----------
    frame : np.ndarray, shape (H, W, 3) uint8 RGB
    min_size : int
        Smallest face side in pixels (Haar).
    method : {"auto", "mediapipe", "haar"}
        ``"mediapipe"``: MediaPipe's BlazeFace full-range model (``model_selection=1``, shipped
        in the mediapipe wheel, offline), which finds small and turned faces;
        ``"haar"``: OpenCV's frontal Haar cascade ``alt2`` (frames under 480 pixels high are
        enlarged twice first: its 20-pixel window misses faces of about that size);
        ``"auto"`` (default): MediaPipe, or Haar when mediapipe is not installed. (Adding
        Haar's faces to MediaPipe's finds a few more synthetic faces but also hands and
        knees as faces in real videos, e.g. ``pianist.avi``; so the two are not merged.)
    min_confidence : float
        MediaPipe's detection score threshold.
    """
    from musicperf.errors import MissingDependencyError

    if method not in ("auto", "mediapipe", "haar"):
        raise ParameterError(f"unknown face detector {method!r}; use auto, mediapipe or haar")
    frame = np.ascontiguousarray(frame)
    boxes = np.zeros((0, 4), int)
    if method in ("auto", "mediapipe"):
        try:
            boxes = _mediapipe_faces(frame, min_confidence)
        except MissingDependencyError:
            if method == "mediapipe":
                raise
            method = "haar"
    if method == "haar":
        boxes = _haar_faces(frame, min_size)
    return boxes[np.argsort(boxes[:, 0], kind="stable")] if len(boxes) else boxes


_DETECTORS: dict = {}


def _mediapipe_faces(frame: np.ndarray, min_confidence: float) -> np.ndarray:
    from musicperf.features.landmarks import _mediapipe, _quiet_stderr

    key = ("face", round(float(min_confidence), 3))
    det = _DETECTORS.get(key)
    if det is None:
        mp = _mediapipe()
        with _quiet_stderr():
            det = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=min_confidence)
        _DETECTORS[key] = det
    H, W = frame.shape[:2]
    with _quiet_stderr():  # TensorFlow Lite announces its delegate on the first frame
        res = det.process(frame)
    out = []
    for d in res.detections or []:
        bb = d.location_data.relative_bounding_box
        x0, y0 = int(round(bb.xmin * W)), int(round(bb.ymin * H))
        x1, y1 = int(round((bb.xmin + bb.width) * W)), int(round((bb.ymin + bb.height) * H))
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            out.append((x0, y0, x1, y1))
    return np.array(out, int).reshape(-1, 4)


def _haar_faces(frame: np.ndarray, min_size: int) -> np.ndarray:
    cv2 = require("cv2", extra="analysis", purpose="face detection", package="opencv-contrib-python")
    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    up = 2 if g.shape[0] < 480 else 1
    if up > 1:
        g = cv2.resize(g, (g.shape[1] * up, g.shape[0] * up), interpolation=cv2.INTER_LINEAR)
    cc = _DETECTORS.get("haar")
    if cc is None:
        cc = _DETECTORS["haar"] = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_alt2.xml")
    boxes = cc.detectMultiScale(g, 1.1, 3, minSize=(min_size * up, min_size * up))
    if len(boxes) == 0:
        return np.zeros((0, 4), int)
    b = np.asarray(boxes, int) // up
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], 1)


def upper_body_box(face, width: int, height: int) -> tuple[int, int, int, int]:
    """Upper body inferred from a face box: three faces wide, from the chin down 3.5 faces.

    002 also turns the box towards the gaze (where the instrument is); frontal faces are
    assumed here, so the box is centred (a documented simplification).
    """
    x0, y0, x1, y1 = face
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    bx0, bx1 = int(max(0, cx - 1.5 * w)), int(min(width, cx + 1.5 * w))
    by0, by1 = int(min(height - 2, y1)), int(min(height, y1 + 3.5 * h))
    return bx0, by0, max(bx1, bx0 + 2), max(by1, by0 + 2)


def _hist(cv2, img: np.ndarray) -> np.ndarray:
    hsv = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2HSV)
    h = cv2.calcHist([hsv], [0, 1], None, [8, 4], [0, 180, 0, 256]).ravel()
    return h / max(h.sum(), 1.0)


def ensemble_observations(frames, *, fps: float, step: float = 0.5, faces=None) -> list[Observation]:
    """Key frames every ``step`` s, faces, upper bodies and their features (Figure 2, left).

    Parameters
    ----------
    frames : sequence of np.ndarray, shape (T, H, W, 3) uint8 RGB
        Indexable (a list or an array).
    fps : float
    step : float
        Seconds between key frames.
    faces : callable, optional
        ``faces(frame) -> (n, 4)`` boxes; default :func:`detect_faces`.

    Returns
    -------
    list of Observation
    """
    cv2 = require("cv2", extra="analysis", purpose="the playing/non-playing clustering pipeline")
    faces = faces or detect_faces
    n = len(frames)
    hog = cv2.HOGDescriptor((32, 64), (16, 16), (8, 8), (8, 8), 9)
    obs = []
    stride = max(1, int(round(step * fps)))
    for i in range(0, n - 1, stride):
        fr = frames[i]
        H, W = fr.shape[:2]
        nxt = cv2.cvtColor(np.ascontiguousarray(frames[i + 1]), cv2.COLOR_RGB2GRAY)
        cur = cv2.cvtColor(np.ascontiguousarray(fr), cv2.COLOR_RGB2GRAY)
        for box in faces(fr):
            x0, y0, x1, y1 = (int(v) for v in box)
            fh = y1 - y0
            hair = fr[max(0, y0 - fh // 2):y1, x0:x1]
            bx0, by0, bx1, by1 = upper_body_box((x0, y0, x1, y1), W, H)
            body = fr[by0:by1, bx0:bx1]
            feats = np.concatenate([[(x0 + x1) / 2 / W * 4, (y0 + y1) / 2 / H * 4], _hist(cv2, hair), _hist(cv2, body)])
            gb = cv2.resize(cur[by0:by1, bx0:bx1], (32, 64))
            h = hog.compute(gb).ravel()
            flow = farneback(cur[by0:by1, bx0:bx1], nxt[by0:by1, bx0:bx1], levels=2, winsize=9, poly_sigma=1.1)
            energy = float(np.hypot(flow[..., 0], flow[..., 1]).mean())
            pose = np.concatenate([h / (np.linalg.norm(h) + 1e-9), [energy]])
            thumb = cv2.resize(np.ascontiguousarray(fr[y0:by1, bx0:bx1]), (48, 80))
            obs.append(Observation(time=i / fps, face=(x0, y0, x1, y1), body=(bx0, by0, bx1, by1),
                                   features=feats, pose_features=pose, thumb=thumb))
    return obs


def cluster_musicians(obs: list[Observation], n_musicians: int | None = None, *, seed: int = 0) -> int:
    """Musician diarization: cluster the faces into musicians (k-means on position and colour).

    ``n_musicians=None`` picks 1-8 by the silhouette score. Sets ``Observation.musician`` and
    returns the number of musicians; clusters are numbered left to right.
    """
    from musicperf.analysis.separation import _kmeans

    if not obs:
        raise ParameterError("no faces were found: nothing to cluster (is the video too small or dark?)")
    X = np.stack([o.features for o in obs])
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    if n_musicians is None:
        best, n_musicians = -2.0, 1
        for k in range(2, min(8, len(obs) - 1) + 1):
            lab = _kmeans(X, k, seed=seed)
            s = _silhouette(X, lab)
            if s > best:
                best, n_musicians = s, k
    lab = _kmeans(X, n_musicians, seed=seed) if n_musicians > 1 else np.zeros(len(obs), int)
    order = np.argsort([np.mean([o.face[0] for o, l in zip(obs, lab) if l == k] or [1e9]) for k in range(n_musicians)])
    rank = np.empty(n_musicians, int)
    rank[order] = np.arange(n_musicians)
    for o, l in zip(obs, lab):
        o.musician = int(rank[l])
    return int(n_musicians)


def _silhouette(X, lab) -> float:
    d = np.sqrt(((X[:, None] - X[None]) ** 2).sum(-1))
    ks = np.unique(lab)
    if len(ks) < 2:
        return -1.0
    s = []
    for i in range(len(X)):
        same = lab == lab[i]
        if same.sum() < 2:
            s.append(0.0)
            continue
        a = d[i, same].sum() / (same.sum() - 1)
        b = min(d[i, lab == k].mean() for k in ks if k != lab[i])
        s.append((b - a) / max(a, b, 1e-12))
    return float(np.mean(s))


def sub_cluster(obs: list[Observation], n_sub: int = 4, *, seed: int = 0, motion_weight: float = 3.0) -> None:
    """Cluster each musician's images into ``n_sub`` sub-clusters (Figure 2, right).

    Features are the upper body's HOG (pose, instrument held up or down) and its motion energy
    (scaled by ``motion_weight`` after standardisation; an addition to 002, whose features are
    appearance only, because in a fixed-camera video playing is visible as motion). Sets
    ``Observation.sub``.
    """
    from musicperf.analysis.separation import _kmeans

    for m in sorted({o.musician for o in obs}):
        idx = [i for i, o in enumerate(obs) if o.musician == m]
        X = np.stack([obs[i].pose_features for i in idx])
        X = (X - X.mean(0)) / (X.std(0) + 1e-9)
        X[:, -1] *= motion_weight
        k = min(n_sub, len(idx))
        lab = _kmeans(X, k, seed=seed) if k > 1 else np.zeros(len(idx), int)
        for i, l in zip(idx, lab):
            obs[i].sub = int(l)


def cluster_key(o: Observation) -> str:
    """The name of an observation's sub-cluster in label files: ``"musician1/sub2"`` (1-based)."""
    return f"musician{o.musician + 1}/sub{o.sub + 1}"


def simulate_annotator(obs: list[Observation], truth_fn, *, dominance: float = 0.5) -> dict[str, str]:
    """Label sub-clusters like 002's simulated annotator: the majority class, if dominant enough.

    Parameters
    ----------
    obs : list of Observation
    truth_fn : callable
        ``truth_fn(observation) -> bool``: whether the person seen plays (ground truth).
    dominance : float
        The majority class must cover more than this share of the sub-cluster, else the
        annotator rejects it (label ``"reject"``; its observations get no decision).

    Returns
    -------
    dict
        ``{"musician1/sub1": "playing" | "non-playing" | "reject", ...}``
    """
    groups: dict[str, list[bool]] = {}
    for o in obs:
        groups.setdefault(cluster_key(o), []).append(bool(truth_fn(o)))
    out = {}
    for k, v in sorted(groups.items()):
        share = float(np.mean(v))
        if share > dominance:
            out[k] = "playing"
        elif 1 - share > dominance:
            out[k] = "non-playing"
        else:
            out[k] = "reject"
    return out


def cluster_labels_template(obs: list[Observation]) -> dict:
    """A labels file to fill in: every sub-cluster with ``"?"`` and the times of its images."""
    out: dict = {}
    for o in obs:
        out.setdefault(cluster_key(o), {"label": "?", "times": []})["times"].append(round(o.time, 3))
    return dict(sorted(out.items()))


def read_cluster_labels(path) -> dict[str, str]:
    """Read a labels file: JSON ``{"musician1/sub1": "playing", ...}`` (or the template layout
    with ``{"label": ...}`` values). Labels: ``playing``, ``non-playing`` or ``reject``."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AnnotationError(f"cluster labels file '{p}' cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise AnnotationError(f"cluster labels file '{p}' must map sub-cluster names to labels")
    out = {}
    for k, v in data.items():
        lab = v.get("label") if isinstance(v, dict) else v
        if lab not in ("playing", "non-playing", "reject"):
            raise AnnotationError(f"cluster labels file '{p}': {k} has label {lab!r}; use playing, non-playing or reject")
        out[k] = lab
    return out


def ensemble_timeline(obs: list[Observation], labels: dict[str, str], n_frames: int, fps: float,
                      n_musicians: int, *, hold: float | None = None) -> np.ndarray:
    """Per-frame P/NP of each musician from labelled sub-clusters.

    Each frame takes the label of the musician's nearest labelled observation within ``hold``
    seconds (default: one key-frame step); elsewhere the value is -1 (unknown).

    Returns
    -------
    np.ndarray of int8, shape (n_frames, n_musicians)
        1 playing, 0 non-playing, -1 unknown (not seen, or the sub-cluster was rejected).
    """
    out = -np.ones((n_frames, n_musicians), np.int8)
    times = np.arange(n_frames) / fps
    for m in range(n_musicians):
        pts = [(o.time, labels.get(cluster_key(o))) for o in obs if o.musician == m]
        pts = [(t, 1 if l == "playing" else 0) for t, l in pts if l in ("playing", "non-playing")]
        if not pts:
            continue
        ts = np.array([p[0] for p in pts])
        vs = np.array([p[1] for p in pts])
        h = hold if hold is not None else (np.median(np.diff(np.unique(ts))) if len(np.unique(ts)) > 1 else 1.0)
        j = np.abs(times[:, None] - ts[None]).argmin(1)
        near = np.abs(times - ts[j]) <= h / 2 + 1e-9
        out[near, m] = vs[j[near]]
    return out
