"""Review pages for a set of labelled videos: what ``musicperf report`` writes.

:func:`write_reports` finds the ``<name>.labels.json`` summaries (files, or folders written by
``musicperf label``), decides where each page goes (one ``.html`` file, or ``<name>.html`` in a
folder), refuses existing pages unless asked to overwrite, and writes each page with
:func:`musicperf.report.html.write_report_from_summary`. Every check happens before the first
page is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from musicperf.errors import ParameterError

SUMMARY_SUFFIX = ".labels.json"


def find_summaries(labels: Sequence[str | Path] | str | Path) -> list[Path]:
    """The ``*.labels.json`` files named by ``labels`` (files, or folders: all such files inside, sorted)."""
    if isinstance(labels, (str, Path)):
        labels = [labels]
    summaries: list[Path] = []
    for entry in map(Path, labels):
        if entry.is_dir():
            found = sorted(entry.glob("*" + SUMMARY_SUFFIX))
            if not found:
                raise ParameterError(f"no *{SUMMARY_SUFFIX} in folder '{entry}' (run 'musicperf label' first)")
            summaries += found
        elif entry.is_file():
            summaries.append(entry)
        else:
            raise ParameterError(f"'{entry}' does not exist")
    if not summaries:
        raise ParameterError("no labels file given")
    return summaries


def report_targets(summaries: Sequence[Path], output: str | Path) -> list[Path]:
    """Where each summary's page goes: ``output`` itself when it ends in ``.html``/``.htm`` (one
    video only), else ``output/<name>.html``."""
    out = Path(output)
    if out.suffix.lower() in (".html", ".htm"):
        if len(summaries) > 1:
            raise ParameterError(f"{len(summaries)} videos need an output folder, not the file '{out}'")
        return [out]
    return [out / (s.name[: -len(SUMMARY_SUFFIX)] + ".html" if s.name.endswith(SUMMARY_SUFFIX) else s.stem + ".html")
            for s in summaries]


def write_reports(
    labels: Sequence[str | Path] | str | Path,
    output: str | Path,
    *,
    reference: str | Path | None = None,
    start: float | None = None,
    end: float | None = None,
    embed_video: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    on_written=None,
) -> list[Path]:
    """Write the review page of every labelled video in ``labels``; return the pages' paths.

    ``reference`` (ground truth) scores one video only; ``start``/``end`` bound the scored part;
    ``embed_video=False`` links the video by a relative path. Existing pages are refused unless
    ``overwrite``. ``on_written(path)`` is called after each page.
    """
    summaries = find_summaries(labels)
    if len(summaries) > 1 and reference:
        raise ParameterError("--reference scores one video; give one labels file with it")
    targets = report_targets(summaries, output)
    for t in targets:
        if t.exists() and not overwrite:
            raise ParameterError(f"'{t}' already exists; pass --overwrite to replace it")
    from musicperf.report.html import write_report_from_summary

    for s, t in zip(summaries, targets):
        write_report_from_summary(s, t, reference=reference, start=start, end=end, embed_video=embed_video,
                                  progress=progress)
        if on_written is not None:
            on_written(t)
    return targets
