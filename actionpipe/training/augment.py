"""Training-time augmentation of skeleton sequences, in pixels, before :func:`actionpipe.skeleton.pack.prepare_keypoints`.

Every function takes keypoints ``(M, T, V, 3)`` (x, y in pixels, confidence), returns a new array
and leaves missing joints (confidence 0) missing: x = y = confidence = 0. They work in pixel space
so that what follows — layout conversion, joint mask, normalisation — is exactly the inference path.

What each step imitates:

* :func:`random_affine` — the ST-GCN paper's simulated camera motion: rotation, scale, shear and
  translation, drawn twice and interpolated from the first frame to the last.
* :func:`flip` — a mirrored video: x → W − x, and every ``left_*`` joint swapped with its
  ``right_*`` twin (by name, :meth:`SkeletonLayout.flip_permutation`).
* :func:`add_noise` — a pose estimator's frame-to-frame jitter, relative to the person's size.
* :func:`drop_joints` — a pose estimator's misses: whole joints (one frame, or the whole clip).
* :func:`cut_below` — a camera framed above the feet (gym and phone footage): every joint below a
  line across the legs is missing for the whole clip (YOLO11n-pose misses legs on 21 % of real
  joint-frames, the ground-truth datasets on 6-16 %: ``benchmarks/pose_domain.py``).
* :func:`estimator_confidence` — replaces annotation flags (1 visible, in (0, 1) occluded) with
  confidences distributed like YOLO11n-pose's (measured on real footage: median ~0.97 for
  visible joints, a broad spread for occluded ones). A constant confidence channel would let
  the model's ``data_bn`` learn zero variance for it and blow any real missing joint up ~300×.

Temporal augmentation (random crop, speed jitter) lives in :mod:`actionpipe.training.train`, where the clip
is resampled to the model's frame rate.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actionpipe.pose.layouts import SkeletonLayout, get_layout


@dataclass
class AugmentConfig:
    """Augmentation strengths; 0 turns a step off. Angles in degrees, sizes as fractions."""

    flip: float = 0.5               # probability of a horizontal flip
    rotation: float = 10.0          # max |rotation|, degrees
    scale: float = 0.15             # scale in [1 - s, 1 + s]
    aspect: float = 0.1             # extra x-only scale in [1 - a, 1 + a] (other aspect ratios, lenses)
    shear: float = 0.1              # max |shear| (x += shear * y)
    translate: float = 0.1          # max |shift|, fraction of the frame size
    camera_motion: float = 0.5      # probability the transform changes over the clip (start → end)
    speed: float = 0.25             # playback speed in [1 / (1 + s), 1 + s], log-uniform
    noise: float = 0.01             # keypoint jitter, std as a fraction of the person's height
    joint_dropout: float = 0.03     # probability a joint is missing in a frame
    clip_joint_dropout: float = 0.03  # probability a joint is missing for the whole clip
    frame_cut: float = 0.0          # probability the frame's lower edge cuts the person's legs off
    confidence: bool = True         # model confidences on a pose estimator's
    view_yaw: float = 180.0         # 3-D clips: virtual camera yaw in ±view_yaw degrees (180: all round)
    view_pitch: float = 20.0        # 3-D clips: camera pitch in ±view_pitch degrees

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all (confidences left as they are; 3-D clips keep their fixed view)."""
        return cls(**{name: False if name == "confidence" else 0 for name in cls.__dataclass_fields__})


def _visible(kp: np.ndarray) -> np.ndarray:
    return kp[..., 2:3] > 0


def _affine_matrix(rng: np.random.Generator, cfg: AugmentConfig, width: int, height: int) -> np.ndarray:
    """A 2×3 matrix acting on coordinates relative to the rotation centre."""
    angle = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation))
    s = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
    a = rng.uniform(1 - cfg.aspect, 1 + cfg.aspect)
    shear = rng.uniform(-cfg.shear, cfg.shear)
    c, n = np.cos(angle), np.sin(angle)
    linear = s * np.array([[c, -n], [n, c]]) @ np.array([[a, shear], [0.0, 1.0]])
    shift = rng.uniform(-cfg.translate, cfg.translate, 2) * (width, height)
    return np.concatenate([linear, shift[:, None]], axis=1)


def random_affine(kp: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig,
                  width: int, height: int) -> np.ndarray:
    """Rotate/scale/shear/translate about the person's centre; confidences are kept.

    With probability ``cfg.camera_motion`` a second transform is drawn and the matrix moves
    linearly from the first to the second over the clip (the paper's "random moving").
    """
    out = kp.copy()
    visible = _visible(kp)[..., 0]
    if not visible.any():
        return out
    centre = np.median(kp[..., :2][visible], axis=0)
    first = _affine_matrix(rng, cfg, width, height)
    last = _affine_matrix(rng, cfg, width, height) if rng.random() < cfg.camera_motion else first
    num_frames = kp.shape[1]
    w = np.linspace(0.0, 1.0, num_frames)[:, None, None] if num_frames > 1 else np.zeros((1, 1, 1))
    mats = (1 - w) * first + w * last                                    # (T, 2, 3)
    rel = kp[..., :2] - centre                                           # (M, T, V, 2)
    moved = np.einsum("tij,mtvj->mtvi", mats[..., :2], rel) + mats[None, :, None, :, 2] + centre
    out[..., :2] = np.where(visible[..., None], moved, 0.0)
    return out


