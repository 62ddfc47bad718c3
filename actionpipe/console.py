"""Human output: rich progress bars and messages, always on stderr so stdout stays scriptable."""
from __future__ import annotations

import contextlib
from typing import Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

stderr = Console(stderr=True, highlight=False)
_quiet = False


def set_quiet(quiet: bool) -> None:
    """Silence progress bars and info messages (warnings and errors still print)."""
    global _quiet
    _quiet = quiet


def info(message: str) -> None:
    if not _quiet:
        stderr.print(message, soft_wrap=True, markup=False)


def warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)


@contextlib.contextmanager
def progress() -> Iterator[Progress]:
    """A rich Progress on stderr (disabled with --quiet); add tasks with ``.add_task``."""
    bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                   console=stderr, transient=True, disable=_quiet)
    with bar:
        yield bar
