"""The ``extract`` stage: a video to a folder of numbered images plus a ``frames.json`` manifest.

Manifest format (JSON, ``format_version`` 1)::

    {"format": "actionpipe.frames", "format_version": 1,
     "source": {"path": "demo.mp4", "fps": 30.0, "width": 1768, "height": 994, "frame_count": 230},
     "fps": 10.0, "width": 640, "height": 360,        # of the images written
     "image_format": "jpg",
     "frames": [{"index": 0, "source_index": 0, "time_s": 0.0, "file": "000001.jpg"}, ...]}

``index`` counts the written frames from 0 (files are numbered from 1, as ffmpeg's ``%06d``
does); ``source_index`` is the frame number in the source video and ``time_s`` its time there.
The folder appears complete or not at all: it is written beside its final name and renamed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2

from actionpipe.core import console, fields
from actionpipe.core.errors import ActionpipeError, UsageError
from actionpipe.core.fileio import atomic_dir, check_keys, read_json, write_json
from actionpipe.video.reader import Frame, VideoInfo, expected_frame_count, output_fps, output_size, probe, read_frames

FORMAT = "actionpipe.frames"
FORMAT_VERSION = 1
MANIFEST_NAME = "frames.json"
IMAGE_FORMATS = ("jpg", "png")
DEFAULT_IMAGE_FORMAT = "jpg"
DEFAULT_JPEG_QUALITY = 95
_KEYS = ("format", "format_version", "source", "fps", "width", "height", "image_format", "frames")
_SOURCE_KEYS = ("path", "fps", "width", "height", "frame_count")
_FRAME_KEYS = ("index", "source_index", "time_s", "file")


@dataclass
class FrameRecord:
    index: int          # written frame number, from 0
    source_index: int   # frame number in the source video
    time_s: float       # time in the source video
    file: str           # image file name inside the frames folder


@dataclass
class FramesManifest:
    """What ``extract`` wrote: the source video's properties and one record per image."""

    source: VideoInfo
    fps: float
    width: int
    height: int
    image_format: str
    frames: list[FrameRecord]

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "source": self.source.to_dict(),
                "fps": self.fps, "width": self.width, "height": self.height,
                "image_format": self.image_format,
                "frames": [dict(asdict(r), time_s=round(r.time_s, 6)) for r in self.frames]}

    @classmethod
    def from_dict(cls, d: Any, path: str | Path | None = None) -> "FramesManifest":
        """Validate and build; every problem is one ActionpipeError naming ``path``."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ActionpipeError(path, f"not a frames manifest: missing \"format\": \"{FORMAT}\"")
        if d.get("format_version") != FORMAT_VERSION:
            raise ActionpipeError(path, f"frames manifest format_version {d.get('format_version')!r} "
                                        f"is not supported (expected {FORMAT_VERSION})")
        check_keys(d, _KEYS, path, "frames manifest")
        try:
            src = fields.need(d, "source")
            check_keys(src, _SOURCE_KEYS, None, "source")
            source = VideoInfo(str(fields.need(src, "path", "source")),
                               fields.number(fields.need(src, "fps", "source"), "source.fps"),
                               *(fields.whole(fields.need(src, k, "source"), f"source.{k}")
                                 for k in ("width", "height", "frame_count")))
            frames = []
            for i, r in enumerate(fields.items(fields.need(d, "frames"), "frames")):
                check_keys(r, _FRAME_KEYS, None, "frame")
                index, source_index = (fields.whole(fields.need(r, k, f"frame {i}"), f"frame {i}: {k}")
                                       for k in ("index", "source_index"))
                frames.append(FrameRecord(index, source_index,
                                          fields.number(fields.need(r, "time_s", f"frame {i}"), f"frame {i}: time_s"),
                                          _image_name(fields.need(r, "file", f"frame {i}"), path)))
            manifest = cls(source, fields.number(fields.need(d, "fps"), "fps"),
                           fields.whole(fields.need(d, "width"), "width"),
                           fields.whole(fields.need(d, "height"), "height"),
                           fields.text(fields.need(d, "image_format"), "image_format"), frames)
        except ActionpipeError as exc:
            if exc.path is not None:
                raise
            raise ActionpipeError(path, f"not a valid frames manifest: {exc.problem}") from None
        if not frames:
            raise ActionpipeError(path, "the frames manifest lists no frames")
        if min(source.width, source.height, manifest.width, manifest.height) <= 0 or not (
                0 < source.fps < float("inf") and 0 < manifest.fps < float("inf")):
            raise ActionpipeError(path, "frames manifest: sizes and rates must be positive")
        return manifest

    @classmethod
    def load(cls, directory: str | Path) -> "FramesManifest":
        """Read ``DIR/frames.json``; a folder without one is a one-line error."""
        directory = Path(directory)
        if not directory.is_dir():
            raise ActionpipeError(directory, "frames folder not found")
        path = directory / MANIFEST_NAME
        if not path.is_file():
            raise ActionpipeError(directory, f"no {MANIFEST_NAME} in this folder "
                                             "(not written by `actionpipe extract`?)")
        return cls.from_dict(read_json(path, "frames manifest"), path)


def _image_name(name: Any, path: str | Path | None) -> str:
    """A frame's file name: a plain name inside the frames folder, never a path out of it."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ActionpipeError(path, f"frame file {name!r} is not a file name inside the frames folder")
    return name


