"""The README's Python examples run as written.

Every ```python block of README.md is executed, in order, in one fresh namespace, from a
temporary working folder (the example synthesises a 30 s performance, trains, labels and
scores: about 20 s on two cores).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_readme_has_a_python_example():
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks and all(b.strip() for b in blocks)


@pytest.mark.slow
def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the example's tempfile.mkdtemp() lands here
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    namespace: dict = {"__name__": "__readme__"}
    for i, block in enumerate(python_blocks(README.read_text(encoding="utf-8"))):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    # what the example prints: the classes and thresholds, the predicted intervals, two scores
    assert "Right hand round" in out[0]
    macro_f1, kappa = map(float, out[-1].split())
    assert 0.0 <= macro_f1 <= 1.0 and -1.0 <= kappa <= 1.0
