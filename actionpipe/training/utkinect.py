"""UTKinect-Action3D Kinect skeletons (3-D, 10 everyday actions) as training and evaluation clips.

Xia, Chen, Aggarwal, CVPR Workshops 2012 (research use). ``joints/joints_sSS_eEE.txt``: one row a
skeleton, the frame id then 20 × (x, y, z) in metres, Kinect v1 camera space (the convention of
:mod:`actionpipe.training.virtual_camera`). Frame ids count a 30 fps video but skeletons arrive
irregularly, so ids are time stamps: each labelled segment is resampled at 15 fps by linear
interpolation between the skeletons around each instant. ``joints/actionLabel_modified.txt`` gives
the segments (``action: start end`` per sequence ``sSS_eEE``); it is the corrected variant of
``actionLabel.txt``, whose s03 ``push`` (2556-3622) and a few others overlap the next segment;
``NaN NaN`` marks the one segment the dataset lacks (199 of 200).

The Kinect joints map to COCO-17 by name as for UTD-MHAD (head for the nose; eyes and ears do not
exist). Clips keep their 3-D joints for training's virtual cameras; ``keypoints`` are the frontal
view. Cross-subject split (the literature's half-subject protocol): odd subjects train, even test.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17
from actionpipe.training.datasets import Clip, check_split, odd_subject_split
from actionpipe.training.utd_mhad import KINECT_TO_COCO17 as UTD_KINECT_TO_COCO17
from actionpipe.training.virtual_camera import IMAGE_HEIGHT, IMAGE_WIDTH, project

ID_RATE = 30.0   # frame ids per second
FPS = 15.0       # the clips' rate after resampling
LABEL_FILE = "actionLabel_modified.txt"
# The dataset's action names (actionLabel.txt), as short labels; a training label map renames them.
ACTIONS = {"walk": "walk", "sitDown": "sit_down", "standUp": "stand_up", "pickUp": "pick_up", "carry": "carry",
           "throw": "throw", "push": "push", "pull": "pull", "waveHands": "wave_hands", "clapHands": "clap_hands"}
# COCO-17 joint <- Kinect SDK v1 joint (0-based; the README's order): UTD-MHAD's order but for the
# first four joints (hip centre, spine, shoulder centre, head), so only the head moves.
KINECT_TO_COCO17 = {**UTD_KINECT_TO_COCO17, "nose": 3}
_SLOTS = [COCO17.index(joint) for joint in KINECT_TO_COCO17]
_SEQUENCE = re.compile(r"s(\d+)_e(\d+)$")


def read_segments(path: Path) -> dict[str, list[tuple[str, int, int]]]:
    """``{sequence: [(action, start id, end id), ...]}`` of a label file."""
    segments: dict[str, list[tuple[str, int, int]]] = {}
    sequence = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if _SEQUENCE.match(line):
            sequence = line
            segments[sequence] = []
            continue
        action, sep, span = line.partition(":")
        bounds = span.split()
        if sep and bounds == ["NaN", "NaN"]:   # a segment the dataset does not have (s10 carry)
            continue
        if (not sep or sequence is None or action not in ACTIONS or len(bounds) != 2
                or not all(b.isdigit() for b in bounds) or int(bounds[0]) >= int(bounds[1])):
            raise ActionpipeError(path, f"line {number}: expected 'ACTION: START END' under a sSS_eEE line, "
                                        f"ACTION one of {', '.join(ACTIONS)}, got {line!r}")
        segments[sequence].append((action, int(bounds[0]), int(bounds[1])))
    return segments


def read_sequence(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frame ids ``(N,)`` (increasing, duplicates dropped) and joints ``(N, 20, 3)`` of a joints file."""
    try:
        rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ActionpipeError(path, f"not a readable UTKinect joints file: {exc}") from None
    if rows.shape[1] != 61 or not np.isfinite(rows).all():
        raise ActionpipeError(path, f"expected a frame id and 20 finite x, y, z a row (got {rows.shape[1]} numbers)")
    ids, first = np.unique(rows[:, 0], return_index=True)   # a repeated id keeps its first skeleton
    return ids, rows[first, 1:].reshape(-1, 20, 3)


def segment_clip(name: str, action: str, ids: np.ndarray, joints: np.ndarray, start: int, end: int,
                 subject: int, path: Path) -> Clip | None:
    """The segment ``start..end`` (frame ids) resampled at :data:`FPS`; None when no skeleton falls in it."""
    inside = (ids >= start) & (ids <= end)
    if inside.sum() < 2:
        return None
    times = np.arange(max(start, ids[inside][0]), min(end, ids[inside][-1]) + 1e-9, ID_RATE / FPS)
    points = np.zeros((1, len(times), COCO17.num_joints, 3), dtype=np.float32)
    for slot, kinect in zip(_SLOTS, KINECT_TO_COCO17.values()):
        for axis in range(3):
            points[0, :, slot, axis] = np.interp(times, ids, joints[:, kinect, axis])
    present = np.zeros(points.shape[:3], dtype=bool)
    present[..., _SLOTS] = True
    return Clip(name, ACTIONS[action], project(points, present), COCO17.name, IMAGE_WIDTH, IMAGE_HEIGHT, FPS,
                split=odd_subject_split(subject), label_index=list(ACTIONS).index(action), track_ids=np.array([1]),
                path=str(path), group=f"utk-s{subject}-{ACTIONS[action]}", points3d=points, present3d=present)


def load_utkinect(root: str | Path, split: str | None = None) -> list[Clip]:
    """Every labelled segment of ``root`` (the dataset or its ``joints/``) of ``split`` ("train": odd
    subjects, "test": even) when given."""
    check_split(split)
    root = Path(root)
    folder = root / "joints" if (root / "joints").is_dir() else root
    labels = folder / LABEL_FILE
    if not labels.is_file():
        raise ActionpipeError(root, f"no UTKinect-Action3D joints/{LABEL_FILE} here")
    clips = []
    for sequence, segments in read_segments(labels).items():
        subject = int(_SEQUENCE.match(sequence).group(1))
        if split is not None and odd_subject_split(subject) != split:
            continue
        path = folder / f"joints_{sequence}.txt"
        if not path.is_file():
            raise ActionpipeError(path, f"the joints of {sequence}, which {LABEL_FILE} labels, are missing")
        ids, joints = read_sequence(path)
        for action, start, end in segments:
            clip = segment_clip(f"{sequence}_{ACTIONS[action]}", action, ids, joints, start, end, subject, path)
            if clip is not None:
                clips.append(clip)
    if not clips:
        raise ActionpipeError(root, "no labelled UTKinect-Action3D segment with skeletons here")
    return clips
