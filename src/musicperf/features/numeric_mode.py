"""Numeric mode and compile cache of the 3D-CNN backbone, decided once per machine.

:class:`musicperf.features.fastpath.BackboneRunner` uses these: which numeric modes the CPU runs
natively (:func:`bf16_supported`, :func:`cpu_info`), the choice between measured modes
(:func:`decide_mode`), the setting and environment variable that force one
(:func:`resolve_numeric_mode`), the per-machine cache of the choice in the user cache directory
(:func:`load_cached_choice`, :func:`save_cached_choice`) and the persistent ``torch.compile``
cache (:func:`enable_compile_cache`). All are re-exported by :mod:`musicperf.features.fastpath`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from musicperf.errors import ParameterError

log = logging.getLogger("musicperf.features.fastpath")

#: Largest relative L2 error ``||f_bf16 - f_fp32|| / ||f_fp32||`` of the pooled backbone
#: features (over the probe clips) for which bfloat16 autocast is accepted. bfloat16 keeps 8
#: mantissa bits (relative rounding 2**-9 = 2e-3 per operation); through the 30-odd layers of
#: a 3D-ResNet-34 the errors measured here are 0.5-1 %. 3 % is far below what changes the
#: decisions of the head that reads these features (they are standardised by their spread over
#: the training clips, which is of the order of the features themselves).
BF16_TOLERANCE = 0.03

#: Numeric modes :class:`~musicperf.features.fastpath.BackboneRunner` can use.
MODES = ("fp32", "fp32-cl3d", "bf16-cl3d")


def bf16_supported() -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX-512 BF16 / AMX).

    Without them autocast still runs, emulated and usually slower; :class:`BackboneRunner`
    does not even time it there unless asked (``try_bf16=True``).
    """
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


#: Environment variable that forces the numeric mode (read only by :func:`resolve_numeric_mode`).
NUMERIC_MODE_ENV = "MUSICPERF_NUMERIC_MODE"

#: What a ``numeric_mode`` setting (``--numeric-mode``, :data:`NUMERIC_MODE_ENV`) may say:
#: ``auto``, the short names ``fp32`` and ``bf16``, or a full name from :data:`MODES`.
NUMERIC_MODE_CHOICES = ("auto", "fp32", "bf16", *MODES[1:])

_MODE_ALIASES = {"auto": "auto", "fp32": "fp32", "bf16": "bf16-cl3d", **{m: m for m in MODES}}

#: Timings closer than this fraction are ambiguous: the mode the CPU's capabilities predict is
#: kept (native bf16: ``bf16-cl3d``, if its numerical check passed; otherwise ``fp32-cl3d``).
#: On a loaded 2-core machine two batches of the same mode differ by 5-10 %, and the online
#: choice flipped between fp32 and bf16 from run to run on such differences.
AMBIGUOUS = 0.10


def parse_numeric_mode(value: str, *, source: str = "numeric mode") -> str:
    """``"auto"`` or one of :data:`MODES` from a setting (case and surrounding spaces ignored).

    ``fp32`` means plain fp32 (no layout change), ``bf16`` bfloat16 autocast with
    ``channels_last_3d``; the full names of :data:`MODES` are accepted too.

    Raises
    ------
    ParameterError
        Naming ``source`` and the accepted values.
    """
    key = str(value).strip().lower()
    if key not in _MODE_ALIASES:
        raise ParameterError(f"{source} must be one of {', '.join(NUMERIC_MODE_CHOICES)}, got {value!r}")
    return _MODE_ALIASES[key]


def resolve_numeric_mode(numeric_mode: str | None = None) -> tuple[str, str]:
    """The numeric mode to use and where it comes from: the one place the setting is read.

    A forced mode (``"fp32"``, ``"bf16"`` or a name from :data:`MODES`) wins; ``None`` or
    ``"auto"`` defer to :data:`NUMERIC_MODE_ENV` (``MUSICPERF_NUMERIC_MODE``) when it is set and
    not empty, else ``"auto"``.

    Returns
    -------
    mode, source : str, str
        ``mode`` is ``"auto"`` or one of :data:`MODES`; ``source`` is ``"setting"``,
        ``"environment"`` or ``"default"``.

    Raises
    ------
    ParameterError
        For an unknown value (naming the environment variable when it is the culprit).
    """
    if numeric_mode is not None:
        mode = parse_numeric_mode(numeric_mode)
        if mode != "auto":
            return mode, "setting"
    env = os.environ.get(NUMERIC_MODE_ENV, "").strip()
    if env:
        return parse_numeric_mode(env, source=f"environment variable {NUMERIC_MODE_ENV}"), "environment"
    return "auto", "default"


