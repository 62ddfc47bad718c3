"""Click options and helpers shared by the command modules (:mod:`actionpipe.cli.main`,
:mod:`actionpipe.cli.video`, :mod:`actionpipe.cli.training`)."""
from __future__ import annotations

import importlib
import math
import re

import click

from actionpipe.core import limits

model_option = click.option("--model", help="Model card name or directory (see `actionpipe models`). "
                             "Default: the shipped default model.")
device_option = click.option("--device", default="auto", show_default=True,
                              help="auto (CUDA when available), cpu or cuda[:N].")


def library_constant(where: str):
    """The library constant ``"module:NAME"`` names (``"skeleton.pack:RANKINGS"``: ``actionpipe.skeleton.pack.RANKINGS``)."""
    module, name = where.split(":")
    return getattr(importlib.import_module(f"actionpipe.{module}"), name)


_LIBRARY_VALUE = re.compile(r"\{([a-z_.]+:[A-Z_0-9]+)(?:\[(\d+)\])?(?::([^}]*))?\}")


def fill_library_values(text: str) -> str:
    """``text`` with each ``{module:NAME}`` (or ``{module:NAME[i]}``, ``{module:NAME:format}``)
    replaced by that library constant's value."""
    def value(match: re.Match) -> str:
        found = library_constant(match[1])
        if match[2] is not None:
            found = found[int(match[2])]
        return format(found, match[3] or "")
    return _LIBRARY_VALUE.sub(value, text)


class LibraryTextOption(click.Option):
    """An option whose ``help`` and ``show_default`` text quote library constants as ``{module:NAME}``
    placeholders, filled in when ``--help`` is shown: the number has one place, the library."""

    def get_help_record(self, ctx: click.Context):
        saved = self.help, self.show_default
        self.help = fill_library_values(self.help) if self.help else self.help
        if isinstance(self.show_default, str):
            self.show_default = fill_library_values(self.show_default)
        try:
            return super().get_help_record(ctx)
        finally:
            self.help, self.show_default = saved


class LibraryChoice(click.Choice):
    """A ``click.Choice`` among a library constant's values, read when click first needs them (a
    value to check, ``--help``): the choices have one place, the library, and the command line still
    starts without importing numpy or OpenCV."""

    def __init__(self, where: str):  # no super().__init__: it would store the choices
        self.where, self.case_sensitive = where, True

    @property
    def choices(self) -> tuple:
        return tuple(library_constant(self.where))


class LibraryDefault:
    """A library constant as a click ``default``, read when the command runs without the option or
    ``--help`` shows it (click calls a callable default; help prints ``str``)."""

    def __init__(self, where: str):
        self.where = where

    def __call__(self):
        return library_constant(self.where)

    def __str__(self) -> str:
        return str(self())


class FiniteFloat(click.FloatRange):
    """A float option's type: a finite number within its range. click's FloatRange lets NaN through
    (it compares false to every bound) and reads ``1e309`` as infinity; every float option uses this."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


# The number types of the options, with the bounds of core.limits: a size past them is refused
# before any work (exit 2), never allocated until the machine kills the process.
FPS = FiniteFloat(0, limits.MAX_FPS, min_open=True)
WINDOW_SECONDS = FiniteFloat(0, limits.MAX_WINDOW_S, min_open=True)
POSITIVE = FiniteFloat(min=0, min_open=True)
NON_NEGATIVE = FiniteFloat(min=0)
PROBABILITY = FiniteFloat(0, 1, min_open=True, max_open=True)
IMGSZ = click.IntRange(32, limits.MAX_IMGSZ)
POSE_BATCH = click.IntRange(1, limits.MAX_POSE_BATCH)
BATCH = click.IntRange(1, limits.MAX_BATCH)
PEOPLE = click.IntRange(1, limits.MAX_PEOPLE)
FRAMES = click.IntRange(1, limits.MAX_FRAMES)
SIDE = click.IntRange(1, limits.MAX_SIDE)
COUNT = click.IntRange(1, limits.MAX_COUNT)
WORKERS = click.IntRange(1, limits.MAX_WORKERS)
THREADS = click.IntRange(1, limits.MAX_THREADS)
VIEWS = click.IntRange(0, limits.MAX_VIEWS)


def check_stdout_once(as_json: bool, option: str, output: str | None) -> None:
    """Usage error when ``--json`` and ``option``'s output (``-``) both go to stdout: every
    ``--json`` output is one document, alone on stdout."""
    if as_json and output == "-":
        from actionpipe.core.errors import UsageError
        raise UsageError(None, f"--json and {option} - both write to stdout: give {option} a file")


def check_dataset_option(dataset: str | None) -> None:
    """A ``--dataset`` that names no dataset kind nor a folder to guess one from is a usage error
    (exit 2) naming the option; a dataset named right but missing stays a file error (exit 1)."""
    if dataset is None:
        return
    from actionpipe.core.errors import ActionpipeError, UsageError
    from actionpipe.training.config import parse_dataset

    try:
        parse_dataset(dataset)
    except ActionpipeError as exc:
        raise UsageError(None, f"--dataset {dataset}: {exc.problem}") from None


def card_from_option(model: str | None):
    """The card ``--model`` names, else the default model (a usage error when none is installed)."""
    from actionpipe.model.cards import default_card, find_card

    card = find_card(model) if model else default_card()
    if card:
        return card
    from actionpipe.core.errors import UsageError
    raise UsageError(None, "no default model is installed: pass --model NAME_OR_DIR (see `actionpipe models`)")


def _pose_options():
    from actionpipe.core.devices import DEFAULT_POSE_BACKEND, DEFAULT_POSE_PRECISION, POSE_BACKENDS, POSE_PRECISIONS

    backend = click.option("--pose-backend", type=click.Choice(POSE_BACKENDS), default=DEFAULT_POSE_BACKEND,
                           show_default=True, help="Pose model runtime: auto (OpenVINO on the CPU, torch on "
                                                   "CUDA), openvino (CPU) or torch.")
    precision = click.option("--pose-precision", type=click.Choice(POSE_PRECISIONS),
                             help=f"OpenVINO pose precision (default: the model card's, else "
                                  f"{DEFAULT_POSE_PRECISION}; --speed fast: bf16). bf16 runs only where the CPU "
                                  "has bf16 units (fp32 elsewhere): about twice as fast, keypoints within a pixel or "
                                  "two; int8 (built once with NNCF) moves them by about 2-3 px at 640.")
    return backend, precision


pose_backend_option, pose_precision_option = _pose_options()
speed_option = click.option("--speed", type=LibraryChoice("pipeline.speed:SPEEDS"), default=LibraryDefault("pipeline.speed:DEFAULT_SPEED"),
                            show_default=True,
                            help="fast: the pose model on every second frame, the frames between interpolated, and in "
                                 "bf16 where the CPU has bf16 units (about 2.8x the throughput; see the README for what "
                                 "it costs in accuracy).")
