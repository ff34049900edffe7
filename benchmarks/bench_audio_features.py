"""Speed of the audio features on the shared real videos; prints figures (no assertions).

    .venv/bin/python benchmarks/bench_audio_features.py [--data ../shared/data]

For pianist.avi (97.6 s, MP3 44.1 kHz stereo in AVI) and dancer.avi (62.9 s): decoding +
resampling to 22.05 kHz mono, timbral features of every 16-frame sample, and 128-band log-mel
patches of the same samples. librosa's numba compilation is paid once before timing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args(argv)
    from musicperf.features.audio import load_performance_audio, mel_patches, timbral_features
    from musicperf.io.video import probe

    warm = np.zeros(22050, np.float32)
    timbral_features(warm, 22050)  # numba compilation, not timed
    mel_patches(warm, 22050, [0.0], duration=0.64)
    print("| file | audio | decode + resample | timbral (n, 28, 108) | mel (n, 128, frames) |")
    print("|---|---|---|---|---|")
    for name in ("pianist.avi", "dancer.avi"):
        path = args.data / "video" / name
        info = probe(path)
        seg = 16 / info.fps
        t0 = time.perf_counter()
        pa = load_performance_audio(path, sr=22050)
        t1 = time.perf_counter()
        starts = np.arange(info.n_frames // 16) * seg
        X = timbral_features(pa.y, pa.sr, segment_starts=starts, segment_duration=seg)
        t2 = time.perf_counter()
        M = mel_patches(pa.y, pa.sr, starts, duration=seg)
        t3 = time.perf_counter()
        print(f"| {name} | {pa.duration:.1f} s | {t1 - t0:.2f} s | {t2 - t1:.2f} s for {X.shape} "
              f"({pa.duration / (t2 - t1):.0f}x real time) | {t3 - t2:.2f} s for {M.shape} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
