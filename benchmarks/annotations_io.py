"""Time reading, writing and re-reading every real annotation file in ../shared/data.

Run: ``.venv/bin/python benchmarks/annotations_io.py [DATA_DIR]``. Prints, per file, its size,
tiers, annotations, the best-of-3 read time, the write time (EAF 3.0) and whether the EAF
round trip kept every annotation to the millisecond.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

from musicperf.errors import AnnotationError
from musicperf.io import read_annotations
from musicperf.io.elan import write_eaf


def best_of(n, fn):
    best = float("inf")
    result = None
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def same_to_the_ms(a, b) -> bool:
    if list(a.tiers) != list(b.tiers):
        return False
    for name, tier in a.tiers.items():
        x = sorted((round(p.start * 1000), round(p.end * 1000), p.value) for p in tier.annotations)
        y = sorted((round(p.start * 1000), round(p.end * 1000), p.value) for p in b[name].annotations)
        if x != y:
            return False
    return True


def main(data: Path) -> None:
    files = sorted(p for sub in ("eaf", "elan_txt", "textgrid") for p in (data / sub).iterdir()
                   if p.suffix.lower() in (".eaf", ".etf", ".textgrid", ".csv"))
    print(f"{'file':<40} {'KB':>7} {'tiers':>5} {'annots':>6} {'read ms':>8} {'write ms':>8}  eaf round trip")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in files:
            kb = path.stat().st_size / 1024
            try:
                t_read, aset = best_of(3, lambda: read_annotations(path))
            except AnnotationError as exc:
                print(f"{path.name:<40} {kb:>7.1f}  error: {str(exc)[:70]}")
                continue
            out = Path(tmp) / (path.stem + ".eaf")
            t_write, _ = best_of(3, lambda: write_eaf(aset, out))
            ok = same_to_the_ms(aset, read_annotations(out))
            n = sum(len(t) for t in aset)
            print(f"{path.name:<40} {kb:>7.1f} {len(aset):>5} {n:>6} {t_read * 1e3:>8.1f} {t_write * 1e3:>8.1f}  {'ok' if ok else 'DIFFERS'}")


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
