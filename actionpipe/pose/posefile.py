"""The pose file: the contract between ``pose`` and everything after it (``pack``, ``convert``,
``train`` on a user's own clips).

Format (JSON, ``format_version`` 1)::

    {"format": "actionpipe.pose", "format_version": 1,
     "layout": "coco17", "joints": ["nose", "left_eye", ...],
     "width": 1768, "height": 994, "fps": 30.0,
     "source": {"path": "demo.mp4", ...},            # free-form provenance
     "backend": {"name": "ultralytics", "model": "yolo11n-pose", "imgsz": 320, ...},
     "weights_sha256": "869e...",                     # null when not made by a model
     "frames": [{"index": 0, "time_s": 0.0,
                 "people": [{"track_id": 1, "score": 0.91,
                             "box": [x1, y1, x2, y2],
                             "keypoints": [[x, y, conf], ...]}]}]}   # pixels, one row per joint

``index`` counts the frames of this file from 0; ``time_s`` is the time in the source video.
A frame with nobody in it has ``"people": []``. ``track_id`` is the same person across frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import check_keys, read_json, write_json
from actionpipe.pose.layouts import get_layout

FORMAT = "actionpipe.pose"
FORMAT_VERSION = 1
_KEYS = ("format", "format_version", "layout", "joints", "width", "height", "fps", "source", "backend",
         "weights_sha256", "frames")
_FRAME_KEYS = ("index", "time_s", "people")
_PERSON_KEYS = ("track_id", "score", "box", "keypoints")


@dataclass
class Person:
    """One detected person in one frame: keypoints ``(V, 3)`` as x, y (pixels), confidence."""

    track_id: int
    score: float
    box: np.ndarray          # (4,) x1, y1, x2, y2 in pixels
    keypoints: np.ndarray    # (V, 3)


@dataclass
class PoseFrame:
    index: int
    time_s: float
    people: list[Person] = field(default_factory=list)


@dataclass
class PoseFile:
    """Per-frame, per-person keypoints of one video, plus where they came from."""

    layout: str
    width: int
    height: int
    fps: float
    frames: list[PoseFrame]
    source: dict[str, Any] = field(default_factory=dict)
    backend: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return (f"PoseFile({self.layout}, {self.width}x{self.height} at {self.fps:g} fps, "
                f"{self.num_frames} frames, {len(self.track_ids())} track(s))")

    def track_ids(self) -> list[int]:
        """All track ids, in order of first appearance."""
        seen: dict[int, None] = {}
        for frame in self.frames:
            for p in frame.people:
                seen.setdefault(p.track_id, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        layout = get_layout(self.layout)
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "layout": layout.name, "joints": list(layout.joints),
            "width": int(self.width), "height": int(self.height), "fps": float(self.fps),
            "source": self.source, "backend": self.backend, "weights_sha256": self.weights_sha256,
            "frames": [
                {"index": f.index, "time_s": round(float(f.time_s), 6), "people": [
                    {"track_id": int(p.track_id), "score": round(float(p.score), 5),
                     "box": [round(float(v), 2) for v in p.box],
                     "keypoints": [[round(float(x), 2), round(float(y), 2), round(float(c), 5)]
                                   for x, y, c in p.keypoints]}
                    for p in f.people]}
                for f in self.frames],
        }

    def save(self, path: str | Path) -> None:
        """Write the pose file atomically."""
        write_json(path, self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: str | Path | None = None) -> "PoseFile":
        """Validate and build; every problem is one ActionpipeError naming ``path``."""
        def bad(problem: str) -> ActionpipeError:
            return ActionpipeError(path, f"not a valid pose file: {problem}")

        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise bad(f"missing \"format\": \"{FORMAT}\"")
        if d.get("format_version") != FORMAT_VERSION:
            raise bad(f"format_version {d.get('format_version')!r} is not supported (expected {FORMAT_VERSION})")
        try:
            check_keys(d, _KEYS, None, "pose file")
            layout = get_layout(d["layout"])
            num_joints = layout.num_joints
            frames = []
            for fd in d["frames"]:
                check_keys(fd, _FRAME_KEYS, None, "frame")
                people = []
                for pd in fd["people"]:
                    check_keys(pd, _PERSON_KEYS, None, f"frame {fd['index']}: person")
                    kp = np.asarray(pd["keypoints"], dtype=np.float32)
                    if kp.shape != (num_joints, 3):
                        raise bad(f"frame {fd['index']}: keypoints of shape {kp.shape}, "
                                  f"layout {layout.name} needs ({num_joints}, 3)")
                    box = np.asarray(pd.get("box", [0, 0, 0, 0]), dtype=np.float32)
                    if box.shape != (4,):
                        raise bad(f"frame {fd['index']}: box of shape {box.shape}, needs 4 numbers")
                    if not (np.isfinite(kp).all() and np.isfinite(box).all()):
                        raise bad(f"frame {fd['index']}: keypoints or box contain NaN or infinity")
                    people.append(Person(int(pd["track_id"]), float(pd.get("score", 1.0)), box, kp))
                frames.append(PoseFrame(int(fd["index"]), float(fd["time_s"]), people))
            width, height, fps = int(d["width"]), int(d["height"]), float(d["fps"])
        except ActionpipeError as exc:
            if exc.path is None:
                raise bad(exc.problem) from None
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise bad(f"{type(exc).__name__}: {exc}") from None
        if width <= 0 or height <= 0 or not math.isfinite(fps) or fps <= 0:
            raise bad(f"width/height/fps must be positive (got {width}, {height}, {fps})")
        times = [f.time_s for f in frames]
        if any(not math.isfinite(t) for t in times) or any(b <= a for a, b in zip(times, times[1:])):
            raise bad("frame times (time_s) must increase from frame to frame")
        if not all(isinstance(d.get(k) or {}, dict) for k in ("source", "backend")):
            raise bad("\"source\" and \"backend\" must be objects")
        return cls(layout.name, width, height, fps, frames, d.get("source") or {},
                   d.get("backend") or {}, d.get("weights_sha256"))

    @classmethod
    def load(cls, path: str | Path) -> "PoseFile":
        """Read and validate a pose file."""
        return cls.from_dict(read_json(path, "pose file"), path)
