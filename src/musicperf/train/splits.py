"""Train / validation / test splits over clips (numpy only).

* :func:`random_split`: the papers' random 80/10/10 over samples (``001`` Table 6). Clips are
  0.64 s apart, so neighbours of a test clip are usually in the training set: optimistic.
* :func:`leave_one_video_out`: ``001`` Table 8; all clips of one video are the test set.
* :func:`blocked_split`: contiguous stretches of ``block`` clips are assigned to a set as a whole,
  with ``gap`` clips dropped at each boundary between different sets, so neighbouring clips
  cannot leak between training and test.
* :func:`until_time_split`: "annotated up to time T": train (and validate) on the part a human
  annotated, test on the rest (the realistic scenario of ``001``'s conclusion).

Every function returns :class:`Split` objects whose ``name`` says how they were made; report it
with every number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from musicperf.errors import ParameterError


@dataclass(frozen=True)
class Split:
    """Disjoint sample indices of one split.

    Attributes
    ----------
    train, val, test : ndarray of int64
        Sorted sample indices.
    name : str
        How the split was made (e.g. ``"random 80/10/10 seed=0"``); report it with every metric.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    name: str

    def to_dict(self) -> dict:
        return {"name": self.name, "train": self.train.tolist(), "val": self.val.tolist(), "test": self.test.tolist()}

    @property
    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)


def _make(train, val, test, name: str) -> Split:
    arrs = [np.sort(np.asarray(a, dtype=np.int64)) for a in (train, val, test)]
    return Split(*arrs, name=name)


def _check_fractions(fractions) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or min(f) < 0 or not np.isclose(sum(f), 1.0) or f[0] == 0:
        raise ParameterError(f"fractions must be three non-negative numbers (train, val, test) summing to 1, got {fractions!r}")
    return f


def _counts(n: int, fractions) -> tuple[int, int, int]:
    # val and test get their rounded share; train gets the rest (so 80/10/10 of 10 is 8/1/1)
    n_val = int(round(n * fractions[1]))
    n_test = int(round(n * fractions[2]))
    return n - n_val - n_test, n_val, n_test


def _pct(fractions) -> str:
    return "/".join(f"{round(100 * f):d}" for f in fractions)


def random_split(n: int, fractions=(0.8, 0.1, 0.1), seed: int = 0) -> Split:
    """Random split of ``n`` samples (the papers' 80/10/10).

    Parameters
    ----------
    n : int
        Number of samples (clips).
    fractions : (train, val, test)
    seed : int

    Returns
    -------
    Split
    """
    if n < 1:
        raise ParameterError(f"cannot split {n} samples")
    f = _check_fractions(fractions)
    n_tr, n_va, n_te = _counts(n, f)
    perm = np.random.default_rng(seed).permutation(n)
    return _make(perm[:n_tr], perm[n_tr:n_tr + n_va], perm[n_tr + n_va:], f"random {_pct(f)} seed={seed}")


def leave_one_video_out(video_ids: Sequence, *, val_fraction: float = 0.1, seed: int = 0) -> list[Split]:
    """One split per video: its clips are the test set (``001`` Table 8).

    The validation set is a random ``val_fraction`` of the other videos' clips (Table 6 of ``001``
    uses about 10%).

    Parameters
    ----------
    video_ids : sequence, length n
        Video of each sample.

    Returns
    -------
    list of Split
        In order of first appearance of each video; ``name`` is ``"leave-one-video-out test=<id>"``.
    """
    ids = np.asarray(video_ids)
    if ids.ndim != 1 or len(ids) == 0:
        raise ParameterError("video_ids must be a non-empty 1-D sequence, one id per sample")
    if not 0 <= val_fraction < 1:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    _, first = np.unique(ids, return_index=True)
    videos = ids[np.sort(first)]
    if len(videos) < 2:
        raise ParameterError(f"leave-one-video-out needs at least 2 videos, got {len(videos)}")
    rng = np.random.default_rng(seed)
    out = []
    for v in videos:
        test = np.flatnonzero(ids == v)
        rest = rng.permutation(np.flatnonzero(ids != v))
        n_val = int(round(len(rest) * val_fraction))
        out.append(_make(rest[n_val:], rest[:n_val], test, f"leave-one-video-out test={v} val={round(100 * val_fraction)}% seed={seed}"))
    return out


