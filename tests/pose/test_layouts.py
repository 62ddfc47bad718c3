"""Layout mapping is by joint name: every check here names joints instead of trusting index tables."""
from __future__ import annotations

import numpy as np
import pytest

from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import BODY25, COCO17, LAYOUTS, OPENPOSE18, convert_keypoints, get_layout


def named_keypoints(layout, conf=None) -> np.ndarray:
    """Keypoints whose x encodes the joint (10 * index + 1), so a moved joint is recognisable."""
    kp = np.zeros((layout.num_joints, 3), dtype=np.float32)
    kp[:, 0] = 10 * np.arange(layout.num_joints) + 1
    kp[:, 1] = 100 + np.arange(layout.num_joints)
    kp[:, 2] = conf if conf is not None else np.linspace(0.5, 0.95, layout.num_joints)
    return kp


def test_openpose18_order_is_the_reference_order():
    # ../shared/reference/README.md: 0 nose, 1 neck, 2 r_shoulder, ..., 17 l_ear
    reference = ("nose neck r_shoulder r_elbow r_wrist l_shoulder l_elbow l_wrist r_hip r_knee r_ankle "
                 "l_hip l_knee l_ankle r_eye l_eye r_ear l_ear").split()
    expanded = [n.replace("r_", "right_").replace("l_", "left_") for n in reference]
    assert list(OPENPOSE18.joints) == expanded


@pytest.mark.parametrize("source,target", [("coco17", "openpose18"), ("openpose18", "coco17"),
                                           ("body25", "openpose18"), ("body25", "coco17")])
def test_every_shared_joint_keeps_its_name(source, target):
    src, dst = get_layout(source), get_layout(target)
    kp = named_keypoints(src)
    out = convert_keypoints(kp, src, dst)
    assert out.shape == (dst.num_joints, 3)
    for name in src.joints:
        if dst.has(name):
            np.testing.assert_array_equal(out[dst.index(name)], kp[src.index(name)], err_msg=name)


def test_coco_left_wrist_lands_on_openpose_left_wrist():
    kp = np.zeros((17, 3), dtype=np.float32)
    kp[COCO17.index("left_wrist")] = (500, 300, 0.9)
    kp[COCO17.index("right_wrist")] = (100, 310, 0.8)
    out = convert_keypoints(kp, "coco17", "openpose18")
    assert tuple(out[7]) == pytest.approx((500, 300, 0.9))   # OpenPose index 7 = l_wrist
    assert tuple(out[4]) == pytest.approx((100, 310, 0.8))   # OpenPose index 4 = r_wrist
    back = convert_keypoints(out, "openpose18", "coco17")
    assert tuple(back[9]) == pytest.approx((500, 300, 0.9))  # COCO index 9 = left_wrist


def test_neck_is_shoulder_midpoint_with_smaller_confidence():
    kp = named_keypoints(COCO17)
    kp[COCO17.index("left_shoulder")] = (300, 200, 0.9)
    kp[COCO17.index("right_shoulder")] = (200, 220, 0.6)
    neck = convert_keypoints(kp, COCO17, OPENPOSE18)[OPENPOSE18.index("neck")]
    assert tuple(neck) == pytest.approx((250, 210, 0.6))


def test_neck_is_missing_when_a_shoulder_is():
    kp = named_keypoints(COCO17)
    kp[COCO17.index("right_shoulder")] = (200, 220, 0.0)
    neck = convert_keypoints(kp, COCO17, OPENPOSE18)[OPENPOSE18.index("neck")]
    assert tuple(neck) == (0, 0, 0)


def test_body25_extra_joints_are_dropped_and_neck_kept():
    kp = named_keypoints(BODY25)
    out = convert_keypoints(kp, BODY25, OPENPOSE18)
    # BODY_25's own neck is copied, not re-derived from the shoulders.
    np.testing.assert_array_equal(out[OPENPOSE18.index("neck")], kp[BODY25.index("neck")])
    dropped = {"mid_hip", "left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
               "right_small_toe", "right_heel"}
    assert set(BODY25.joints) - set(OPENPOSE18.joints) == dropped
    kept_x = set(out[:, 0].tolist())
    for name in dropped:
        assert kp[BODY25.index(name), 0] not in kept_x, name


def test_missing_target_joints_are_zero():
    out = convert_keypoints(named_keypoints(COCO17), COCO17, BODY25)
    for name in ("left_big_toe", "right_heel"):
        assert tuple(out[BODY25.index(name)]) == (0, 0, 0)
    mid_hip = out[BODY25.index("mid_hip")]  # derivable: hip midpoint
    assert mid_hip[2] > 0


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_flip_permutation_swaps_left_and_right_names(layout):
    perm = layout.flip_permutation()
    np.testing.assert_array_equal(perm[perm], np.arange(layout.num_joints))  # an involution
    for i, name in enumerate(layout.joints):
        flipped = layout.joints[perm[i]]
        if name.startswith("left_"):
            assert flipped == "right_" + name[5:]
        elif name.startswith("right_"):
            assert flipped == "left_" + name[6:]
        else:
            assert flipped == name


def test_shape_mismatch_and_unknown_layout_are_one_line_errors():
    with pytest.raises(ActionpipeError, match="do not fit layout coco17"):
        convert_keypoints(np.zeros((18, 3)), "coco17", "openpose18")
    with pytest.raises(ActionpipeError, match="unknown skeleton layout 'mpii'"):
        get_layout("mpii")
