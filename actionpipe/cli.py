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


# --- pack / infer / report / models -------------------------------------------------------------

def _pack_spec(model: str | None, **overrides):
    """The preprocessing of ``--model`` (or the default model, or the reference's), flags override."""
    from .cards import DEFAULT_MODEL, find_card, list_cards
    from .pack import PackSpec

    if model:
        base = find_card(model).preprocessing
    else:
        shipped = {c.name: c for c in list_cards()}
        base = shipped[DEFAULT_MODEL].preprocessing if DEFAULT_MODEL in shipped else PackSpec()
    values = {k: v for k, v in vars(base).items()}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return PackSpec(**values)


@main.command()
@click.argument("pose_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Sample .npz to write.")
@click.option("--model", help="Take preprocessing from this model card (name or directory). "
              "Default: the default model's card, else the reference ST-GCN's (openpose18, frame).")
@click.option("--layout", type=click.Choice(["coco17", "openpose18", "body25", "ntu25"]), help="Target skeleton layout.")
@click.option("--normalization", type=click.Choice(["frame", "body"]), help="frame: x/W-0.5 (reference); body: torso-centred and scaled.")
@click.option("--max-people", type=click.IntRange(1), help="People kept (M).")
@click.option("--rank", type=click.Choice(["confidence", "area", "prominence"]), help="How the kept people are chosen.")
@click.option("--frames", type=click.IntRange(1), help="Crop (centre) or pad to T frames. Default: full length.")
@click.option("--pad", type=click.Choice(["loop", "zero"]), help="Padding for short clips with --frames.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), help="Resample to this frame rate.")
def pack(pose_file, output, model, **overrides):
    """Pack a pose file into an ST-GCN input array (N, C, T, V, M) in an .npz."""
    from .pack import pack_people
    from .posefile import PoseFile

    spec = _pack_spec(model, **overrides)
    sample = pack_people(PoseFile.load(pose_file), spec)
    sample.save(output)
    _, c, t, v, m = sample.data.shape
    console.info(f"{output}: data (1, {c}, {t}, {v}, {m}), layout {spec.layout}, "
                 f"normalization {spec.normalization}, tracks {sample.track_ids.tolist()}")


_model_option = click.option("--model", help="Model card name or directory (see `actionpipe models`). "
                             "Default: the shipped default model.")
_device_option = click.option("--device", default="auto", show_default=True,
                              help="auto (CUDA when available), cpu or cuda[:N].")


def _card(model: str | None):
    from .cards import DEFAULT_MODEL, find_card, list_cards

    if model:
        return find_card(model)
    if DEFAULT_MODEL in {c.name for c in list_cards()}:
        return find_card(DEFAULT_MODEL)
    from .errors import UsageError
    raise UsageError(None, "no default model is installed: pass --model NAME_OR_DIR (see `actionpipe models`)")


@main.command()
@click.argument("samples", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Scores JSON to write (default: stdout).")
@_model_option
@_device_option
@click.option("--batch", default=16, show_default=True, type=click.IntRange(1), help="Windows per forward pass.")
def infer(samples, output, model, device, batch):
    """Run the ST-GCN on packed samples: softmax class probabilities."""
    import json

    from .fileio import write_json
    from .infer import infer_files

    card = _card(model)
    doc = infer_files(samples, card, device, batch)
    if output:
        write_json(output, doc)
        console.info(f"{output}: {len(samples)} sample(s), model {card.name}")
    else:
        click.echo(json.dumps(doc))


@main.command()
@click.argument("scores", type=click.Path(dir_okay=False))
@click.option("--top", "k", default=5, show_default=True, type=click.IntRange(1), help="Classes shown per item.")
@click.option("--format", "fmt", default="table", show_default=True, type=click.Choice(["table", "json", "csv"]))
def report(scores, k, fmt):
    """Show class probabilities (top-k) from a scores file as a table, JSON or CSV."""
    from rich.console import Console

    from .infer import load_scores
    from .report import render

    text = render(load_scores(scores), fmt, k, Console())
    if text is not None:
        click.echo(text, nl=not text.endswith("\n"))


@main.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list on stdout.")
def models_cmd(as_json):
    """List installed model cards."""
    import json

    from rich.console import Console
    from rich.table import Table

    from .cards import list_cards, model_dirs

    cards = list_cards()
    if as_json:
        click.echo(json.dumps([{"name": c.name, "directory": str(c.directory), "classes": len(c.classes),
                                "layout": c.preprocessing.layout, "description": c.raw.get("description", "")}
                               for c in cards], indent=2))
        return
    if not cards:
        console.info(f"no model cards found in: {', '.join(map(str, model_dirs()))}")
        return
    table = Table(show_edge=False)
    for col in ("name", "classes", "layout", "description"):
        table.add_column(col)
    for c in cards:
        table.add_row(c.name, str(len(c.classes)), c.preprocessing.layout, c.raw.get("description", ""))
    Console().print(table)
