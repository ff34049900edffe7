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


#: ``musicperf --help`` lists the commands in these groups, in this order (the labelling workflow
#: first); a command not named here is listed under "other commands".
COMMAND_GROUPS = {
    "the labelling workflow (in this order; 'demo' runs all four on a synthetic video)":
        ("train", "label", "score", "report", "demo"),
    "analyses": ("vibrato", "playing", "separate", "associate", "instrument", "skill", "experiment", "stats"),
    "tools": ("info", "annotations", "landmarks", "features", "extract", "synth"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musicperf",
        usage="musicperf [-h] [--version] [-v] COMMAND ...",
        description="Analyse and label videos of music performances. "
                    "'musicperf COMMAND --help' describes a command.",
    )
    parser.add_argument("--version", action="version", version=f"musicperf {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS, prog="musicperf")
    import musicperf.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"musicperf.commands.{info.name}")
        module.register(sub)
    _group_commands(parser, sub)
    return parser


def _group_commands(parser: argparse.ArgumentParser, sub) -> None:
    """Show the commands in :data:`COMMAND_GROUPS` (help listing only; parsing is unchanged)."""
    listed = {a.dest: a for a in sub._choices_actions}
    seen: set[str] = set()
    for title, names in COMMAND_GROUPS.items():
        group = parser.add_argument_group(title)
        for name in names:
            if name in listed:
                group._group_actions.append(listed[name])
                seen.add(name)
    rest = [a for name, a in listed.items() if name not in seen]
    if rest:
        parser.add_argument_group("other commands")._group_actions.extend(rest)
    # the commands first, the options (-h, --version, -v) last
    groups = parser._action_groups
    groups[:] = [g for g in groups if g is not parser._optionals] + [parser._optionals]


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
