"""``watch``: classify a camera, a stream or a video file as it plays, with causal sliding windows.

    from actionpipe import ActionModel

    for item in ActionModel().watch("rtsp://camera/stream", per_person=True):
        print(item.to_dict())          # WindowResult every stride, Event when a run of one label ends

Frames come from :class:`~actionpipe.video.stream.FrameReader` (a bounded queue that drops the oldest
frame when the models fall behind), at the model's rate. Each frame goes through the pose model
and the tracker as soon as it arrives (one frame per call: ``classify``'s pose code with batch 1).
Every ``stride`` seconds the last ``window`` seconds of tracked people are classified by
:meth:`~actionpipe.pipeline.classify.Classifier.classify_pose`, the function ``classify`` runs per video:
the same packing, statuses (``no_person``, ``too_short``, ``low_confidence``, ``unknown``),
per-person results and ST-GCN. Windows are counted in frames at the model's rate exactly as
``classify --window`` counts them (frames 0..W-1, then every S frames, and at the end one window
that ends with the last frame), so on a file, with nothing dropped, the windows are the same.
What differs: each window is packed on its own (people ranked and body-normalised within the
window), where ``classify`` packs the whole video once; it cannot see the future. Frames dropped
inside a window are filled in by :func:`~actionpipe.pipeline.speed.interpolate_pose` (as ``--speed fast``
fills the frames it skips), so the model sees motion at its own rate.

Consecutive windows with the same label (or the same status, when there is no label) merge into
an :class:`Event`, emitted when it closes; boundaries between events fall in the middle of two
windows' overlap, as timeline segments do (:func:`~actionpipe.outputs.timeline.merge_segments`).
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np

from actionpipe.core import console
from actionpipe.pipeline.classify import DEFAULT_MIN_TRACK_S
from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.posefile import PoseFile, PoseFrame
from actionpipe.outputs.report import DEFAULT_TOP_K
from actionpipe.pipeline.speed import interpolate_pose
from actionpipe.video.stream import DEFAULT_RECONNECT_S, FrameReader
from actionpipe.outputs.timeline import merge_segments

_KEPT_LATENCIES = 100_000  # enough for days of windows; bounded so memory stays flat


@dataclass
class WindowResult:
    """One window's answer: ``status`` (``ok`` or why there is no label), ``label``/``probability``,
    ``top`` [(class, p)], ``people`` (per track in the window: ``track_id``, last ``box``, and with
    ``per_person`` its own ``label``/``probability``/``top``), ``latency_s`` from the capture of the
    window's last frame to this result. ``result``: the full :class:`~actionpipe.pipeline.classify.VideoResult`."""

    start_s: float
    end_s: float
    status: str
    label: str | None
    probability: float | None
    top: list[tuple[str, float]]
    people: list[dict[str, Any]]
    frames: int
    latency_s: float
    result: Any = field(repr=False, default=None)
    k: int = field(repr=False, default=DEFAULT_TOP_K)

    def to_dict(self) -> dict[str, Any]:
        """The JSON line ``actionpipe watch`` prints for it."""
        d = self.result.to_dict(self.k)
        answer = {key: d[key] for key in ("label", "probability", "closest", "top", "open_set") if key in d}
        return {"type": "window", "time": round(self.end_s, 3), "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3), "status": self.status, "label": None, "probability": None, "top": [],
                **answer,
                "people": self.people, "frames": self.frames, "latency_s": round(self.latency_s, 3)}


@dataclass
class Event:
    """A run of consecutive windows with one label (or one status): ``start_s``–``end_s``,
    ``probability`` the label's mean over its windows; ``track_id`` for a person's own events."""

    start_s: float
    end_s: float
    status: str
    label: str | None
    probability: float | None
    windows: int
    track_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"type": "event", "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
             "status": self.status, "label": self.label,
             "probability": None if self.probability is None else round(self.probability, 6), "windows": self.windows}
        return d if self.track_id is None else {**d, "track_id": self.track_id}


