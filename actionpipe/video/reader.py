"""Sequential video decoding with timestamp-based fps resampling and resizing.

Frames are decoded in order and only the kept ones are converted to BGR: a seek per frame is
30–40× slower. Two decoders (:data:`DECODERS`): OpenCV's FFmpeg backend (the default) and PyAV
(frame-threaded), which hands a source it cannot open or decode from its first frame, or a video
with a rotation in its metadata (OpenCV turns those upright), to OpenCV. Both give the same frames,
pixel for pixel, on 32 of the 33 development clips (``benchmarks/bench_decode.py --check``); the
33rd is tagged BT.2020 and PyAV's colours differ (26 grey levels on average). PyAV is no cheaper
in CPU time unless it also shrinks the frames in its conversion pass (``scale_in_decoder``), which
changes pixels slightly. Memory stays bounded by one frame whatever
the video's length.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from actionpipe.core import console
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import is_number

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}


@dataclass
class VideoInfo:
    path: str
    fps: float
    width: int
    height: int
    frame_count: int  # as the container reports it; decoding may yield fewer
    decoded_frames: int | None = None  # set by read_frames when decoding stopped before frame_count

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


DECODERS = ("opencv", "pyav")  # pyav: PyAV, OpenCV where PyAV cannot (see the module's docstring)
DEFAULT_DECODER = "opencv"      # PyAV measured no faster with identical frames (README, Performance)

# A decoded frame, not yet converted: called with the output size (None: the video's own), it
# returns the BGR image (None if the frame cannot be converted).
DecodedFrame = Callable[[tuple[int, int] | None], np.ndarray | None]


def _opencv_frames(path: str | Path) -> Iterator[DecodedFrame]:
    """Every frame of ``path`` through OpenCV: ``grab()`` each, ``retrieve()`` only when asked."""
    cap = cv2.VideoCapture(str(path))

    def convert(size: tuple[int, int] | None) -> np.ndarray | None:
        ok, image = cap.retrieve()
        if not ok or image is None or size is None:
            return image if ok else None
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)

    try:
        while cap.grab():
            yield convert
    finally:
        cap.release()


def _pyav_frames(path: str | Path, info: VideoInfo, scale_in_decoder: bool) -> Iterator[DecodedFrame]:
    """Every frame of ``path`` through PyAV; ends early (without raising) when PyAV cannot open or
    decode it, the video carries a rotation or its frames are not ``info``'s size, so that the
    caller can fall back to OpenCV."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError):
        return
    with container:
        if not container.streams.video:
            return
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threads too: 1.x-2× faster on H.264 here

        def convert(frame, size: tuple[int, int] | None) -> np.ndarray:
            if scale_in_decoder and size is not None:
                # swscale converts and shrinks in one pass, at the output size
                image = frame.to_ndarray(format="bgr24", width=size[0], height=size[1], interpolation="AREA")
            else:
                # the same conversion as OpenCV's retrieve(), then the same resize: identical frames
                image = frame.to_ndarray(format="bgr24")
                if size is not None:
                    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            return np.ascontiguousarray(image)  # rows of to_ndarray's arrays may be padded

        try:
            for frame in container.decode(stream):
                if frame.rotation or (frame.width, frame.height) != (info.width, info.height):
                    return
                yield lambda size, frame=frame: convert(frame, size)
        except av.FFmpegError:
            return  # a damaged stream ends here, as OpenCV's grab() stops


def _decoded_frames(path: str | Path, info: VideoInfo, decoder: str,
                    scale_in_decoder: bool) -> Iterator[DecodedFrame]:
    """Every frame of ``path`` in order: PyAV's (``decoder`` pyav) where it can, else OpenCV's."""
    if decoder == "pyav":
        frames = _pyav_frames(path, info, scale_in_decoder)
        try:
            first = next(frames, None)
            if first is not None:
                yield first
                yield from frames
                return
        finally:
            frames.close()
    yield from _opencv_frames(path)


def read_frames(path: str | Path, fps: float | None = None, max_side: int | None = None,
                start: float = 0.0, end: float | None = None, info: VideoInfo | None = None,
                decoder: str = DEFAULT_DECODER, scale_in_decoder: bool = False) -> Iterator[Frame]:
    """Yield frames of a video, resampled to ``fps`` by timestamp and shrunk to ``max_side``.

    Output frame k is the source frame nearest to ``start + k / fps``. A rate above the source's
    keeps every source frame (frames are never duplicated). Raises ActionpipeError when the video
    yields no frame at all in the requested range. ``info``: the video's :func:`probe`, when the
    caller already has it (saves opening the file twice). ``decoder``: one of :data:`DECODERS`.
    ``scale_in_decoder`` (PyAV only): shrink while converting to BGR (swscale's area filter) instead of
    with OpenCV's ``INTER_AREA`` after it: less work where the scale is not a whole number, but
    pixels differ from OpenCV's by about one grey level on average.
    """
    info = info or probe(path)
    if fps is not None and not (is_number(fps) and fps > 0):
        raise ActionpipeError(path, f"--fps must be a positive number, got {fps}")
    if not is_number(start) or (end is not None and not is_number(end)):
        raise ActionpipeError(path, f"--start and --end must be numbers, got {start} and {end}")
    if end is not None and end <= start:
        raise ActionpipeError(path, f"--end ({end}) must be after --start ({start})")
    if decoder not in DECODERS:
        raise ActionpipeError(path, f"unknown decoder {decoder!r} (expected one of {', '.join(DECODERS)})")
    step = 1.0 / output_fps(info, fps)
    size = output_size(info.width, info.height, max_side)
    size = None if size == (info.width, info.height) else size
    decoded = _decoded_frames(path, info, decoder, scale_in_decoder)
    emitted = 0
    try:
        source_index = -1
        while True:
            target_time = start + emitted * step
            if end is not None and target_time >= end - 1e-9:
                break
            wanted = max(0, round(target_time * info.fps))
            convert = next(decoded, None)
            if convert is None:
                # A container that promised more frames than decode is damaged (e.g. truncated):
                # keep what decoded, but say so rather than silently return a shorter clip.
                if emitted and source_index + 1 < info.frame_count - 1:
                    info.decoded_frames = source_index + 1  # the pose file says so too (classify: "truncated")
                    console.warn(f"{path}: decoding stopped at frame {source_index + 1} of "
                                 f"{info.frame_count} (truncated or corrupt video?)")
                break
            source_index += 1
            if source_index < wanted:
                continue
            image = convert(size)
            if image is None:
                break
            yield Frame(emitted, source_index, source_index / info.fps, image)
            emitted += 1
    finally:
        decoded.close()
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
