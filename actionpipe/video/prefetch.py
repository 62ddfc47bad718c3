"""Decoding for many videos: serially, or ahead in a background thread while the models work.

Both yield, per video, ``(path, VideoInfo or the ActionpipeError probing raised, frames or None)``;
frames stream one at a time, so memory is bounded by :data:`PREFETCH_FRAMES` decoded frames.
"""
from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any, Iterator

from actionpipe.core.errors import ActionpipeError
from actionpipe.video.reader import probe, read_frames

PREFETCH_FRAMES = 64


class _VideoFrames:
    """One video's frames as they come out of the prefetch queue; ends at ``_END`` or an error."""

    def __init__(self, q: queue.Queue):
        self.queue, self.done = q, False

    def __iter__(self) -> Iterator[Any]:
        while not self.done:
            item = self.queue.get()
            if item is _END or isinstance(item, BaseException):
                self.done = True
                if item is not _END:
                    raise item
                return
            yield item

    def drain(self) -> None:
        """Skip what is left of this video (its consumer stopped early)."""
        try:
            for _ in self:
                pass
        except Exception:  # the consumer already failed; this video's later error changes nothing
            pass


_END = object()


def decode_serial(videos: list[Path], fps: float | None, max_side: int, start: float = 0.0,
                  end: float | None = None):
    """Per video: (path, its VideoInfo or the error probing it raised, its frames or None); the
    frames are :func:`~actionpipe.video.reader.read_frames`' from ``start`` to ``end`` seconds."""
    for video in videos:
        try:
            info = probe(video)
        except ActionpipeError as exc:
            yield video, exc, None
            continue
        yield video, info, read_frames(video, fps=fps, max_side=max_side, start=start, end=end, info=info)


def decode_ahead(videos: list[Path], fps: float | None, max_side: int, start: float = 0.0,
                 end: float | None = None, depth: int = PREFETCH_FRAMES):
    """Like :func:`decode_serial`, but a thread decodes up to ``depth`` frames ahead, across videos."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        # Every video gets a header (its VideoInfo, or the exception probing it raised), then its
        # frames and _END, or an exception: the consumer never waits for an item that cannot come.
        for video in videos:
            try:
                info = probe(video)
            except Exception as exc:
                if not put(exc):
                    return
                continue
            if not put(info):
                return
            try:
                for frame in read_frames(video, fps=fps, max_side=max_side, start=start, end=end, info=info):
                    if not put(frame):
                        return
            except Exception as exc:  # handed to the consumer, which raises it as its own
                if not put(exc):
                    return
                continue
            if not put(_END):
                return

    thread = threading.Thread(target=run, name="actionpipe-decode", daemon=True)
    thread.start()
    try:
        for video in videos:
            info = q.get()
            if isinstance(info, BaseException):
                yield video, info, None
                continue
            frames = _VideoFrames(q)
            yield video, info, frames
            frames.drain()
    finally:
        stop.set()
        thread.join()
