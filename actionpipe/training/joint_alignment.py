"""Align a dataset's joints with where YOLO11n-pose puts them, before training sees them.

Ground-truth skeletons name the same joints differently placed: Kinect's hips sit close together
near the pelvis, Penn Action's annotated hips wider than COCO's, and Penn's and JHMDB's head joint
(which stands in for the nose) higher above the shoulders than YOLO's nose. A dataset entry's
``align`` moves them to the pose model's proportions, measured on real footage
(``benchmarks/pose_domain.py``):

* ``hip_width``: each hip's offset from the hips' midpoint is multiplied by it;
* ``nose_height``: the nose's offset from the shoulders' midpoint is multiplied by it.

Applied to the 2-D keypoints and, for 3-D clips, to the 3-D points before the virtual camera films
them. Missing joints stay missing.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import is_number
from actionpipe.pose.layouts import get_layout

ALIGN_KEYS = ("hip_width", "nose_height")


def check_alignment(align, where=None) -> None:
    if not isinstance(align, dict) or set(align) - set(ALIGN_KEYS) or not all(
            is_number(v) and 0 < v <= 4 for v in align.values()):
        raise ActionpipeError(where, f"align: expected {{{', '.join(ALIGN_KEYS)}}} with factors in (0, 4]")


def _scale_about(points: np.ndarray, present: np.ndarray, joints: tuple[int, ...], a: int, b: int,
                 factor: float) -> None:
    """Each of ``joints`` moved away from the (original) midpoint of joints a, b by ``factor``, in
    place, where it and both references are present."""
    mid = (points[..., a, :] + points[..., b, :]) / 2
    for joint in joints:
        ok = present[..., joint] & present[..., a] & present[..., b]
        moved = mid + factor * (points[..., joint, :] - mid)
        points[..., joint, :] = np.where(ok[..., None], moved, points[..., joint, :])


def _align(points: np.ndarray, present: np.ndarray, layout, align: dict[str, float]) -> np.ndarray:
    out = points.copy()
    lh, rh, ls, rs = (layout.index(j) for j in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"))
    if align.get("hip_width", 1.0) != 1.0:
        _scale_about(out, present, (lh, rh), lh, rh, align["hip_width"])
    if align.get("nose_height", 1.0) != 1.0:
        _scale_about(out, present, (layout.index("nose"),), ls, rs, align["nose_height"])
    return out


def align_clip(clip, align: dict[str, float] | None):
    """``clip`` with its joints moved as ``align`` says (itself when there is nothing to do)."""
    if not align or all(v == 1.0 for v in align.values()):
        return clip
    layout = get_layout(clip.layout)
    kp = clip.keypoints.copy()
    kp[..., :2] = _align(kp[..., :2], kp[..., 2] > 0, layout, align)
    points3d = None if clip.points3d is None else _align(clip.points3d, clip.present3d, layout, align)
    return replace(clip, keypoints=kp, points3d=points3d)


def card_alignment(card, dataset: str) -> dict[str, float] | None:
    """The ``align`` a model was trained with for data of ``dataset``'s kind (its card's training
    config), so that evaluating and calibrating on that dataset move its joints as training did."""
    kind = dataset.partition(":")[0]
    for entry in card.training_config.get("datasets") or []:
        if entry.get("dataset", "").partition(":")[0] == kind and entry.get("align"):
            return entry["align"]
    return None