def cpu_info() -> dict:
    """This CPU as the numeric-mode cache and the benchmarks describe it.

    Returns
    -------
    dict
        ``model`` (``/proc/cpuinfo``'s model name, else :func:`platform.processor`), ``flags``
        (sorted list, empty where ``/proc/cpuinfo`` is missing), ``machine``
        (:func:`platform.machine`), ``cpus``, and the flags that matter for the 3D-CNN as
        booleans: ``avx2``, ``avx512`` (AVX-512 F), ``avx512_bf16``, ``amx`` (AMX-BF16 or
        AMX tiles).
    """
    import platform

    model, flags = None, set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                name = name.strip()
                if name == "model name" and model is None:
                    model = value.strip()
                elif name in ("flags", "Features") and not flags:
                    flags = set(value.split())
                if model is not None and flags:
                    break
    except OSError:
        pass
    return {"model": model or platform.processor() or "unknown", "flags": sorted(flags),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "avx2": "avx2" in flags, "avx512": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "amx": bool({"amx_bf16", "amx_tile"} & flags)}


def describe_cpu(info: dict | None = None) -> str:
    """One line: model, CPUs and the flags AVX2 / AVX-512 / AVX-512 BF16 / AMX (yes or no)."""
    info = cpu_info() if info is None else info
    yn = lambda k: "yes" if info.get(k) else "no"  # noqa: E731
    return (f"{info['model']} ({info.get('cpus')} CPUs, {info['machine']}; AVX2 {yn('avx2')}, AVX-512 {yn('avx512')}, "
            f"AVX-512 BF16 {yn('avx512_bf16')}, AMX {yn('amx')})")


