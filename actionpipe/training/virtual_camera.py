"""Film a 3-D skeleton with a virtual pinhole camera: 2-D keypoints as a video of it would show them.

A lab dataset of a few people facing one sensor (UTD-MHAD's Kinect) teaches viewpoint robustness
when every training clip is seen through a different camera: turned all round the person (yaw),
from a little above or below (pitch), near or far, with a wide or a long lens. Mirroring (a
left-handed version) is the 2-D flip of :mod:`actionpipe.training.augment`, applied afterwards.

Coordinates are Kinect camera space: metres, +x to the sensor's left of the subject's view, +y up,
+z away from the sensor. The projection ``u = cx − f·x/z, v = cy − f·y/z`` puts a subject's left
shoulder on the image's right when the subject faces the camera, as in a real video.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_WIDTH, IMAGE_HEIGHT = 640, 480
FOCAL_PX = 525.0                    # Kinect v1's, at 640×480
DISTANCE_M = 3.0                    # where UTD-MHAD's subjects stand
DISTANCE_RANGE_M = (2.0, 5.0)       # random cameras: near to far
FOCAL_RANGE_PX = (400.0, 1100.0)    # random cameras: wide to long lens


@dataclass(frozen=True)
class Camera:
    """A camera looking at the person's centre: ``yaw`` (degrees, 0 = in front of the person,
    90 = at the person's left side, 180 = behind), ``pitch`` (degrees, > 0 = above, looking down),
    ``distance`` (metres from the person's centre) and ``focal`` (pixels)."""

    yaw: float = 0.0
    pitch: float = 0.0
    distance: float = DISTANCE_M
    focal: float = FOCAL_PX

    @classmethod
    def random(cls, rng: np.random.Generator, max_yaw: float, max_pitch: float) -> "Camera":
        """Yaw uniform in ±``max_yaw``, pitch in ±``max_pitch``, distance and focal length uniform."""
        return cls(float(rng.uniform(-max_yaw, max_yaw)), float(rng.uniform(-max_pitch, max_pitch)),
                   float(rng.uniform(*DISTANCE_RANGE_M)), float(rng.uniform(*FOCAL_RANGE_PX)))


def project(points: np.ndarray, present: np.ndarray, camera: Camera = Camera()) -> np.ndarray:
    """Keypoints ``(M, T, V, 3)`` (x, y in pixels of a 640×480 image, confidence 1 where ``present``,
    else all 0) of 3-D joints ``points`` ``(M, T, V, 3)`` seen by ``camera``.

    The person is turned about the vertical axis through its centre (the mean of its present joints
    over the clip) and the camera placed ``distance`` in front of that centre; ``present`` ``(M, T, V)``
    marks the joints that exist.
    """
    out = np.zeros(points.shape, dtype=np.float32)
    if not present.any():
        return out
    centre = points[present].mean(axis=0)
    rel = points - centre
    # Turning the camera by +yaw about the person is turning the person by -yaw in front of it.
    a, b = np.deg2rad(camera.yaw), np.deg2rad(camera.pitch)
    x = np.cos(a) * rel[..., 0] - np.sin(a) * rel[..., 2]
    z = np.sin(a) * rel[..., 0] + np.cos(a) * rel[..., 2]
    y = np.cos(b) * rel[..., 1] + np.sin(b) * z          # camera above: the far side rises
    z = -np.sin(b) * rel[..., 1] + np.cos(b) * z + camera.distance
    z = np.maximum(z, 0.1)                                # never behind the lens
    out[..., 0] = IMAGE_WIDTH / 2 - camera.focal * x / z
    out[..., 1] = IMAGE_HEIGHT / 2 - camera.focal * y / z
    out[..., 2] = 1.0
    out[~present] = 0.0
    return out
