import pytest

from musicperf._util import atomic_path, write_text_atomic


def test_atomic_write_replaces(tmp_path):
    p = tmp_path / "a" / "out.txt"
    write_text_atomic(p, "one")
    write_text_atomic(p, "two")
    assert p.read_text() == "two"
    assert sorted(x.name for x in p.parent.iterdir()) == ["out.txt"]


def test_atomic_write_keeps_old_on_failure(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_has_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        p = tmp_path / "out.txt"
        write_text_atomic(p, "x")
        assert (p.stat().st_mode & 0o777) == 0o644
    finally:
        os.umask(umask)
