"""MSR Action3D Kinect skeletons (Li, Zhang, Liu, CVPR Workshops 2010; research use) as 2-D clips.

``skeletons/aAA_sSS_eEE_skeleton.txt``: 20 rows a frame of ``u v depth confidence``, u and v pixels of
the 320×240 depth image (a true 2-D projection), 15 fps, one person facing the camera. 13 of COCO-17's
joints exist (the head stands in for the nose; no eyes or ears: the cards mask them). The file's
"L" joints have the smaller u, i.e. they sit where a camera facing the person sees its *right*
side, so they map to COCO's ``right_*`` (a mirrored sensor only swaps handedness, which training's
flips cover anyway). A joint of confidence 0 is missing, and so is one off the 320×240 image (a few
files hold the sensor's overflow value 2**31 − 1); ``(0, 1)`` is kept as the dataset's
(tracked-but-inferred) confidence. Cross-subject split of the literature: odd subjects train, even test.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17
from actionpipe.training.datasets import Clip, check_split, each_with_progress, odd_subject_split

FPS = 15.0
WIDTH, HEIGHT = 320, 240
JOINTS_PER_FRAME = 20
# The dataset's actions a01 ... a20, as short labels (a training label map renames them).
ACTIONS = ("high_arm_wave", "horizontal_arm_wave", "hammer", "hand_catch", "forward_punch", "high_throw",
           "draw_x", "draw_tick", "draw_circle", "hand_clap", "two_hand_wave", "side_boxing", "bend",
           "forward_kick", "side_kick", "jogging", "tennis_swing", "tennis_serve", "golf_swing", "pickup_throw")
# COCO-17 joint <- file row (0-based); see the module docstring for left and right.
MSR_TO_COCO17 = {"nose": 19, "right_shoulder": 0, "left_shoulder": 1, "right_hip": 4, "left_hip": 5,
                 "right_elbow": 7, "left_elbow": 8, "right_wrist": 9, "left_wrist": 10, "right_knee": 13,
                 "left_knee": 14, "right_ankle": 15, "left_ankle": 16}
_NAME = re.compile(r"a(\d+)_s(\d+)_e(\d+)_skeleton\.txt$")


def subject_split(name: str) -> str:
    """The cross-subject split of a skeleton file (by its name): odd subjects train, even test."""
    return odd_subject_split(int(_NAME.search(name).group(2)))


def load_clip(path: str | Path) -> Clip:
    """One skeleton file as a COCO-17 clip in depth-image pixels."""
    path = Path(path)
    match = _NAME.search(path.name)
    if not match:
        raise ActionpipeError(path, "not an MSR Action3D skeleton file name (aAA_sSS_eEE_skeleton.txt)")
    action, subject, _ = (int(g) for g in match.groups())
    if not 1 <= action <= len(ACTIONS):
        raise ActionpipeError(path, f"action a{action:02d}: MSR Action3D has a01 ... a{len(ACTIONS)}")
    try:
        rows = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ActionpipeError(path, f"not a readable MSR Action3D skeleton: {exc}") from None
    if rows.shape[1] != 4 or len(rows) < JOINTS_PER_FRAME or len(rows) % JOINTS_PER_FRAME:
        raise ActionpipeError(path, f"expected 4 numbers a row and 20 rows a frame (got {rows.shape})")
    if not np.isfinite(rows).all():
        raise ActionpipeError(path, "non-finite numbers")
    frames = rows.reshape(-1, JOINTS_PER_FRAME, 4)
    keypoints = np.zeros((1, len(frames), COCO17.num_joints, 3), dtype=np.float32)
    for joint, row in MSR_TO_COCO17.items():
        conf = np.clip(frames[:, row, 3], 0.0, 1.0)
        keypoints[0, :, COCO17.index(joint)] = np.stack([frames[:, row, 0], frames[:, row, 1], conf], -1)
    # Some files hold sensor overflow values (v = 2**31 - 1) for joints it lost: off the depth image
    # is missing, as a pose model never reports a joint far outside its frame.
    xy = keypoints[..., :2]
    off_image = (xy[..., 0] < 0) | (xy[..., 0] > WIDTH) | (xy[..., 1] < 0) | (xy[..., 1] > HEIGHT)
    keypoints[off_image] = 0.0
    keypoints[keypoints[..., 2] == 0] = 0.0
    return Clip(path.stem.removesuffix("_skeleton"), ACTIONS[action - 1], keypoints, COCO17.name, WIDTH, HEIGHT,
                FPS, split=subject_split(path.name), label_index=action - 1, track_ids=np.array([1]),
                path=str(path), group=f"msr-s{subject}-a{action}")


def load_msr_action3d(root: str | Path, split: str | None = None) -> list[Clip]:
    """All clips of ``root`` (the dataset or its ``skeletons/``) of ``split`` ("train": odd subjects,
    "test": even) when given."""
    check_split(split)
    root = Path(root)
    folder = root / "skeletons" if (root / "skeletons").is_dir() else root
    files = sorted(f for f in folder.glob("a*_s*_e*_skeleton.txt") if _NAME.search(f.name))
    if not files:
        raise ActionpipeError(root, "no MSR Action3D skeletons/aAA_sSS_eEE_skeleton.txt files here")
    wanted = [f for f in files if split is None or subject_split(f.name) == split]
    return [load_clip(f) for f in each_with_progress(wanted, "MSR Action3D")]
