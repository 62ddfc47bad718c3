"""What ``watch`` draws: each processed frame with skeletons and the current labels (the overlay
``render`` draws, without the timeline strip), shown in an OpenCV window (``show``, when there is
a display) and recorded to a video file (``save``).

Frames are drawn at the size the pose model saw them (the longer side at its ``imgsz``) and
recorded at the model's rate: frames dropped to keep up are missing from the recording too.
"""
from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from actionpipe.core import console
from actionpipe.core.fileio import atomic_path
from actionpipe.pose.posefile import Person, PoseFile, PoseFrame

WINDOW_NAME = "actionpipe watch"


def has_display() -> bool:
    """Whether a window can open: on Linux and the BSDs an X11 or Wayland display must be set
    (Qt aborts the whole process otherwise); elsewhere there is always one."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def overlay_result(window) -> dict[str, Any]:
    """A :class:`~actionpipe.pipeline.live.WindowResult` as the JSON object render's Overlay reads."""
    if window is None:
        return {"status": "starting", "top": []}
    d: dict[str, Any] = {"status": window.status, "top": [{"class": c, "probability": p} for c, p in window.top]}
    if window.label is not None:
        d.update(label=window.label, probability=window.probability)
    d["per_person"] = [{"track_id": p["track_id"], "label": p.get("label") or p["status"],
                        "probability": p.get("probability") or p.get("closest", {}).get("probability", 0.0)}
                       for p in window.people if "status" in p]
    return d


class Annotator:
    """Draws, shows and records ``watch``'s frames; the recording is committed when ``stack`` closes
    without an error (atomically, as every output is)."""

    def __init__(self, watch, stack: ExitStack):
        import cv2

        self.watch, self.window_shown, self.writer = watch, False, None
        self._overlay_for: tuple[Any, Any] = (object(), None)
        if watch.show:
            if not has_display():
                console.warn("--show: no display here (DISPLAY and WAYLAND_DISPLAY are not set); "
                             "the video is not shown (--save records it)")
            else:
                try:
                    cv2.namedWindow(WINDOW_NAME, cv2.WINDOW_NORMAL)
                    self.window_shown = True
                except cv2.error:
                    console.warn("--show: this OpenCV build cannot open windows (a headless build?); "
                                 "the video is not shown (--save records it)")
        if watch.save is not None:
            self.path = stack.enter_context(atomic_path(watch.save, suffix=Path(watch.save).suffix or ".mp4"))
        stack.push(self._exit)  # runs before the recording is committed: the writer must be finished

    def _overlay(self, window, width: int, height: int):
        from actionpipe.outputs.render import Overlay

        if self._overlay_for[0] is not window:
            pose = PoseFile("coco17", width, height, self.watch.reader.fps, [])
            self._overlay_for = (window, Overlay(pose, overlay_result(window), width, height, 1.0))
        return self._overlay_for[1]

    def draw(self, image: np.ndarray, frame: PoseFrame, window) -> None:
        """Draw ``frame``'s people and ``window``'s labels on ``image`` (the frame as the pose model
        saw it); show it and record it."""
        import cv2

        from actionpipe.video.writer import open_video_writer

        height, width = image.shape[:2]
        scale = np.array([width / self.watch.reader.width, height / self.watch.reader.height])
        people = [Person(p.track_id, p.score, np.asarray(p.box) * np.tile(scale, 2),
                         np.column_stack([p.keypoints[:, :2] * scale, p.keypoints[:, 2]])) for p in frame.people]
        self._overlay(window, width, height).draw(image, frame.time_s, people)
        if self.watch.save is not None:
            if self.writer is None:
                self.writer = open_video_writer(self.path, self.watch.reader.fps, (width, height))
                self.watch.saved = {"path": str(self.watch.save), "codec": self.writer.codec, "frames": 0}
            self.writer.write(image)
            self.watch.saved["frames"] += 1
        if self.window_shown:
            cv2.imshow(WINDOW_NAME, image)
            if cv2.waitKey(1) & 0xFF in (ord("q"), 27):  # q or Esc ends the watch
                self.watch.stop()

    def _exit(self, failed, *_) -> bool:
        import cv2

        if self.window_shown:
            cv2.destroyWindow(WINDOW_NAME)
            self.window_shown = False
        if self.writer is not None:
            (self.writer.abort if failed else self.writer.close)()
        elif self.watch.save is not None and not failed:
            from actionpipe.core.errors import ActionpipeError  # an empty file is no recording: none is left behind
            raise ActionpipeError(self.watch.save, "nothing recorded: no frame was processed")
        return False
