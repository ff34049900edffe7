"""The fast path from a video file to model inputs and backbone features, without frames on disk.

Three pieces, used by the labelling workflow (:mod:`musicperf.tasks.gestures`) and by the
benchmarks:

* :func:`decode_frames`: threaded PyAV decoding (frame and slice threads) and conversion to
  resized RGB, either with PyAV's ``reformat`` (libswscale, area filter; the default) or with
  OpenCV *on the YUV planes* (luma to ``(H, W)``, chroma to ``(H/2, W/2)``, then one colour
  conversion at the small size; ``method="opencv"``). The OpenCV route was expected to be
  faster (it converts 112 x 112 pixels instead of 640 x 480) but on the loaded 2-core machine
  it measured 0.6-1.0 times the speed of ``reformat`` (a dozen small OpenCV calls per frame
  cost more than one swscale pass), so ``"auto"`` uses ``reformat``; see docs/performance.md.
  Its pixels differ from swscale's by 1-3 grey levels on average.
* :func:`prefetch`: runs any iterator in a background thread with a bounded queue, so decoding
  the next clips overlaps with inference on the current ones (PyAV, OpenCV and torch release
  the GIL while they work). Memory stays flat: at most ``depth`` items wait in the queue.
* :class:`BackboneRunner`: a frozen 3D-CNN applied to uint8 clips, with its numeric mode
  (``fp32``, ``fp32`` + ``channels_last_3d``, ``bfloat16`` autocast + ``channels_last_3d``)
  chosen once per machine: on the first real batches of the first video (each candidate runs
  two of them, warm-up and timed; their outputs are used), then stored in the user cache
  directory keyed by CPU, torch, model architecture and batch shape, and read back by every
  later process (:meth:`BackboneRunner.machine_key`, :func:`load_cached_choice`); a setting or
  ``MUSICPERF_NUMERIC_MODE`` forces it (:func:`resolve_numeric_mode`); timings within 10 % of
  each other keep the mode the CPU's capabilities predict (:func:`decide_mode`). ``bf16`` is admitted only when its pooled features are
  within :data:`BF16_TOLERANCE` (relative L2 error) of fp32's on the same clip. ``bf16`` is a candidate only where oneDNN
  has native bfloat16 kernels (AVX-512 BF16, AMX): emulated, it measured 6 times slower than
  fp32 here (AVX2), and probing it would cost more than it could save. ``torch.compile`` (inductor, freezing) is
  an option, off by default because compiling takes minutes on a small CPU; its compiled kernels
  persist in the user cache directory (:func:`enable_compile_cache`), so only the first process
  on a machine pays the full compile (ResNet-34: 27 s, then 10 s).

Imports numpy and the standard library at module level; PyAV, OpenCV and torch inside the
functions that need them.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from musicperf.errors import ParameterError
from musicperf.features.numeric_mode import (  # noqa: F401 - re-exported
    AMBIGUOUS,
    BF16_TOLERANCE,
    MODES,
    NUMERIC_MODE_CHOICES,
    NUMERIC_MODE_ENV,
    PrecisionChoice,
    _key_digest,
    bf16_supported,
    compile_cache_dir,
    cpu_info,
    decide_mode,
    describe_cpu,
    enable_compile_cache,
    load_cached_choice,
    numeric_mode_cache_dir,
    parse_numeric_mode,
    resolve_numeric_mode,
    save_cached_choice,
)
from musicperf.features.landmarks import interpolate_samples  # noqa: F401 - re-exported here, where it was first

log = logging.getLogger(__name__)

__all__ = ["decode_frames", "prefetch", "BackboneRunner", "PrecisionChoice", "BF16_TOLERANCE", "MODES",
           "bf16_supported", "NUMERIC_MODE_ENV", "NUMERIC_MODE_CHOICES", "parse_numeric_mode", "resolve_numeric_mode",
           "decide_mode", "cpu_info", "describe_cpu", "numeric_mode_cache_dir", "load_cached_choice",
           "save_cached_choice", "compile_cache_dir", "enable_compile_cache", "AMBIGUOUS"]


_YUV420 = ("yuv420p", "yuvj420p")


# --------------------------------------------------------------------------- decoding
def _cv2():
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def _resize(img: np.ndarray, w: int, h: int, cv2) -> np.ndarray:
    """Area-average ``img`` down to ``(h, w)`` quickly.

    OpenCV's ``INTER_AREA`` is fast only for integer scale factors (an order of magnitude
    slower otherwise, its cost growing with the source size), so the picture is first averaged
    by the integer factors ``floor(H0 / h)`` and ``floor(W0 / w)`` (cropping the at most
    ``factor - 1`` last rows/columns that do not fill a block). The rest, a factor below 2, is
    bilinear when it is below 1.25 (sampling nearly 1:1 cannot alias; the general area path
    costs ten times more, mostly rebuilding its weight tables on every call) and area
    otherwise (bilinear would alias there: small moving objects would flicker in and out
    between sample rows).
    """
    h0, w0 = img.shape[:2]
    if (h0, w0) == (h, w):
        return img
    kh, kw = max(1, h0 // h), max(1, w0 // w)
    if kh > 1 or kw > 1:
        hi, wi = h0 // kh, w0 // kw
        img = cv2.resize(img[: hi * kh, : wi * kw], (wi, hi), interpolation=cv2.INTER_AREA)
    hi, wi = img.shape[:2]
    if (hi, wi) != (h, w):
        near = hi <= 1.25 * h and wi <= 1.25 * w
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR if near else cv2.INTER_AREA)
    return img


def _plane(plane, height: int, width: int) -> np.ndarray:
    """A frame plane as a ``(height, width)`` uint8 view (no copy; line padding dropped)."""
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:height, :width]


def _yuv_to_rgb(frame, *, size: tuple[int, int], cv2, full_range: bool) -> np.ndarray:
    """Resize the planes of a 4:2:0 ``av.VideoFrame`` to ``size`` and convert to RGB ``(H, W, 3)``."""
    h, w = size
    h0, w0 = frame.height, frame.width
    p = frame.planes
    ys = _resize(_plane(p[0], h0, w0), w, h, cv2)
    us = _resize(_plane(p[1], h0 // 2, w0 // 2), w // 2, h // 2, cv2)
    vs = _resize(_plane(p[2], h0 // 2, w0 // 2), w // 2, h // 2, cv2)
    if full_range:
        # OpenCV's I420 conversion assumes limited (16-235) range; map full-range JPEG levels there.
        ys = cv2.convertScaleAbs(ys, alpha=219 / 255, beta=16)
        us = cv2.convertScaleAbs(us, alpha=224 / 255, beta=128 * (1 - 224 / 255))
        vs = cv2.convertScaleAbs(vs, alpha=224 / 255, beta=128 * (1 - 224 / 255))
    i420 = np.concatenate([ys.ravel(), us.ravel(), vs.ravel()]).reshape(h * 3 // 2, w)
    return cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420)


def decode_frames(
    video: str | Path,
    *,
    size: tuple[int, int] | None,
    start: float = 0.0,
    end: float | None = None,
    threads: int = 0,
    method: str = "auto",
) -> Iterator[tuple[float, np.ndarray]]:
    """Decode a video into resized RGB frames, in display order, as fast as the CPU allows.

    Timestamps, seeking, rotation and damaged packets are handled by
    :class:`musicperf.io.video.VideoReader` (same times as ``VideoReader.frames``); only the
    conversion to RGB differs (see the module docstring).

    Parameters
    ----------
    video : str or Path
    size : (int, int) or None
        ``(height, width)`` of the returned frames as displayed; None keeps the video's size.
    start, end : float
        Seconds; frames with ``start <= t < end`` (``end`` None: to the end).
    threads : int
        Decoder threads (0: ffmpeg chooses; frame and slice threading are both enabled).
    method : {"auto", "opencv", "pyav"}
        ``"auto"`` and ``"pyav"``: PyAV's reformat. ``"opencv"``: resize the YUV planes with
        OpenCV when the pixel format and size allow (4:2:0, even height and width; otherwise
        reformat).

    Yields
    ------
    time : float
        Seconds on the video's timeline.
    frame : np.ndarray, shape (H, W, 3), uint8
        RGB.
    """
    from musicperf.io.video import VideoReader, _to_array

    if method not in ("auto", "opencv", "pyav"):
        raise ParameterError(f"method must be 'auto', 'opencv' or 'pyav', got {method!r}")
    cv2 = _cv2() if method == "opencv" else None
    if method == "opencv" and cv2 is None:
        raise ParameterError("method 'opencv' needs OpenCV (pip install opencv-python-headless)")
    import av

    with VideoReader(video, threads=threads) as reader:
        rotation = reader.info.rotation if reader.info is not None else 0
        reformatter = av.video.reformatter.VideoReformatter()
        target = size
        if size is not None and rotation in (90, 270):
            target = (size[1], size[0])  # resize the stored picture, then turn it
        for t, frame in reader._frames(float(start), end, size=None, convert=False):
            fmt = frame.format.name
            want = target if target is not None else (frame.height, frame.width)
            if (cv2 is not None and fmt in _YUV420 and want[0] % 2 == 0 and want[1] % 2 == 0
                    and frame.height % 2 == 0 and frame.width % 2 == 0):
                arr = _yuv_to_rgb(frame, size=want, cv2=cv2, full_range=fmt == "yuvj420p")
                if rotation:
                    arr = np.ascontiguousarray(np.rot90(arr, k=-(rotation // 90)))
            else:
                arr = _to_array(frame, size=size, rotation=rotation, fmt="rgb24", reformatter=reformatter)
            yield t, arr


# --------------------------------------------------------------------------- overlap
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetch(items: Iterable, *, depth: int = 2) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` items ahead of the consumer.

    Exceptions raised by ``items`` are re-raised in the consumer at the point they occurred.
    When the consumer stops early (``break``, exception, garbage collection), the producer
    thread is told to stop and finishes its current item.

    Parameters
    ----------
    items : iterable
        Typically a generator of decoded clip batches.
    depth : int
        Items buffered at most (memory: ``depth + 1`` items besides the consumer's).

    Yields
    ------
    The items of ``items``, in order.
    """
    if depth < 1:
        raise ParameterError(f"prefetch depth must be >= 1, got {depth}")
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for x in items:
                if not put(x):
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                close()

    th = threading.Thread(target=produce, name="musicperf-prefetch", daemon=True)
    th.start()
    try:
        while True:
            x = q.get()
            if x is _DONE:
                return
            if isinstance(x, _Failure):
                raise x.exc
            yield x
    finally:
        stop.set()
        th.join(timeout=10)


