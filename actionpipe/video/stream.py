"""Frames of a live source for ``watch``, read in a background thread into a small bounded queue.

Sources (:class:`FrameReader`):

* *live*: a camera index (``0``), a device (``/dev/video0``) or a URL (RTSP, HTTP/MJPEG, HLS:
  anything OpenCV's FFmpeg opens). Each frame is stamped with its arrival time (seconds since the
  first frame) and kept at the model's rate: the first frame of each ``1/fps`` slot. When the
  consumer falls behind, the oldest queued frame is dropped (counted), so what it sees stays
  current instead of lagging further and further. A source that stops delivering is reopened with
  backoff (0.5 s doubling to 8 s) until ``reconnect_s`` pass without success; then the stream ends
  with an error.
* *a video file*: decoded exactly as ``classify`` decodes it (:func:`~actionpipe.video.reader.read_frames`
  at the model's rate, the same frames), as fast as the consumer takes them, nothing dropped; with
  ``realtime``, at the file's own pace, dropping like a live source.

The queue holds :data:`LIVE_QUEUE_FRAMES` frames: memory stays flat however long it runs.
"""
from __future__ import annotations

import math
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

from actionpipe.core.errors import ActionpipeError

LIVE_QUEUE_FRAMES = 4        # about a quarter of a second at the model's 15 fps
OPEN_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 5.0         # a stream silent this long counts as dropped
BACKOFF_S = (0.5, 8.0)       # first and longest wait between reopening attempts
DEFAULT_RECONNECT_S = 60.0   # give up on a dropped stream after this long


@dataclass
class CapturedFrame:
    """A frame as :class:`~actionpipe.video.reader.Frame` has it (``index``: its slot at the model's rate)
    and when it arrived (``time.monotonic()``; for a file, when it was decoded or, with
    ``realtime``, played)."""

    index: int
    source_index: int
    time_s: float
    image: Any  # BGR uint8, shrunk to max_side
    captured: float


_END = object()


def is_live(source: str) -> bool:
    """A camera index, a URL or a device; not a regular file (nor a path that does not exist)."""
    return source.isdigit() or "://" in source or (os.path.exists(source) and not os.path.isfile(source)
                                                   and not os.path.isdir(source))


def _open_capture(source: str):
    """An opened cv2.VideoCapture, or None."""
    import cv2

    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
    elif "://" in source:
        cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(OPEN_TIMEOUT_S * 1000),
                                                        cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(READ_TIMEOUT_S * 1000)])
    else:
        cap = cv2.VideoCapture(source)
    if cap.isOpened():
        return cap
    cap.release()
    return None