def read_frames_dir(directory: str | Path) -> tuple[FramesManifest, Iterator[Frame]]:
    """Open a folder written by ``extract``: its manifest and a lazy iterator over its frames."""
    directory = Path(directory)
    manifest = FramesManifest.load(directory)

    def frames() -> Iterator[Frame]:
        for r in manifest.frames:
            image = cv2.imread(str(directory / r.file), cv2.IMREAD_COLOR)
            if image is None:
                raise ActionpipeError(directory / r.file, "frame image missing or unreadable")
            yield Frame(r.index, r.source_index, r.time_s, image)

    return manifest, frames()


def _image_params(image_format: str, quality: int | None) -> list[int]:
    if image_format not in IMAGE_FORMATS:
        raise UsageError(None, f"--format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    if image_format == "png":
        if quality is not None:
            raise UsageError(None, "--quality applies to jpg only (png is lossless)")
        return [cv2.IMWRITE_PNG_COMPRESSION, 3]
    quality = DEFAULT_JPEG_QUALITY if quality is None else quality
    if not 1 <= quality <= 100:
        raise UsageError(None, f"--quality must be between 1 and 100, got {quality}")
    return [cv2.IMWRITE_JPEG_QUALITY, quality]


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a folder that holds anything but an earlier ``extract`` output."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ActionpipeError(out_dir, "exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MANIFEST_NAME).is_file():
        raise ActionpipeError(out_dir, "folder exists, is not empty and is not an extract output; "
                                       "refusing to replace it")


def extract_frames(video: str | Path, out_dir: str | Path, *, fps: float | None = None,
                   max_side: int | None = None, start: float = 0.0, end: float | None = None,
                   image_format: str = DEFAULT_IMAGE_FORMAT, quality: int | None = None) -> FramesManifest:
    """Decode ``video`` sequentially and write its (resampled, resized) frames and manifest."""
    out_dir = Path(out_dir)
    params = _image_params(image_format, quality)
    if max_side is not None and max_side <= 0:
        raise UsageError(None, f"--max-side must be positive, got {max_side}")
    if start < 0:
        raise UsageError(None, f"--start must not be negative, got {start}")
    info = probe(video)
    _check_replaceable(out_dir)
    width, height = output_size(info.width, info.height, max_side)
    records: list[FrameRecord] = []
    with atomic_dir(out_dir) as tmp, console.progress() as bar:
        task = bar.add_task(f"extract {Path(video).name}",
                            total=expected_frame_count(info, fps, start, end) or None)
        for frame in read_frames(video, fps=fps, max_side=max_side, start=start, end=end, info=info):
            name = f"{frame.index + 1:06d}.{image_format}"
            if not cv2.imwrite(str(tmp / name), frame.image, params):
                raise ActionpipeError(out_dir, f"cannot write {name} (disk full?)")
            records.append(FrameRecord(frame.index, frame.source_index, frame.time_s, name))
            bar.advance(task)
        manifest = FramesManifest(info, output_fps(info, fps), width, height, image_format, records)
        write_json(tmp / MANIFEST_NAME, manifest.to_dict(), indent=1)
    return manifest