class _EventMerger:
    """Windows in, events out when they close: one per run of equal (status, label)."""

    def __init__(self, track_id: int | None = None):
        self.track_id = track_id
        self.before: tuple[float, float] | None = None  # the previous event's last window
        self.open: list[tuple[float, float, str, str | None, float | None]] = []

    def add(self, start: float, end: float, status: str, label: str | None, probability: float | None) -> Event | None:
        closed = None
        if self.open and self.open[-1][2:4] != (status, label):
            closed = self._close((start, end))
        self.open.append((start, end, status, label, probability))
        return closed

    def close(self) -> Event | None:
        """Close the open event (the stream ended, or the person left); the next one starts afresh."""
        event = self._close(None) if self.open else None
        self.before = None
        return event

    def _close(self, following: tuple[float, float] | None) -> Event:
        # The timeline's rule for where two runs meet: windows of the previous event, this one and
        # the next as three "classes" for merge_segments.
        groups = [[self.before] if self.before else [], [w[:2] for w in self.open], [following] if following else []]
        times = [w for group in groups for w in group]
        labels = np.eye(3)[[g for g, group in enumerate(groups) for _ in group]]
        this = [s for s in merge_segments([t[0] for t in times], [t[1] for t in times], labels, ["0", "1", "2"])
                if s.label == "1"][0]
        _, _, status, label, _ = self.open[0]
        probability = float(np.mean([w[4] for w in self.open])) if label is not None else None
        event = Event(this.start_s, this.end_s, status, label, probability, len(self.open), self.track_id)
        self.before, self.open = self.open[-1][:2], []
        return event


