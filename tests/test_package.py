import subprocess
import sys

import musicperf
from musicperf.cli import main
from musicperf.errors import MissingDependencyError, MusicperfError, ParameterError


def test_import_is_cheap():
    code = (
        "import sys, musicperf, musicperf.cli; musicperf.cli.build_parser(); "
        "heavy = [m for m in ('torch', 'cv2', 'mediapipe', 'librosa', 'matplotlib', 'av') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"heavy modules imported at start-up: {out.stdout}"


def test_error_hierarchy():
    assert issubclass(ParameterError, ValueError)
    assert issubclass(MissingDependencyError, ImportError)
    assert issubclass(ParameterError, MusicperfError)
    assert "musicperf[landmarks]" in str(MissingDependencyError("mediapipe", "landmarks"))


def test_cli_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert musicperf.__version__ in capsys.readouterr().out


def test_python_api_names():
    import musicperf.train.splits  # noqa: F401  (importing a sub-module must not hide the function)

    assert callable(musicperf.train)
    assert callable(musicperf.label)
    assert callable(musicperf.score)
