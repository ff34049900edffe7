"""Motion-informed music source separation (002 Section VI-B, Equation 2) and an audio-only baseline.

The mixture's magnitude spectrogram ``V`` (F x N) is factorised by NMF with the Kullback-Leibler
divergence, ``V ~ W H``, while the motion matrix ``M`` (N x C: the average motion speed of each
of C motion clusters, resampled to the STFT frames) is regressed on the *same* activations,
``M ~ H^T A``, with an L1 penalty on ``A`` and unit-norm bases (Equation 2)::

    minimise  D_KL(V | W H) + lambda ||M - H^T A||_F^2 + mu ||A||_1,   ||w_k|| = 1.

Basis ``k`` goes to source ``j`` when ``argmax_c A[k, c]`` is one of source ``j``'s clusters;
each source is the mixture STFT times the soft mask ``W_j H_j / W H``, inverted by the ISTFT.
The audio-only baseline is the same KL-NMF followed by clustering the bases into sources by the
MFCCs of their spectra (the source-filter clustering of Spiertz and Gnann, the kind of unimodal
method 002 compares with).

numpy and scipy only; mir_eval is imported by :func:`evaluate`. Must not import torch, cv2 or
matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from musicperf.errors import ParameterError, require
from musicperf.features.audio import mel_filterbank

__all__ = ["stft_mag", "NMFResult", "kl_nmf", "motion_nmf", "assign_by_motion", "assign_by_timbre",
           "source_masks", "separate_masks", "align_masks", "SeparationResult", "separate", "evaluate",
           "resample_motion", "MOTION_DRIVEN", "name_by_motion"]

#: Instruments whose loudness follows the speed of the hand motion a region around the player's
#: right hand measures (bowed and strummed or plucked strings): 002 VI-B's premise ("the
#: characteristics of a sound event is highly correlated with the speed of sound-producing
#: motion", there bow speed). A flute's sound is made by breath, a piano's by key strikes whose
#: travel along the keyboard is most of the hand's motion; Equation 2 has no cue for them.
MOTION_DRIVEN = frozenset({"violin", "viola", "cello", "double bass", "contrabass", "guitar", "bass", "ukulele",
                           "mandolin", "harp"})

_EPS = 1e-12


def stft_mag(y: np.ndarray, sr: int, *, n_fft: int = 1024, hop_length: int = 256):
    """Complex STFT (Hann window) of ``y``: returns ``(X, times)``.

    ``X`` has shape (F = n_fft / 2 + 1, N); ``times`` (N,) are frame centres in seconds.
    """
    from scipy.signal import stft

    _f, t, X = stft(np.asarray(y, float), fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop_length,
                    boundary="zeros", padded=True)
    return X, t


def _istft(X: np.ndarray, sr: int, n: int, *, n_fft: int, hop_length: int) -> np.ndarray:
    from scipy.signal import istft

    _t, y = istft(X, fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop_length, boundary=True)
    y = y[:n]
    return np.pad(y, (0, n - len(y))) if len(y) < n else y


def resample_motion(motion: np.ndarray, fps: float, times: np.ndarray) -> np.ndarray:
    """Average motion speeds resampled to STFT frame times (linear interpolation, held at the ends).

    Parameters
    ----------
    motion : np.ndarray, shape (T, C)
        Speeds per video frame (e.g. ``RegionMotion.speed``); row ``i`` at ``i / fps`` s.
    fps : float
    times : np.ndarray, shape (N,)
        STFT frame times in seconds.

    Returns
    -------
    np.ndarray, shape (N, C)
        Non-negative.
    """
    m = np.asarray(motion, float)
    if m.ndim == 1:
        m = m[:, None]
    tv = np.arange(len(m)) / fps
    return np.maximum(np.stack([np.interp(times, tv, m[:, c]) for c in range(m.shape[1])], 1), 0.0)


@dataclass
class NMFResult:
    """A factorisation ``V ~ W H`` (and ``M ~ H^T A`` for the motion-informed model).

    Attributes
    ----------
    W : np.ndarray, shape (F, K)
        Unit-norm (L2) spectral patterns.
    H : np.ndarray, shape (K, N)
        Activations.
    A : np.ndarray or None, shape (K, C)
        Motion regression coefficients.
    cost : list of float
        The objective after each iteration (Equation 2; KL only for plain NMF).
    """

    W: np.ndarray
    H: np.ndarray
    A: np.ndarray | None
    cost: list


def _kl(V, WH):
    return float(np.sum(V * np.log((V + _EPS) / (WH + _EPS)) - V + WH))


def kl_nmf(V: np.ndarray, n_components: int, *, n_iter: int = 200, seed: int = 0) -> NMFResult:
    """KL-divergence NMF with multiplicative updates and unit-norm bases (audio only).

    Parameters
    ----------
    V : np.ndarray, shape (F, N)
        Non-negative magnitude spectrogram.
    n_components : int
        K.
    n_iter : int
    seed : int

    Returns
    -------
    NMFResult
    """
    return motion_nmf(V, None, n_components, n_iter=n_iter, seed=seed)


def motion_nmf(V: np.ndarray, M: np.ndarray | None, n_components: int, *, lam: float = 1.0, mu: float = 0.1,
               n_iter: int = 200, seed: int = 0) -> NMFResult:
    """Joint audio-motion NMF of Equation 2 of 002 by multiplicative updates.

    With ``D = D_KL(V | WH)`` and ``G = ||M - H^T A||_F^2`` the updates (each a ratio of the
    negative and positive parts of the gradient) are::

        W <- W * ((V / WH) H^T) / (1 H^T),           then w_k <- w_k / ||w_k||, h_k <- h_k ||w_k||
        H <- H * (W^T (V / WH) + 2 lam' A M^T) / (W^T 1 + 2 lam' A A^T H)
        A <- A * (2 lam' H M) / (2 lam' H H^T A + mu')

    Scales (002 leaves lambda and mu "to be tuned"): ``V`` is divided by its mean and each
    column of ``M`` by its mean, and the weights used are ``lam' = lam * F / C`` and
    ``mu' = mu * F * N / (100 K C)``, so that ``lam`` and ``mu`` weigh the motion terms per
    element against the KL term whatever the spectrogram size. The defaults (1, 0.1) were
    chosen on synthetic duets (``benchmarks/bench_analyses.py``).

    Parameters
    ----------
    V : np.ndarray, shape (F, N)
        Magnitude spectrogram of the mixture.
    M : np.ndarray or None, shape (N, C)
        Average motion speeds of the C motion clusters at the STFT frames; None gives plain
        KL-NMF.
    n_components : int
        K, the number of spectral patterns.
    lam, mu : float
        lambda and mu of Equation 2 (per-element normalised, see above).
    n_iter : int
        Iterations.
    seed : int
        Seeds the random initialisation.

    Returns
    -------
    NMFResult
        ``W``, ``H`` for the mean-normalised ``V`` (multiply ``H`` by ``V.mean()`` for the
        original scale; masks do not need it).
    """
    V = np.asarray(V, float)
    if V.ndim != 2 or (V < 0).any() or not np.isfinite(V).all():
        raise ParameterError(f"V must be a finite non-negative (F, N) matrix, got shape {V.shape}")
    F, N = V.shape
    K = int(n_components)
    if K < 1:
        raise ParameterError(f"n_components must be >= 1, got {n_components}")
    scale = V.mean() or 1.0
    V = V / scale
    rng = np.random.default_rng(seed)
    W = rng.uniform(0.1, 1.0, (F, K))
    W /= np.linalg.norm(W, axis=0, keepdims=True)
    H = rng.uniform(0.1, 1.0, (K, N)) * V.sum(0, keepdims=True) / K
    A = None
    if M is not None:
        M = np.asarray(M, float)
        if M.ndim != 2 or M.shape[0] != N or (M < 0).any():
            raise ParameterError(f"M must be a non-negative ({N}, C) matrix (one row per STFT frame), got {M.shape}")
        C = M.shape[1]
        M = M / np.maximum(M.mean(0, keepdims=True), _EPS)
        lam_ = lam * F / C
        mu_ = mu * F * N / (K * C) / 100.0
        A = rng.uniform(0.1, 1.0, (K, C)) / max(H.mean(), _EPS) / K
    ones = np.ones_like(V)
    cost = []
    for _ in range(n_iter):
        WH = W @ H + _EPS
        W *= ((V / WH) @ H.T) / (ones @ H.T + _EPS)
        norms = np.linalg.norm(W, axis=0) + _EPS
        W /= norms
        H *= norms[:, None]
        WH = W @ H + _EPS
        num = W.T @ (V / WH)
        den = W.T @ ones
        if A is not None:
            num = num + 2 * lam_ * (A @ M.T)
            den = den + 2 * lam_ * (A @ (A.T @ H))
        H *= num / (den + _EPS)
        if A is not None:
            A *= (2 * lam_ * (H @ M)) / (2 * lam_ * ((H @ H.T) @ A) + mu_ + _EPS)
        c = _kl(V, W @ H + _EPS)
        if A is not None:
            c += lam_ * float(np.sum((M - H.T @ A) ** 2)) + mu_ * float(A.sum())
        cost.append(c)
    return NMFResult(W=W, H=H, A=A, cost=cost)


def assign_by_motion(A: np.ndarray, clusters: list[int], H: np.ndarray | None = None,
                     M: np.ndarray | None = None) -> np.ndarray:
    """Source of each basis: the source owning ``argmax_c A[k, c]`` (002 VI-B, step 4).

    Parameters
    ----------
    A : np.ndarray, shape (K, C)
    clusters : list of int
        ``clusters[j]`` is the number of motion clusters of source ``j``, in column order
        (``C = sum(clusters)``).
    H, M : np.ndarray, optional
        Activations (K, N) and motion (N, C). A basis whose row of ``A`` is all zero (the L1
        penalty switched it off) is not covered by the paper's rule; it then goes to the source
        whose motion correlates best with its activation, when ``H`` and ``M`` are given.

    Returns
    -------
    np.ndarray of int, shape (K,)
    """
    owner = np.repeat(np.arange(len(clusters)), clusters)
    if A.shape[1] != len(owner):
        raise ParameterError(f"A has {A.shape[1]} columns but clusters add up to {len(owner)}")
    src = owner[np.argmax(A, axis=1)]
    if H is not None and M is not None:
        dead = A.max(1) <= 1e-9 * max(A.max(), _EPS)
        for k in np.flatnonzero(dead):
            r = [np.corrcoef(H[k], M[:, c])[0, 1] if H[k].std() > 0 and M[:, c].std() > 0 else -1 for c in range(M.shape[1])]
            src[k] = owner[int(np.nanargmax(r))]
    return src


def assign_by_timbre(W: np.ndarray, n_sources: int, sr: int, *, seed: int = 0, n_mfcc: int = 13) -> np.ndarray:
    """Audio-only basis clustering: k-means on the MFCCs of the spectral patterns.

    Parameters
    ----------
    W : np.ndarray, shape (F, K)
    n_sources : int
    sr : int
        Sample rate of the STFT (for the mel filter bank).

    Returns
    -------
    np.ndarray of int, shape (K,)
        Cluster index per basis; the cluster-to-source order is arbitrary (blind).
    """
    from scipy.fft import dct

    F, K = W.shape
    fb = mel_filterbank(sr, 2 * (F - 1), 40, fmin=30.0)
    mf = dct(np.log(fb @ W + 1e-6), axis=0, norm="ortho")[1:n_mfcc]
    Z = (mf - mf.mean(1, keepdims=True)) / (mf.std(1, keepdims=True) + 1e-9)
    return _kmeans(Z.T, n_sources, seed=seed)


def _kmeans(X: np.ndarray, k: int, *, seed: int = 0, n_init: int = 8, n_iter: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    best, best_lab = np.inf, np.zeros(len(X), int)
    k = min(k, len(X))
    for _ in range(n_init):
        C = X[rng.choice(len(X), k, replace=False)]
        for _ in range(n_iter):
            d = ((X[:, None, :] - C[None]) ** 2).sum(-1)
            lab = d.argmin(1)
            newC = np.stack([X[lab == j].mean(0) if (lab == j).any() else C[j] for j in range(k)])
            if np.allclose(newC, C):
                break
            C = newC
        inertia = float(((X - C[lab]) ** 2).sum())
        if inertia < best:
            best, best_lab = inertia, lab
    return best_lab


def source_masks(W: np.ndarray, H: np.ndarray, sources: np.ndarray, n_sources: int) -> np.ndarray:
    """Soft masks ``(W_j H_j) / (W H)`` of each source (002 VI-B, step 4).

    Returns
    -------
    np.ndarray, shape (J, F, N)
        Non-negative; they add up to 1 wherever ``W H`` is not zero.
    """
    WH = W @ H + _EPS
    out = np.zeros((n_sources, W.shape[0], H.shape[1]))
    for j in range(n_sources):
        sel = sources == j
        if sel.any():
            out[j] = (W[:, sel] @ H[sel]) / WH
    return out


def separate_masks(X: np.ndarray, W: np.ndarray, H: np.ndarray, sources: np.ndarray, n_sources: int) -> np.ndarray:
    """Soft-masked source STFTs ``X * (W_j H_j) / (W H)`` (002 VI-B, step 4).

    Returns
    -------
    np.ndarray, complex, shape (J, F, N)
    """
    return X[None] * source_masks(W, H, sources, n_sources)


def align_masks(reference: np.ndarray, masks: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Reorder the sources of ``masks`` to agree best with ``reference`` (blind: no true sources).

    The order maximising ``sum_j sum(weight * reference[j] * masks[order[j]])`` is taken over all
    permutations (J! of them; J is a handful of players).

    Parameters
    ----------
    reference, masks : np.ndarray, shape (J, F, N)
    weight : np.ndarray, shape (F, N), optional
        E.g. the mixture's magnitude spectrogram, so that loud bins count more.

    Returns
    -------
    np.ndarray, shape (J, F, N)
    """
    from itertools import permutations

    w = 1.0 if weight is None else weight
    J = len(masks)
    score = np.array([[float(np.sum(w * reference[a] * masks[b])) for b in range(J)] for a in range(J)])
    best = max(permutations(range(J)), key=lambda p: sum(score[j, p[j]] for j in range(J)))
    return masks[list(best)]


def name_by_motion(masks: np.ndarray, V: np.ndarray, motion: np.ndarray, driven, playing: np.ndarray | None = None):
    """Name unnamed sources (audio-only clusters) by the motion of the players who make sound by moving.

    For each order of the sources, the score is the sum, over the players whose instrument's
    loudness follows their motion (``driven``), of the Pearson correlation between the log
    loudness of the source given to them (``log(sum_f masks[j] * V + floor)``, floor 1e-3 of its
    maximum) and their motion speed, over the frames in which they play. This is 002 VI-B's
    premise (sound follows the speed of sound-producing motion) applied to whole sources, not
    to single bases.

    Parameters
    ----------
    masks : np.ndarray, shape (J, F, N)
    V : np.ndarray, shape (F, N)
        Mixture magnitude spectrogram.
    motion : np.ndarray, shape (N, J)
        Each player's motion speed at the STFT frames.
    driven : sequence of bool, length J
    playing : np.ndarray of bool, shape (N, J), optional
        Each player's playing frames (all frames when None or fewer than 10).

    Returns
    -------
    order : list of int
        ``masks[order]`` puts player ``j``'s source at index ``j``.
    margin : float
        Best score minus the second best (0 with a single order); a small margin means the
        motion cannot tell.
    """
    from itertools import permutations

    J = len(masks)
    env = np.stack([(masks[j] * V).sum(0) for j in range(J)])
    env = np.log(env + 1e-3 * env.max(1, keepdims=True) + _EPS)
    corr = np.zeros((J, J))  # corr[p, c]: player p's motion with cluster c's loudness
    for p in range(J):
        if not driven[p]:
            continue
        sel = np.ones(env.shape[1], bool) if playing is None or playing[:, p].sum() < 10 else playing[:, p]
        m = motion[sel, p]
        for c in range(J):
            e = env[c, sel]
            corr[p, c] = np.corrcoef(e, m)[0, 1] if e.std() > 0 and m.std() > 0 else 0.0
    scores = sorted(((sum(corr[p, o[p]] for p in range(J)), list(o)) for o in permutations(range(J))),
                    key=lambda t: -t[0])
    margin = scores[0][0] - scores[1][0] if len(scores) > 1 else 0.0
    return scores[0][1], float(margin)


@dataclass
class SeparationResult:
    """Separated sources.

    Attributes
    ----------
    sources : np.ndarray, shape (J, n)
        Time-domain estimates at ``sr``.
    sr : int
    assignment : np.ndarray of int, shape (K,)
        Source of each basis (of the first factorisation, ``seed``).
    nmf : NMFResult
        The first factorisation (``seed``); with ``restarts > 1`` the masks are the average over
        all of them.
    method : str
        ``"motion"`` (Equation 2), ``"audio"`` (the audio-only baseline, sources unnamed) or
        ``"timbre+motion"`` (timbre clusters named by the players' motion, see ``instruments``
        in :func:`separate`).
    naming_margin : float or None
        With ``instruments``: the evidence margin of the naming (:func:`name_by_motion`).
    """

    sources: np.ndarray
    sr: int
    assignment: np.ndarray
    nmf: NMFResult
    method: str = "motion"
    naming_margin: float | None = None


def separate(y: np.ndarray, sr: int, *, motion: np.ndarray | None = None, motion_fps: float | None = None,
             clusters: list[int] | None = None, n_sources: int | None = None, n_components: int = 20,
             lam: float = 1.0, mu: float = 0.1, n_iter: int = 200, n_fft: int = 1024, hop_length: int = 256,
             seed: int = 0, playing: np.ndarray | None = None, restarts: int = 5,
             instruments: list[str] | None = None, min_margin: float = 0.0) -> SeparationResult:
    """Separate a mixture with the motion-informed NMF of Equation 2, or audio-only without motion.

    Parameters
    ----------
    y : np.ndarray, shape (n,)
        Mono mixture.
    sr : int
        Its sample rate (16 kHz is plenty and fast).
    motion : np.ndarray, shape (T, C), optional
        Average motion speeds per video frame and motion cluster; None runs the audio-only
        baseline (MFCC clustering of the bases; source order arbitrary).
    motion_fps : float
        Frame rate of ``motion``.
    clusters : list of int, optional
        Motion clusters per source (default one per source: ``[1] * C``).
    n_sources : int, optional
        Needed for the audio-only baseline (defaults to ``len(clusters)``).
    n_components : int
        NMF bases K.
    lam, mu, n_iter : see :func:`motion_nmf`.
    n_fft, hop_length : int
        STFT frame and hop in samples.
    seed : int
    playing : np.ndarray of bool, shape (T, J), optional
        Playing / non-playing of each source per video frame (002 IV-B; e.g.
        :func:`~musicperf.analysis.playing.playing_audio_visual`). The motion clusters of a
        source that is not playing are set to 1 % of their mean there before the factorisation
        (ours: 002 names P/NP as a cue for source allocation; a resting player's idle motion
        would otherwise ask Equation 2 for sound). Only the even restarts (``seed``, ``seed +
        2``, ...) use the gated motion; the odd ones use the motion as measured, so that an
        estimate that calls a playing player resting (which moves whole bases to the other
        player) weighs about half. On the 72 string duets of seeds 1-6 of
        ``benchmarks/bench_duets.py`` (estimated playing/non-playing, 5 restarts) the mean SDR
        was 4.11 dB with every restart gated, 4.13 dB with none, 4.21 dB alternating; per
        condition, gating every restart was the worst with freezes (a still player needs no
        gate, and each false rest costs: 3.27 / 5.40 / 4.15 dB on seeds 3-4 with motion
        dynamics), gating none the worst with idle rests, alternating never (docs/analyses.md).
    restarts : int
        Factorisations from ``restarts`` random initialisations (seeds ``seed``, ``seed + 1``,
        ...) whose soft masks are averaged (ours; 002 runs one). One factorisation's masks move
        by several dB of SDR with its initialisation, each way; the average keeps what the
        runs agree on. Motion-informed runs need no alignment (each basis goes to a named
        player); the audio-only baseline's clusters are unnamed, so each run's sources are
        first put in the order that agrees best with the first run's (:func:`align_masks`,
        weighted by the mixture's spectrogram). ``restarts=1`` is the paper's single run.
    instruments : list of str, optional
        The instrument of each source, in player order (ours). Equation 2 needs every player's
        sound to follow their motion (:data:`MOTION_DRIVEN`: strings). When some instruments are
        not motion-driven (flute, piano, ...), at least one is, and all are different, the
        sources are instead the audio-only baseline's timbre clusters (different instruments
        have different spectral envelopes), named by the motion of the motion-driven players
        (:func:`name_by_motion`). If the naming margin is 0 (no evidence) or under
        ``min_margin``, Equation 2 is used after all. Otherwise, or without ``instruments``,
        Equation 2. Names are compared in lower case; a name not in
        :data:`MOTION_DRIVEN` counts as not motion-driven. On seeds 1-2 of
        ``benchmarks/bench_duets.py`` Equation 2 with the estimated playing/non-playing was
        3.3-5.1 dB behind the timbre baseline on the pairs with a flute or piano (mean per
        condition); docs/analyses.md has all the figures.
    min_margin : float
        See ``instruments``. Default 0: the clusters are named by the sign of the evidence, with
        Equation 2 only when there is none. With motion dynamics (the violin's loudness follows
        its bow) the sign was right in 23 of the 24 flute or piano duets of seeds 1, 2, 5 and 6
        of the duet benchmark and in all 12 of seeds 3-4, including the 4 whose margins were
        under 0.1; on the plain synth in 11 of 12 and 6 of 12. A wrong name swaps two good
        sources (about -b dB where the right one has b); Equation 2 on such a pair reaches 1-2
        dB, so naming pays whenever the sign is right clearly more often than not. (0.1 before,
        chosen on seeds 1, 2, 5 and 6: on seeds 3-4 with motion dynamics it sent those 4 right
        namings to Equation 2: 2.1, 7.4, -1.4 and 6.5 dB where the named clusters had 7.1,
        10.2, 7.2 and 11.0.)

    Returns
    -------
    SeparationResult
    """
    y = np.asarray(y, float)
    if y.ndim != 1 or y.size < n_fft:
        raise ParameterError(f"the mixture must be mono and at least {n_fft} samples long, got shape {y.shape}")
    if int(restarts) < 1:
        raise ParameterError(f"restarts must be >= 1, got {restarts}")
    X, times = stft_mag(y, sr, n_fft=n_fft, hop_length=hop_length)
    V = np.abs(X)
    if motion is not None:
        if motion_fps is None or motion_fps <= 0:
            raise ParameterError("motion_fps is needed with motion")
        m = np.asarray(motion, float)
        m = m[:, None] if m.ndim == 1 else m
        clusters = list(clusters) if clusters is not None else [1] * m.shape[1]
        if sum(clusters) != m.shape[1]:
            raise ParameterError(f"clusters {clusters} add up to {sum(clusters)} but motion has {m.shape[1]} columns")
        J = len(clusters)
        if playing is not None:
            pl = np.asarray(playing, bool)
            pl = pl[:, None] if pl.ndim == 1 else pl
            if pl.shape != (len(m), J):
                raise ParameterError(f"playing must have shape ({len(m)}, {J}) (frames, sources), got {pl.shape}")
            gate = np.repeat(pl, clusters, axis=1)
        # the motion of restart r (at the STFT frames, and scaled for the assignment): the gated
        # motion for even r and, with ``playing``, the motion as measured for odd r
        variants = [m] if playing is None else [np.where(gate, m, 0.01 * m.mean(0, keepdims=True)), m]
        runs_motion = [(M, M / np.maximum(M.mean(0, keepdims=True), _EPS))
                       for M in (resample_motion(v, motion_fps, times) for v in variants)]
        Mn = runs_motion[0][0]
    else:
        J = n_sources or (len(clusters) if clusters else None)
        if not J:
            raise ParameterError("the audio-only baseline needs n_sources")

    def averaged(with_motion: bool):
        first, masks = None, np.zeros((J,) + V.shape)
        for r in range(int(restarts)):
            if with_motion:
                M_r, M_rs = runs_motion[r % len(runs_motion)]
                nmf = motion_nmf(V, M_r, n_components, lam=lam, mu=mu, n_iter=n_iter, seed=seed + r)
                src = assign_by_motion(nmf.A, clusters, nmf.H, M_rs)
            else:
                nmf = kl_nmf(V, n_components, n_iter=n_iter, seed=seed + r)
                src = assign_by_timbre(nmf.W, J, sr, seed=seed + r)
            mk = source_masks(nmf.W, nmf.H, src, J)
            if not with_motion and first is not None:  # unnamed clusters: the first run's order
                mk = align_masks(first[2], mk, V)
            if first is None:
                first = (nmf, src, mk)
            masks += mk
        return masks / int(restarts), first

    method, margin = ("motion" if motion is not None else "audio"), None
    if motion is not None and instruments is not None:
        inst = [str(i).strip().lower() for i in instruments]
        if len(inst) != J:
            raise ParameterError(f"{len(inst)} instruments for {J} players: give one per player, in player order")
        driven = [i in MOTION_DRIVEN for i in inst]
        if any(driven) and not all(driven) and len(set(inst)) == J:
            masks, first = averaged(False)
            per_source = np.stack([Mn[:, sum(clusters[:j]):sum(clusters[:j + 1])].sum(1) for j in range(J)], 1)
            pl_stft = None
            if playing is not None:
                pl_stft = pl[np.clip(np.round(times * motion_fps).astype(int), 0, len(pl) - 1)]
            order, margin = name_by_motion(masks, V, per_source, driven, pl_stft)
            if margin > 0 and margin >= min_margin:
                masks, method = masks[order], "timbre+motion"
                first = (first[0], np.argsort(order)[first[1]])  # cluster order[j] is now source j
    if method != "timbre+motion":
        masks, first = averaged(motion is not None)
    est = np.stack([_istft(X * masks[j], sr, len(y), n_fft=n_fft, hop_length=hop_length) for j in range(J)])
    return SeparationResult(sources=est, sr=sr, assignment=first[1], nmf=first[0], method=method,
                            naming_margin=margin)


def evaluate(reference: np.ndarray, estimated: np.ndarray, *, permute: bool = False) -> dict:
    """SDR, SIR and SAR in dB with mir_eval's BSS Eval (v3, ``bss_eval_sources``).

    Parameters
    ----------
    reference, estimated : np.ndarray, shape (J, n)
    permute : bool
        Let mir_eval choose the best source order (for blind methods); False scores
        ``estimated[j]`` against ``reference[j]``.

    Returns
    -------
    dict
        ``sdr``, ``sir``, ``sar`` (lists per source), their means ``sdr_mean`` ... and
        ``permutation``. Silent references (all zero) cannot be scored and raise
        :class:`ParameterError`.
    """
    sep = require("mir_eval.separation", extra="analysis", purpose="separation metrics")
    ref = np.atleast_2d(np.asarray(reference, float))
    est = np.atleast_2d(np.asarray(estimated, float))
    if ref.shape != est.shape:
        raise ParameterError(f"reference {ref.shape} and estimates {est.shape} differ in shape")
    if (np.abs(ref).max(1) == 0).any():
        raise ParameterError("a reference source is silent; BSS Eval cannot score it")
    est = est + 1e-9 * np.random.default_rng(0).standard_normal(est.shape)  # all-zero estimates are invalid
    import warnings

    with warnings.catch_warnings():
        # mir_eval 0.8 deprecates bss_eval_sources (BSS Eval v3) but it is the version the
        # separation literature, 002's figures included, reports
        warnings.simplefilter("ignore", FutureWarning)
        sdr, sir, sar, perm = sep.bss_eval_sources(ref, est, compute_permutation=permute)
    return dict(sdr=sdr.tolist(), sir=sir.tolist(), sar=sar.tolist(), permutation=perm.tolist(),
                sdr_mean=float(np.mean(sdr)), sir_mean=float(np.mean(sir)), sar_mean=float(np.mean(sar)))
