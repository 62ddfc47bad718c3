"""Repetition counts for classify's results: the tracked person's keypoints, counted when the
class is a repetitive one (:func:`actionpipe.counting.reps_for` holds that rule)."""
from __future__ import annotations

from typing import Any

import numpy as np


def track_keypoints(pose, track_id: int) -> np.ndarray | None:
    """``(T, 17, 3)`` COCO-17 keypoints of one track over the pose file's frames (zeros where the
    person is not seen), or None for a pose file of another layout."""
    if pose.layout != "coco17":
        return None
    out = np.zeros((pose.num_frames, 17, 3), np.float32)
    for i, frame in enumerate(pose.frames):
        for person in frame.people:
            if person.track_id == track_id:
                out[i] = person.keypoints
    return out


def reps_dict(label: str | None, keypoints: np.ndarray | None, fps: float) -> dict[str, Any] | None:
    """The ``reps`` field of a result: ``{"count", "partial", "times_s", "confidence", "repetitions"}``
    for a repetitive class, else None (no class, not repetitive by nature, or no keypoints)."""
    if label is None or keypoints is None or not len(keypoints):
        return None
    from actionpipe.counting import reps_for  # scipy: ~0.5 s of start-up that only counting needs

    found = reps_for(label, keypoints, fps)
    return None if found is None else found.to_dict()
