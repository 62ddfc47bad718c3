"""Joint alignment (hips and nose moved to the pose model's proportions) and the UR Fall loader."""
from __future__ import annotations

import json

import numpy as np
import pytest

from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17
from actionpipe.training.config import load_config, load_dataset
from actionpipe.training.datasets import Clip
from actionpipe.training.joint_alignment import align_clip, check_alignment
from helpers import shared_path


def standing_clip(points3d: bool = False) -> Clip:
    kp = np.zeros((1, 2, 17, 3), np.float32)
    for joint, xy in {"nose": (50, 10), "left_shoulder": (60, 30), "right_shoulder": (40, 30),
                      "left_hip": (58, 70), "right_hip": (42, 70)}.items():
        kp[0, :, COCO17.index(joint)] = (*xy, 1.0)
    kp[0, 1, COCO17.index("left_hip"), 2] = 0.0   # missing in frame 1: stays where it is
    p3 = np.concatenate([kp[..., :2] / 100, np.zeros_like(kp[..., :1])], -1) if points3d else None
    return Clip("c", "squat", kp, "coco17", 100, 100, 30.0, points3d=p3,
                present3d=(kp[..., 2] > 0) if points3d else None)


def test_hips_and_nose_move_about_their_references():
    clip = align_clip(standing_clip(), {"hip_width": 0.5, "nose_height": 1.5})
    kp = clip.keypoints[0]
    assert kp[0, COCO17.index("left_hip"), :2].tolist() == [54, 70]
    assert kp[0, COCO17.index("right_hip"), :2].tolist() == [46, 70]
    assert kp[0, COCO17.index("nose"), :2].tolist() == [50, 0]       # 20 px above the shoulders -> 30
    # frame 1: the left hip is missing, so neither hip moves (no midpoint)
    assert kp[1, COCO17.index("right_hip"), :2].tolist() == [42, 70]
    assert kp[1, COCO17.index("left_hip"), 2] == 0


def test_three_d_points_move_too_and_identity_is_a_no_op():
    clip = standing_clip(points3d=True)
    moved = align_clip(clip, {"hip_width": 2.0})
    assert moved.points3d[0, 0, COCO17.index("left_hip"), 0] == pytest.approx(0.66)
    assert align_clip(clip, {"hip_width": 1.0}) is clip and align_clip(clip, None) is clip


def test_bad_alignment_is_refused(tmp_path):
    for bad in ({"hip": 1.0}, {"hip_width": 0}, {"nose_height": float("nan")}, [1]):
        with pytest.raises(ActionpipeError):
            check_alignment(bad)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"datasets": [{"dataset": "penn:x", "align": {"hip_width": -1}}]}))
    with pytest.raises(ActionpipeError, match=r"datasets\[0\].*align"):
        load_config(config)


def test_urfd_fall_clips():
    root = shared_path("datasets/urfd_fall")
    train, _ = load_dataset(f"urfd:{root}", "train")
    test, _ = load_dataset(f"urfd:{root}", "test")
    assert len(train) == 24 and len(test) == 6 and {c.label for c in train + test} == {"fall"}
    kp = train[0].keypoints
    assert kp.shape[2:] == (17, 3) and (kp[..., COCO17.index("left_eye"), 2] == 0).all()
    assert 0 < kp[..., 0].max() <= 640 and 0 <= kp[..., 2].min() and kp[..., 2].max() <= 1
