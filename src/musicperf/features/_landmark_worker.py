"""One stretch of landmark extraction in a fresh interpreter (used by ``extract_landmarks(workers=N)``).

``python -m musicperf.features._landmark_worker JOB`` where ``JOB`` is a JSON object with
``video``, ``params``, ``start``, ``end``, ``every``, ``out`` (an ``.npz`` path, written
atomically), ``parent`` (the caller's pid: the worker ends when the caller does) and optionally
``rows`` (true: compact rows, :func:`musicperf.features.landmark_rows._run_segment_rows`, instead
of whole landmarks). Errors from musicperf go to stderr as one line and exit status 2.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    from musicperf._util import atomic_path
    from musicperf.errors import MusicperfError
    from musicperf.features.landmark_rows import _run_segment_rows
    from musicperf.features.landmarks import _run_segment

    job = json.loads(argv[0])
    if job.get("parent"):
        from musicperf._util import die_with_parent

        die_with_parent(int(job["parent"]))  # no orphan MediaPipe process when the caller is killed
    try:
        run = _run_segment_rows if job.get("rows") else _run_segment
        out = run(job["video"], job["params"], job["start"], job["end"], int(job["every"]), False)
    except MusicperfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with atomic_path(job["out"]) as tmp, open(tmp, "wb") as f:
        np.savez(f, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
