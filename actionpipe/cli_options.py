"""Click options and helpers shared by the command modules (:mod:`actionpipe.cli`,
:mod:`actionpipe.cli_video`, :mod:`actionpipe.cli_training`)."""
from __future__ import annotations

import click

model_option = click.option("--model", help="Model card name or directory (see `actionpipe models`). "
                             "Default: the shipped default model.")
device_option = click.option("--device", default="auto", show_default=True,
                              help="auto (CUDA when available), cpu or cuda[:N].")


def card_from_option(model: str | None):
    """The card ``--model`` names, else the default model (a usage error when none is installed)."""
    from .cards import default_card, find_card

    card = find_card(model) if model else default_card()
    if card:
        return card
    from .errors import UsageError
    raise UsageError(None, "no default model is installed: pass --model NAME_OR_DIR (see `actionpipe models`)")


def _pose_options():
    from .devices import DEFAULT_POSE_BACKEND, DEFAULT_POSE_PRECISION, POSE_BACKENDS, POSE_PRECISIONS

    backend = click.option("--pose-backend", type=click.Choice(POSE_BACKENDS), default=DEFAULT_POSE_BACKEND,
                           show_default=True, help="Pose model runtime: auto (OpenVINO on the CPU, torch on "
                                                   "CUDA), openvino (CPU) or torch.")
    precision = click.option("--pose-precision", type=click.Choice(POSE_PRECISIONS),
                             help=f"OpenVINO pose precision (default: the model card's, else "
                                  f"{DEFAULT_POSE_PRECISION}); bf16 is faster on CPUs with bf16 units, its "
                                  "keypoints differ by a pixel or two.")
    return backend, precision


pose_backend_option, pose_precision_option = _pose_options()
