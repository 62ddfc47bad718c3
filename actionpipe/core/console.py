"""Human output: rich progress bars and messages, always on stderr so stdout stays scriptable."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

stderr = Console(stderr=True, highlight=False, emoji=False)  # a path holding ":x:" stays as it is
_quiet = False
_silent = False  # see silenced()


def set_quiet(quiet: bool) -> None:
    """Silence progress bars and info messages (warnings and errors still print)."""
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    """Whether progress and information are silenced (``-q``, or :func:`silenced`)."""
    return _quiet


def info(message: str) -> None:
    if not _quiet:
        stderr.print(message, soft_wrap=True, markup=False)


def warn(message: str) -> None:
    if not _silent:
        stderr.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


@contextlib.contextmanager
def silenced(silent: bool = True) -> Iterator[None]:
    """Nothing on stderr inside, warnings included, when ``silent`` (the Python API's default:
    a library call prints nothing unless asked); errors still raise."""
    global _quiet, _silent
    saved = _quiet, _silent
    if silent:
        _quiet = _silent = True
    try:
        yield
    finally:
        _quiet, _silent = saved


@contextlib.contextmanager
def progress() -> Iterator[Progress]:
    """A rich Progress on stderr (disabled with --quiet); add tasks with ``.add_task``."""
    bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=stderr, transient=True, disable=_quiet)
    with bar:
        yield bar


class _Stderr:
    """Whatever ``sys.stderr`` is at the time of writing (a handler made at import keeps its stream)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def quiet_libraries() -> None:
    """Keep library chatter out of stdout and out of one-line errors: FFmpeg's and OpenCV's native
    log lines (``moov atom not found``, ``[ WARN:0@...]``) and Python warnings (torch's UserWarnings,
    numpy's overflow RuntimeWarnings on garbage input, which is then refused in one line anyway).

    Call it before the first video is opened: FFmpeg reads its log level once. A user who wants it
    all back sets ``OPENCV_FFMPEG_LOGLEVEL`` / ``OPENCV_LOG_LEVEL`` and ``python -W`` / ``PYTHONWARNINGS``.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT") == "SILENT" and "cv2" in sys.modules:
        # Already imported: it may have read its log level from the environment before this.
        cv2 = sys.modules["cv2"]
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    if not sys.warnoptions:
        warnings.simplefilter("ignore")


def logs_to_stderr(logger_name: str) -> None:
    """Point a library logger's console handlers at stderr (ultralytics logs warnings to stdout)."""
    for handler in logging.getLogger(logger_name).handlers:
        if type(handler) is logging.StreamHandler and not isinstance(handler.stream, _Stderr):
            handler.setStream(_Stderr())
