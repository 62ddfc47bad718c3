"""UR Fall Detection (Kwolek and Kepski, 2014; research use): 30 real falls seen through a real 2-D
pose model (AlphaPose), as training and evaluation clips of the class ``fall``.

``pose_urfd_3classes.csv``: one row per frame (``video, frame``, then ``Nose``, ``LShoulder`` …
``RAnkle`` as ``_x, _y, _s``: x and y shares of the 640×480 image, s the pose model's score, and a
per-frame label). Each recording is one clip, from standing through the fall to lying: the whole
event, as a camera sees it. COCO-17 minus eyes and ears (the cards mask those). Split by recording:
``fall-01`` … ``fall-24`` train, ``fall-25`` … ``fall-30`` test (:data:`TEST_FROM`).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17
from actionpipe.training.datasets import Clip, check_split

FPS = 30.0                    # the dataset's cam0 rate
WIDTH, HEIGHT = 640, 480
TEST_FROM = 25                # recordings fall-25 … fall-30 are the test split
LABEL = "fall"
JOINTS = {"Nose": "nose", "LShoulder": "left_shoulder", "RShoulder": "right_shoulder", "LElbow": "left_elbow",
          "RElbow": "right_elbow", "LWrist": "left_wrist", "RWrist": "right_wrist", "LHip": "left_hip",
          "RHip": "right_hip", "LKnee": "left_knee", "RKnee": "right_knee", "LAnkle": "left_ankle",
          "RAnkle": "right_ankle"}
FILE = "pose_urfd_3classes.csv"


def load_urfd_fall(path: str | Path, split: str | None = None) -> list[Clip]:
    """One ``fall`` clip per recording of ``path`` (the folder or its CSV), of ``split`` when given."""
    check_split(split)
    path = Path(path)
    path = path / FILE if path.is_dir() else path
    frames: dict[str, list[tuple[int, np.ndarray]]] = {}
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                points = np.zeros((COCO17.num_joints, 3), np.float32)
                for source, joint in JOINTS.items():
                    points[COCO17.index(joint)] = [float(row[f"{source}_x"]) * WIDTH,
                                                   float(row[f"{source}_y"]) * HEIGHT, float(row[f"{source}_s"])]
                frames.setdefault(row["video"], []).append((int(row["frame"]), points))
    except (OSError, KeyError, ValueError) as exc:
        raise ActionpipeError(path, f"not a URFD pose CSV (video, frame, JOINT_x/_y/_s): {exc}") from None
    if not frames:
        raise ActionpipeError(path, "no frames")
    clips = []
    for video, rows in sorted(frames.items()):
        clip_split = "test" if int(video.rsplit("-", 1)[-1]) >= TEST_FROM else "train"
        if split is not None and clip_split != split:
            continue
        rows.sort(key=lambda r: r[0])
        keypoints = np.stack([points for _, points in rows])[None]
        keypoints[..., 2] = np.clip(keypoints[..., 2], 0.0, 1.0)
        clips.append(Clip(f"urfd-{video}", LABEL, keypoints, COCO17.name, WIDTH, HEIGHT, FPS, split=clip_split,
                          track_ids=np.array([1]), path=f"{path}#{video}", estimated=True))
    return clips
