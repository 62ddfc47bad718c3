"""``actionpipe classify`` and ``render``: the click layer over :mod:`actionpipe.pipeline.classify` and
:mod:`actionpipe.outputs.render` (registered on the main group in :mod:`actionpipe.cli.main`)."""
from __future__ import annotations

import sys

import click

from actionpipe.core import console
from actionpipe.model.aggregates import AGGREGATES
from actionpipe.cli.options import (BATCH, COUNT, FPS, IMGSZ, NON_NEGATIVE, PROBABILITY, WINDOW_SECONDS, WORKERS,
                                    LibraryDefault, card_from_option, check_stdout_once, device_option, model_option,
                                    pose_backend_option, pose_precision_option, speed_option)
from actionpipe.cli.report import check_report_options, report_options, write_report_outputs
from actionpipe.engines.ray_engine import ENGINES, POSE_CPUS, expand_uris, is_uri

_analysis_options = [
    click.option("--imgsz", type=IMGSZ, help="Pose model input size (default: the model card's)."),
    click.option("--conf", type=PROBABILITY, help="Person detection threshold."),
    click.option("--fps", type=FPS, help="Pose frame rate (default: the model card's)."),
    click.option("--batch", default=LibraryDefault("model.infer:DEFAULT_BATCH"), show_default=True, type=BATCH,
                 help="Windows per ST-GCN forward pass."),
    click.option("--window", "window_s", type=WINDOW_SECONDS, metavar="SEC",
                 help="Classify sliding windows of SEC seconds: per-window classes merged into a timeline of segments."),
    click.option("--stride", "stride_s", type=WINDOW_SECONDS, metavar="SEC", help="Step between windows. Default: half the window."),
    click.option("--aggregate", type=click.Choice(AGGREGATES),
                 help="Whole-video scores from the windows: their mean, their mean weighted by how much the "
                      "people move (idle stretches count less), or each class's maximum (finds a short action "
                      "in a long video; does not sum to 1). Default: the model card's (the shipped model: motion)."),
    click.option("--min-track-s", default=LibraryDefault("pipeline.classify:DEFAULT_MIN_TRACK_S"), show_default=True,
                 type=NON_NEGATIVE, metavar="SEC",
                 help="Per person: skip tracks seen for less than SEC seconds."),
    pose_backend_option,
    pose_precision_option,
]


def _with_options(options):
    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f
    return decorate


def _check_window(window_s, stride_s) -> None:
    if stride_s and not window_s:
        from actionpipe.core.errors import UsageError
        raise UsageError(None, "--stride needs --window")


_NO_CLASS = {"no_person": "no person found",
             "low_frame_rate": "the frame rate is too low for the model (below half the rate it was trained at)",
             "too_short": "the person is visible for too short a time",
             "low_confidence": "the pose is too uncertain (most keypoints below confidence)"}


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(readable=False))  # unreadable: a failed video
@model_option
@device_option
@click.option("--top", "k", default=LibraryDefault("outputs.report:DEFAULT_TOP_K"), show_default=True, type=COUNT,
              help="Classes shown per video.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document with every video's result on stdout.")
@click.option("--jsonl", "jsonl_path", metavar="FILE",
              help="Append one JSON line per video to FILE as each finishes ('-': stdout). A killed run leaves whole lines.")
@click.option("--parquet", "parquet_path", metavar="FILE",
              help="Also write the results as a Parquet table, one row per video, when the run ends (needs pyarrow: "
                   "pip install actionpipe[ray]).")
@click.option("--skip-existing", is_flag=True,
              help="With --jsonl FILE or --parquet FILE: skip videos it already has a result for (resume).")
@click.option("--keep", "keep_dir", type=click.Path(file_okay=False), help="Write pose.json, sample.npz and scores.json per video here.")
@click.option("--per-person", is_flag=True, help="Also classify each tracked person on its own track (id, time span, box).")
@_with_options(_analysis_options)
@speed_option
@click.option("--no-prefetch", is_flag=True, help="Do not decode ahead in a background thread.")
@click.option("--no-reject", is_flag=True,
              help="Always name a class: never answer `unknown`, even when the model's open-set score says "
                   "the clip is unlike anything it was trained on (the score is still reported).")
@click.option("--engine", type=click.Choice(ENGINES), default=ENGINES[0], show_default=True,
              help="ray: run on a Ray cluster (pip install actionpipe[ray]), pose and ST-GCN as actor pools; "
                   "a local Ray without --address.")
@click.option("--address", help="With --engine ray: the cluster to join (auto, HOST:PORT or ray://HOST:PORT).")
@click.option("--pose-workers", type=WORKERS, metavar="N",
              help=f"With --engine ray: pose actors (default: one per {POSE_CPUS} CPUs, at least one per GPU).")
