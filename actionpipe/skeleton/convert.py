"""Conversion between pose files and the formats other tools use: OpenPose per-frame JSON
directories and Kinetics-skeleton JSON (the ST-GCN dataset format).

Every reader returns a :class:`~actionpipe.pose.posefile.PoseFile` and every writer takes one, so a
notebook can chain them freely; skeletons are mapped between layouts by joint name
(:func:`actionpipe.pose.layouts.convert_keypoints`).

OpenPose (``<video>_<frame:012d>_keypoints.json``, one file per frame): ``people[].pose_keypoints_2d``
is x, y, confidence per joint in pixels; 18 joints are OpenPose's COCO model (``openpose18``), 25
are BODY_25 (``body25``). The files carry no frame size and no frame rate. ``person_id`` becomes the
track id when OpenPose's tracker filled it (>= 0); otherwise people are numbered by their slot in
the frame's list (1, 2, ...).

Kinetics-skeleton (one JSON per clip): ``data[]`` of ``{"frame_index", "skeleton": [{"pose":
[x0, y0, x1, y1, ...], "score": [c0, c1, ...]}]}`` with x, y divided by the frame width / height,
plus ``label`` and ``label_index``. ``frame_index`` counts from 1 in the published data (from 0
in files made straight from OpenPose numbers: a file with a frame 0 is read as 0-based). The format
has no track ids: people are numbered by their slot in each frame's list (1, 2, ...). Files we
write add ``track_id`` to each skeleton and ``width``, ``height``, ``fps`` at the top level
(readers of the format ignore unknown keys), so a round trip loses nothing.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from actionpipe.core.errors import ActionpipeError, about
from actionpipe.core.fileio import atomic_dir, read_json, write_json
from actionpipe.pose.layouts import convert_keypoints, get_layout
from actionpipe.pose.posefile import FORMAT as POSE_FORMAT
from actionpipe.pose.posefile import Person, PoseFile, PoseFrame

OPENPOSE_SUFFIX = "_keypoints.json"
KINETICS_SIZE = (340, 256)   # width, height of the videos behind ST-GCN's Kinetics-skeleton data
DEFAULT_FPS = 30.0
# The layouts a bare keypoint list can be in, told apart by joint count.
LAYOUT_BY_COUNT = {17: "coco17", 18: "openpose18", 25: "body25"}
OPENPOSE_LAYOUTS = ("openpose18", "body25")
INPUT_LAYOUTS = tuple(LAYOUT_BY_COUNT.values())   # what --input-layout may say
TARGETS = ("pose", "openpose", "kinetics")          # what a pose can be converted to
DEFAULT_TARGET = "pose"


def layout_for_count(num_joints: int, path: str | Path | None) -> str:
    """The layout a keypoint list of ``num_joints`` joints is in (17, 18 or 25)."""
    try:
        return LAYOUT_BY_COUNT[num_joints]
    except KeyError:
        raise ActionpipeError(path, f"{num_joints} keypoints per person: expected 18 (OpenPose "
                                    f"COCO), 25 (BODY_25) or 17 (COCO)") from None


def keypoint_box(keypoints: np.ndarray) -> np.ndarray:
    """Bounding box x1, y1, x2, y2 of the joints with confidence > 0 (zeros when none)."""
    seen = keypoints[keypoints[:, 2] > 0, :2]
    if len(seen) == 0:
        return np.zeros(4, dtype=np.float32)
    return np.concatenate([seen.min(axis=0), seen.max(axis=0)]).astype(np.float32)


def _person(track_id: int, keypoints: np.ndarray) -> Person:
    """A person from keypoints alone: box around the seen joints, score their mean confidence."""
    conf = keypoints[:, 2]
    score = float(conf[conf > 0].mean()) if (conf > 0).any() else 0.0
    return Person(track_id, score, keypoint_box(keypoints), keypoints)


def _check_size(path: str | Path, width: int, height: int, fps: float) -> None:
    if width <= 0 or height <= 0 or not math.isfinite(fps) or fps <= 0:
        raise ActionpipeError(path, f"width, height and fps must be positive (got {width}, {height}, {fps})")


def convert_pose_layout(pose: PoseFile, layout: str) -> PoseFile:
    """The same pose file with every person's keypoints mapped to ``layout`` by joint name."""
    target = get_layout(layout).name
    if target == pose.layout:
        return pose
    frames = [PoseFrame(f.index, f.time_s, [
        Person(p.track_id, p.score, p.box, convert_keypoints(p.keypoints, pose.layout, target))
        for p in f.people]) for f in pose.frames]
    return PoseFile(target, pose.width, pose.height, pose.fps, frames, dict(pose.source),
                    dict(pose.backend), pose.weights_sha256)


