"""The ``actionpipe`` command line: a thin click layer over the library API.

stdout carries results (``--json`` where offered), stderr carries progress and messages. Exit codes:
0 success, 1 a bad input file or failed item, 2 a usage error.
"""
from __future__ import annotations

import sys

import click

from . import __version__, console
from .errors import ActionpipeError


class _Group(click.Group):
    """Turns ActionpipeError into one line on stderr and its exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ActionpipeError as exc:
            console.stderr.print(f"actionpipe: error: {exc}", markup=False, highlight=False,
                                 soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            console.stderr.print("actionpipe: interrupted", markup=False)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="actionpipe")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or info messages on stderr.")
def main(quiet: bool) -> None:
    """Turn videos into human-action class probabilities: frames, pose, ST-GCN."""
    console.set_quiet(quiet)


# Stage commands are registered below, one block per stage module, in pipeline order.