@dataclass
class PrecisionChoice:
    """What :class:`BackboneRunner` measured on its probe clips and chose.

    Attributes
    ----------
    mode : str
        One of :data:`MODES`.
    seconds_per_clip : dict
        Measured forward time per clip of each candidate mode (probe batch, after a warm-up).
    rel_error : dict
        Relative L2 error of each mode's pooled features against fp32 on the probe clips.
    tolerance : float
    bf16_native : bool
        :func:`bf16_supported` at the time.
    source : str
        How the mode was decided: ``"measured"`` (timed and checked in this process),
        ``"capability"`` (timed, but too close to call: the mode the CPU predicts, see
        :data:`AMBIGUOUS`), ``"cache"`` (read from the per-machine cache, measured by an
        earlier process), ``"setting"`` or ``"environment"`` (forced; nothing measured).
    """

    mode: str
    seconds_per_clip: dict = field(default_factory=dict)
    rel_error: dict = field(default_factory=dict)
    tolerance: float = BF16_TOLERANCE
    bf16_native: bool = False
    source: str = "measured"

    def to_dict(self) -> dict:
        return {"mode": self.mode, "seconds_per_clip": self.seconds_per_clip, "rel_error": self.rel_error,
                "tolerance": self.tolerance, "bf16_native": self.bf16_native, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "PrecisionChoice":
        if not isinstance(d, dict) or d.get("mode") not in MODES:
            raise ValueError(f"not a numeric-mode choice: {d!r}"[:200])
        secs, errs = d.get("seconds_per_clip", {}), d.get("rel_error", {})
        if not (isinstance(secs, dict) and isinstance(errs, dict)):
            raise ValueError("seconds_per_clip and rel_error must be objects")
        return cls(str(d["mode"]), {str(k): float(v) for k, v in secs.items()},
                   {str(k): float(v) for k, v in errs.items()}, float(d.get("tolerance", BF16_TOLERANCE)),
                   bool(d.get("bf16_native", False)), str(d.get("source", "measured")))


def decide_mode(seconds_per_clip: dict, rel_error: dict, *, tolerance: float, bf16_native: bool) -> tuple[str, str]:
    """The mode to keep from measured timings and numerical checks, and why.

    The fastest mode whose relative error is within ``tolerance`` (fp32 when none is), unless
    the mode the CPU's capabilities predict (native bf16: ``bf16-cl3d`` when its check passed;
    otherwise ``fp32-cl3d``) is within :data:`AMBIGUOUS` of it: then that one, so that timing
    noise on a loaded machine does not flip the choice from run to run.

    Returns
    -------
    mode, source : str, str
        ``source`` is ``"measured"`` or ``"capability"``.
    """
    ok = [m for m in seconds_per_clip if rel_error.get(m, 1.0) <= tolerance]
    if not ok:
        return "fp32", "measured"
    best = min(ok, key=lambda m: seconds_per_clip[m])
    preferred = "bf16-cl3d" if bf16_native and "bf16-cl3d" in ok else "fp32-cl3d"
    if preferred != best and preferred in ok and seconds_per_clip[preferred] <= (1 + AMBIGUOUS) * seconds_per_clip[best]:
        return preferred, "capability"
    return best, "measured"



_CACHE_FORMAT = "musicperf-numeric-mode"


def numeric_mode_cache_dir() -> Path:
    """Where per-machine numeric-mode choices live: ``numeric-mode/`` in the user cache directory
    (:func:`musicperf.features.cache.user_cache_dir`: ``$MUSICPERF_CACHE_DIR``,
    ``$XDG_CACHE_HOME/musicperf`` or ``~/.cache/musicperf``)."""
    from musicperf.features.cache import user_cache_dir

    return user_cache_dir() / "numeric-mode"


def _key_digest(key: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def load_cached_choice(key: dict, cache_dir: str | Path | None = None) -> PrecisionChoice | None:
    """The choice stored for ``key`` (see :meth:`BackboneRunner.machine_key`), or None.

    A missing, unreadable or corrupt file, or one stored for another key, is ignored (logged):
    the mode is then measured again and the file rewritten.
    """
    import json

    folder = Path(cache_dir) if cache_dir is not None else numeric_mode_cache_dir()
    path = folder / f"{_key_digest(key)}.json"
    if not path.is_file():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
        if not isinstance(d, dict) or d.get("format") != _CACHE_FORMAT:
            raise ValueError("not a numeric-mode cache file")
        if d.get("key") != key:
            raise ValueError("stored for another key")
        choice = PrecisionChoice.from_dict(d["choice"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring numeric-mode cache file '%s': %s", path, exc)
        return None
    choice.source = "cache"
    return choice


def save_cached_choice(key: dict, choice: PrecisionChoice, cache_dir: str | Path | None = None) -> Path | None:
    """Store ``choice`` for ``key`` atomically; returns the file (None when it cannot be written:
    a read-only home is logged, not fatal)."""
    import json

    from musicperf._util import atomic_path

    folder = Path(cache_dir) if cache_dir is not None else numeric_mode_cache_dir()
    path = folder / f"{_key_digest(key)}.json"
    record = {"format": _CACHE_FORMAT, "version": 1, "key": key, "choice": choice.to_dict(),
              "written": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
    except OSError as exc:
        log.warning("could not write numeric-mode cache file '%s': %s", path, exc)
        return None
    return path


def _torch_default_compile_dir() -> str | None:
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # pragma: no cover - older torch
        return None
    return os.path.abspath(default_cache_dir())


def compile_cache_dir() -> Path:
    """Where compiled graphs persist: ``$TORCHINDUCTOR_CACHE_DIR`` when the user set it, else
    ``torchinductor/`` in the user cache directory.

    torch writes its own default (``/tmp/torchinductor_<user>``) into ``TORCHINDUCTOR_CACHE_DIR``
    the first time anything asks it for its cache folder; that value is not taken for the user's.
    """
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if env and os.path.abspath(env) != _torch_default_compile_dir():
        return Path(env)
    from musicperf.features.cache import user_cache_dir

    return user_cache_dir() / "torchinductor"


def enable_compile_cache() -> Path:
    """Make ``torch.compile`` keep its compiled graphs across processes, in :func:`compile_cache_dir`.

    Sets ``TORCHINDUCTOR_CACHE_DIR`` (unless the user did) and turns on inductor's FX graph
    cache and AOTAutograd's cache, before anything is compiled: the second process on the same
    machine (same torch, same model and input shape) loads the generated kernels instead of
    generating and building them again. torch's own default is a folder under ``/tmp``, lost at
    reboot and shared between users. Returns the folder.
    """
    folder = compile_cache_dir()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(folder)
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    try:
        import torch._functorch.config as functorch_config

        functorch_config.enable_autograd_cache = True
    except (ImportError, AttributeError):  # pragma: no cover - older torch
        pass
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
