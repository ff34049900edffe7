"""The reference data path of 3D-ResNets-PyTorch (Hara et al.), re-implemented from its README.

What its README documents for running a trained model on videos, done here step by step:

1. ``ffmpeg -i VIDEO -vf scale=-1:240 FOLDER/image_%05d.jpg``: every frame to a JPEG file,
   240 pixels high (``util_scripts/generate_video_jpgs.py`` in the README's "Preparation");
2. clips of 16 consecutive frames, non-overlapping (inference stride 16), the last one padded
   by looping its frames ("LoopPadding");
3. each frame loaded with PIL (``Image.open(...).convert('RGB')``), ``Resize(112)`` (shorter side
   to 112, bilinear) and ``CenterCrop(112)``, ``ToTensor`` and ``Normalize`` with the Kinetics
   mean and standard deviation (``--mean_dataset kinetics``, ``--value_scale 1``);
4. all clips of the video stacked into one batch and run through the model in fp32.

The model is musicperf's 3D-ResNet-34 (Hara's layout, shortcut B) with random weights (no
pre-trained weights are available here; speed does not depend on them). Run alone, in its own
process, so its peak resident memory is its own; prints one JSON line.

    .venv/bin/python benchmarks/bench_reference.py VIDEO [--depth 34] [--batch 0] [--keep-jpegs DIR]

``--batch 0`` (default) is "all clips in one batch", as documented; ``--batch 8`` bounds memory.
Needs the ``ffmpeg`` program (Debian: ``apt-get install ffmpeg``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def extract_jpegs(video: Path, folder: Path) -> int:
    """Step 1: ffmpeg writes every frame as a JPEG 240 pixels high."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        sys.exit("ffmpeg is not installed (apt-get install ffmpeg): the reference pipeline needs it")
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(video), "-vf", "scale=-1:240",
                    str(folder / "image_%05d.jpg")], check=True)
    return len(list(folder.glob("image_*.jpg")))


def clip_indices(n_frames: int, length: int = 16) -> list[list[int]]:
    """Step 2: non-overlapping clips of ``length`` frames (1-based file numbers), loop-padded."""
    clips = []
    for start in range(1, n_frames + 1, length):
        idx = list(range(start, min(start + length, n_frames + 1)))
        k = 0
        while len(idx) < length:  # LoopPadding: repeat the clip's own frames
            idx.append(idx[k])
            k += 1
        clips.append(idx)
    return clips


def load_clips(folder: Path, clips: list[list[int]]):
    """Step 3: PIL load, Resize(112) on the shorter side, CenterCrop(112), ToTensor, Normalize."""
    import numpy as np
    import torch
    from PIL import Image

    mean = torch.tensor([0.4345, 0.4051, 0.3775]).view(3, 1, 1, 1)  # Kinetics, value scale 1
    std = torch.tensor([0.2768, 0.2713, 0.2737]).view(3, 1, 1, 1)
    out = torch.empty(len(clips), 3, 16, 112, 112)
    for c, idx in enumerate(clips):
        frames = []
        for i in idx:
            with Image.open(folder / f"image_{i:05d}.jpg") as im:
                im = im.convert("RGB")
                w, h = im.size
                if w < h:
                    size = (112, int(112 * h / w))
                else:
                    size = (int(112 * w / h), 112)
                im = im.resize(size, Image.BILINEAR)
                left, top = (size[0] - 112) // 2, (size[1] - 112) // 2
                im = im.crop((left, top, left + 112, top + 112))
                frames.append(torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1))
        out[c] = (torch.stack(frames, dim=1) - mean) / std  # (3, 16, 112, 112)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--depth", type=int, default=34)
    ap.add_argument("--batch", type=int, default=0, help="clips per forward pass; 0: all in one batch (the README's)")
    ap.add_argument("--keep-jpegs", type=Path, default=None, help="write the JPEGs here and keep them")
    args = ap.parse_args()
    import torch

    from musicperf.models import build_backbone

    torch.manual_seed(0)
    net = build_backbone(f"resnet{args.depth}", n_classes=400).eval()
    tmp = None
    folder = args.keep_jpegs
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="musicperf-ref-")
        folder = Path(tmp.name)
    try:
        t0 = time.perf_counter()
        n = extract_jpegs(args.video, folder)
        t1 = time.perf_counter()
        clips = clip_indices(n)
        x = load_clips(folder, clips)
        t2 = time.perf_counter()
        with torch.no_grad():
            if args.batch <= 0:
                logits = net(x)
            else:
                logits = torch.cat([net(x[i : i + args.batch]) for i in range(0, len(x), args.batch)])
        t3 = time.perf_counter()
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(json.dumps({
        "frames": n, "clips": len(clips), "jpeg_s": t1 - t0, "load_s": t2 - t1, "forward_s": t3 - t2,
        "total_s": t3 - t0, "s_per_clip": (t3 - t0) / len(clips), "outputs": list(logits.shape),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
