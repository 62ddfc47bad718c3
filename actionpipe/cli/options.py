"""Click options and helpers shared by the command modules (:mod:`actionpipe.cli.main`,
:mod:`actionpipe.cli.video`, :mod:`actionpipe.cli.training`)."""
from __future__ import annotations

import importlib
import re

import click

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
                                  f"{DEFAULT_POSE_PRECISION}; --speed fast: bf16 where the CPU has bf16 units); "
                                  "bf16 is faster on CPUs with bf16 units, its keypoints differ by a pixel or two.")
    return backend, precision


pose_backend_option, pose_precision_option = _pose_options()
speed_option = click.option("--speed", type=LibraryChoice("pipeline.speed:SPEEDS"), default=LibraryDefault("pipeline.speed:DEFAULT_SPEED"),
                            show_default=True,
                            help="fast: the pose model on every second frame, the frames between interpolated, and in "
                                 "bf16 where the CPU has bf16 units (about 2.8x the throughput; see the README for what "
                                 "it costs in accuracy).")
