"""Speed profiles for ``classify``: how much pose work a video gets, and how precise.

``normal`` runs the pose model on every frame at the model's rate, at the card's precision.
``fast`` runs it on every second one and fills the frames between by interpolating each person's
box and keypoints linearly between the two pose frames around them (:func:`interpolate_pose`),
and runs the OpenVINO pose model in bf16 where the CPU computes bf16 natively (the shipped cards'
precision too, so this matters for a card validated at fp32). What that costs in accuracy is
measured in ``benchmarks/bench_e2e.py`` and docs/performance.md.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpeedProfile:
    pose_every: int               # the model's frames per pose-model frame
    pose_precision: str | None    # the pose precision asked for (bf16 runs where the CPU has it); None: the card's


SPEEDS = {"normal": SpeedProfile(1, None), "fast": SpeedProfile(2, "bf16")}
DEFAULT_SPEED = "normal"


def _blend(a, b, w: float):
    """Person ``a`` moved a fraction ``w`` of the way to ``b``; a joint unseen in either stays unseen."""
    import numpy as np

    from actionpipe.pose.posefile import Person

    kp = (1 - w) * a.keypoints + w * b.keypoints
    seen = (a.keypoints[:, 2] > 0) & (b.keypoints[:, 2] > 0)
    kp[:, 2] = np.where(seen, np.minimum(a.keypoints[:, 2], b.keypoints[:, 2]), 0)
    kp[~seen, :2] = 0
    box = (1 - w) * np.asarray(a.box) + w * np.asarray(b.box)
    return Person(a.track_id, min(a.score, b.score), box, kp.astype(np.float32))


def interpolate_pose(pose, fps: float):
    """``pose`` resampled to ``fps`` (higher than its own) on its first..last frame times: a frame
    within a quarter step of a pose frame is that frame, any other holds the people seen in the
    pose frames on both sides of it, interpolated by time (a person in only one of them is left out)."""
    # numpy and the pose file are imported here: the CLI imports SPEEDS for its --help.
    import numpy as np

    from actionpipe.pose.posefile import PoseFile, PoseFrame

    if not pose.frames or fps <= pose.fps:
        return pose
    times = np.array([f.time_s for f in pose.frames])
    grid = np.arange(times[0], times[-1] + 0.25 / fps, 1.0 / fps)
    frames = []
    for k, t in enumerate(grid):
        after = min(int(np.searchsorted(times, t)), len(times) - 1)
        near = after if abs(times[after] - t) <= abs(times[after - 1] - t) or after == 0 else after - 1
        if abs(times[near] - t) <= 0.25 / fps:
            source = pose.frames[near]
            frames.append(PoseFrame(k, source.time_s, source.people))
            continue
        a, b = pose.frames[after - 1], pose.frames[after]
        w = (t - a.time_s) / (b.time_s - a.time_s)
        later = {p.track_id: p for p in b.people}
        frames.append(PoseFrame(k, float(t), [_blend(p, later[p.track_id], w) for p in a.people
                                              if p.track_id in later]))
    backend = dict(pose.backend, interpolated_from_fps=pose.fps)
    return PoseFile(pose.layout, pose.width, pose.height, fps, frames, pose.source, backend, pose.weights_sha256)
