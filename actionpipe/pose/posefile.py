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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actionpipe.core import fields
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
            layout = get_layout(fields.text(fields.need(d, "layout"), "layout"))
            frames = [_frame(fd, i, layout) for i, fd in enumerate(fields.items(fields.need(d, "frames"), "frames"))]
            width = fields.whole(fields.need(d, "width"), "width", 1)
            height = fields.whole(fields.need(d, "height"), "height", 1)
            fps = fields.number(fields.need(d, "fps"), "fps", positive=True)
        except ActionpipeError as exc:
            if exc.path is None:
                raise bad(exc.problem) from None
            raise
        indices, times = [f.index for f in frames], [f.time_s for f in frames]
        if any(b <= a for a, b in zip(indices, indices[1:])):
            raise bad("frame indices must increase from frame to frame (one entry per frame, none repeated)")
        if any(b <= a for a, b in zip(times, times[1:])):
            raise bad("frame times (time_s) must increase from frame to frame")
        if not all(isinstance(d.get(k) or {}, dict) for k in ("source", "backend")):
            raise bad("\"source\" and \"backend\" must be objects")
        return cls(layout.name, width, height, fps, frames, d.get("source") or {},
                   d.get("backend") or {}, d.get("weights_sha256"))

    @classmethod
    def load(cls, path: str | Path) -> "PoseFile":
        """Read and validate a pose file."""
        return cls.from_dict(read_json(path, "pose file"), path)


def _numbers(value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """A float32 array of ``shape`` from a JSON list of finite numbers (one that float32 holds)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape:
        got = "" if array is None else f", got shape {array.shape}"
        raise ActionpipeError(None, f"{what} must be {' x '.join(map(str, shape))} numbers{got}")
    with np.errstate(over="ignore"):
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ActionpipeError(None, f"{what} contain NaN or infinity (or numbers beyond float32)")
    return array


def _frame(fd: Any, i: int, layout) -> PoseFrame:
    """Frame ``i`` of a pose file's ``frames``, checked (see :meth:`PoseFile.from_dict`)."""
    check_keys(fd, _FRAME_KEYS, None, f"frame {i}")
    index = fields.whole(fields.need(fd, "index", f"frame {i}"), f"frame {i}: index", 0)
    where = f"frame {index}"
    time_s = fields.number(fields.need(fd, "time_s", where), f"{where}: time_s")
    people = []
    for pd in fields.items(fields.need(fd, "people", where), f"{where}: people"):
        check_keys(pd, _PERSON_KEYS, None, f"{where}: person")
        track = fields.whole(fields.need(pd, "track_id", f"{where}: person"), f"{where}: track_id", 0)
        kp = _numbers(fields.need(pd, "keypoints", f"{where}: track {track}"), (layout.num_joints, 3),
                      f"{where}: track {track}: keypoints (layout {layout.name})")
        if ((kp[:, 2] < 0) | (kp[:, 2] > 1)).any():
            raise ActionpipeError(None, f"{where}: track {track}: keypoint confidences must be between 0 and 1")
        box = _numbers(pd.get("box", [0, 0, 0, 0]), (4,), f"{where}: track {track}: box")
        score = fields.number(pd.get("score", 1.0), f"{where}: track {track}: score")
        people.append(Person(track, score, box, kp))
    return PoseFrame(index, time_s, people)
