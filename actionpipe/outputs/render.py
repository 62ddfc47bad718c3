"""``render``: the video with what actionpipe saw drawn on it, streamed frame by frame.

Per tracked person (colour by track id): skeleton, box, and the label of the current window of its
own track; for the whole video: the current window's label, a bar chart of its top classes, and a
timeline strip of segments (one row for the video, one per person) with a cursor at the current
time. Input: a pose file and a ``classify`` result (a :class:`~actionpipe.api.Result`, a
:class:`~actionpipe.pipeline.classify.VideoResult`, or the JSON object of one video, with ``timeline`` and
``per_person`` when they were asked for). Pose frames are usually sparser than
video frames (the model's rate); each video frame shows the nearest pose frame.

Output is H.264 with the source's audio, else MPEG-4 Part 2 (see :mod:`actionpipe.video.writer`).
Memory stays a few frames whatever the length; the file appears atomically.
"""
from __future__ import annotations

import bisect
import os
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

from actionpipe.core import console
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import atomic_path, parse_json
from actionpipe.pose.layouts import get_layout
from actionpipe.pose.posefile import Person, PoseFile, PoseFrame
from actionpipe.outputs.report import DEFAULT_TOP_K
from actionpipe.outputs.timeline import window_at
from actionpipe.video.reader import expected_frame_count, probe, read_frames
from actionpipe.video.writer import open_video_writer

MIN_JOINT_CONF = 0.3
# Distinct, readable colours (BGR); tracks and classes take them in turn.
PALETTE = [(230, 159, 0), (0, 114, 255), (80, 200, 60), (200, 60, 200), (0, 215, 255), (255, 100, 100),
           (60, 60, 230), (180, 180, 40), (255, 255, 255), (40, 160, 160), (150, 90, 255), (120, 200, 255)]
FONT = cv2.FONT_HERSHEY_SIMPLEX


def read_results(path: str | Path) -> list[dict[str, Any]]:
    """The classify results (one JSON object per video) of a ``classify --json`` document, a JSONL
    of results or one result object, in file order."""
    path = Path(path)
    if not path.is_file():
        raise ActionpipeError(path, "results file not found")
    data = path.read_bytes()
    try:
        doc = parse_json(data)
        results = doc.get("results", [doc]) if isinstance(doc, dict) else []
    except ValueError:
        try:
            results = [parse_json(line) for line in data.splitlines() if line.strip()]
        except ValueError as exc:
            raise ActionpipeError(path, f"not classify JSON or JSONL output: {exc}") from None
    results = [r for r in (results if isinstance(results, list) else [])
               if isinstance(r, dict) and isinstance(r.get("status"), str) and isinstance(r.get("video"), str)]
    if not results:
        raise ActionpipeError(path, "holds no classify result (make one with `classify VIDEO --json`)")
    return results


def load_result(path: str | Path, video: str | Path) -> dict[str, Any]:
    """The classify result for ``video`` from :func:`read_results`' file; with several, the one for
    the same file, else the same file name (last wins)."""
    results = read_results(path)
    # The same file first (results of a folder may share file names), else the same file name.
    same = [r for r in results if os.path.realpath(r["video"]) == os.path.realpath(video)]
    named = same or [r for r in results if Path(r["video"]).name == Path(video).name]
    if not named and len(results) > 1:
        raise ActionpipeError(path, f"has no result for {Path(video).name}")
    result = (named or results)[-1]
    if result["status"] == "error":
        raise ActionpipeError(path, f"the result for {result['video']} is an error: {result.get('error')}")
    return result


def _nearest(pose: PoseFile, j: int, time_s: float) -> PoseFrame | None:
    """The pose frame nearest ``time_s`` among ``j`` and ``j + 1``, if within 1.25 pose intervals.

    Keypoints are shown as the model gave them rather than interpolated: between two pose frames
    the model may swap a person's left and right, and a blend would fold the skeleton flat.
    """
    candidates = pose.frames[j:j + 2]
    best = min(candidates, key=lambda f: abs(f.time_s - time_s))
    return best if abs(best.time_s - time_s) <= 1.25 / pose.fps else None


def _current(timeline: dict[str, Any] | None, time_s: float) -> dict[str, Any] | None:
    if not timeline or not timeline.get("windows"):
        return None
    windows = timeline["windows"]
    i = window_at([w["start_s"] for w in windows], [w["end_s"] for w in windows], time_s)
    return None if i is None else windows[i]


def _text(img, text, org, scale, colour, thickness, bg=None) -> None:
    if bg is not None:
        (w, h), base = cv2.getTextSize(text, FONT, scale, thickness)
        x, y = org
        cv2.rectangle(img, (x - 3, y - h - 4), (x + w + 3, y + base + 2), bg, -1)
    cv2.putText(img, text, org, FONT, scale, colour, thickness, cv2.LINE_AA)


