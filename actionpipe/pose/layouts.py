"""Skeleton layouts (named joints, bones, centre joint) and conversion between them by joint name.

Every conversion goes through joint *names*, never through index tables typed by hand: the
left/right swaps other tools suffer from come from such tables. Joints a target layout has but the
source lacks are either derived (``neck`` = midpoint of the shoulders, confidence the smaller of
the two) or left empty (x = y = confidence = 0).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from actionpipe.core.errors import ActionpipeError


@dataclass(frozen=True)
class SkeletonLayout:
    """A skeleton: joint names in array order, bones as index pairs, and the graph's centre joint."""

    name: str
    joints: tuple[str, ...]
    bones: tuple[tuple[int, int], ...]
    center: int
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.joints)})

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Array index of a named joint."""
        return self._index[joint]

    def has(self, joint: str) -> bool:
        return joint in self._index

    def flip_permutation(self) -> np.ndarray:
        """Index permutation that swaps every ``left_*`` joint with its ``right_*`` twin."""
        perm = np.arange(self.num_joints)
        for i, name in enumerate(self.joints):
            for a, b in (("left_", "right_"), ("right_", "left_")):
                if name.startswith(a) and self.has(b + name[len(a):]):
                    perm[i] = self.index(b + name[len(a):])
        return perm


def _layout(name: str, joints: str, bones: list[tuple[int, int]], center: int) -> SkeletonLayout:
    return SkeletonLayout(name, tuple(joints.split()), tuple(bones), center)


COCO17 = _layout(
    "coco17",
    "nose left_eye right_eye left_ear right_ear left_shoulder right_shoulder left_elbow right_elbow "
    "left_wrist right_wrist left_hip right_hip left_knee right_knee left_ankle right_ankle",
    # COCO has no neck: the graph is centred on the nose, which links to both shoulders (as in
    # PYSKL's coco graph), so every limb is within a few hops of the centre.
    [(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6),
     (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2), (11, 12)],
    center=0,
)

OPENPOSE18 = _layout(
    "openpose18",
    "nose neck right_shoulder right_elbow right_wrist left_shoulder left_elbow left_wrist right_hip "
    "right_knee right_ankle left_hip left_knee left_ankle right_eye left_eye right_ear left_ear",
    # The reference ST-GCN's Kinetics graph, edge for edge.
    [(4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1),
     (2, 1), (0, 1), (15, 0), (14, 0), (17, 15), (16, 14)],
    center=1,
)

BODY25 = _layout(
    "body25",
    "nose neck right_shoulder right_elbow right_wrist left_shoulder left_elbow left_wrist mid_hip "
    "right_hip right_knee right_ankle left_hip left_knee left_ankle right_eye left_eye right_ear "
    "left_ear left_big_toe left_small_toe left_heel right_big_toe right_small_toe right_heel",
    [(0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (10, 11),
     (8, 12), (12, 13), (13, 14), (0, 15), (0, 16), (15, 17), (16, 18), (14, 19), (19, 20),
     (14, 21), (11, 22), (22, 23), (11, 24)],
    center=1,
)

NTU25 = _layout(
    "ntu25",
    "spine_base spine_mid neck head left_shoulder left_elbow left_wrist left_hand right_shoulder "
    "right_elbow right_wrist right_hand left_hip left_knee left_ankle left_foot right_hip right_knee "
    "right_ankle right_foot spine_shoulder left_hand_tip left_thumb right_hand_tip right_thumb",
    # The reference ST-GCN's NTU RGB+D graph (0-based).
    [(0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9),
     (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18),
     (21, 22), (22, 7), (23, 24), (24, 11)],
    center=20,
)

LAYOUTS: dict[str, SkeletonLayout] = {l.name: l for l in (COCO17, OPENPOSE18, BODY25, NTU25)}

# Joints a layout may lack but that can be made from two others: midpoint, min confidence.
DERIVED_JOINTS: dict[str, tuple[str, str]] = {
    "neck": ("left_shoulder", "right_shoulder"),
    "mid_hip": ("left_hip", "right_hip"),
    "spine_shoulder": ("left_shoulder", "right_shoulder"),
    "spine_base": ("left_hip", "right_hip"),
}


def get_layout(name: str) -> SkeletonLayout:
    """Look a layout up by name (``coco17``, ``openpose18``, ``body25``, ``ntu25``)."""
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ActionpipeError(None, f"unknown skeleton layout {name!r} (known: {', '.join(LAYOUTS)})") from None


def convert_keypoints(keypoints: np.ndarray, source: str | SkeletonLayout,
                      target: str | SkeletonLayout) -> np.ndarray:
    """Map keypoints ``[..., V_source, 3]`` (x, y, conf) to ``[..., V_target, 3]`` by joint name.

    Target joints the source lacks are derived where :data:`DERIVED_JOINTS` says how, otherwise zero.
    """
    src = source if isinstance(source, SkeletonLayout) else get_layout(source)
    dst = target if isinstance(target, SkeletonLayout) else get_layout(target)
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if keypoints.shape[-2:] != (src.num_joints, 3):
        raise ActionpipeError(None, f"keypoints of shape {keypoints.shape} do not fit layout "
                                    f"{src.name} ({src.num_joints} joints × 3)")
    if src.name == dst.name:
        return keypoints.copy()
    out = np.zeros(keypoints.shape[:-2] + (dst.num_joints, 3), dtype=np.float32)
    for j, name in enumerate(dst.joints):
        if src.has(name):
            out[..., j, :] = keypoints[..., src.index(name), :]
        elif name in DERIVED_JOINTS and all(src.has(n) for n in DERIVED_JOINTS[name]):
            a, b = (keypoints[..., src.index(n), :] for n in DERIVED_JOINTS[name])
            out[..., j, :2] = (a[..., :2] + b[..., :2]) / 2
            out[..., j, 2] = np.minimum(a[..., 2], b[..., 2])
    # A joint with no confidence carries no position either.
    out[..., :2] *= (out[..., 2:3] > 0)
    return out