def blocked_split(
    n: int,
    *,
    block: int,
    fractions=(0.8, 0.1, 0.1),
    seed: int = 0,
    gap: int = 1,
    groups: Sequence | None = None,
) -> Split:
    """Split contiguous stretches of clips, so neighbouring clips do not leak across sets.

    Samples are taken in order (within each group, e.g. video, in the given order); each run of
    ``block`` consecutive samples is assigned as a whole to train, val or test, by a random
    permutation of the blocks with the counts of ``fractions``. Then ``gap`` samples on each side
    of every boundary between blocks of different sets are dropped (in neither set), so no
    training clip touches a test clip.

    Parameters
    ----------
    n : int
        Number of samples, in temporal order within each group.
    block : int
        Samples per block (e.g. 30 clips = 19.2 s at 16 frames, 25 fps).
    fractions : (train, val, test)
        Fractions of *blocks*.
    seed : int
    gap : int
        Samples dropped at each side of a boundary between sets (0 keeps all).
    groups : sequence, length n, optional
        Video id of each sample; blocks never span two groups.

    Returns
    -------
    Split
    """
    if n < 1 or block < 1 or gap < 0:
        raise ParameterError(f"blocked_split needs n >= 1, block >= 1, gap >= 0; got n={n}, block={block}, gap={gap}")
    f = _check_fractions(fractions)
    g = np.zeros(n, dtype=np.int64) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    if len(g) != n:
        raise ParameterError(f"groups has {len(g)} entries for {n} samples")
    block_id = np.empty(n, dtype=np.int64)
    next_id = 0
    for grp in np.unique(g):
        idx = np.flatnonzero(g == grp)
        block_id[idx] = next_id + np.arange(len(idx)) // block
        next_id = block_id[idx].max() + 1
    n_blocks = next_id
    if n_blocks < 3 and min(f[1], f[2]) > 0:
        raise ParameterError(f"{n} samples make only {n_blocks} blocks of {block}; use a smaller block")
    nb_tr, nb_va, nb_te = _counts(n_blocks, f)
    assign = np.empty(n_blocks, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(n_blocks)
    assign[perm[:nb_tr]], assign[perm[nb_tr:nb_tr + nb_va]], assign[perm[nb_tr + nb_va:]] = 0, 1, 2
    label = assign[block_id]
    keep = np.ones(n, dtype=bool)
    if gap:
        for grp in np.unique(g):
            idx = np.flatnonzero(g == grp)
            lab = label[idx]
            for b in np.flatnonzero(lab[1:] != lab[:-1]):  # boundary between idx[b] and idx[b+1]
                keep[idx[max(0, b - gap + 1): b + 1]] = False
                keep[idx[b + 1: b + 1 + gap]] = False
    sets = [np.flatnonzero(keep & (label == s)) for s in range(3)]
    return _make(*sets, name=f"blocked {_pct(f)} block={block} gap={gap} seed={seed}")


def until_time_split(sample_times, T: float, *, val_fraction: float = 0.1, video_ids: Sequence | None = None, test_video=None) -> Split:
    """Train on clips annotated up to time ``T``, test on the clips after it.

    Parameters
    ----------
    sample_times : array, shape (n,) or (n, 2), seconds
        Clip start times, or ``(start, end)`` intervals. With intervals a training clip must end
        by ``T`` and a test clip start at or after ``T``; a clip straddling ``T`` is dropped.
        With start times only, clips starting before ``T`` train and the others test.
    T : float
        Seconds; the end of the human-annotated part.
    val_fraction : float
        The latest ``val_fraction`` of the annotated clips (a contiguous stretch just before
        ``T``, not a random sample, so validation clips are not interleaved with training clips)
        form the validation set.
    video_ids : sequence, optional
        With ``test_video``: ``T`` applies to that video only; clips of every other video are all
        training (and validation) data.
    test_video : optional
        The video being annotated.

    Returns
    -------
    Split
    """
    t = np.asarray(sample_times, dtype=float)
    if t.ndim == 1:
        start, end = t, t
    elif t.ndim == 2 and t.shape[1] == 2:
        start, end = t[:, 0], t[:, 1]
    else:
        raise ParameterError(f"sample_times must be (n,) start times or (n, 2) intervals in seconds, got shape {t.shape}")
    if not 0 <= val_fraction < 1:
        raise ParameterError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n = len(start)
    in_video = np.ones(n, dtype=bool)
    if video_ids is not None:
        ids = np.asarray(video_ids)
        if len(ids) != n:
            raise ParameterError(f"video_ids has {len(ids)} entries for {n} samples")
        in_video = ids == test_video
        if not in_video.any():
            raise ParameterError(f"test_video {test_video!r} has no samples")
    if t.ndim == 1:
        annotated = in_video & (start < T)
        test = in_video & (start >= T)
    else:
        annotated = in_video & (end <= T)
        test = in_video & (start >= T)
    if not test.any():
        raise ParameterError(f"no clip starts at or after T={T} s (last clip starts at {start[in_video].max():.2f} s)")
    if not annotated.any():
        raise ParameterError(f"no clip lies before T={T} s (first clip starts at {start[in_video].min():.2f} s)")
    ann = np.flatnonzero(annotated)
    ann = ann[np.argsort(start[ann], kind="stable")]
    n_val = int(round(len(ann) * val_fraction))
    val = ann[len(ann) - n_val:] if n_val else ann[:0]
    train = np.concatenate([ann[: len(ann) - n_val], np.flatnonzero(~in_video)])
    where = f" video={test_video}" if video_ids is not None else ""
    return _make(train, val, np.flatnonzero(test), f"annotated until T={T:g} s{where} val=last {round(100 * val_fraction)}%")