def _shade(img, x1, y1, x2, y2, alpha=0.55) -> None:
    """Darken a rectangle so text on it reads over any footage."""
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(img.shape[1], x2), min(img.shape[0], y2)
    if x2 > x1 and y2 > y1:
        img[y1:y2, x1:x2] = (img[y1:y2, x1:x2] * (1 - alpha)).astype(np.uint8)


def draw_person(img: np.ndarray, track: Person, bones, colour, s: float, text: str) -> None:
    """One person's skeleton (joints seen with confidence), box and a label on the box, at scale ``s``."""
    kp = track.keypoints
    seen = kp[:, 2] >= MIN_JOINT_CONF
    pts = np.round(kp[:, :2]).astype(int)
    for i, j in bones:
        if seen[i] and seen[j]:
            cv2.line(img, tuple(pts[i]), tuple(pts[j]), colour, max(2, round(3 * s)), cv2.LINE_AA)
    for i in np.flatnonzero(seen):
        cv2.circle(img, tuple(pts[i]), max(2, round(4 * s)), (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(img, tuple(pts[i]), max(2, round(4 * s)), colour, 1, cv2.LINE_AA)
    x1, y1, x2, y2 = np.round(track.box).astype(int)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, max(1, round(2 * s)))
    _text(img, text, (x1 + 3, max(y1 - round(6 * s), round(16 * s))), 0.55 * s, (0, 0, 0),
          max(1, round(1.5 * s)), bg=colour)


class Overlay:
    """Draws one frame's overlay; holds the per-video state (layout, colours, scale)."""

    def __init__(self, pose: PoseFile, result: dict[str, Any], width: int, height: int, duration_s: float):
        self.pose, self.result, self.duration_s = pose, result, max(duration_s, 1e-6)
        self.bones = get_layout(pose.layout).bones
        self.s = max(0.5, min(width, height) / 720)
        self.width, self.height = width, height
        self.people = {int(p["track_id"]): p for p in result.get("per_person", [])}
        rows = [result.get("timeline")] + [p.get("timeline") for p in self.people.values()]
        labels = [seg["label"] for row in rows if row for seg in row["segments"]] + [result.get("label")]
        self.class_colour = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(dict.fromkeys(labels))}

    def track_colour(self, track_id: int) -> tuple[int, int, int]:
        return PALETTE[track_id % len(PALETTE)]

    def draw(self, img: np.ndarray, time_s: float, people: list[Person]) -> None:
        self._panel(img, time_s)
        self._strip(img, time_s)
        for person in people:  # last, so a person's label is never hidden under the panels
            self._person(img, person, time_s)

    def _person(self, img, track: Person, time_s: float) -> None:
        text = f"#{track.track_id}"
        person = self.people.get(track.track_id)
        if person is not None:
            current = _current(person.get("timeline"), time_s) or person
            text += f" {current['label']} {current['probability']:.2f}"
        draw_person(img, track, self.bones, self.track_colour(track.track_id), self.s, text)

    def _panel(self, img, time_s: float) -> None:
        """Top left: the whole video's current window, its top classes as bars, and the time."""
        r, s = self.result, self.s
        current = _current(r.get("timeline"), time_s) or r
        top = current.get("top", [])[:5]
        line_h, bar_w = round(22 * s), round(120 * s)
        name_w = max([cv2.getTextSize(t["class"], FONT, 0.5 * s, 1)[0][0] for t in top] + [round(60 * s)])
        _shade(img, 0, 0, name_w + bar_w + round(70 * s), line_h * (len(top) + 2) + round(8 * s))
        head = f"{current.get('label', r.get('status', ''))} {current.get('probability', 0):.2f}" if top else r["status"]
        _text(img, f"{time_s:6.1f} s  all: {head}", (round(6 * s), line_h), 0.6 * s, (255, 255, 255),
              max(1, round(1.5 * s)))
        for i, t in enumerate(top):
            y = line_h * (i + 2)
            _text(img, t["class"], (round(6 * s), y), 0.5 * s, (230, 230, 230), 1)
            x0 = round(12 * s) + name_w
            colour = self.class_colour.get(t["class"], (200, 200, 200))
            cv2.rectangle(img, (x0, y - round(12 * s)), (x0 + round(bar_w * t["probability"]), y), colour, -1)
            cv2.rectangle(img, (x0, y - round(12 * s)), (x0 + bar_w, y), (160, 160, 160), 1)
            _text(img, f"{t['probability']:.2f}", (x0 + bar_w + round(6 * s), y), 0.45 * s, (230, 230, 230), 1)

    def _strip(self, img, time_s: float) -> None:
        """Bottom: segments of the video and of each person, and a cursor at ``time_s``."""
        rows = [("all", (255, 255, 255), self.result.get("timeline"))]
        rows += [(f"#{t}", self.track_colour(t), p.get("timeline")) for t, p in self.people.items()][:4]
        rows = [row for row in rows if row[2]]
        if not rows:
            return
        s, row_h = self.s, round(20 * self.s)
        x0, x1 = round(50 * s), self.width - round(8 * s)
        y = self.height - row_h * len(rows) - round(6 * s)
        _shade(img, 0, y - round(4 * s), self.width, self.height)
        for name, colour, timeline in rows:
            _text(img, name, (round(6 * s), y + row_h - round(5 * s)), 0.5 * s, colour, 1)
            for seg in timeline["segments"]:
                a = x0 + round((x1 - x0) * seg["start_s"] / self.duration_s)
                b = x0 + round((x1 - x0) * min(seg["end_s"], self.duration_s) / self.duration_s)
                cv2.rectangle(img, (a, y + 2), (max(a + 1, b - 1), y + row_h - 2),
                              self.class_colour.get(seg["label"], (200, 200, 200)), -1)
                label_w = cv2.getTextSize(seg["label"], FONT, 0.4 * s, 1)[0][0]
                if label_w + 6 < b - a:
                    _text(img, seg["label"], (a + 3, y + row_h - round(6 * s)), 0.4 * s, (0, 0, 0), 1)
            y += row_h
        cx = x0 + round((x1 - x0) * min(time_s, self.duration_s) / self.duration_s)
        cv2.line(img, (cx, self.height - row_h * len(rows) - round(8 * s)), (cx, self.height), (0, 0, 255),
                 max(1, round(2 * s)))


