"""Run ``musicperf demo`` quietly in a temporary folder and write what it prints into README.md.

    PYTHONPATH=src python benchmarks/demo_figures.py            # about a minute on 2 cores
    PYTHONPATH=src python benchmarks/demo_figures.py --page docs/workflow.md

The README's ``<!-- figures:demo -->`` block shows what ``make demo`` prints (the steps, the
summary table with per-class F1 against the constant predictor, the wall times, where the files
are). This script runs exactly that command (``python -m musicperf demo -o demo-output
--overwrite``, in a temporary working directory, so the printed paths read ``demo-output/...``
as they do for a user) and replaces the block with its output under a line naming the command,
the machine and the time. ``make figures`` runs it. The demo's output folder is deleted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import docs_blocks  # noqa: E402

ROOT = docs_blocks.ROOT
BLOCK = "demo"


def run_demo_transcript(*, timeout: float = 1800) -> str:
    """What ``make demo`` prints, from a real run in a temporary folder (stdout only: no progress bars)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env.setdefault("PYTHONWARNINGS", "ignore")
    cmd = [sys.executable, "-m", "musicperf", "demo", "-o", "demo-output", "--overwrite"]
    with tempfile.TemporaryDirectory(prefix="musicperf-demo-figures-") as tmp:
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise SystemExit(f"error: musicperf demo failed (exit {proc.returncode}): {tail}")
    lines = ["$ make demo", "==> running the demo into demo-output/",
             ".venv/bin/python -m musicperf demo -o demo-output --overwrite",
             *proc.stdout.rstrip("\n").splitlines()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", type=Path, default=ROOT / "README.md",
                    help=f"the Markdown page holding the '<!-- figures:{BLOCK} -->' block (default README.md)")
    args = ap.parse_args(argv)
    try:
        docs_blocks.check_block(args.page, BLOCK)  # a missing marker fails now, not after a minute
    except docs_blocks.DocsBlockError as exc:
        docs_blocks.fail(exc)
    t0 = time.time()
    print("running musicperf demo in a temporary folder (about a minute) ...", file=sys.stderr, flush=True)
    transcript = run_demo_transcript()
    print(transcript)
    body = "```\n" + transcript + "\n```"
    docs_blocks.write_figures(args.page, BLOCK, body, command=docs_blocks.command_line(__file__, argv), when=t0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
