"""Sequential video decoding with timestamp-based fps resampling and resizing.

Frames are decoded in order with ``grab()`` and only the kept ones are ``retrieve()``-d: a seek per
frame is 30–40× slower with OpenCV's FFmpeg backend. Memory stays bounded by one frame whatever
the video's length.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from . import console
from .errors import ActionpipeError

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}


@dataclass
class VideoInfo:
    path: str
    fps: float
    width: int
    height: int
    frame_count: int  # as the container reports it; decoding may yield fewer

    def to_dict(self) -> dict:
        return {"path": self.path, "fps": self.fps, "width": self.width, "height": self.height,
                "frame_count": self.frame_count}


@dataclass
class Frame:
    index: int         # output frame number, from 0
    source_index: int  # frame number in the source video
    time_s: float      # source_index / source fps
    image: np.ndarray  # BGR, uint8, possibly resized


def probe(path: str | Path) -> VideoInfo:
    """Open a video and read its properties, or raise a one-line error naming the file."""
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            raise ActionpipeError(path, f"file not found (a dangling symbolic link to {os.readlink(path)})")
        raise ActionpipeError(path, "file not found")
    if path.is_dir():
        raise ActionpipeError(path, "is a directory, not a video")
    if not os.access(path, os.R_OK):
        raise ActionpipeError(path, "cannot read: permission denied")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise ActionpipeError(path, "not a readable video (OpenCV could not open it)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        cap.release()
    if width <= 0 or height <= 0:
        raise ActionpipeError(path, "not a readable video (no picture size)")
    if not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 30.0  # some containers carry no rate; 30 is what phones and web video mostly use
    return VideoInfo(str(path), float(fps), width, height, max(count, 0))


def output_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Size after shrinking so the longer side is at most ``max_side`` (never enlarged)."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def output_fps(info: VideoInfo, fps: float | None) -> float:
    """The rate ``read_frames`` yields: ``fps`` capped at the source's (frames are never duplicated)."""
    return min(fps, info.fps) if fps else info.fps


def expected_frame_count(info: VideoInfo, fps: float | None = None, start: float = 0.0,
                         end: float | None = None) -> int:
    """How many frames ``read_frames`` should yield, from the container's frame count (for progress)."""
    duration = info.frame_count / info.fps
    stop = min(end, duration) if end is not None else duration
    return max(0, math.ceil((stop - start) * output_fps(info, fps) - 1e-6))


def read_frames(path: str | Path, fps: float | None = None, max_side: int | None = None,
                start: float = 0.0, end: float | None = None, info: VideoInfo | None = None) -> Iterator[Frame]:
    """Yield frames of a video, resampled to ``fps`` by timestamp and shrunk to ``max_side``.

    Output frame k is the source frame nearest to ``start + k / fps``. A rate above the source's
    keeps every source frame (frames are never duplicated). Raises ActionpipeError when the video
    yields no frame at all in the requested range. ``info``: the video's :func:`probe`, when the
    caller already has it (saves opening the file twice).
    """
    info = info or probe(path)
    if fps is not None and fps <= 0:
        raise ActionpipeError(path, f"--fps must be positive, got {fps}")
    if end is not None and end <= start:
        raise ActionpipeError(path, f"--end ({end}) must be after --start ({start})")
    step = 1.0 / output_fps(info, fps)
    size = output_size(info.width, info.height, max_side)
    cap = cv2.VideoCapture(str(path))
    emitted = 0
    try:
        source_index = -1
        while True:
            target_time = start + emitted * step
            if end is not None and target_time >= end - 1e-9:
                break
            wanted = max(0, round(target_time * info.fps))
            if not cap.grab():
                # A container that promised more frames than decode is damaged (e.g. truncated):
                # keep what decoded, but say so rather than silently return a shorter clip.
                if emitted and source_index + 1 < info.frame_count - 1:
                    console.warn(f"{path}: decoding stopped at frame {source_index + 1} of "
                                 f"{info.frame_count} (truncated or corrupt video?)")
                break
            source_index += 1
            if source_index < wanted:
                continue
            ok, image = cap.retrieve()
            if not ok or image is None:
                break
            if size != (info.width, info.height):
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            yield Frame(emitted, source_index, source_index / info.fps, image)
            emitted += 1
    finally:
        cap.release()
    if emitted == 0:
        duration = info.frame_count / info.fps
        if start and info.frame_count and start >= duration:
            raise ActionpipeError(path, f"nothing to decode from {start:g} s: the video is {duration:.1f} s long")
        where = "" if (start == 0 and end is None) else f" from {start:g} s" + (f" to {end:g} s" if end else "")
        raise ActionpipeError(path, f"no decodable frames{where} (empty, truncated or corrupt video?)")


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES


def expand_videos(inputs: list[str | Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Expand folders (recursively, symlinked folders once) to the video files in them, sorted;
    files pass through. Returns the videos and the folders that could not be read, with why.

    A dangling symlink with a video's name is kept: it then fails as a missing video, so a batch
    never drops it without a word.
    """
    videos: list[Path] = []
    unreadable: list[tuple[Path, str]] = []
    seen: set[str] = set()
    for item in map(Path, inputs):
        if not item.is_dir():
            videos.append(item)
            continue
        found = []
        for root, dirs, files in os.walk(item, followlinks=True,
                                         onerror=lambda e: unreadable.append((Path(e.filename), e.strerror))):
            real = os.path.realpath(root)
            if real in seen:  # a symlink loop, or a folder reached twice
                dirs.clear()
                continue
            seen.add(real)
            for name in files:
                p = Path(root, name)
                if is_video_file(p) or (p.suffix.lower() in VIDEO_SUFFIXES and p.is_symlink() and not p.exists()):
                    found.append(p)
        videos.extend(sorted(found))
    return videos, unreadable
