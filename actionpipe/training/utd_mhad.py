"""UTD-MHAD Kinect skeletons (3-D, 27 actions) as training and evaluation clips.

``Skeleton/a{action}_s{subject}_t{trial}_skeleton.mat`` holds ``d_skel`` (20 joints, xyz, T) in
metres, Kinect v1 camera space, 30 fps (Chen, Jafari, Kehtarnavaz, ICIP 2015; research use). The
20 Kinect joints map to COCO-17 by name: the head centre stands in for the nose, eyes and ears do
not exist (missing, as the model cards mask them), hands, feet, spine and the centre joints have
no COCO slot. The standard cross-subject split: subjects 1, 3, 5, 7 train, 2, 4, 6, 8 test.

Each clip keeps its 3-D joints (:attr:`actionpipe.training.datasets.Clip.points3d`): training films every
draw through a random virtual camera (:mod:`actionpipe.training.virtual_camera`); its ``keypoints`` are one
fixed view (``utd:DIR`` frontal, ``utd:DIR@45`` the camera turned 45° round the person), which is
what evaluation and validation see. Clips of one subject and action share a group, so a
validation hold-out never sees a trial of the same subject doing the same action in training.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from actionpipe.training.datasets import Clip, check_split, each_with_progress
from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17
from actionpipe.training.virtual_camera import IMAGE_HEIGHT, IMAGE_WIDTH, Camera, project

FPS = 30.0
TRAIN_SUBJECTS = (1, 3, 5, 7)
# The dataset's own action names (a1 ... a27), as short labels.
ACTIONS = ("swipe_left", "swipe_right", "wave", "clap", "throw", "arms_cross", "basketball_shoot",
           "draw_x", "draw_circle_cw", "draw_circle_ccw", "draw_triangle", "bowling", "boxing",
           "baseball_swing", "tennis_forehand", "arm_curl", "tennis_serve", "push", "knock", "catch",
           "pickup_throw", "jog", "walk", "sit_to_stand", "stand_to_sit", "lunge", "squat")
# COCO-17 joint <- Kinect joint (0-based, Skeleton_joint_order.txt); "left" is the person's own left.
KINECT_TO_COCO17 = {"nose": 0, "left_shoulder": 4, "left_elbow": 5, "left_wrist": 6, "right_shoulder": 8,
                    "right_elbow": 9, "right_wrist": 10, "left_hip": 12, "left_knee": 13, "left_ankle": 14,
                    "right_hip": 16, "right_knee": 17, "right_ankle": 18}
_NAME = re.compile(r"a(\d+)_s(\d+)_t(\d+)_skeleton\.mat$")


def parse_source(text: str) -> tuple[Path, float]:
    """``DIR`` or ``DIR@YAW``: the dataset folder and the yaw (degrees) of its fixed view."""
    root, sep, yaw = text.rpartition("@")
    if not sep:
        return Path(text), 0.0
    try:
        return Path(root), float(yaw)
    except ValueError:
        raise ActionpipeError(text, f"view {yaw!r} after '@' is not a number of degrees") from None


def load_clip(path: str | Path, view: Camera = Camera()) -> Clip:
    """One skeleton file as a COCO-17 clip, its 3-D joints kept and ``keypoints`` seen from ``view``."""
    from scipy.io import loadmat

    path = Path(path)
    match = _NAME.search(path.name)
    if not match:
        raise ActionpipeError(path, "not a UTD-MHAD skeleton file name (a{action}_s{subject}_t{trial}_skeleton.mat)")
    action, subject, trial = (int(g) for g in match.groups())
    if not 1 <= action <= len(ACTIONS):
        raise ActionpipeError(path, f"action a{action}: UTD-MHAD has a1 ... a{len(ACTIONS)}")
    try:
        skeleton = np.asarray(loadmat(str(path))["d_skel"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ActionpipeError(path, f"not a readable UTD-MHAD skeleton: {type(exc).__name__}: {exc}") from None
    if skeleton.ndim != 3 or skeleton.shape[:2] != (20, 3) or skeleton.shape[2] < 1:
        raise ActionpipeError(path, f"d_skel must be 20×3×T (got {skeleton.shape})")
    if not np.isfinite(skeleton).all():
        raise ActionpipeError(path, "d_skel holds non-finite coordinates")
    frames = skeleton.transpose(2, 0, 1)                                  # (T, 20, 3)
    points = np.zeros((1, frames.shape[0], COCO17.num_joints, 3), dtype=np.float32)
    present = np.zeros(points.shape[:3], dtype=bool)
    for joint, kinect in KINECT_TO_COCO17.items():
        points[0, :, COCO17.index(joint)] = frames[:, kinect]
        present[0, :, COCO17.index(joint)] = True
    return Clip(path.stem.removesuffix("_skeleton"), ACTIONS[action - 1], project(points, present, view),
                COCO17.name, IMAGE_WIDTH, IMAGE_HEIGHT, FPS,
                split="train" if subject in TRAIN_SUBJECTS else "test", label_index=action - 1,
                track_ids=np.array([1]), path=str(path), group=f"utd-s{subject}-a{action}",
                points3d=points, present3d=present)


def load_utd_mhad(source: str | Path, split: str | None = None) -> list[Clip]:
    """All clips of ``source`` (``DIR`` or ``DIR@YAW``; DIR is the dataset or its ``Skeleton/``),
    of ``split`` ("train": subjects 1, 3, 5, 7; "test": 2, 4, 6, 8) when given."""
    check_split(split)
    root, yaw = parse_source(str(source))
    folder = root / "Skeleton" if (root / "Skeleton").is_dir() else root
    files = sorted((f for f in folder.glob("a*_s*_t*_skeleton.mat") if _NAME.search(f.name)),
                   key=lambda f: tuple(int(g) for g in _NAME.search(f.name).groups()))
    if not files:
        raise ActionpipeError(root, "no UTD-MHAD Skeleton/a*_s*_t*_skeleton.mat files here")
    view = Camera(yaw=yaw)
    clips = [load_clip(f, view) for f in each_with_progress(files, "UTD-MHAD")]
    return [c for c in clips if split is None or c.split == split]
