"""``actionpipe watch``: the click layer over :mod:`actionpipe.pipeline.live` (registered in :mod:`actionpipe.cli.main`).

stdout: one JSON line per window, per event and a last ``summary`` line (only events with
``--events-only``), each written whole and flushed. stderr: a live view on a terminal (current
label per person, fps, dropped frames), then a one-line summary. Ctrl-C and SIGTERM end it cleanly
(exit 0: the last window, the open events and the summary are still written); a second one ends
it at once.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import click

from actionpipe.core import console
from actionpipe.cli.options import (COUNT, FPS, IMGSZ, NON_NEGATIVE, POSITIVE, PROBABILITY, WINDOW_SECONDS,
                                    LibraryDefault, device_option, model_option, pose_backend_option, pose_precision_option)
from actionpipe.video.stream import is_live  # light: OpenCV is imported when a source opens



@contextlib.contextmanager
def _stopped_by_signals(watch):
    """SIGINT and SIGTERM stop ``watch`` after the frame in hand; the second one interrupts now."""
    def stop(signum, frame):
        if watch.reason == "stopped":
            raise KeyboardInterrupt
        watch.stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _emit(d: dict) -> None:
    """One JSON line, written whole and flushed at once (a reader sees whole lines only)."""
    from actionpipe.core.fileio import dumps

    sys.stdout.write(dumps(d) + "\n")
    sys.stdout.flush()


def _said(d: dict) -> str:
    """``squat 0.93``, ``unknown (closest pullup 0.55)`` or the status."""
    if d.get("label"):
        return f"{d['label']} {d['probability']:.2f}"
    if d.get("closest"):
        return f"unknown (closest {d['closest']['class']} {d['closest']['probability']:.2f})"
    return d.get("status", "")


def _view(watch, window: dict | None):
    """The live view on stderr: rate, drops, latency, and the current label of the scene and of each person."""
    from rich.text import Text

    s = watch.summary()
    dropped = s["dropped"] / max(1, s["dropped"] + s["processed"])
    lines = [f"watching {watch.source}  {s['video_s']:.1f} s  {s['fps'] or 0:.1f} fps  "
             f"dropped {s['dropped']} ({dropped:.0%})  reconnects {s['reconnects']}"]
    if window is not None:
        lines.append(f"  {window['start_s']:.1f}–{window['end_s']:.1f} s  all: {_said(window)}  "
                     f"(latency {window['latency_s']:.2f} s)")
        lines += [f"  #{p['track_id']}: {_said(p)}" for p in window["people"] if "status" in p]
    return Text("\n".join(lines))


@click.command("watch")
@click.argument("source")
@model_option
@device_option
@click.option("--window", "window_s", type=WINDOW_SECONDS, metavar="SEC",
              help="Classify the last SEC seconds of the people seen. Default: the model's own window.")
@click.option("--stride", "stride_s", type=WINDOW_SECONDS, metavar="SEC",
              help="Classify every SEC seconds. Default: the model's own stride, or half of --window.")
@click.option("--per-person", is_flag=True, help="Also classify each tracked person on its own track.")
@click.option("--min-track-s", default=LibraryDefault("pipeline.classify:DEFAULT_MIN_TRACK_S"), show_default=True, type=NON_NEGATIVE,
              metavar="SEC", help="Per person: only people seen for SEC seconds of the window.")
@click.option("--top", "k", default=LibraryDefault("outputs.report:DEFAULT_TOP_K"), show_default=True, type=COUNT, help="Classes per window.")
@click.option("--events-only", is_flag=True,
              help="Print only events (runs of windows with one label, printed when they end).")
@click.option("--realtime", is_flag=True,
              help="A video file plays at its own frame rate and frames are dropped when the models fall behind, "
                   "as from a camera. Default for files: as fast as possible, nothing dropped.")
@click.option("--duration", type=POSITIVE, metavar="SEC", help="Stop after SEC seconds of video.")
@click.option("--reconnect-s", default=LibraryDefault("video.stream:DEFAULT_RECONNECT_S"), show_default=True, type=POSITIVE, metavar="SEC",
              help="A stream that drops is reopened (with backoff) for up to SEC seconds, then it is an error.")
@click.option("--show", is_flag=True, help="Show the annotated video in a window (needs a display; q or Esc stops).")
@click.option("--save", type=click.Path(dir_okay=False), metavar="OUT.mp4",
              help="Record the annotated frames (at the pose model's size and the model's frame rate).")
@click.option("--imgsz", type=IMGSZ, help="Pose model input size (default: the model card's).")
@click.option("--conf", type=PROBABILITY, help="Person detection threshold.")
@click.option("--fps", type=FPS, help="Frames per second through the pose model (default: the model card's).")
@pose_backend_option
@pose_precision_option
@click.option("--no-reject", is_flag=True, help="Always name a class, never `unknown` (see classify).")
def watch_cmd(source, model, device, window_s, stride_s, per_person, min_track_s, k, events_only, realtime,
              duration, reconnect_s, show, save, imgsz, conf, fps, pose_backend, pose_precision, no_reject):
    """Classify a camera (0), a device (/dev/video0), a stream URL (RTSP, HTTP/MJPEG, HLS) or a
    video file as it plays: one JSON line per window and per event on stdout."""
    from rich.live import Live

    from actionpipe.api import ActionModel
    from actionpipe.cli.options import card_from_option
    from actionpipe.core.errors import ActionpipeError, UsageError
    from actionpipe.core.fileio import check_outputs
    from actionpipe.video.reader import probe

    if save == "-":
        raise UsageError(None, "--save needs a file name (a video cannot go to stdout here: it carries the JSON lines)")
    if not is_live(source):
        probe(source)  # a missing or broken file fails before any model loads
        check_outputs([save], [source])
    card = card_from_option(model)
    action_model = ActionModel(card, device=device, imgsz=imgsz, conf=conf, fps=fps, pose_backend=pose_backend,
                               pose_precision=pose_precision, reject=not no_reject, verbose=True)
    watch = action_model.watch(source, window=window_s, stride=stride_s, per_person=per_person,
                               min_track_s=min_track_s, k=k, events_only=events_only, realtime=realtime,
                               duration=duration, reconnect_s=reconnect_s, show=show, save=save)
    if not events_only:
        _emit({"type": "start", "source": watch.source, "model": card.name, "started_at": round(time.time(), 3),
               "fps": watch.reader.fps, "width": watch.reader.width, "height": watch.reader.height,
               "window_s": round(watch.window_s, 3), "stride_s": round(watch.stride_s, 3)})
    quiet = click.get_current_context().find_root().params.get("quiet")
    view = Live(_view(watch, None), console=console.stderr, transient=True, auto_refresh=False,
                redirect_stdout=False, redirect_stderr=False)
    error = None
    with _stopped_by_signals(watch), (view if console.stderr.is_terminal and not quiet else contextlib.nullcontext()):
        try:
            for item in watch:
                d = item.to_dict()
                _emit(d)
                if d["type"] == "window":
                    view.update(_view(watch, d), refresh=True)
        except ActionpipeError as exc:  # the stream failed for good: what came is written, then the error
            error = exc
        except BrokenPipeError:  # whoever read stdout went away (`| head -1`): stop, quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
    summary = watch.summary()
    if not events_only:
        _emit(summary)
    latency = summary["latency_s"] or {}
    console.info(f"{watch.source}: {summary['reason']} after {summary['video_s']:.1f} s of video: "
                 f"{summary['processed']} frames processed, {summary['dropped']} dropped, "
                 f"{summary['reconnects']} reconnects, {summary['windows']} windows, {summary['events']} events, "
                 f"latency median {latency.get('median', 0):.2f} s, p95 {latency.get('p95', 0):.2f} s"
                 + (f"; recorded {summary['saved']['frames']} frames to {save} ({summary['saved']['codec']})"
                    if summary.get("saved") else ""))
    if error is not None:
        raise error