def flip(kp: np.ndarray, layout: str | SkeletonLayout, width: int) -> np.ndarray:
    """Mirror horizontally: x → width − x and left/right joints swapped by name."""
    lay = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
    out = kp[..., lay.flip_permutation(), :].copy()
    out[..., 0] = np.where(out[..., 2] > 0, width - out[..., 0], 0.0)
    return out


def person_height(kp: np.ndarray) -> np.ndarray:
    """Per person (M,): median over frames of the vertical extent of its visible joints (≥ 1 px)."""
    heights = np.ones(kp.shape[0], dtype=np.float32)
    for m in range(kp.shape[0]):
        y = np.where(kp[m, ..., 2] > 0, kp[m, ..., 1], np.nan)           # (T, V)
        seen = ~np.isnan(y).all(axis=1)
        if seen.any():
            extent = np.nanmax(y[seen], axis=1) - np.nanmin(y[seen], axis=1)
            heights[m] = max(float(np.median(extent)), 1.0)
    return heights


def add_noise(kp: np.ndarray, rng: np.random.Generator, std: float) -> np.ndarray:
    """Gaussian jitter on x and y of present joints, ``std`` × the person's height."""
    out = kp.copy()
    sigma = (std * person_height(kp))[:, None, None, None]
    out[..., :2] += rng.normal(size=kp[..., :2].shape).astype(np.float32) * sigma
    out[..., :2] *= _visible(kp)
    return out


def drop_joints(kp: np.ndarray, rng: np.random.Generator, frame_p: float, clip_p: float) -> np.ndarray:
    """Make whole joints missing (x = y = conf = 0): each (frame, joint) with ``frame_p``, each
    joint for the whole clip with ``clip_p`` (e.g. feet out of the frame)."""
    m, t, v, _ = kp.shape
    drop = rng.random((m, t, v)) < frame_p
    drop |= (rng.random((m, 1, v)) < clip_p)
    out = kp.copy()
    out[drop] = 0.0
    return out


def cut_below(kp: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """With probability ``p`` per person: joints below a level drawn between 55 % and 95 % of the
    person's vertical extent (over the clip, from the top: hips to ankles) are missing in every
    frame, as when the frame's lower edge cuts the legs off."""
    out = kp.copy()
    for m in range(kp.shape[0]):
        seen = kp[m, ..., 2] > 0
        if rng.random() >= p or not seen.any():
            continue
        y = kp[m, ..., 1][seen]
        top, bottom = np.percentile(y, 2), np.percentile(y, 98)
        level = top + rng.uniform(0.55, 0.95) * (bottom - top)
        out[m][kp[m, ..., 1] > level] = 0.0
    return out


def estimator_confidence(kp: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Annotation confidence → pose-estimator-like confidence, positions untouched.

    1 (visible) → Beta(4, 0.25) (median 0.99, 5 % below 0.72); in (0, 1) (occluded, position
    guessed) → uniform in [0.05, 0.8]; 0 stays 0.
    """
    out = kp.copy()
    conf = kp[..., 2]
    visible = rng.beta(4.0, 0.25, conf.shape).astype(np.float32)
    occluded = rng.uniform(0.05, 0.8, conf.shape).astype(np.float32)
    out[..., 2] = np.where(conf >= 1.0, np.maximum(visible, 1e-3),
                           np.where(conf > 0, occluded, 0.0))
    return out


def augment(kp: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig,
            layout: str | SkeletonLayout, width: int, height: int) -> np.ndarray:
    """All spatial steps of ``cfg`` in order: confidence, flip, affine, noise, joint dropout, frame cut."""
    out = np.asarray(kp, dtype=np.float32)
    if cfg.confidence:
        out = estimator_confidence(out, rng)
    if cfg.flip and rng.random() < cfg.flip:
        out = flip(out, layout, width)
    if cfg.rotation or cfg.scale or cfg.aspect or cfg.shear or cfg.translate:
        out = random_affine(out, rng, cfg, width, height)
    if cfg.noise:
        out = add_noise(out, rng, cfg.noise)
    if cfg.joint_dropout or cfg.clip_joint_dropout:
        out = drop_joints(out, rng, cfg.joint_dropout, cfg.clip_joint_dropout)
    if cfg.frame_cut:
        out = cut_below(out, rng, cfg.frame_cut)
    return out