# --------------------------------------------------------------------------- backbone
#: Choices already made in this process, keyed like the per-machine cache: relabelling many
#: videos in one process reads the file once.
_CHOSEN: dict[str, PrecisionChoice] = {}


class BackboneRunner:
    """Pooled features of a frozen 3D-CNN on uint8 clips, in the fastest acceptable numeric mode.

    Parameters
    ----------
    net : musicperf.models.ResNet3D
        In eval mode, frozen; only ``forward_features`` is used.
    normalization : musicperf.models.Normalization or None
        Applied to clips scaled to [0, 1].
    mode : str or None
        ``"fp32"``, ``"bf16"`` or a name from :data:`MODES` forces the mode (nothing is
        timed). ``"auto"`` or None: :data:`NUMERIC_MODE_ENV` when set (read by
        :func:`resolve_numeric_mode`), otherwise chosen once per machine. The choice is read
        from the per-machine cache (:func:`load_cached_choice`) when one was made for the same
        key (:meth:`machine_key`: CPU model and flags, torch version and threads, model
        architecture, batch shape, tolerance); otherwise it is made online on the first real
        batches (each candidate runs two, warm-up and timed; their outputs are the results)
        and stored. The fastest mode whose features passed the numerical check is kept,
        unless the timings are too close to call (:func:`decide_mode`). bf16 is checked on one
        clip of its timed batch against fp32 (relative L2 error <= ``tolerance``);
        channels_last_3d alone is a memory-layout change with the same fp32 arithmetic
        (measured differences below 1e-6, see tests/test_fastpath.py). :meth:`choose` does the
        same on a probe.
    compile : bool
        Wrap ``forward_features`` in ``torch.compile`` (inductor with freezing), with the
        compiled kernels kept in the user cache directory (:func:`enable_compile_cache`); falls
        back to eager mode with a warning if compiling fails (also on the first call, where
        compiling happens). The candidate modes are timed
        eagerly and only the chosen one is compiled. :attr:`compile_seconds` reports the cost.
    tolerance : float
        Largest accepted relative error of bf16 features against fp32.
    probe : int
        Clips of the first batch used by :meth:`choose`.
    try_bf16 : bool, optional
        Probe bf16 even without native support (True) or never (False); default: only where
        :func:`bf16_supported`.
    cache : bool
        Read and write the per-machine choice (False: measure in every process).
    cache_dir : str or Path, optional
        Folder of the choices (default :func:`numeric_mode_cache_dir`).
    full_graph_cache : bool
        With ``compile=True``, the compiled kernels always persist in the user cache directory
        (:func:`enable_compile_cache`): a later process skips building them, but compiles the
        graph again, because inductor cannot store a graph holding prepacked oneDNN weights.
        True compiles without weight prepacking so that the whole graph is stored and loaded.
        Measured for ResNet-34 in bf16 (docs/performance.md, ``benchmarks/bench_compile.py``):
        a second process starts 2 s sooner that way (7.5 against 9.8 s), but every batch is
        about 40 % slower, so the default is False.

    Attributes
    ----------
    choice : PrecisionChoice or None
        None until decided.
    compile_seconds : float or None
        With ``compile=True``: seconds of the first call of the compiled function (compiling,
        or loading the compiled graph from the cache, plus that one batch); None before.

    Examples
    --------
    >>> runner = BackboneRunner(net, norm)                       # doctest: +SKIP
    >>> feats = runner(clips)  # (B, 16, 112, 112, 3) uint8 -> (B, 512) float32  # doctest: +SKIP
    >>> runner.choice.mode                                       # doctest: +SKIP
    'fp32-cl3d'
    """

    def __init__(self, net, normalization=None, *, mode: str | None = "auto", compile: bool = False,
                 tolerance: float = BF16_TOLERANCE, probe: int = 1, try_bf16: bool | None = None,
                 cache: bool = True, cache_dir: str | Path | None = None, full_graph_cache: bool = False):
        resolved, source = resolve_numeric_mode(mode)
        if not tolerance > 0:
            raise ParameterError(f"tolerance must be positive, got {tolerance}")
        self.net = net
        self.normalization = normalization
        self.requested = resolved
        self.compile = bool(compile)
        self.tolerance = float(tolerance)
        self.probe = max(1, int(probe))
        self.try_bf16 = try_bf16
        self.cache = bool(cache)
        self.cache_dir = cache_dir
        self.full_graph_cache = bool(full_graph_cache)
        self._trials: list[str] | None = None
        self.choice: PrecisionChoice | None = None if resolved == "auto" else PrecisionChoice(resolved, source=source)
        self.compile_seconds: float | None = None
        self.compile_cache: Path | None = None
        self._fn = None
        self._fn_mode = None
        self._fn_compiled = False
        self._fn_calls = 0

    # -- tensors
    def to_tensor(self, clips: np.ndarray, *, channels_last: bool):
        """``(B, T, H, W, 3)`` uint8 -> normalised ``(B, 3, T, H, W)`` float32 tensor."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(clips)).permute(0, 4, 1, 2, 3).float().div_(255.0)
        if self.normalization is not None:
            x = self.normalization.apply(x)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        else:
            x = x.contiguous()
        return x

    def _forward(self, x, mode: str):
        import torch

        fn = self._callable(mode)
        first_compiled = self._fn_compiled and self._fn_calls == 0
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                if mode == "bf16-cl3d":
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        out = fn(x).float()
                else:
                    out = fn(x)
        except Exception as exc:  # noqa: BLE001 - torch.compile compiles on the first call; any failure: eager
            if not first_compiled:
                raise
            log.warning("torch.compile failed (%s: %s): running eagerly", type(exc).__name__, str(exc)[:200])
            self.compile = False
            return self._forward(x, mode)
        self._fn_calls += 1
        if first_compiled:
            self.compile_seconds = time.perf_counter() - t0
            log.info("backbone compiled in %.1f s (first batch included; graph cache %s)", self.compile_seconds,
                     self.compile_cache)
        return out

    def _callable(self, mode: str):
        import torch

        # With compile=True the candidate modes are timed eagerly and only the chosen one is
        # compiled: compiling each candidate cost two to three compilations (a minute on 2 cores).
        want_compiled = self.compile and self.choice is not None
        if self._fn_mode != mode or self._fn_compiled != want_compiled:
            fmt = torch.channels_last_3d if mode.endswith("cl3d") else torch.contiguous_format
            self.net.to(memory_format=fmt)
            fn = self.net.forward_features
            compiled = False
            if want_compiled:
                try:
                    import torch._inductor.config as inductor_config

                    inductor_config.freezing = True
                    self.compile_cache = enable_compile_cache()
                    # Prepacked oneDNN weights are mkldnn tensors, which inductor cannot pickle:
                    # with them the FX graph cache is bypassed ("mkldnn tensors unpickleable") and
                    # every process compiles the graph again (only the built kernels are reused).
                    inductor_config.cpp.weight_prepack = not self.full_graph_cache
                    fn = torch.compile(fn)
                    compiled = True
                except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
                    log.warning("torch.compile unavailable (%s): running eagerly", exc)
            if want_compiled and not compiled:
                self.compile = False  # eager from now on: a failed compile is not retried on every batch
            self._fn, self._fn_mode, self._fn_compiled, self._fn_calls = fn, mode, compiled, 0
        return self._fn

    def machine_key(self, clips: np.ndarray) -> dict:
        """What the numeric-mode choice depends on (JSON-able): the key of the per-machine cache.

        CPU model and flags (a digest of the full list, plus the four that decide the kernels),
        machine architecture, torch version and threads, whether oneDNN has native bf16, the
        model's architecture (its ``config``, or its class name), the batch shape, the tolerance
        and the bf16 policy. The weights are not part of it: the numerical check measures the
        rounding of bf16 arithmetic, which depends on the architecture and input, not on which
        training run produced the weights.
        """
        import hashlib

        import torch

        cpu = cpu_info()
        return {"cpu": cpu["model"], "cpu_flags": hashlib.sha256(" ".join(cpu["flags"]).encode()).hexdigest()[:16],
                "avx2": cpu["avx2"], "avx512": cpu["avx512"], "avx512_bf16": cpu["avx512_bf16"], "amx": cpu["amx"],
                "machine": cpu["machine"], "torch": torch.__version__, "threads": torch.get_num_threads(),
                "bf16_native": bf16_supported(), "net": repr(getattr(self.net, "config", type(self.net).__name__)),
                "batch_shape": [int(v) for v in clips.shape], "tolerance": self.tolerance,
                "try_bf16": self.try_bf16}

    def _known(self, clips: np.ndarray) -> tuple[str, PrecisionChoice | None]:
        """The cache key digest of ``clips`` and the choice already made for it (this process or disk)."""
        key = self.machine_key(clips)
        digest = _key_digest(key)
        if digest in _CHOSEN:
            return digest, _CHOSEN[digest]
        if self.cache:
            choice = load_cached_choice(key, self.cache_dir)
            if choice is not None:
                log.info("backbone mode %s read from the per-machine cache (measured s/clip %s)", choice.mode,
                         choice.seconds_per_clip)
                _CHOSEN[digest] = choice
                return digest, choice
        return digest, None

    def _remember(self, clips: np.ndarray, digest: str, choice: PrecisionChoice) -> None:
        _CHOSEN[digest] = choice
        if self.cache:
            save_cached_choice(self.machine_key(clips), choice, self.cache_dir)

    def choose(self, clips: np.ndarray) -> PrecisionChoice:
        """Measure the candidate modes on (the first :attr:`probe` of) ``clips`` and choose
        (or read the choice made earlier for the same key; a forced mode is returned as is).

        Parameters
        ----------
        clips : np.ndarray, shape (B, T, H, W, 3), uint8
        """
        if self.choice is not None:
            return self.choice
        digest, known = self._known(clips)
        if known is not None:
            self.choice = known
            return known
        probe = clips[: self.probe]
        native = bf16_supported()
        secs, errs = {}, {}
        ref = None
        try_bf16 = native if self.try_bf16 is None else self.try_bf16
        for mode in MODES if try_bf16 else MODES[:2]:
            x = self.to_tensor(probe, channels_last=mode.endswith("cl3d"))
            try:
                out = self._forward(x, mode)  # warm-up (eager: with compile=True only the choice is compiled)
                t0 = time.perf_counter()
                out = self._forward(x, mode)
                secs[mode] = (time.perf_counter() - t0) / len(probe)
            except RuntimeError as exc:  # a mode the build does not support
                log.info("backbone mode %s unavailable: %s", mode, exc)
                continue
            if ref is None:
                ref = out.double()
            errs[mode] = float((out.double() - ref).norm() / ref.norm().clamp_min(1e-12))
        best, source = decide_mode(secs, errs, tolerance=self.tolerance, bf16_native=native)
        self.choice = PrecisionChoice(best, {m: round(s, 5) for m, s in secs.items()},
                                      {m: float(f"{e:.3g}") for m, e in errs.items()}, self.tolerance, native, source)
        log.info("backbone mode %s chosen (%s; s/clip %s, rel. error vs fp32 %s, tolerance %g)",
                 best, source, self.choice.seconds_per_clip, self.choice.rel_error, self.tolerance)
        self._remember(clips, digest, self.choice)
        return self.choice

    def __call__(self, clips: np.ndarray) -> np.ndarray:
        """Pooled features of ``(B, T, H, W, 3)`` uint8 clips: ``(B, feature_dim)`` float32."""
        clips = np.asarray(clips)
        if clips.ndim != 5 or clips.shape[-1] != 3:
            raise ParameterError(f"clips must have shape (B, T, H, W, 3), got {clips.shape}")
        if self.choice is None:
            if self._trials is None:  # the first batch: is the choice known already?
                digest, known = self._known(clips)
                if known is not None:
                    self.choice = known
                else:
                    self._trial_key = (clips, digest)
            if self.choice is None:
                return self._trial_batch(clips)
        mode = self.choice.mode
        x = self.to_tensor(clips, channels_last=mode.endswith("cl3d"))
        return self._forward(x, mode).numpy().astype(np.float32, copy=False)

    def _trial_batch(self, clips: np.ndarray) -> np.ndarray:
        """Run one batch of the online choice (see :meth:`__call__`); its output is the result.

        Each candidate mode runs two real batches, the first to warm up (oneDNN builds its
        kernels for a new layout and shape on first use), the second timed. Nothing is computed
        twice except, for bf16, one clip in fp32 for the numerical check. A separate probe on
        single clips (:meth:`choose`) cost as much as 4 batches on the loaded 2-core machine:
        batch-1 forward passes are several times less efficient per clip. The choice is keyed
        by the first batch's shape (later batches of a video have it, except the last).
        """
        if self._trials is None:
            native = bf16_supported()
            try_bf16 = native if self.try_bf16 is None else self.try_bf16
            self._trials = [m for m in (MODES if try_bf16 else MODES[:2]) for _ in (0, 1)]
            self._trial_secs, self._trial_errs, self._native = {}, {"fp32": 0.0}, native
        mode = self._trials.pop(0)
        timed = not self._trials or self._trials[0] != mode
        x = self.to_tensor(clips, channels_last=mode.endswith("cl3d"))
        t0 = time.perf_counter()
        out = self._forward(x, mode)
        if timed:
            self._trial_secs[mode] = (time.perf_counter() - t0) / len(clips)
            if mode == "bf16-cl3d":
                ref = self._forward(self.to_tensor(clips[:1], channels_last=False), "fp32").double()
                self._trial_errs[mode] = float((out[:1].double() - ref).norm() / ref.norm().clamp_min(1e-12))
            elif mode == "fp32-cl3d":
                self._trial_errs[mode] = 0.0  # a layout change: the same fp32 arithmetic
        if not self._trials:
            best, source = decide_mode(self._trial_secs, self._trial_errs, tolerance=self.tolerance,
                                       bf16_native=self._native)
            self.choice = PrecisionChoice(best, {m: round(v, 5) for m, v in self._trial_secs.items()},
                                          {m: float(f"{e:.3g}") for m, e in self._trial_errs.items()},
                                          self.tolerance, self._native, source)
            log.info("backbone mode %s chosen on real batches (%s; s/clip %s, rel. error vs fp32 %s)", best, source,
                     self.choice.seconds_per_clip, self.choice.rel_error)
            first, digest = self._trial_key
            self._remember(first, digest, self.choice)
            self._trial_key = None
        return out.numpy().astype(np.float32, copy=False)


# --------------------------------------------------------------------------- landmarks
def sampled_landmarks(
    video: str | Path,
    *,
    every: int = 2,
    workers: int | None = 1,
    hands: str = "fallback",
    refine_face: bool = True,
    start: float = 0.0,
    end: float | None = None,
    parts=None,
    max_every: int | None = None,
    motion_threshold: float = 3.0,
):
    """MediaPipe landmarks on every ``every``-th frame (or on the frames that moved), interpolated in between.

    The landmark model dominates the cost of landmark labelling (about 14 frames per CPU second
    for Holistic here against 2,000 frames/s for decoding), so running it on every second frame
    halves the time, and ``workers`` processes on contiguous stretches use the other cores;
    the frames in between are decoded but not converted, and get the linear interpolation of
    their neighbours (:func:`interpolate_samples`). What that costs in accuracy is measured by
    ``benchmarks/bench_labelling.py landmarks`` and reported in docs/performance.md. This is :func:`musicperf.features.landmarks.extract_landmarks` without the
    cache.

    Parameters
    ----------
    video : str or Path
    every : int
        Run the model on frames ``0, every, 2 * every, ...`` (1: every frame).
    workers : int or None
        MediaPipe processes (see :func:`~musicperf.features.landmarks.extract_landmarks`).
    hands, refine_face, parts, max_every, motion_threshold
        As :func:`musicperf.features.landmarks.extract_landmarks`: only the graphs of ``parts``,
        motion-driven sampling up to ``max_every`` frames apart.
    start, end : float
        Seconds.

    Returns
    -------
    musicperf.features.landmarks.Landmarks
        One row per decoded frame; ``meta["every"]``, ``meta["model_frames"]``.
    """
    from musicperf.features import landmarks as lmod

    lm = lmod.extract_landmarks(video, every=every, workers=workers, hands=hands, refine_face=refine_face,
                                start=start, end=end, cache=False, parts=parts, max_every=max_every,
                                motion_threshold=motion_threshold)
    lm.meta["every"] = int(every)
    return lm


