"""Output checks shared by the API's calls."""

from __future__ import annotations

# --------------------------------------------------------------------------- helpers
def _check_file(path, what: str, need_bytes: int = 0):
    from musicperf._util import check_output_location

    return None if path is None else check_output_location(path, kind="file", what=what, need_bytes=need_bytes)


def _check_dir(path, what: str = "output", need_bytes: int = 0):
    from musicperf._util import check_output_location

    return check_output_location(path, kind="dir", what=what, need_bytes=need_bytes)
