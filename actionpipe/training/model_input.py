"""Dataset clips -> the model's input, shared by training, evaluation and calibration.

A :class:`~actionpipe.training.datasets.Clip` goes through :func:`actionpipe.skeleton.pack.prepare_keypoints` exactly
as a pose file does at inference (after resampling to the model's frame rate), so a model is
trained, validated, evaluated and calibrated on the input ``classify`` gives it. Training adds the
pixel-space augmentation of :mod:`actionpipe.training.augment`, a speed jitter (a 3-D clip is first filmed by
a random virtual camera) and a random ``window_frames`` crop (loop-padded when short, like inference).
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from actionpipe.training.augment import AugmentConfig, augment
from actionpipe.training.datasets import Clip
from actionpipe.skeleton.pack import PackSpec, Sample, fit_length, prepare_keypoints, resample_time


def clip_to_model_space(clip: Clip, spec: PackSpec, speed: float = 1.0,
                        keypoints: np.ndarray | None = None) -> np.ndarray:
    """A clip's first ``spec.max_people`` people resampled to ``spec.fps`` (as if played ``speed``×
    faster) and prepared like inference does: ``(C, T, V, M)`` float32."""
    kp = clip.keypoints if keypoints is None else keypoints
    m = spec.max_people
    if kp.shape[0] < m:
        kp = np.concatenate([kp, np.zeros((m - kp.shape[0],) + kp.shape[1:], np.float32)])
    kp = kp[:m]
    if spec.fps:
        kp = kp[:, resample_time(np.arange(kp.shape[1]) / (clip.fps * speed), spec.fps)]
    out = prepare_keypoints(kp, clip.layout, spec, clip.width, clip.height)
    return np.ascontiguousarray(out.transpose(3, 1, 2, 0))


def clip_sample(clip: Clip, spec: PackSpec) -> Sample:
    """A dataset clip prepared exactly as in training, as a Sample the Predictor takes."""
    data = clip_to_model_space(clip, spec)
    t = data.shape[1]
    return Sample(data[None], np.arange(spec.max_people), np.arange(t),
                  np.arange(t) / float(spec.fps or clip.fps), {"layout": spec.layout})


def augmented_keypoints(clip: Clip, aug: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The clip's keypoints with the spatial augmentation, and a random speed factor (the jitter).
    A 3-D clip is first filmed by a random virtual camera (``aug.view_yaw``/``view_pitch``). A pose
    model's confidences (``clip.estimated``) stay as they are: the confidence model turns annotation
    flags into such confidences, and would read every real confidence below 1 as "occluded"."""
    if clip.estimated and aug.confidence:
        aug = replace(aug, confidence=False)
    kp = clip.keypoints
    if clip.points3d is not None and (aug.view_yaw or aug.view_pitch):
        from actionpipe.training.virtual_camera import Camera, project
        kp = project(clip.points3d, clip.present3d, Camera.random(rng, aug.view_yaw, aug.view_pitch))
    kp = augment(kp, rng, aug, clip.layout, clip.width, clip.height)
    speed = math.exp(rng.uniform(-1, 1) * math.log1p(aug.speed)) if aug.speed else 1.0
    return kp, speed


def training_sample(clip: Clip, spec: PackSpec, window: int, aug: AugmentConfig,
                    rng: np.random.Generator) -> np.ndarray:
    """One augmented training input ``(C, window, V, M)``: spatial augmentation, speed jitter, crop."""
    kp, speed = augmented_keypoints(clip, aug, rng)
    data = clip_to_model_space(clip, spec, speed, kp)
    length = data.shape[1]
    if length > window:
        start = int(rng.integers(0, length - window + 1))
        data = data[:, start:start + window]
    return fit_length(data, window, spec.pad, axis=1)
