"""The HTML report and timeline plot options shared by ``classify`` and ``report`` (and ``eval
--html``): the click layer over :mod:`actionpipe.outputs.html` and :mod:`actionpipe.outputs.plots`."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from actionpipe.core import console

report_options = [
    click.option("--html", "html_path", type=click.Path(dir_okay=False), metavar="FILE",
                 help="Write one self-contained HTML page: summary, and per video a thumbnail, the answer, "
                      "top classes, the timeline and per-person strips (opens offline in any browser)."),
    click.option("--plot-dir", type=click.Path(file_okay=False), metavar="DIR",
                 help="Write a timeline plot per video (class probabilities over time, segments shaded) as "
                      "DIR/NAME.png."),
    click.option("--rendered", "rendered_dir", type=click.Path(file_okay=False, exists=True), metavar="DIR",
                 help="With --html: embed the videos `render` wrote into DIR (NAME.mp4, STEM.mp4 or "
                      "STEM_annotated.mp4)."),
]



def with_report_options(command):
    """Add :data:`report_options` to a click command."""
    for option in reversed(report_options):
        command = option(command)
    return command


def check_report_options(html_path: str | None, plot_dir: str | None, rendered_dir: str | None,
                         stdout_free: bool = True) -> None:
    """Usage errors for the report options; ``stdout_free``: the command prints nothing else there."""
    from actionpipe.core.errors import UsageError

    if html_path == "-" and not stdout_free:
        raise UsageError(None, "--html needs a file here, not '-': stdout carries the results")
    if plot_dir == "-":
        raise UsageError(None, "--plot-dir needs a folder, not '-' (stdout)")
    if rendered_dir and not html_path:
        raise UsageError(None, "--rendered goes with --html")


def write_report_outputs(results: list[dict[str, Any]], html_path: str | None, plot_dir: str | None,
                         rendered_dir: str | None = None, *, model: str | None = None,
                         thumbnails: dict[str, bytes | None] | None = None, poses_dir: str | None = None,
                         started: float | None = None) -> None:
    """Plots into ``plot_dir`` and the page at ``html_path`` for these results; thumbnails not given
    are made from the videos (with the skeletons of ``poses_dir/NAME/pose.json``, a classify --keep
    folder, when there)."""
    from actionpipe.core.fileio import make_dirs
    from actionpipe.pipeline.classify import keep_names
    from actionpipe.outputs.html import find_rendered, thumbnail, video_report, write_page
    from actionpipe.outputs.plots import plot_timeline, result_colours
    from actionpipe.pose.posefile import PoseFile

    names = keep_names([r["video"] for r in results])
    if plot_dir:
        colours = result_colours(results)
        plotted = 0
        for r, name in zip(results, names):
            path = Path(plot_dir) / f"{name}.png"
            make_dirs(path.parent)
            plotted += plot_timeline(r, path, colours)
        console.info(f"{plot_dir}: {plotted} timeline plot(s)"
                     + (f"; {len(results) - plotted} result(s) without a timeline" if plotted < len(results) else ""))
    if not html_path:
        return
    thumbnails = dict(thumbnails or {})
    for r, name in zip(results, names):
        if r["video"] not in thumbnails and r["status"] != "error":
            pose_file = Path(poses_dir) / name / "pose.json" if poses_dir else None
            pose = PoseFile.load(pose_file) if pose_file is not None and pose_file.is_file() else None
            thumbnails[r["video"]] = thumbnail(r["video"], pose, r)
    rendered = {r["video"]: find_rendered(rendered_dir, r["video"], name) for r, name in zip(results, names)}
    page = video_report(results, page_path=html_path, model=model, thumbnails=thumbnails, rendered=rendered,
                        wall_s=None if started is None else time.perf_counter() - started)
    write_page(html_path, page)
    console.info(f"{html_path}: HTML report of {len(results)} video(s)")


def report_from_file(path: str, html_path: str | None, plot_dir: str | None, rendered_dir: str | None,
                     poses_dir: str | None) -> None:
    """``report FILE --html/--plot-dir``: FILE holds classify results (``--json`` or ``--jsonl``
    output) or an ``infer`` scores file (then each sample is a row without picture or timeline)."""
    from actionpipe.core.errors import ActionpipeError
    from actionpipe.core.fileio import check_outputs
    from actionpipe.model.infer import load_scores
    from actionpipe.outputs.render import read_results
    from actionpipe.outputs.report import ranked

    check_report_options(html_path, plot_dir, rendered_dir)
    if poses_dir and not html_path:
        from actionpipe.core.errors import UsageError
        raise UsageError(None, "--poses goes with --html")
    check_outputs([html_path], [path])
    model = None
    try:
        results = read_results(path)
    except ActionpipeError as not_results:
        try:
            doc = load_scores(path)
        except ActionpipeError:
            raise not_results from None
        model = (doc.get("model") or {}).get("name")
        results = [{"video": item["source"], "status": "ok", **ranked(item["probabilities"], doc["classes"])}
                   for item in doc["items"]]
    write_report_outputs(results, html_path, plot_dir, rendered_dir, model=model, poses_dir=poses_dir)


def write_eval_page(html_path: str, evaluation, metrics: dict[str, Any], title: str) -> None:
    """``eval --html``: the page with the confusion matrix, per-class accuracy and a row per clip."""
    import tempfile

    import numpy as np

    from actionpipe.training.evaluate import plot_confusion
    from actionpipe.outputs.html import eval_report, write_page

    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "confusion.png"
        plot_confusion(metrics, png, title)
        confusion = png.read_bytes()
    probs = np.asarray(evaluation.probabilities)
    answered = probs.sum(1) > 0
    predicted = [evaluation.classes[int(p.argmax())] if a else None for p, a in zip(probs, answered)]
    probability = [float(p.max()) if a else None for p, a in zip(probs, answered)]
    write_page(html_path, eval_report(metrics, evaluation.names, evaluation.labels, predicted, probability,
                                      title=title, confusion_png=confusion))
    console.info(f"{html_path}: HTML report of {len(evaluation.names)} clip(s)")