def _keypoint_rows(values: Any, num_values: int, path: Path, where: str) -> np.ndarray:
    """A flat list of numbers, checked for length and finiteness."""
    if not isinstance(values, list) or len(values) != num_values:
        got = len(values) if isinstance(values, list) else type(values).__name__
        raise ActionpipeError(path, f"{where}: expected a list of {num_values} numbers, got {got}")
    try:
        array = np.asarray(values, dtype=np.float32)
    except (TypeError, ValueError):
        raise ActionpipeError(path, f"{where}: keypoints must be numbers") from None
    if not np.isfinite(array).all():
        raise ActionpipeError(path, f"{where}: keypoints contain NaN or infinity")
    return array


# --- OpenPose ------------------------------------------------------------------------------------

def _frame_number(path: Path) -> int | None:
    match = re.search(r"(\d+)" + re.escape(OPENPOSE_SUFFIX) + "$", path.name)
    return int(match.group(1)) if match else None


def openpose_files(directory: str | Path) -> list[tuple[int, Path]]:
    """The ``*_keypoints.json`` files of a directory as (frame number, path), in frame order."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ActionpipeError(directory, "not a directory of OpenPose *_keypoints.json files")
    paths = sorted(directory.glob("*" + OPENPOSE_SUFFIX))
    if not paths:
        raise ActionpipeError(directory, f"no OpenPose *{OPENPOSE_SUFFIX} files in this directory")
    numbers = [_frame_number(p) for p in paths]
    if None in numbers:  # names without a frame number: their sorted order is the frame order
        return list(enumerate(paths))
    files = sorted(zip(numbers, paths))
    for (n, a), (m, b) in zip(files, files[1:]):
        if n == m:
            raise ActionpipeError(directory, f"frame {n} twice ({a.name}, {b.name}): keypoints of "
                                             f"several videos? Use one directory per video")
    return files


def read_openpose_dir(directory: str | Path, width: int, height: int, fps: float = DEFAULT_FPS,
                      layout: str | None = None) -> PoseFile:
    """Read an OpenPose JSON directory into a pose file in the OpenPose layout.

    ``layout`` (``openpose18``/``body25``/``coco17``) is detected from the keypoint count when not
    given. Frame numbers missing between the first and last file become frames with no people.
    """
    _check_size(directory, width, height, fps)
    files = openpose_files(directory)
    num_joints = get_layout(layout).num_joints if layout else None
    parsed: list[tuple[int, list[tuple[int, np.ndarray]]]] = []
    for number, path in files:
        doc = read_json(path, "OpenPose JSON file")
        people = doc.get("people") if isinstance(doc, dict) else None
        if not isinstance(people, list):
            raise ActionpipeError(path, "not an OpenPose keypoints file: no \"people\" list")
        rows = []
        for slot, person in enumerate(people):
            values = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
            if not isinstance(values, list):
                raise ActionpipeError(path, f"person {slot}: no \"pose_keypoints_2d\" list")
            if num_joints is None:
                if len(values) % 3:
                    raise ActionpipeError(path, f"person {slot}: {len(values)} numbers in "
                                                f"pose_keypoints_2d, not a multiple of 3")
                layout = layout_for_count(len(values) // 3, path)
                num_joints = len(values) // 3
            keypoints = _keypoint_rows(values, 3 * num_joints, path, f"person {slot}").reshape(-1, 3)
            pid = person.get("person_id")
            pid = pid[0] if isinstance(pid, list) and len(pid) == 1 else pid
            rows.append((pid if isinstance(pid, int) and pid >= 0 else -1, keypoints))
        parsed.append((number, rows))
    # OpenPose's tracker ids only when every person has a distinct one in its frame.
    tracked = all(pid >= 0 for _, rows in parsed for pid, _ in rows) and all(
        len({pid for pid, _ in rows}) == len(rows) for _, rows in parsed)
    first = parsed[0][0]
    people_at = {number: rows for number, rows in parsed}
    frames = []
    for number in range(first, parsed[-1][0] + 1):
        rows = people_at.get(number, [])
        frames.append(PoseFrame(number - first, number / fps, [
            _person(pid if tracked else slot + 1, kp) for slot, (pid, kp) in enumerate(rows)]))
    return PoseFile(layout or "openpose18", width, height, fps, frames,
                    {"path": str(directory), "format": "openpose"})


def _check_replaceable(target: Path, overwrite: bool) -> None:
    """An OpenPose output folder may replace only an empty folder, or any with ``overwrite``."""
    if target.exists() and not target.is_dir():
        raise ActionpipeError(target, "exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ActionpipeError(target, "directory exists and is not empty (pass --force to replace it)")


def write_openpose_dir(pose: PoseFile, directory: str | Path, layout: str = "openpose18",
                       overwrite: bool = False) -> None:
    """Write one OpenPose ``*_keypoints.json`` per frame (``layout`` openpose18 or body25).

    The track id goes into ``person_id``. The directory appears complete or not at all.
    """
    if get_layout(layout).name not in OPENPOSE_LAYOUTS:
        raise ActionpipeError(directory, f"OpenPose output needs layout {' or '.join(OPENPOSE_LAYOUTS)}, not {layout!r}")
    pose = convert_pose_layout(pose, layout)
    stem = Path(str(pose.source.get("path") or directory)).stem or "video"
    empty: list[float] = []
    _check_replaceable(Path(directory), overwrite)
    with atomic_dir(directory) as tmp:
        for frame in pose.frames:
            people = [{"person_id": [int(p.track_id)],
                       "pose_keypoints_2d": [round(float(v), 3) for v in p.keypoints.reshape(-1)],
                       "face_keypoints_2d": empty, "hand_left_keypoints_2d": empty,
                       "hand_right_keypoints_2d": empty, "pose_keypoints_3d": empty,
                       "face_keypoints_3d": empty, "hand_left_keypoints_3d": empty,
                       "hand_right_keypoints_3d": empty} for p in frame.people]
            write_json(tmp / f"{stem}_{frame.index:012d}{OPENPOSE_SUFFIX}", {"version": 1.3, "people": people})


# --- Kinetics-skeleton ---------------------------------------------------------------------------

def read_kinetics_json(path: str | Path, width: int | None = None, height: int | None = None,
                       fps: float | None = None, layout: str | None = None) -> PoseFile:
    """Read one Kinetics-skeleton clip into a pose file (pixels), layout by joint count.

    ``width``/``height``/``fps`` default to the file's own (files we wrote), else 340×256 at 30 fps
    (ST-GCN's Kinetics data). ``label`` and ``label_index`` end up in ``pose.source``.
    """
    path = Path(path)
    doc = read_json(path, "Kinetics-skeleton JSON file")
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise ActionpipeError(path, "not a Kinetics-skeleton file: no \"data\" list")
    try:
        width = int(width or doc.get("width") or KINETICS_SIZE[0])
        height = int(height or doc.get("height") or KINETICS_SIZE[1])
        fps = float(fps or doc.get("fps") or DEFAULT_FPS)
    except (TypeError, ValueError) as exc:
        raise ActionpipeError(path, f"bad width/height/fps: {exc}") from None
    _check_size(path, width, height, fps)
    num_joints = get_layout(layout).num_joints if layout else None
    people_at: dict[int, list[Person]] = {}
    for i, entry in enumerate(doc["data"]):
        index = entry.get("frame_index") if isinstance(entry, dict) else None
        skeletons = entry.get("skeleton") if isinstance(entry, dict) else None
        if not isinstance(index, int) or index < 0 or not isinstance(skeletons, list):
            raise ActionpipeError(path, f"data[{i}]: needs an integer \"frame_index\" >= 0 and a \"skeleton\" list")
        for slot, skeleton in enumerate(skeletons):
            where = f"data[{i}].skeleton[{slot}]"
            if not isinstance(skeleton, dict) or not isinstance(skeleton.get("score"), list):
                raise ActionpipeError(path, f"{where}: no \"score\" list")
            if num_joints is None:
                layout = layout_for_count(len(skeleton["score"]), path)
                num_joints = len(skeleton["score"])
            xy = _keypoint_rows(skeleton.get("pose"), 2 * num_joints, path, f"{where}.pose").reshape(-1, 2)
            conf = _keypoint_rows(skeleton["score"], num_joints, path, f"{where}.score")
            keypoints = np.column_stack([xy * (width, height), conf]).astype(np.float32)
            keypoints[conf <= 0, :2] = 0
            track = skeleton.get("track_id", slot + 1)
            people_at.setdefault(index, []).append(_person(int(track) if isinstance(track, int) else slot + 1, keypoints))
    base = 0 if any(e["frame_index"] == 0 for e in doc["data"]) else 1
    last = max((e["frame_index"] for e in doc["data"]), default=base - 1)
    frames = [PoseFrame(n - base, (n - base) / fps, people_at.get(n, [])) for n in range(base, last + 1)]
    source = {"path": str(path), "format": "kinetics-skeleton",
              "label": doc.get("label"), "label_index": doc.get("label_index")}
    return PoseFile(layout or "openpose18", width, height, fps, frames, source)


def kinetics_dict(pose: PoseFile, label: str | None = None, label_index: int | None = None,
                  layout: str = "openpose18") -> dict[str, Any]:
    """A pose file as a Kinetics-skeleton document (``frame_index`` from 1, x/width, y/height)."""
    if get_layout(layout).name not in OPENPOSE_LAYOUTS:
        raise ActionpipeError(None, f"Kinetics-skeleton output needs layout {' or '.join(OPENPOSE_LAYOUTS)}, not {layout!r}")
    pose = convert_pose_layout(pose, layout)
    scale = np.array([pose.width, pose.height], dtype=np.float64)
    data = [{"frame_index": f.index + 1, "skeleton": [
        {"pose": [round(float(v), 5) for v in (p.keypoints[:, :2] / scale).reshape(-1)],
         "score": [round(float(c), 5) for c in p.keypoints[:, 2]],
         "track_id": int(p.track_id)} for p in f.people]} for f in pose.frames]
    label = label if label is not None else pose.source.get("label") or "unknown"
    label_index = label_index if label_index is not None else pose.source.get("label_index")
    return {"data": data, "label": label, "label_index": -1 if label_index is None else int(label_index),
            "width": int(pose.width), "height": int(pose.height), "fps": float(pose.fps)}


def write_kinetics_json(pose: PoseFile, path: str | Path, label: str | None = None,
                        label_index: int | None = None, layout: str = "openpose18") -> None:
    """Write a pose file as one Kinetics-skeleton JSON clip, atomically (see :func:`kinetics_dict`)."""
    with about(path):
        doc = kinetics_dict(pose, label, label_index, layout)
    write_json(path, doc)


# --- any format ----------------------------------------------------------------------------------

def detect_format(path: str | Path) -> str:
    """``pose``, ``openpose`` or ``kinetics``: what kind of pose data ``path`` holds."""
    path = Path(path)
    if path.is_dir():
        return "openpose"
    doc = read_json(path, "JSON file")
    if isinstance(doc, dict) and doc.get("format") == POSE_FORMAT:
        return "pose"
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        return "kinetics"
    if isinstance(doc, dict) and "people" in doc:
        raise ActionpipeError(path, "a single OpenPose frame: pass the directory holding all the frames")
    raise ActionpipeError(path, "not a pose file, OpenPose directory or Kinetics-skeleton JSON")


def read_any(path: str | Path, width: int | None = None, height: int | None = None,
             fps: float | None = None, layout: str | None = None) -> tuple[PoseFile, str]:
    """Read pose data in any supported format; returns the pose file and the detected format.

    ``width``/``height``/``fps`` fill in what the source lacks (OpenPose needs width and height);
    ``layout`` forces the layout of OpenPose/Kinetics keypoints instead of detecting it by count.
    """
    kind = detect_format(path)
    if kind == "pose":
        return PoseFile.load(path), kind
    if kind == "kinetics":
        return read_kinetics_json(path, width, height, fps, layout), kind
    if not (width and height):
        raise ActionpipeError(path, "OpenPose JSON does not record the frame size: give width and height "
                                    "(--width/--height or --video)")
    return read_openpose_dir(path, width, height, fps or DEFAULT_FPS, layout), kind


def convert(input_path: str | Path, output_path: str | Path, to: str = DEFAULT_TARGET,
            layout: str | None = None, width: int | None = None, height: int | None = None,
            fps: float | None = None, input_layout: str | None = None, label: str | None = None,
            label_index: int | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Convert ``input_path`` (any format) to ``to`` (pose/openpose/kinetics); returns a summary.

    ``layout`` is the output skeleton: default the source's for ``pose``, ``openpose18`` otherwise.
    """
    pose, kind = read_any(input_path, width, height, fps, input_layout)
    if to == "pose":
        out = convert_pose_layout(pose, layout or pose.layout)
        out.save(output_path)
    elif to == "openpose":
        out = convert_pose_layout(pose, layout or "openpose18")
        write_openpose_dir(out, output_path, out.layout, overwrite)
    elif to == "kinetics":
        out = convert_pose_layout(pose, layout or "openpose18")
        write_kinetics_json(out, output_path, label, label_index, out.layout)
    else:
        raise ActionpipeError(None, f"unknown output format {to!r} ({', '.join(TARGETS)})")
    return {"input": str(input_path), "input_format": kind, "output": str(output_path), "to": to,
            "layout": out.layout, "width": out.width, "height": out.height, "fps": out.fps,
            "frames": out.num_frames, "tracks": len(out.track_ids()),
            "max_people": max((len(f.people) for f in out.frames), default=0)}