@_with_options(report_options)
def classify(inputs, model, device, k, as_json, jsonl_path, parquet_path, skip_existing, keep_dir, per_person, imgsz,
             conf, fps, batch, window_s, stride_s, aggregate, min_track_s, pose_backend, pose_precision, speed,
             no_prefetch, no_reject, engine, address, pose_workers, html_path, plot_dir, rendered_dir):
    """Classify videos (files or folders of videos): all stages in one process.

    Each result has a status: ok (a class), unknown (rejected by the model's open-set rule: label
    null, the closest class shown), no_person, low_frame_rate, too_short or low_confidence (no class),
    or error. A result also says duration_s (the video's length) and decoded_s (what was decoded);
    a cut-off or damaged video has "warnings": ["truncated"].
    Exit code 0 when every video got one of the first six, 1 when any failed (each failure is
    reported on stderr and in the JSON output, and the other videos still run). --html and
    --plot-dir classify with the model's own windows unless --window is given (a timeline to show).
    """
    import os
    import time

    from rich.console import Console

    from actionpipe.api import ActionModel
    from actionpipe.pipeline.classify import ANSWERS
    from actionpipe.core.errors import UsageError
    from actionpipe.core.fileio import check_outputs, dumps
    from actionpipe.outputs.html import thumbnail
    from actionpipe.outputs.jsonl import JsonlWriter, done_videos
    from actionpipe.outputs.parquet import ParquetResults
    from actionpipe.outputs.report import render_table
    from actionpipe.video.reader import expand_videos

    if as_json and jsonl_path == "-":
        raise UsageError(None, "--json and --jsonl - both write to stdout: pick one")
    if skip_existing and jsonl_path in (None, "-") and not parquet_path:
        raise UsageError(None, "--skip-existing needs --jsonl FILE or --parquet FILE (the results to resume)")
    if "-" in (keep_dir, parquet_path):
        raise UsageError(None, "--keep and --parquet need a folder or file, not '-' (stdout)")
    if engine != "ray" and (address or pose_workers):
        raise UsageError(None, "--address and --pose-workers go with --engine ray")
    _check_window(window_s, stride_s)
    check_report_options(html_path, plot_dir, rendered_dir, stdout_free=False)
    started = time.perf_counter()
    uris = [i for i in inputs if is_uri(i)]  # s3://, gs://, file://: listed and read by the Ray actors
    if uris and engine != "ray":
        raise UsageError(None, f"{uris[0]}: URIs are read with --engine ray (or mount the storage)")
    videos, unreadable = expand_videos([i for i in inputs if not is_uri(i)])
    if uris:
        listed, unlisted = expand_uris(uris)
        videos, unreadable = videos + listed, unreadable + unlisted
    for folder, why in unreadable:  # its videos cannot even be listed: a failure, said per folder
        console.stderr.print(f"actionpipe: error: {folder}: cannot read folder ({why}); its videos are not "
                             "classified", markup=False, soft_wrap=True)
    if not videos and not unreadable:
        raise UsageError(None, f"no video files found in: {', '.join(inputs)}")
    check_outputs([jsonl_path, keep_dir, parquet_path, html_path], videos)
    card = card_from_option(model)  # a bad --model fails before the JSONL file is touched
    parquet = ParquetResults(parquet_path) if parquet_path else None
    writer = JsonlWriter(jsonl_path) if jsonl_path not in (None, "-") else None
    if writer and writer.repaired:
        console.warn(f"{jsonl_path}: removed a partial last line ({writer.repaired} bytes) of an interrupted run")
    if skip_existing:
        done = ((done_videos(jsonl_path, ANSWERS) if writer else set()) |
                (parquet.done_videos(ANSWERS) if parquet else set()))
        todo = [v for v in videos if os.path.realpath(v) not in done]
        console.info(f"{' and '.join(p for p in (writer and jsonl_path, parquet_path) if p)}: "
                     f"{len(videos) - len(todo)} of {len(videos)} video(s) already done, skipped")
        videos = todo
    results, out = [], Console()  # results: each video's JSON object (poses are not kept)
    thumbnails = {}  # --html: each video's picture, made while its pose is at hand
    try:
        if videos:
            action_model = ActionModel(card, device=device, imgsz=imgsz, conf=conf, fps=fps, batch=batch,
                                       prefetch=not no_prefetch, reject=not no_reject, pose_backend=pose_backend,
                                       pose_precision=pose_precision, speed=speed, verbose=True, engine=engine,
                                       address=address, pose_workers=pose_workers)
            if (html_path or plot_dir) and not window_s:
                window_s, stride_s = action_model.classifier.model_windows()
            for result in action_model(videos, window=window_s, stride=stride_s, aggregate=aggregate,
                                       per_person=per_person, min_track_s=min_track_s, stream=True,
                                       keep_dir=keep_dir):
                d = result.to_dict(k)
                results.append(d)
                if html_path and result.ok:
                    thumbnails[d["video"]] = thumbnail(result.video, result.pose, d)
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
                if parquet:
                    parquet.write(d)
                if writer:
                    writer.write(d)
                elif jsonl_path == "-":
                    click.echo(dumps(d))
                elif not as_json and result.prediction is not None:
                    times = f" ×{d['reps']['count']}" if d.get("reps") and d["reps"]["count"] else ""
                    verdict = (f"{d['label']}{times} {d['probability']:.2f}" if d.get("label") else
                               f"unknown action (closest: {d['closest']['class']} {d['closest']['probability']:.2f})")
                    click.echo(f"{d['video']}: {verdict}")
                    render_table([{"source": "", "top": d["top"]}], out)
                    for line in result.result.summary_lines():
                        click.echo(line)
                elif not as_json and result.status in _NO_CLASS:
                    click.echo(f"{d['video']}: {_NO_CLASS[result.status]}")
    finally:
        if writer:
            writer.close()
        if parquet:  # the videos finished so far, also when the run failed or was interrupted
            parquet.close()
    if as_json:
        click.echo(dumps({"model": card.name, "results": results}, indent=2))
    write_report_outputs(results, html_path, plot_dir, rendered_dir, model=card.name, thumbnails=thumbnails,
                         started=started)
    failed = sum(d["status"] == "error" for d in results)
    console.info(f"{len(results) - failed}/{len(results)} video(s) classified with {card.name}")
    if failed or unreadable:
        sys.exit(1)


