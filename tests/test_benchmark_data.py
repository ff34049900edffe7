"""The hand-made annotations of real videos in benchmarks/data (evaluation data of
benchmarks/bench_real_labelling.py): each parses, has 3+ non-empty tiers documented in the
README, and links the shared video the benchmark reads, within that video's duration."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from musicperf.io.elan import read_eaf
from musicperf.io.video import probe

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
_spec = importlib.util.spec_from_file_location("bench_real_labelling", ROOT / "benchmarks" / "bench_real_labelling.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_every_annotated_video_is_known_to_the_benchmark():
    assert sorted(p.stem for p in DATA.glob("*.eaf")) == sorted(bench.VIDEOS)
    assert {"pianist", "dancer", "makeup"} <= set(bench.VIDEOS)


@pytest.mark.parametrize("name", sorted(bench.VIDEOS))
def test_eaf_has_three_documented_tiers(name):
    aset = read_eaf(DATA / f"{name}.eaf")
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    assert len(aset.tiers) >= 3
    for tier in aset:
        assert tier.annotations, f"{name}: tier {tier.name!r} is empty"
        assert all(a.end > a.start >= 0 for a in tier.annotations)
        assert f"| {tier.name} |" in readme, f"{name}: tier {tier.name!r} has no criterion in the README"
    assert len(aset.media) == 1 and Path(aset.media[0].relative_url).name == bench.VIDEOS[name]


@pytest.mark.parametrize("name", sorted(bench.VIDEOS))
def test_eaf_links_the_shared_video(name, shared_data):
    aset = read_eaf(DATA / f"{name}.eaf")
    video = shared_data / "video" / bench.VIDEOS[name]
    if (ROOT.parent / "shared" / "data").resolve() == shared_data:  # the layout the relative link assumes
        assert (DATA / aset.media[0].relative_url).resolve() == video.resolve()
    info = probe(video)
    last = max(a.end for t in aset for a in t.annotations)
    assert last <= info.duration + 1.0 / info.fps + 1e-6, f"{name}: annotation ends at {last} s, video at {info.duration} s"
