"""Writing video frames to a file that plays everywhere: H.264 through PyAV's FFmpeg, or mp4v.

:func:`open_video_writer` gives a writer that takes BGR frames one at a time (memory stays a few
frames whatever the length):

* **H.264** (``libx264``, ``yuv420p``, MP4 with ``+faststart``: what browsers, chat apps and phones
  play) through PyAV, whose wheel ships FFmpeg with libx264. With ``audio_from``, that video's
  first audio track is copied packet for packet when MP4 can hold its codec (AAC, MP3, Opus, ...),
  else re-encoded to AAC; audio and video packets are interleaved as they are written.
* **MPEG-4 Part 2** (``mp4v``) through OpenCV, only when PyAV or its H.264 encoder is missing
  (said once per process on stderr): VLC and mpv play it, browsers do not; no audio.

An odd width or height (which ``yuv420p`` cannot hold) is padded with one black column or row.
"""
from __future__ import annotations

import contextlib
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from actionpipe.core import console
from actionpipe.core.errors import ActionpipeError

H264, MP4V = "h264", "mp4v"
CODECS = (H264, MP4V)  # preferred first
# x264: "superfast" encoded 1768x994 at 1.6x "veryfast"'s rate (0.7x "ultrafast"'s) at half
# "ultrafast"'s size; it buffers no lookahead frames, so memory stays flat.
X264_OPTIONS = {"crf": "20", "preset": "superfast"}
# Audio codecs an MP4 file carries and browsers play: copied as they are; anything else becomes AAC.
MP4_AUDIO = {"aac", "mp3", "opus", "alac", "flac", "ac3", "eac3"}
_said: set[str] = set()  # messages already given in this process


def _ffmpeg_problem(exc: Exception) -> str:
    """What an FFmpeg error says, without the file name (the temporary one: the caller names the output)."""
    return getattr(exc, "strerror", None) or str(exc)


def _say_once(message: str) -> None:
    if message not in _said:
        _said.add(message)
        console.warn(message)


def h264_available() -> bool:
    """Whether PyAV is installed with an H.264 encoder (libx264)."""
    try:
        import av
        av.codec.Codec("libx264", "w")
    except Exception:  # ImportError, or av's UnknownCodecError: no encoder of that name
        return False
    return True


class Mp4vWriter:
    """MPEG-4 Part 2 through OpenCV: the fallback when no H.264 encoder is installed; no audio."""

    codec, audio_codec = MP4V, None

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        with _stderr_silenced():
            self.writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*MP4V), fps, size)
        if not self.writer.isOpened():
            self.writer.release()
            raise ActionpipeError(path, "cannot write video: no H.264 encoder (PyAV) and OpenCV cannot encode mp4v")

    def write(self, image: np.ndarray) -> None:
        self.writer.write(image)

    def close(self) -> None:
        self.writer.release()

    abort = close