class FrameReader:
    """A source opened now (errors raise here, one line), read by a thread once :meth:`start`-ed.

    ``fps``: the model's rate; ``max_side``: frames are shrunk to it (the pose model's input size)
    with area averaging, as ``classify`` shrinks them. ``width``/``height``: the source's size;
    ``fps`` after opening: the rate frames come at. Counters: ``read`` (frames that arrived),
    ``dropped`` (kept at the model's rate, then dropped because the consumer was behind),
    ``reconnects``. ``notes``: what happened to the stream, for the consumer to say.
    """

    def __init__(self, source: str | int | os.PathLike, fps: float, max_side: int, realtime: bool = False,
                 reconnect_s: float = DEFAULT_RECONNECT_S, depth: int = LIVE_QUEUE_FRAMES):
        self.source = str(source)
        self.live = is_live(self.source)
        self.realtime, self.reconnect_s, self.max_side = realtime, reconnect_s, max_side
        self.queue: queue.Queue = queue.Queue(depth)
        self.stopping = threading.Event()
        self.read = self.dropped = self.reconnects = 0
        self.notes: deque[str] = deque(maxlen=16)
        self._thread: threading.Thread | None = None
        if self.live:
            import cv2

            self._cap = _open_capture(self.source)
            if self._cap is None:
                raise ActionpipeError(self.source, "cannot open the camera or stream (OpenCV/FFmpeg could not open it)")
            ok, first = self._cap.read()  # for the size only: it may be stale by the time frames are read
            if not ok or first is None:
                self._cap.release()
                raise ActionpipeError(self.source, f"opened, but no frame arrived within {READ_TIMEOUT_S:g} s")
            self.height, self.width = first.shape[:2]
            reported = self._cap.get(cv2.CAP_PROP_FPS)  # used only without a model rate
            self.fps = fps or (reported if 0 < reported <= 240 else 30.0)
        else:  # a missing file, a folder or a broken video is one error line here
            from actionpipe.video.reader import output_fps, probe

            self.info = probe(self.source)
            self.width, self.height, self.fps = self.info.width, self.info.height, output_fps(self.info, fps)

    def start(self) -> "FrameReader":
        self._thread = threading.Thread(target=self._run, name="actionpipe-watch-reader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to end; :meth:`frames` then ends too (safe from a signal handler)."""
        self.stopping.set()

    def close(self) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join(timeout=READ_TIMEOUT_S + 1)

    def frames(self) -> Iterator[CapturedFrame]:
        """The frames as they come, until the source ends or :meth:`stop`; a source that fails
        raises its :class:`ActionpipeError` here."""
        while True:
            try:
                item = self.queue.get(timeout=0.1)
            except queue.Empty:
                if self.stopping.is_set() and (self._thread is None or not self._thread.is_alive()):
                    return
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    # --- the reading thread -----------------------------------------------------------------

    def _offer(self, frame: CapturedFrame) -> None:
        """Queue a frame; when the queue is full, the oldest frame gives way (dropped)."""
        while True:
            try:
                self.queue.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _put(self, item) -> bool:
        """Queue ``item``, waiting while the queue is full; False when asked to stop meanwhile."""
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            if self.live:
                self._read_live()
            else:
                self._read_file()
        except ActionpipeError as exc:
            self._put(exc)
        except Exception as exc:  # never a silent hang: the consumer raises it
            self._put(ActionpipeError(self.source, f"reading failed: {type(exc).__name__}: {exc}"))
        else:
            self._put(_END)

    def _read_file(self) -> None:
        from actionpipe.video.reader import read_frames

        start = time.monotonic()
        for frame in read_frames(self.source, fps=self.fps, max_side=self.max_side, info=self.info):
            if self.stopping.is_set():
                return
            if self.realtime:  # played at the file's pace: wait for the frame's time, then never block
                self.stopping.wait(max(0.0, start + frame.time_s - time.monotonic()))
            self.read += 1
            captured = CapturedFrame(frame.index, frame.source_index, frame.time_s, frame.image, time.monotonic())
            if self.realtime:
                self._offer(captured)
            elif not self._put(captured):
                return

    def _read_live(self) -> None:
        import cv2

        from actionpipe.video.reader import output_size

        cap = self._cap
        size = output_size(self.width, self.height, self.max_side)
        start, last_slot = time.monotonic(), -1
        try:
            while not self.stopping.is_set():
                if not cap.grab():
                    cap.release()
                    cap = self._reopen()
                    if cap is None:
                        return
                    continue
                now = time.monotonic()
                self.read += 1
                # The first frame of each 1/fps slot is kept (the model's rate, by arrival time); the
                # others are decoded to keep the stream going but never converted to BGR.
                slot = math.floor((now - start) * self.fps + 0.5)
                if slot <= last_slot:
                    continue
                ok, image = cap.retrieve()
                if not ok or image is None:
                    continue
                last_slot = slot
                if image.shape[:2] != (self.height, self.width):  # a reopened stream changed size
                    image = cv2.resize(image, (self.width, self.height), interpolation=cv2.INTER_AREA)
                if size != (self.width, self.height):
                    image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
                self._offer(CapturedFrame(slot, self.read - 1, now - start, image, now))
        finally:
            if cap is not None:
                cap.release()

    def _reopen(self):
        """Reopen a stream that stopped, with backoff; None when asked to stop, an error after ``reconnect_s``."""
        self.notes.append("the stream stopped; reopening it")
        since, delay = time.monotonic(), BACKOFF_S[0]
        while not self.stopping.is_set():
            if time.monotonic() - since >= self.reconnect_s:
                raise ActionpipeError(self.source, f"the stream stopped and could not be reopened within "
                                                   f"{self.reconnect_s:g} s")
            self.stopping.wait(delay)
            cap = _open_capture(self.source) if not self.stopping.is_set() else None
            if cap is not None:
                self.reconnects += 1
                self.notes.append(f"reopened after {time.monotonic() - since:.1f} s (reconnect {self.reconnects})")
                return cap
            delay = min(2 * delay, BACKOFF_S[1])
        return None

