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


def test_check_output_location_refuses_before_compute(tmp_path):
    import errno

    from musicperf._util import check_output_location, describe_os_error
    from musicperf.errors import OutputError

    assert check_output_location(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # nothing created
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OutputError, match="is an existing file"):
        check_output_location(afile)
    with pytest.raises(OutputError, match="'.*afile' is a file, not a folder"):
        check_output_location(afile / "sub" / "out.eaf", kind="file")
    with pytest.raises(OutputError, match="is an existing folder"):
        check_output_location(tmp_path, kind="file")
    with pytest.raises(OutputError, match="MB needed"):
        check_output_location(tmp_path, need_bytes=10**18)
    msg = describe_os_error(OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.eaf")))
    assert msg == f"'{tmp_path / 'x.eaf'}': no space left on the device"


def test_cli_turns_os_errors_into_one_line(tmp_path, capsys, monkeypatch):
    import errno

    from musicperf import cli

    def boom(args):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out.eaf"))

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    args = parser.parse_args(["info", "x"])
    monkeypatch.setattr(parser, "parse_args", lambda argv=None: args)
    args.func = boom
    assert cli.main(["info", "x"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"musicperf info: error: '{tmp_path / 'out.eaf'}': the file system is read-only"