def _overlay(video: str | Path, pose: PoseFile, result, k: int):
    """The video's properties and its Overlay; ``result``: anything with ``to_dict(k)`` or its JSON."""
    info = probe(video)
    if (pose.width, pose.height) != (info.width, info.height):
        raise ActionpipeError(video, f"the pose file is for a {pose.width}x{pose.height} video, "
                                     f"this one is {info.width}x{info.height}")
    if pose.num_frames == 0:
        raise ActionpipeError(video, "the pose file has no frames")
    doc = result if isinstance(result, dict) else result.to_dict(k)
    return info, Overlay(pose, doc, info.width, info.height, info.frame_count / info.fps)


def render_frame(video: str | Path, pose: PoseFile, result, time_s: float, k: int = DEFAULT_TOP_K) -> np.ndarray:
    """The frame of ``video`` nearest ``time_s`` with what :func:`render_video` draws on it (BGR)."""
    info, overlay = _overlay(video, pose, result, k)
    frame = next(read_frames(video, start=max(0.0, time_s), info=info))
    j = max(0, bisect.bisect_right([f.time_s for f in pose.frames], frame.time_s) - 1)
    nearest = _nearest(pose, j, frame.time_s)
    overlay.draw(frame.image, frame.time_s, nearest.people if nearest else [])
    return frame.image


def render_video(video: str | Path, output: str | Path, pose: PoseFile, result, k: int = DEFAULT_TOP_K) -> dict[str, Any]:
    """Draw ``pose`` and ``result`` (top ``k`` classes in the bars) on every frame of ``video`` into
    ``output``, with the video's audio; returns frames, codec and audio codec."""
    info, overlay = _overlay(video, pose, result, k)
    frames = 0
    # The container follows the extension: the temporary name keeps the output's (MP4 for stdout,
    # /dev/null and other names without one).
    with atomic_path(output, suffix=Path(output).suffix or ".mp4") as tmp:
        writer = open_video_writer(tmp, info.fps, (info.width, info.height), audio_from=video)
        j = 0
        try:
            with console.progress() as bar:
                task = bar.add_task(f"render {Path(output).name}", total=expected_frame_count(info) or None)
                for frame in read_frames(video, info=info):
                    while j + 1 < pose.num_frames and pose.frames[j + 1].time_s <= frame.time_s:
                        j += 1
                    nearest = _nearest(pose, j, frame.time_s)
                    overlay.draw(frame.image, frame.time_s, nearest.people if nearest else [])
                    writer.write(frame.image)
                    frames += 1
                    bar.advance(task)
        except BaseException:
            writer.abort()
            raise
        writer.close()
    return {"output": str(output), "frames": frames, "codec": writer.codec, "audio": writer.audio_codec,
            "fps": info.fps, "width": info.width, "height": info.height}
