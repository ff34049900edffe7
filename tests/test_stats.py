"""Dataset statistics (Tables 2, 3, 5 of 001), correlations, heatmaps and `musicperf stats`,
on a tiny hand-built dataset whose counts are worked out in the comments."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from musicperf.cli import main
from musicperf.io.annotations import Annotation, AnnotationSet, Tier
from musicperf.labels import GESTURES18, SUPERCLASSES7, Taxonomy
from musicperf.labels.stats import (
    AnnotatedVideo,
    class_correlation,
    dataset_labels,
    frames_table,
    occurrences_table,
    samples_table,
)


def video1() -> AnnotationSet:
    """100 frames at 25 fps (4 s)."""
    aset = AnnotationSet()
    # frames 0-9 and 10-14 (touching: one occurrence), plus a point in frame 50: 16 frames, 2 occ.
    aset.add_tier(Tier("Nodding", [Annotation(0.0, 0.4), Annotation(0.4, 0.6), Annotation(2.0, 2.0)]))
    # [0.2, 0.5): frames 5..12 (0.5 s is inside frame 12): 8 frames, 1 occ.
    aset.add_tier(Tier("frowning", [Annotation(0.2, 0.5)]))
    # overlapping: merged [3.0, 3.3) = frames 75..82: 8 frames, 1 occ.
    aset.add_tier(Tier("Eyes closed", [Annotation(3.0, 3.2), Annotation(3.1, 3.3)]))
    # frames 25..29: 5 frames, 1 occ.; dropped by the super-classes
    aset.add_tier(Tier("Physical energy", [Annotation(1.0, 1.2)]))
    return aset


def video2() -> AnnotationSet:
    """64 frames at 25 fps: Vibrato throughout."""
    aset = AnnotationSet()
    aset.add_tier(Tier("Vibrato", [Annotation(0.0, 2.56)]))
    return aset


# Normal play in video 1: 100 - |0-14 u 50 u 5-12 u 75-82 u 25-29| = 100 - 29 = 71 frames,
# in 4 runs (15-24, 30-49, 51-74, 83-99).
EXPECTED_FRAMES_V1 = {"Nodding": 16, "Frowning": 8, "Eyes closed": 8, "Physical energy": 5, "Normal play": 71}
EXPECTED_OCC_V1 = {"Nodding": 2, "Frowning": 1, "Eyes closed": 1, "Physical energy": 1, "Normal play": 4}


@pytest.fixture
def videos():
    return [AnnotatedVideo("v1", video1(), 25.0, 100), AnnotatedVideo("v2", video2(), 25.0, 64)]


def test_table2_frames(videos):
    tax = Taxonomy.builtin("gestures18")
    t = frames_table(videos, dataset_labels(videos, tax), tax)
    assert t.rows == [*GESTURES18, "Total frames"] and t.columns == ["v1", "v2", "total"]
    for c in GESTURES18:
        assert t.cell(c, "v1") == EXPECTED_FRAMES_V1.get(c, 0), c
    assert t.cell("Vibrato", "v2") == 64 and t.cell("Normal play", "v2") == 0
    assert t.cell("Total frames", "v1") == 100 and t.cell("Total frames", "total") == 164
    assert t.cell("Nodding", "total") == 16


def test_table3_occurrences(videos):
    tax = Taxonomy.builtin("gestures18")
    t = occurrences_table(videos, dataset_labels(videos, tax), tax)
    for c in GESTURES18:
        assert t.cell(c, "v1") == EXPECTED_OCC_V1.get(c, 0), c
    assert t.cell("Vibrato", "v2") == 1 and t.cell("Normal play", "v2") == 0


def test_table3_superclass_merges_gestures_and_ignores_outside():
    aset = AnnotationSet()
    aset.add_tier(Tier("Frowning", [Annotation(0.0, 1.0)]))
    aset.add_tier(Tier("Eyes closed", [Annotation(0.5, 1.5), Annotation(1.5, 2.0), Annotation(3.0, 3.1)]))
    aset.add_tier(Tier("Nodding", [Annotation(3.9, 4.2)]))  # overlaps the last frame (inside the 0.5 s tolerance)
    v = [AnnotatedVideo("x", aset, 25.0, 100)]
    tax = Taxonomy.builtin("superclasses7")
    t = occurrences_table(v, dataset_labels(v, tax), tax)
    assert t.cell("Facial expression", "x") == 2  # [0, 2.0) and [3.0, 3.1)
    assert t.cell("Head related action", "x") == 1


def test_table5_samples_superclasses(videos):
    # video 1, 6 samples (frames 0-15, 16-31, 32-47, 48-63, 64-79, 80-95):
    #   Facial expression = Frowning 5-12 u Eyes closed 75-82 -> samples 0, 4, 5 = 3
    #   Head related action = Nodding 0-14, 50 -> samples 0, 3 = 2
    #   Normal play: every sample has a frame without a super-class (Physical energy dropped) = 6
    # video 2, 4 samples, Vibrato -> Left hand action in all 4, Normal play in none.
    tax = Taxonomy.builtin("superclasses7")
    t = samples_table(videos, dataset_labels(videos, tax), tax)
    expected_v1 = {"Facial expression": 3, "Head related action": 2, "Normal play": 6}
    for c in SUPERCLASSES7:
        assert t.cell(c, "v1") == expected_v1.get(c, 0), c
    assert t.cell("Left hand action", "v2") == 4 and t.cell("Normal play", "v2") == 0
    assert t.cell("Total samples", "v1") == 6 and t.cell("Total samples", "total") == 10
    # overlapping samples, stride 8: video 2 has (64 - 16) // 8 + 1 = 7
    t8 = samples_table(videos, dataset_labels(videos, tax), tax, stride=8)
    assert t8.cell("Total samples", "v2") == 7 and "stride 8" in t8.notes[0]


def test_table_csv_and_markdown(videos):
    tax = Taxonomy.builtin("gestures18")
    t = frames_table(videos, dataset_labels(videos, tax), tax)
    rows = list(csv.reader(io.StringIO(t.to_csv())))
    assert rows[0] == ["Class", "v1", "v2", "total"]
    assert rows[2] == ["Nodding", "16", "0", "16"]
    md = t.to_markdown()
    assert "| Class | v1 | v2 | total |" in md and "| Nodding | 16 | 0 | 16 |" in md


def test_class_correlation(rng):
    y = np.array([[1, 0, 0, 1], [1, 0, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1], [1, 1, 0, 1]], dtype=float)
    c = class_correlation(y)
    # classes 0 and 1: means 0.6, sum of products of deviations -0.8, sums of squares 1.2: r = -2/3
    assert c[0, 1] == pytest.approx(-2 / 3) and c[0, 0] == pytest.approx(1.0)
    assert np.isnan(c[2]).all() and np.isnan(c[:, 3]).all()  # constant classes
    z = (rng.random((200, 5)) < 0.4).astype(float)
    np.testing.assert_allclose(class_correlation(z), np.corrcoef(z.T), atol=1e-12)


def test_heatmap_png(tmp_path):
    from PIL import Image

    from musicperf.report.heatmap import correlation_figure, write_correlation_heatmap

    # a and b anti-correlated (-1), c constant (NaN row and column)
    corr = class_correlation(np.array([[1, 0, 1], [0, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=float))
    assert corr[0, 1] == pytest.approx(-1.0) and np.isnan(corr[2]).all()
    path = write_correlation_heatmap(tmp_path / "sub" / "h.png", corr, ["a", "b", "c"], title="t")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        assert im.size[0] > 200 and im.size[1] > 200
    assert [p.name for p in path.parent.iterdir()] == ["h.png"]  # no temporary left behind

    # colours at cell centres: +1 dark red, -1 dark blue, NaN blank (white)
    fig = correlation_figure(corr, ["a", "b", "c"], annotate=False)
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba())[:, :, :3].astype(int)
    ax = fig.axes[0]

    def colour(i, j):
        x, y = ax.transData.transform((j, i))
        return buf[int(round(buf.shape[0] - y)), int(round(x))]

    r, g, b = colour(0, 0)
    assert r > 80 and r > 2 * b and r > 2 * g  # red
    r, g, b = colour(0, 1)
    assert b > 2 * r  # blue
    assert (colour(2, 0) == 255).all() and (colour(1, 2) == 255).all() and (colour(2, 2) == 255).all()


# --------------------------------------------------------------------------- the command
def write_eaf(aset, path):
    from musicperf.io.elan import write_eaf as _write

    _write(aset, path)
    return path


def read_csv(path: Path) -> dict[str, list[str]]:
    rows = list(csv.reader(path.open(encoding="utf-8")))
    return {r[0]: r[1:] for r in rows}


def test_stats_command_annotations_alone(tmp_path, capsys):
    a1 = write_eaf(video1(), tmp_path / "v1.eaf")
    out = tmp_path / "out"
    code = main(["stats", str(a1), "--fps", "25", "--duration", "4", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    t2 = read_csv(out / "table2_frames.csv")
    assert t2["Class"] == ["v1", "total"]
    assert t2["Nodding"] == ["16", "16"] and t2["Normal play"] == ["71", "71"]
    assert read_csv(out / "table3_occurrences.csv")["Nodding"] == ["2", "2"]
    t5 = read_csv(out / "table5_samples.csv")
    assert t5["Head related action"] == ["2", "2"] and t5["Total samples"] == ["6", "6"]
    for name in ("table2_frames.md", "table3_occurrences.md", "table5_samples.md",
                 "figure1_correlation_v1.png", "figure2_correlation_v1.png", "figure1_correlation_v1.csv"):
        assert (out / name).stat().st_size > 0, name
    # NaN (constant classes) are empty CSV cells
    corr = read_csv(out / "figure1_correlation_v1.csv")
    assert corr["Vibrato"] == [""] * 18 and corr["Nodding"][1] == "1.000"


def test_stats_command_video_pair_and_mapping(tmp_path, shared_data, capsys):
    video = shared_data / "video" / "pianist.avi"  # 30 fps
    aset = AnnotationSet()
    aset.add_tier(Tier("Head", [Annotation(1.0, 2.0)]))
    aset.add_tier(Tier("Hands", [Annotation(1.5, 3.0)]))
    ann = write_eaf(aset, tmp_path / "pianist.eaf")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("rename: {Hands: Arms}\n")
    out = tmp_path / "out"
    code = main(["stats", f"{video}={ann}", str(video) + "=" + str(ann), "--taxonomy", "tiers",
                 "--background", "Rest", "--mapping", str(mapping), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    t2 = read_csv(out / "table2_frames.csv")
    assert t2["Class"] == ["pianist", "pianist-2", "total"]
    assert t2["Head"][0] == "30" and t2["Arms"][0] == "45"
    assert (out / "figure1_correlation_all.png").exists()
    assert not (out / "figure2_correlation_all.png").exists()


def test_stats_command_errors(tmp_path, capsys):
    aset = AnnotationSet()
    aset.add_tier(Tier("Nodding", [Annotation(1.0, 4521.0)]))
    ann = write_eaf(aset, tmp_path / "concert.eaf")
    assert main(["stats", str(ann), "--fps", "25", "--duration", "480.6", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "exceeds the duration" in err and "concert.eaf" in err and err.count("\n") == 1

    bad = tmp_path / "bad.yaml"
    bad.write_text("drop: [Headbanging]\n")
    ok = write_eaf(video1(), tmp_path / "v1.eaf")
    assert main(["stats", str(ok), "--fps", "25", "--duration", "4", "--mapping", str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown class 'Headbanging'" in err and "bad.yaml" in err and err.count("\n") == 1

    assert main(["stats", str(ok), "-o", str(tmp_path / "o")]) == 2
    assert "--fps and --duration" in capsys.readouterr().err
    assert main(["stats", f"{tmp_path / 'missing.mp4'}={ok}", "-o", str(tmp_path / "o")]) == 2
    assert "missing.mp4" in capsys.readouterr().err


def test_stats_command_one_duration_per_file(tmp_path, capsys):
    a1 = write_eaf(video1(), tmp_path / "v1.eaf")
    a2 = write_eaf(video2(), tmp_path / "v2.eaf")
    out = tmp_path / "out"
    assert main(["stats", str(a1), str(a2), "--fps", "25", "--duration", "4,2.56", "-o", str(out)]) == 0
    t2 = read_csv(out / "table2_frames.csv")
    assert t2["Total frames"] == ["100", "64", "164"] and t2["Vibrato"] == ["0", "64", "64"]
    t5 = read_csv(out / "table5_samples.csv")
    assert t5["Left hand action"] == ["0", "4", "4"] and t5["Normal play"] == ["6", "0", "6"]
    assert (out / "figure2_correlation_all.png").exists()
    capsys.readouterr()
    assert main(["stats", str(a1), str(a2), "--fps", "25", "--duration", "4,2,1", "-o", str(out)]) == 2
    assert "3 values for 2 annotation files" in capsys.readouterr().err


def test_stats_command_annotations_past_the_video(tmp_path, shared_data, capsys):
    video = shared_data / "video" / "pianist.avi"  # 97.6 s
    aset = AnnotationSet()
    aset.add_tier(Tier("Nodding", [Annotation(150.0, 200.0)]))
    ann = write_eaf(aset, tmp_path / "late.eaf")
    assert main(["stats", f"{video}={ann}", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "200.000 s exceeds the duration" in err and "pianist.avi" in err and "late.eaf" in err
    assert not (tmp_path / "o").exists()  # nothing written


def test_stats_command_super_mapping_and_none(tmp_path, capsys):
    a1 = write_eaf(video1(), tmp_path / "v1.eaf")
    sup = tmp_path / "sup.yaml"
    sup.write_text("merge: {Face: [Frowning, Eyes closed]}\ndrop: [Physical energy]\n")
    out = tmp_path / "out"
    args = ["stats", str(a1), "--fps", "25", "--duration", "4", "-o", str(out)]
    assert main(args + ["--super", str(sup)]) == 0, capsys.readouterr().err
    t5 = read_csv(out / "table5_samples.csv")
    # Face = frames 5-12 u 75-82 -> samples 0, 4, 5; Nodding unchanged -> samples 0, 3
    assert t5["Face"] == ["3", "3"] and t5["Nodding"] == ["2", "2"] and "Frowning" not in t5
    assert (out / "figure2_correlation_v1.png").exists()
    out2 = tmp_path / "out2"
    assert main(["stats", str(a1), "--fps", "25", "--duration", "4", "-o", str(out2), "--super", "none"]) == 0
    assert read_csv(out2 / "table5_samples.csv")["Frowning"] == ["1", "1"]
    assert not list(out2.glob("figure2_*"))


def test_old_labelled_video_name_is_a_deprecated_alias():
    import musicperf.labels.stats as stats_module

    with pytest.warns(DeprecationWarning, match="AnnotatedVideo"):
        assert stats_module.LabelledVideo is AnnotatedVideo
