"""JHMDB 2-D joint annotations (real movie and web footage) as training and evaluation clips.

``splitK.npz`` (K = 1, 2, 3, the official splits; Jhuang, Gall, Zuffi, Schmid, Black, ICCV 2013;
research use): ``joints`` (ΣT, 15, 2) in JHMDB's normalised puppet frame (y down, about −2.8 … 1.8),
``offsets`` (N+1), ``labels`` (N,), ``is_test`` (N,). The puppet coordinates are mapped to pixels of
a :data:`FRAME` × :data:`FRAME` image (:data:`PIXELS_PER_UNIT` per unit, so every clip fits); the
models' body normalisation makes the scale irrelevant, but pixel-space augmentation (translation as
a share of the frame, noise relative to the person) then behaves as on video.

The 15 puppet joints map to COCO-17 by name: the face stands in for the nose, eyes and ears are
missing (the cards mask them), neck and belly have no slot. Occluded joints were filled in by the
annotators, so every mapped joint has confidence 1. Clip names were not preserved by the files:
clips are numbered in file order (``jhmdb-1-0042``), and each is its own validation group.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from actionpipe.training.datasets import Clip, check_split
from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17

FPS = 30.0                 # HMDB clips are ~30 fps
PIXELS_PER_UNIT = 100.0
ORIGIN = 3.0               # puppet units added before scaling: all coordinates become positive
FRAME = 500                # pixels: (ORIGIN + 2) * PIXELS_PER_UNIT covers the data's range
# COCO-17 joint <- JHMDB puppet joint (0-based, README); "right" is the person's own right.
JHMDB_TO_COCO17 = {"nose": 2, "right_shoulder": 3, "left_shoulder": 4, "right_hip": 5, "left_hip": 6,
                   "right_elbow": 7, "left_elbow": 8, "right_knee": 9, "left_knee": 10, "right_wrist": 11,
                   "left_wrist": 12, "right_ankle": 13, "left_ankle": 14}


def load_jhmdb(path: str | Path, split: str | None = None) -> list[Clip]:
    """The clips of one split file (``split1.npz`` …), of ``split`` ("train"/"test") when given."""
    check_split(split)
    path = Path(path)
    if path.is_dir():
        raise ActionpipeError(path, "name one split file, e.g. jhmdb:DIR/split1.npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            joints, offsets = data["joints"].astype(np.float32), data["offsets"].astype(np.int64)
            labels, is_test = data["labels"].astype(str), data["is_test"].astype(bool)
    except (OSError, ValueError, KeyError) as exc:
        raise ActionpipeError(path, f"not a JHMDB split file (joints, offsets, labels, is_test): {exc}") from None
    n = len(labels)
    if (joints.ndim != 3 or joints.shape[1:] != (15, 2) or offsets.shape != (n + 1,) or is_test.shape != (n,)
            or offsets[0] != 0 or offsets[-1] != len(joints) or (np.diff(offsets) < 1).any()):
        raise ActionpipeError(path, "inconsistent JHMDB arrays: joints (ΣT, 15, 2), offsets (N+1) rising from 0 "
                                    "to ΣT, labels and is_test (N)")
    if not np.isfinite(joints).all():
        raise ActionpipeError(path, "joints hold non-finite coordinates")
    tag = path.stem.removeprefix("split")
    clips = []
    for i in range(n):
        clip_split = "test" if is_test[i] else "train"
        if split is not None and clip_split != split:
            continue
        frames = joints[offsets[i]:offsets[i + 1]]
        keypoints = np.zeros((1, len(frames), COCO17.num_joints, 3), dtype=np.float32)
        for joint, puppet in JHMDB_TO_COCO17.items():
            keypoints[0, :, COCO17.index(joint), :2] = (frames[:, puppet] + ORIGIN) * PIXELS_PER_UNIT
            keypoints[0, :, COCO17.index(joint), 2] = 1.0
        clips.append(Clip(f"jhmdb-{tag}-{i:04d}", str(labels[i]), keypoints, COCO17.name, FRAME, FRAME, FPS,
                          split=clip_split, track_ids=np.array([1]), path=f"{path}#{i}"))
    return clips
