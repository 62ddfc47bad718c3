"""Errors a user can cause: the CLI prints them as one line and exits non-zero, never a traceback."""
from __future__ import annotations

import contextlib
from pathlib import Path


class ActionpipeError(Exception):
    """A problem with a user's input or environment, reported as ``PATH: problem``.

    ``exit_code`` is 1 for bad input files and environment problems; usage errors (bad flags)
    are click's and exit with 2.
    """

    exit_code = 1

    def __init__(self, path: str | Path | None, problem: str):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class UsageError(ActionpipeError):
    """A bad combination of options or arguments, detected after click parsed them."""

    exit_code = 2


@contextlib.contextmanager
def about(path: str | Path):
    """Attribute path-less ActionpipeErrors raised inside the block to ``path``."""
    try:
        yield
    except ActionpipeError as exc:
        if exc.path is not None:
            raise
        raise type(exc)(path, exc.problem) from None