@click.command("render")
@click.argument("video", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Video to write (.mp4).")
@click.option("--pose", "pose_path", type=click.Path(dir_okay=False),
              help="Pose file of VIDEO (from `pose` or `classify --keep`). Default: computed.")
@click.option("--scores", "scores_path", type=click.Path(dir_okay=False),
              help="`classify --json`/`--jsonl` output holding VIDEO's result. Default: computed with --model, "
                   "with --window (default: the model's window) and per person.")
@model_option
@device_option
@click.option("--top", "k", default=LibraryDefault("outputs.report:DEFAULT_TOP_K"), show_default=True, type=COUNT,
              help="Classes in the bar chart.")
@click.option("--save-scores", type=click.Path(dir_okay=False), help="Also write the computed result (JSON) here.")
@click.option("--save-pose", type=click.Path(dir_okay=False), help="Also write the computed pose file here.")
@_with_options(_analysis_options)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def render_cmd(video, output, pose_path, scores_path, model, device, k, save_scores, save_pose, imgsz, conf,
               fps, batch, window_s, stride_s, aggregate, min_track_s, pose_backend, pose_precision, as_json):
    """Draw skeletons, boxes, current labels, class bars and a segment timeline onto VIDEO."""
    from actionpipe.core.errors import about
    from actionpipe.core.fileio import check_outputs, dumps, write_json
    from actionpipe.pose.posefile import PoseFile
    from actionpipe.outputs.render import load_result, render_video
    from actionpipe.video.reader import probe

    _check_window(window_s, stride_s)
    for option, path in (("-o", output), ("--save-scores", save_scores), ("--save-pose", save_pose)):
        check_stdout_once(as_json, option, path)
    check_outputs([output, save_pose, save_scores], [p for p in (video, pose_path, scores_path) if p])
    probe(video)  # a missing or broken video fails before any model runs
    pose = PoseFile.load(pose_path) if pose_path else None
    result = load_result(scores_path, video) if scores_path else None
    if pose is None or result is None:
        from actionpipe.api import ActionModel

        action_model = ActionModel(card_from_option(model), device=device, imgsz=imgsz, conf=conf, fps=fps,
                                   batch=batch, pose_backend=pose_backend, pose_precision=pose_precision, verbose=True)
        if not window_s:
            window_s, stride_s = action_model.classifier.model_windows()
        with about(video):
            computed = action_model(video, pose=pose, window=window_s, stride=stride_s, aggregate=aggregate,
                                    per_person=True, min_track_s=min_track_s)
        pose, result = computed.pose, result or computed.to_dict(k)
    summary = render_video(video, output, pose, result, k)
    # Side outputs only once the video is written: a failed render leaves nothing behind.
    if save_pose:
        pose.save(save_pose)
    if save_scores:
        write_json(save_scores, result, indent=1)
    if as_json:
        click.echo(dumps(summary))
    codec = "H.264" if summary["codec"] == "h264" else "MPEG-4 Part 2 (mp4v)"
    codec += f", audio {summary['audio']}" if summary["audio"] else ", no audio"
    console.info(f"{output}: {summary['frames']} frames, {summary['width']}x{summary['height']} "
                 f"at {summary['fps']:g} fps, {codec}")
