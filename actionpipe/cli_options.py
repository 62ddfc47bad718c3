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
