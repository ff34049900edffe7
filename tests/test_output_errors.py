"""Output failures are one-line errors (exit 2) found before the compute, and leave nothing half-written.

Cases: an output folder that is an existing file, a folder under a regular file, a read-only
folder (skipped as root, where permissions do not stop writes), a disk that fills up while
writing (a writer monkeypatched to raise ENOSPC), and the errors of libraries that do not
derive from OSError (safetensors). Also the bad inputs of the analysis commands: a pickled
speed matrix, a video without a face.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from musicperf.cli import main
from musicperf.errors import OutputError

sys.path.insert(0, str(Path(__file__).parent))
from test_stats import video1, write_eaf  # noqa: E402


def _one_line_error(capsys, *needles) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines, "no error message"
    assert "Traceback" not in err, err
    last = lines[-1]
    assert "error:" in last, err
    for n in needles:
        assert n in last, err
    return last


@pytest.fixture
def blocker(tmp_path) -> Path:
    f = tmp_path / "file.txt"
    f.write_text("not a folder")
    return f


@pytest.fixture
def mixture(tmp_path) -> Path:
    import soundfile as sf

    sr = 16000
    t = np.arange(sr) / sr
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.2 * np.sin(2 * np.pi * 330 * t) * (t > 0.5)
    path = tmp_path / "mix.wav"
    sf.write(path, y.astype(np.float32), sr)
    return path


def _never(*a, **k):  # pragma: no cover - called only if the check failed
    raise AssertionError("the compute ran before the output was checked")


# --------------------------------------------------------------------------- before the compute
def test_output_folder_that_is_a_file_is_refused_before_the_compute(tmp_path, blocker, mixture, capsys,
                                                                     monkeypatch):
    import musicperf.analysis.media as media
    import musicperf.labels.stats as stats

    monkeypatch.setattr(media, "separate_mixture", _never)
    monkeypatch.setattr(stats, "dataset_stats", _never)
    eaf = write_eaf(video1(), tmp_path / "v1.eaf")
    cases = [
        ["separate", str(mixture), "--sources", "2", "-o", str(blocker)],
        ["stats", str(eaf), "--fps", "25", "--duration", "4", "-o", str(blocker)],
        ["synth", str(blocker), "--seconds", "1"],
        ["instrument", "synth", str(blocker), "--per-class", "1"],
        ["skill", "synth", str(blocker), "--per-level", "1"],
        ["demo", "-o", str(blocker), "--seconds", "5"],
    ]
    for args in cases:
        assert main(args) == 2, args
        _one_line_error(capsys, str(blocker), "is an existing file")
    # files below a regular file
    sub = blocker / "out"
    cases = [
        ["separate", str(mixture), "--sources", "2", "-o", str(sub)],
        ["features", "audio", str(mixture), "-o", str(sub / "f.npy")],
        ["landmarks", str(mixture), "-o", str(sub / "lm.npz")],
        ["extract", str(mixture), "-o", str(sub)],
        ["experiment", "table8", str(mixture), "-o", str(sub)],
        ["instrument", "train", str(tmp_path), "-o", str(sub)],
        ["skill", "train", str(eaf), "-o", str(sub)],
    ]
    for args in cases:
        assert main(args) == 2, args
        _one_line_error(capsys, str(sub), "is a file, not a folder")
    assert blocker.read_text() == "not a folder"


def test_plot_below_a_file_is_refused_before_the_video_is_read(tmp_path, blocker, capsys, monkeypatch):
    import musicperf.analysis.media as media

    monkeypatch.setattr(media, "detect_playing", _never)
    assert main(["playing", str(tmp_path / "any.mp4"), "--plot", str(blocker / "p.png")]) == 2
    _one_line_error(capsys, "plot", "is a file, not a folder")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders; the cases above cover the check")
def test_read_only_folder_is_refused(tmp_path, mixture, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["separate", str(mixture), "--sources", "2", "-o", str(ro / "out")]) == 2
        _one_line_error(capsys, "not writable")
    finally:
        ro.chmod(0o700)


# --------------------------------------------------------------------------- while writing
def test_stats_disk_full_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    import musicperf.report.heatmap as heatmap

    real = heatmap.write_correlation_heatmap
    calls = []

    def full(path, *a, **k):
        calls.append(path)
        if len(calls) == 2:  # the second figure: 6 table files and one PNG are already written
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(heatmap, "write_correlation_heatmap", full)
    eaf = write_eaf(video1(), tmp_path / "v1.eaf")
    out = tmp_path / "out"
    assert main(["stats", str(eaf), "--fps", "25", "--duration", "4", "-o", str(out)]) == 2
    _one_line_error(capsys, "no space left on the device", "figure2_correlation_v1.png")
    assert not out.exists(), "a folder created by the failed run is left"
    # into an existing folder: its files are kept, none of the new ones appear
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    calls.clear()
    assert main(["stats", str(eaf), "--fps", "25", "--duration", "4", "-o", str(out)]) == 2
    _one_line_error(capsys, "no space left")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    # and with room again, all 10 files
    monkeypatch.setattr(heatmap, "write_correlation_heatmap", real)
    assert main(["stats", str(eaf), "--fps", "25", "--duration", "4", "-o", str(out)]) == 0
    assert "wrote 10 files" in capsys.readouterr().out
    assert len([p for p in out.iterdir() if not p.name.startswith(".")]) == 11
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_separate_disk_full_writes_no_source(tmp_path, mixture, capsys, monkeypatch):
    import soundfile as sf

    real, calls = sf.write, []

    def full(path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, *a, **k)

    monkeypatch.setattr(sf, "write", full)
    out = tmp_path / "sep"
    args = ["separate", str(mixture), "--sources", "2", "--components", "4", "--iterations", "10", "--restarts", "1"]
    assert main(args + ["-o", str(out)]) == 2
    _one_line_error(capsys, "source2.wav", "no space left on the device")
    assert not out.exists()
    monkeypatch.setattr(sf, "write", real)
    assert main(args + ["-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["source1.wav", "source2.wav"]


def test_output_errors_names_the_path_for_library_write_errors(tmp_path):
    from musicperf._util import WRITE_ERRNOS, output_errors

    class SafetensorError(Exception):  # what safetensors raises on a full disk (not an OSError)
        pass

    target = tmp_path / "model" / "weights.safetensors"
    with pytest.raises(OutputError, match=r"cannot write model '.*weights.safetensors': SafetensorError: "
                                          r"Error while serializing: IoError"):
        with output_errors(target, what="model"):
            raise SafetensorError("Error while serializing: IoError(Os { code: 28 })")
    with pytest.raises(OutputError, match="the file system is read-only"):
        with output_errors(target):
            raise OSError(errno.EROFS, "Read-only file system", str(target))
    av = pytest.importorskip("av")
    with pytest.raises(OutputError, match="no space left"):
        with output_errors(tmp_path / "o.mp4", what="overlay video"):
            raise av.error.OSError(errno.ENOSPC, "No space left on device")
    # with errnos: only those are the output's; a missing input stays what it is
    with pytest.raises(FileNotFoundError):
        with output_errors(target, errnos=WRITE_ERRNOS):
            raise FileNotFoundError(errno.ENOENT, "No such file", "input.mp4")
    with pytest.raises(ValueError):  # other errors pass through
        with output_errors(target):
            raise ValueError("a bug, not a write failure")


def test_write_all_or_nothing_removes_what_it_staged(tmp_path):
    from musicperf._util import write_all_or_nothing

    out = tmp_path / "set"
    out.mkdir()

    def broken(p):
        p.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(p))

    with pytest.raises(OutputError, match=r"'.*b.txt': no space left"):
        write_all_or_nothing(out, {"a.txt": lambda p: p.write_text("a"), "b.txt": broken})
    assert list(out.iterdir()) == []
    paths = write_all_or_nothing(out, {"a.txt": lambda p: p.write_text("a"), "b.txt": lambda p: p.write_text("b")})
    assert [p.name for p in paths] == ["a.txt", "b.txt"] and (out / "b.txt").read_text() == "b"
    assert oct((out / "a.txt").stat().st_mode & 0o777) != oct(0o600)  # ordinary permissions, not mkstemp's


# --------------------------------------------------------------------------- bad inputs
def test_pickled_speed_matrix_is_refused_in_one_line(tmp_path, mixture, capsys):
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    assert main(["separate", str(mixture), "--motion", str(evil), "--motion-fps", "25", "-o",
                 str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "evil.npy", "pickle")
    assert not (tmp_path / "o").exists()
    bad = tmp_path / "text.csv"
    bad.write_text("1,2\nx,y\n")
    assert main(["separate", str(mixture), "--motion", str(bad), "--motion-fps", "25", "-o", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "text.csv", "cannot be read")
    nan = tmp_path / "nan.npy"
    np.save(nan, np.array([[1.0, np.nan]]))
    assert main(["separate", str(mixture), "--motion", str(nan), "--motion-fps", "25", "-o", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "nan.npy", "NaN")


def test_no_face_error_names_the_video(monkeypatch):
    import musicperf.analysis.playing as PL
    from musicperf.analysis.media import face_regions
    from musicperf.errors import ParameterError

    monkeypatch.setattr(PL, "detect_faces", lambda f, method="auto": np.zeros((0, 4)))
    frames = [np.zeros((24, 32, 3), np.uint8)] * 30
    with pytest.raises(ParameterError, match=r"no face found in the first second of 'concert.mp4'; give --regions"):
        face_regions(frames, 25.0, 32, 24, source="concert.mp4")
