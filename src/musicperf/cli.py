"""The ``musicperf`` command-line interface.

Each sub-command lives in its own module under :mod:`musicperf.commands` and defines
``register(subparsers)``, which adds its parser and sets ``func`` (a callable taking the parsed
arguments and returning an exit code). Command modules are discovered, so adding a command never
means editing this file. Command modules must import heavy libraries inside their ``func`` only,
so that ``musicperf --help`` stays fast.

Errors derived from :class:`~musicperf.errors.MusicperfError` become a one-line message on
stderr and exit code 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import os
import sys
import warnings

from musicperf._version import __version__
from musicperf.errors import MusicperfError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicperf",
        description="Analyse and label videos of music performances.",
    )
    parser.add_argument("--version", action="version", version=f"musicperf {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import musicperf.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"musicperf.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s: %(message)s",
    )
    # Reader warnings (unaligned slots, missing vocabularies, lost frames) are for the user:
    # one line each, without the source line Python's default format adds.
    warnings.formatwarning = _one_line_warning
    logging.captureWarnings(True)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except MusicperfError as exc:
        print(f"musicperf {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"musicperf {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except OSError as exc:
        # Disk full, read-only folder, permission denied, a path that is a file...: one line
        # naming the path (outputs are written atomically, so nothing is left half-written).
        from musicperf._util import describe_os_error

        print(f"musicperf {args.command}: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"{category.__name__}: {message}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