class H264Writer:
    """H.264 (libx264, yuv420p, +faststart) through PyAV, with ``audio_from``'s audio track."""

    codec = H264

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], audio_from: str | Path | None = None):
        import av

        self.path, self.frames = Path(path), 0
        # 29.97 is 30000/1001 exactly, as the source's frame durations are.
        self.rate = Fraction(fps).limit_denominator(1001)
        self.size = size
        self.padded = (size[0] + size[0] % 2, size[1] + size[1] % 2)
        suffix = self.path.suffix.lower()
        options = {"movflags": "+faststart"} if suffix in (".mp4", ".m4v", ".mov", "") else {}
        try:
            self.out = av.open(str(path), "w", format="mp4" if not suffix else None, options=options)
            self.video = self.out.add_stream("libx264", rate=self.rate, options=dict(X264_OPTIONS))
            self.video.width, self.video.height = self.padded
            self.video.pix_fmt = "yuv420p"
            self.video.time_base = 1 / self.rate
            self.audio, self._source, self._packets, self._decoder = None, None, iter(()), None
            if audio_from is not None:
                self._open_audio(audio_from)
        except av.FFmpegError as exc:
            self._close_quietly()
            raise ActionpipeError(path, f"cannot write video: {_ffmpeg_problem(exc)}") from None

    def _open_audio(self, video: str | Path) -> None:
        """The source's first audio track: copied when MP4 carries its codec, else re-encoded to AAC."""
        import av

        try:
            self._source = av.open(str(video))
        except av.FFmpegError:
            return  # OpenCV read it, FFmpeg here cannot: the frames still get written, without sound
        if not self._source.streams.audio:
            return
        track = self._source.streams.audio[0]
        if track.codec_context.name in MP4_AUDIO:
            self.audio = self.out.add_stream_from_template(track)
        else:
            self.audio = self.out.add_stream("aac", rate=track.codec_context.sample_rate or 48000)
            self._decoder = track
        self._packets = self._source.demux(track)
        # Sound keeps its place relative to the first video frame, which becomes time 0 here
        # (audio before it, such as an AAC encoder's priming, keeps its negative time).
        first = self._source.streams.video[0] if self._source.streams.video else None
        self._offset = (first.start_time * first.time_base if first is not None and first.start_time is not None
                        else Fraction(0))

    @property
    def audio_codec(self) -> str | None:
        return None if self.audio is None else self.audio.codec_context.name

    def write(self, image: np.ndarray) -> None:
        import av

        if image.shape[1::-1] != self.padded:
            image = cv2.copyMakeBorder(image, 0, self.padded[1] - image.shape[0], 0, self.padded[0] - image.shape[1],
                                       cv2.BORDER_CONSTANT)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = self.frames
        try:
            self.out.mux(self.video.encode(frame))
            self.frames += 1
            self._audio_until(self.frames / self.rate)
        except av.FFmpegError as exc:
            raise ActionpipeError(self.path, f"cannot write video: {_ffmpeg_problem(exc)}") from None

    def _audio_until(self, time_s: Fraction | None) -> None:
        """Mux the source's audio up to ``time_s`` (None: all the rest), so the streams interleave."""
        if self.audio is None:
            return
        for packet in self._packets:
            if packet.pts is None:  # the demuxer's empty flush packet
                continue
            t = packet.pts * packet.time_base - self._offset
            self._mux_audio(packet)
            if time_s is not None and t >= time_s:
                return
        if time_s is None and self._decoder is not None:
            self.out.mux(self.audio.encode(None))

    def _mux_audio(self, packet) -> None:
        shift = round(self._offset / packet.time_base)
        if self._decoder is None:
            packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
            packet.stream = self.audio
            self.out.mux(packet)
            return
        for frame in packet.decode():
            frame.pts = None  # the encoder numbers the re-sampled frames itself
            self.out.mux(self.audio.encode(frame))

    def close(self) -> None:
        import av

        try:
            self.out.mux(self.video.encode(None))
            self._audio_until(None)
            self.out.close()
        except av.FFmpegError as exc:
            raise ActionpipeError(self.path, f"cannot write video: {_ffmpeg_problem(exc)}") from None
        finally:
            self._close_quietly()

    def abort(self) -> None:
        """Stop without finishing the file (the caller discards it)."""
        self._close_quietly()

    def _close_quietly(self) -> None:
        for container in (getattr(self, "out", None), getattr(self, "_source", None)):
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()


def open_video_writer(path: str | Path, fps: float, size: tuple[int, int],
                      audio_from: str | Path | None = None) -> H264Writer | Mp4vWriter:
    """A writer of BGR frames of ``size`` at ``fps``: H.264 with ``audio_from``'s sound when PyAV's
    libx264 is installed, else mp4v through OpenCV (said once). ``.codec`` names which."""
    if h264_available():
        if size[0] % 2 or size[1] % 2:
            _say_once(f"{size[0]}x{size[1]} video padded to {size[0] + size[0] % 2}x{size[1] + size[1] % 2} "
                      "with a black edge: H.264 for browsers (yuv420p) needs an even width and height")
        return H264Writer(path, fps, size, audio_from)
    _say_once("no H.264 encoder (the `av` package with libx264 is not installed): writing MPEG-4 Part 2 "
              "(mp4v), which browsers do not play")
    return Mp4vWriter(path, fps, size)


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Silence fd 2: OpenCV's FFmpeg prints several lines while an encoder is tried."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