class Watch:
    """A live source being classified; iterate it for :class:`WindowResult` and :class:`Event`
    objects as they happen (``events_only``: events only). Made by :meth:`ActionModel.watch
    <actionpipe.api.ActionModel.watch>`; the source is opened here (a bad one raises now).

    ``window``/``stride`` (seconds; default the model's own window and stride, or half the
    window), ``per_person`` (each track also classified on its own, tracks seen ``min_track_s``
    in the window), ``k`` classes in ``top``, ``realtime`` (a file at its own pace, dropping
    frames when behind; else as fast as possible, nothing dropped), ``duration`` (stop after this
    many seconds of video), ``reconnect_s`` (how long a dropped stream is retried), ``show`` (an
    OpenCV window, when there is a display), ``save`` (record the annotated frames to a video file).
    :meth:`stop` ends it cleanly from anywhere (a signal handler, another thread); :meth:`summary`
    tells what happened.
    """

    def __init__(self, model, source: str | int | os.PathLike, *, window: float | None = None,
                 stride: float | None = None, per_person: bool = False, min_track_s: float = DEFAULT_MIN_TRACK_S,
                 k: int = DEFAULT_TOP_K, events_only: bool = False, realtime: bool = False,
                 duration: float | None = None, reconnect_s: float = DEFAULT_RECONNECT_S, show: bool = False,
                 save: str | os.PathLike | None = None):
        self.model, self.classifier = model, model.classifier
        if window is None:
            window, model_stride = self.classifier.model_windows()
            stride = stride or model_stride
        if duration is not None and duration <= 0 or reconnect_s <= 0 or k < 1:
            raise ActionpipeError(None, f"duration ({duration}) and reconnect_s ({reconnect_s}) must be positive "
                                        f"seconds, k ({k}) at least 1")
        with console.silenced(not model.verbose):
            self.classifier.configure(window_s=window, stride_s=stride)  # bad values fail here, in one line
            self.window_s, self.stride_s = self.classifier.window_s, self.classifier.stride_s
            self.per_person, self.min_track_s, self.k = per_person, min_track_s, k
            self.events_only, self.duration, self.show, self.save = events_only, duration, show, save
            # The loaded pose model, one frame per call: each frame's people as soon as it is in.
            self.classifier.pose.model  # noqa: B018 (load it now, not while a stream waits)
            self.pose = copy.copy(self.classifier.pose)
            self.pose.batch = 1
            self.reader = FrameReader(source, self.classifier.fps, self.pose.imgsz, realtime, reconnect_s)
        self.source = self.reader.source
        # Windows in frames at the rate the sample is packed at, as classify counts them.
        self.sample_fps = float(self.classifier.card.preprocessing.fps or self.reader.fps)
        self.window_frames, self.stride_frames = self.classifier.window_frames(self.sample_fps)
        self.buffer: deque[tuple[PoseFrame, float]] = deque()
        self.next_end = self.window_frames       # the slot after the next window's last frame
        self.last_end = 0                         # the end of the last window classified
        self.last_slot = -1
        self.scene = _EventMerger()
        self.tracks: dict[int, _EventMerger] = {}
        self.latencies: deque[float] = deque(maxlen=_KEPT_LATENCIES)
        self.processed = self.windows = self.events = 0
        self.reason, self.error, self.started = "eof", None, None
        self.latest: WindowResult | None = None
        self.saved: dict[str, Any] | None = None  # path, codec, frames of the --save recording

    def __repr__(self) -> str:
        return (f"Watch({self.source!r}, window {self.window_s:g} s, stride {self.stride_s:g} s, "
                f"{self.processed} frames, {self.windows} windows)")

    def stop(self) -> None:
        """End after the frame in hand: the last windows and open events are still given."""
        self.reason = "stopped"
        self.reader.stop()

    def __iter__(self) -> Iterator[WindowResult | Event]:
        if self.started is not None:
            raise ActionpipeError(self.source, "a Watch runs once; call model.watch(...) again")
        self.started = time.monotonic()
        for item in self.model._quietly(self._run()):
            if isinstance(item, Event):
                self.events += 1
                yield item
            elif not self.events_only:
                yield item

    def summary(self) -> dict[str, Any]:
        """Frames read, processed and dropped, windows, events, latency, why it ended."""
        lat = np.array(self.latencies) if self.latencies else None
        seconds = time.monotonic() - self.started if self.started else 0.0
        d = {"type": "summary", "source": self.source, "reason": self.reason, "seconds": round(seconds, 3),
             "video_s": round((self.last_slot + 1) / self.reader.fps, 3), "frames_read": self.reader.read,
             "processed": self.processed, "dropped": self.reader.dropped, "reconnects": self.reader.reconnects,
             "windows": self.windows, "events": self.events,
             "fps": round(self.processed / seconds, 2) if seconds > 0 else None,
             "latency_s": None if lat is None else {"median": round(float(np.median(lat)), 3),
                                                    "p95": round(float(np.percentile(lat, 95)), 3),
                                                    "max": round(float(lat.max()), 3)}}
        if self.saved is not None:
            d["saved"] = self.saved
        return d if self.error is None else {**d, "error": str(self.error)}

    # --- the pipeline -----------------------------------------------------------------------------

    def _run(self) -> Iterator[WindowResult | Event]:
        from actionpipe.outputs.live_view import Annotator

        with contextlib.ExitStack() as stack:
            stack.callback(self.reader.close)
            annotator = Annotator(self, stack) if self.show or self.save else None
            try:
                yield from self._process(annotator)
            except GeneratorExit:  # the caller stopped iterating: keep what was recorded
                self.reason = "stopped"
                return
            except ActionpipeError as exc:  # the stream failed for good: finish what came, then raise
                self.reason, self.error = "error", exc
        yield from self._finish()
        if self.error is not None:
            raise self.error

    def _frames(self, captured: dict[int, tuple[float, Any]], keep_images: bool):
        for frame in self.reader.frames():
            if self.duration is not None and frame.time_s >= self.duration:
                self.reason = "duration"
                return
            captured[frame.index] = (frame.captured, frame.image if keep_images else None)
            yield frame

    def _process(self, annotator) -> Iterator[WindowResult | Event]:
        self.reader.start()
        captured: dict[int, tuple[float, Any]] = {}
        frames = self._frames(captured, annotator is not None)
        for pose_frame in self.pose.track(frames, self.reader.width, self.reader.height, self.reader.fps):
            while self.reader.notes:
                console.warn(f"{self.source}: {self.reader.notes.popleft()}")
            when, image = captured.pop(pose_frame.index)
            self.processed += 1
            self.last_slot = pose_frame.index
            self.buffer.append((pose_frame, when))
            while self.buffer[0][0].index <= pose_frame.index - self.window_frames:
                self.buffer.popleft()  # the last W slots: all the next window and the final one need
            if annotator is not None:
                annotator.draw(image, pose_frame, self.latest)
            while self.last_slot >= self.next_end - 1:
                yield from self._window(self.next_end - self.window_frames, self.next_end)
                self.next_end += self.stride_frames

    def _finish(self) -> Iterator[WindowResult | Event]:
        """The window that ends with the last frame (as ``classify`` adds it), then every open event."""
        length = self.last_slot + 1
        if self.windows == 0 or self.last_end < length:
            yield from self._window(max(0, length - self.window_frames), length)
        for merger in [self.scene, *self.tracks.values()]:
            event = merger.close()
            if event is not None:
                yield event
        self.tracks.clear()

    def _window(self, start: int, end: int) -> Iterator[WindowResult | Event]:
        frames = [(f, when) for f, when in self.buffer if start <= f.index < end]
        self.last_end = end
        if not frames:  # nothing arrived in it (a stream that was down)
            return
        window = self._classify([f for f, _ in frames], frames[-1][1])
        self.windows += 1
        self.latest = window
        self.latencies.append(window.latency_s)
        yield window
        closed = [self.scene.add(window.start_s, window.end_s, window.status, window.label, window.probability)]
        here = {p["track_id"]: p for p in window.people if "status" in p}
        for track_id in [t for t in self.tracks if t not in here]:  # gone, or too briefly seen to classify
            closed.append(self.tracks.pop(track_id).close())
        for track_id, p in here.items():
            merger = self.tracks.setdefault(track_id, _EventMerger(track_id))
            closed.append(merger.add(window.start_s, window.end_s, p["status"], p["label"], p["probability"]))
        yield from (event for event in closed if event is not None)

    def _classify(self, frames: list[PoseFrame], captured: float) -> WindowResult:
        """The window's frames as one clip through ``classify``'s own per-video code. Frames dropped
        in it are filled in as ``--speed fast`` fills the frames it skips: each person interpolated
        between the frames around the gap (so the model sees motion at its own rate, not sped up)."""
        pose = PoseFile("coco17", self.reader.width, self.reader.height, self.reader.fps, frames,
                        {"path": self.source}, {}, self.pose.weights_sha256)
        if 1 < len(frames) < frames[-1].index - frames[0].index + 1:
            pose = interpolate_pose(replace(pose, fps=(len(frames) - 1) / (frames[-1].time_s - frames[0].time_s)),
                                    self.reader.fps)
        self.classifier.configure(window_s=self.window_s, stride_s=self.window_s, per_person=self.per_person,
                                  min_track_s=self.min_track_s)
        result = self.classifier.classify_pose(pose, self.source)
        d = result.to_dict(self.k)
        last_box: dict[int, list[float]] = {}
        for f in frames:
            for p in f.people:
                last_box[p.track_id] = [round(float(v), 1) for v in p.box]
        people = {t: {"track_id": t, "box": box} for t, box in sorted(last_box.items())}
        for person in d.get("per_person", []):
            said = {key: person[key] for key in ("label", "probability", "closest", "top") if key in person}
            status = "unknown" if person.get("label") is None else "ok"
            people[person["track_id"]].update(status=status, **said)
        top = [(t["class"], t["probability"]) for t in d.get("top", [])]
        start, end = frames[0].time_s, frames[-1].time_s + 1.0 / self.sample_fps
        return WindowResult(start, end, result.status, d.get("label"), d.get("probability"), top,
                            list(people.values()), len(frames), time.monotonic() - captured, result, self.k)
