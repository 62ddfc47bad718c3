"""Pack a pose file into an ST-GCN input: ``data`` float32 (1, C, T, V, M), C = x, y, confidence.

The steps, each a public function so training and inference share them exactly:

1. :func:`select_people` — keep the top-M tracks of the clip, each in a fixed slot for the whole
   clip (frames where it is absent are zeros), ranked by ``confidence`` (summed keypoint
   confidence over the clip), ``area`` (mean box area) or ``prominence`` (per frame, confidence ×
   the box's share of the frame area, summed).
2. :func:`resample_time` — to the model's frame rate, by timestamp.
3. layout conversion by joint name (:func:`actionpipe.pose.layouts.convert_keypoints`), joint mask.
4. :func:`normalize` — ``frame`` (the reference ST-GCN's: x/W − 0.5, y/H − 0.5) or ``body``
   (each person centred on its median torso centre and scaled by its median torso length).
5. :func:`fit_length` — crop/pad to T frames, if asked.

Sample file (npz, ``format_version`` 1): ``data`` (1, C, T, V, M) plus ``track_ids`` (M,),
``frame_indices`` (T,), ``times`` (T,), and a JSON string ``meta`` with layout, normalisation, fps,
width, height, source and the pack settings.
"""
from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import check_keys, is_number, parse_json, save_npz
from actionpipe.core.limits import MAX_FPS, MAX_FRAMES, MAX_PEOPLE
from actionpipe.pose.layouts import convert_keypoints, get_layout
from actionpipe.pose.posefile import PoseFile, PoseFrame

FORMAT_VERSION = 1
RANKINGS = ("confidence", "area", "prominence")
NORMALIZATIONS = ("frame", "body")
PADDINGS = ("loop", "zero")
MAX_RESAMPLED_FRAMES = 10_000_000  # over 7 days at 15 fps


@dataclass
class PackSpec:
    """How a model wants its input; a model card's ``preprocessing`` section, flags override."""

    layout: str = "openpose18"
    normalization: str = "frame"
    fps: float | None = None          # None: keep the pose file's rate
    max_people: int = 2
    rank: str = "confidence"
    frames: int | None = None         # None: keep the full length
    pad: str = "loop"
    joint_mask: list[str] = field(default_factory=list)  # joints zeroed (the model never saw them)
    min_confidence: float = 0.0       # keypoints below this count as missing (x = y = conf = 0)

    def __post_init__(self):
        layout = get_layout(self.layout)
        unknown = [j for j in self.joint_mask if not layout.has(j)]
        if unknown:
            raise ActionpipeError(None, f"joint_mask names joints layout {self.layout} does not have: "
                                        f"{', '.join(unknown)}")
        for value, allowed, what in ((self.normalization, NORMALIZATIONS, "normalization"),
                                     (self.rank, RANKINGS, "rank"), (self.pad, PADDINGS, "pad")):
            if value not in allowed:
                raise ActionpipeError(None, f"unknown {what} {value!r} (expected one of {', '.join(allowed)})")
        if not is_number(self.max_people, whole=True) or not 1 <= self.max_people <= MAX_PEOPLE:
            raise ActionpipeError(None, f"max_people must be a whole number from 1 to {MAX_PEOPLE}, "
                                        f"got {self.max_people!r}")
        if self.frames is not None and (not is_number(self.frames, whole=True) or not 1 <= self.frames <= MAX_FRAMES):
            raise ActionpipeError(None, f"frames must be a whole number from 1 to {MAX_FRAMES} or null, "
                                        f"got {self.frames!r}")
        if self.fps is not None and (not is_number(self.fps) or not 0 < self.fps <= MAX_FPS):
            raise ActionpipeError(None, f"fps must be a positive number up to {MAX_FPS:g} or null, got {self.fps!r}")
        if not is_number(self.min_confidence) or not 0 <= self.min_confidence <= 1:
            raise ActionpipeError(None, f"min_confidence must be between 0 and 1, got {self.min_confidence!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PackSpec":
        """From a card's or config's ``preprocessing``; an unknown key is an error, not ignored."""
        check_keys(d, cls.__dataclass_fields__, None, "preprocessing")
        return cls(**d)


@dataclass
class SelectedPeople:
    """The clip's top-M people: ``keypoints`` (M, T, V, 3) in pixels, zeros where a slot is empty."""

    keypoints: np.ndarray
    track_ids: np.ndarray     # (M,), -1 for a slot nobody fills
    frame_indices: np.ndarray  # (T,)
    times: np.ndarray          # (T,) seconds


def _track_scores(pose: PoseFile, rank: str) -> dict[int, float]:
    frame_area = float(pose.width * pose.height)
    scores: dict[int, float] = {}
    counts: dict[int, int] = {}
    for frame in pose.frames:
        for p in frame.people:
            x1, y1, x2, y2 = (float(v) for v in p.box)
            area = max(0.0, x2 - x1) * max(0.0, y2 - y1)
            conf = float(p.keypoints[:, 2].sum())
            value = {"confidence": conf, "area": area,
                     "prominence": conf / len(p.keypoints) * area / frame_area}[rank]
            scores[p.track_id] = scores.get(p.track_id, 0.0) + value
            counts[p.track_id] = counts.get(p.track_id, 0) + 1
    if rank == "area":  # a mean: a big person seen briefly still counts as big
        scores = {t: s / counts[t] for t, s in scores.items()}
    return scores


def select_people(pose: PoseFile, max_people: int = 2, rank: str = "confidence") -> SelectedPeople:
    """Keep the top ``max_people`` tracks of the clip, each in a fixed slot for the whole clip."""
    if rank not in RANKINGS:
        raise ActionpipeError(None, f"unknown rank {rank!r} (expected one of {', '.join(RANKINGS)})")
    scores = _track_scores(pose, rank)
    # Ties break on first appearance, so the result does not depend on dict order.
    order = {t: i for i, t in enumerate(pose.track_ids())}
    kept = sorted(scores, key=lambda t: (-scores[t], order[t]))[:max_people]
    slot = {t: i for i, t in enumerate(kept)}
    num_joints = get_layout(pose.layout).num_joints
    keypoints = np.zeros((max_people, pose.num_frames, num_joints, 3), dtype=np.float32)
    for t, frame in enumerate(pose.frames):
        for p in frame.people:
            if p.track_id in slot:
                keypoints[slot[p.track_id], t] = p.keypoints
    track_ids = np.full(max_people, -1, dtype=np.int64)
    track_ids[:len(kept)] = kept
    return SelectedPeople(keypoints, track_ids,
                          np.array([f.index for f in pose.frames], dtype=np.int64),
                          np.array([f.time_s for f in pose.frames], dtype=np.float64))


def resample_time(times: np.ndarray, fps: float) -> np.ndarray:
    """Indices into ``times`` of the frames nearest to a regular grid at ``fps`` (never repeated)."""
    if len(times) == 0:
        return np.zeros(0, dtype=np.int64)
    if (times[-1] - times[0]) * fps > MAX_RESAMPLED_FRAMES:  # the grid would not fit in memory
        raise ActionpipeError(None, f"frame times span {times[-1] - times[0]:g} s, too long to resample "
                                    f"to {fps:g} fps (time_s must be seconds)")
    grid = np.arange(times[0], times[-1] + 1e-9, 1.0 / fps)
    idx = np.clip(np.searchsorted(times, grid), 0, len(times) - 1)
    prev = np.clip(idx - 1, 0, len(times) - 1)
    nearer_prev = np.abs(times[prev] - grid) < np.abs(times[idx] - grid)
    return np.unique(np.where(nearer_prev, prev, idx))


def _torso(keypoints: np.ndarray, layout: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame (…, T): torso centre (…, T, 2), torso length (…, T) and whether both are known."""
    lay = get_layout(layout)
    shoulders = keypoints[..., [lay.index("left_shoulder"), lay.index("right_shoulder")], :]
    hips = keypoints[..., [lay.index("left_hip"), lay.index("right_hip")], :]
    valid = (shoulders[..., 2] > 0).all(-1) & (hips[..., 2] > 0).all(-1)
    top, bottom = shoulders[..., :2].mean(-2), hips[..., :2].mean(-2)
    return (top + bottom) / 2, np.linalg.norm(top - bottom, axis=-1), valid


def normalize(keypoints: np.ndarray, layout: str, method: str, width: int, height: int) -> np.ndarray:
    """Normalise keypoints (M, T, V, 3) in pixels; x and y stay 0 where confidence is 0.

    ``frame``: x/W − 0.5, y/H − 0.5 (the reference ST-GCN's). ``body``: each person centred on
    the median of its torso centre over the clip and divided by its median torso length, so the
    numbers do not depend on camera distance, resolution or where the person stands.
    """
    out = keypoints.astype(np.float32, copy=True)
    visible = out[..., 2:3] > 0
    if method == "frame":
        out[..., 0] = out[..., 0] / width - 0.5
        out[..., 1] = out[..., 1] / height - 0.5
    elif method == "body":
        centre, length, valid = _torso(out, layout)
        for m in range(out.shape[0]):
            if valid[m].any():
                c = np.median(centre[m][valid[m]], axis=0)
                s = float(np.median(length[m][valid[m]]))
            else:  # no full torso in the whole clip: fall back on the spread of what is visible
                pts = out[m][..., :2][out[m][..., 2] > 0]
                if len(pts) == 0:
                    continue
                c = np.median(pts, axis=0)
                s = float(np.ptp(pts, axis=0).max()) / 3
            out[m, ..., :2] = (out[m, ..., :2] - c) / max(s, 1e-3)
    else:
        raise ActionpipeError(None, f"unknown normalization {method!r} (expected one of {', '.join(NORMALIZATIONS)})")
    out[..., :2] *= visible
    return out


def fit_length(data: np.ndarray, frames: int, pad: str = "loop", axis: int = 1) -> np.ndarray:
    """Centre-crop or pad (``loop``: repeat the clip; ``zero``: empty frames) to ``frames`` along ``axis``."""
    length = data.shape[axis]
    if length >= frames:
        start = (length - frames) // 2
        return np.take(data, np.arange(start, start + frames), axis=axis)
    if pad == "loop" and length > 0:
        return np.take(data, np.arange(frames) % length, axis=axis)
    widths = [(0, 0)] * data.ndim
    widths[axis] = (0, frames - length)
    return np.pad(data, widths)


def prepare_keypoints(keypoints: np.ndarray, source_layout: str, spec: PackSpec,
                      width: int, height: int) -> np.ndarray:
    """Layout conversion, confidence floor, joint mask and normalisation: (M, T, V, 3) → model space.

    Training applies the same function to dataset clips, so a model sees in use what it saw in training.
    """
    kp = convert_keypoints(keypoints, source_layout, spec.layout)
    if spec.min_confidence > 0:
        kp[kp[..., 2] < spec.min_confidence] = 0
    layout = get_layout(spec.layout)
    for joint in spec.joint_mask:
        kp[..., layout.index(joint), :] = 0
    return normalize(kp, spec.layout, spec.normalization, width, height)


@dataclass
class Sample:
    """One packed clip: ``data`` (1, C, T, V, M) and where it came from."""

    data: np.ndarray
    track_ids: np.ndarray
    frame_indices: np.ndarray
    times: np.ndarray
    meta: dict[str, Any]

    def save(self, path: str | Path) -> None:
        """Write the npz atomically."""
        save_npz(path, data=self.data, track_ids=self.track_ids, frame_indices=self.frame_indices,
                 times=self.times, meta=np.array(json.dumps(self.meta)))

    @classmethod
    def load(cls, path: str | Path) -> "Sample":
        """Read and validate a sample npz: one clip (N = 1) of x, y, confidence (C = 3), at least one
        frame, joint and person slot, finite numbers (cast to float32)."""
        path = Path(path)
        if not path.is_file():
            raise ActionpipeError(path, "sample file not found")
        with open(path, "rb") as f:
            if f.read(2) != b"PK":  # every .npz is a zip archive
                raise ActionpipeError(path, "not an .npz sample (a pose file? `actionpipe pack` it first)")
        try:
            with np.load(path, allow_pickle=False) as z:
                check_keys(dict.fromkeys(z.files), _ARRAYS, path, "sample arrays")
                missing = [name for name in _ARRAYS if name not in z.files]
                if missing:
                    raise ActionpipeError(path, f"not a valid sample file: no {', '.join(missing)} array "
                                                f"(it holds {', '.join(z.files) or 'none'})")
                arrays = {name: z[name] for name in _ARRAYS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise ActionpipeError(path, f"not a valid sample file: {_why_unreadable(exc)}") from None
        try:
            meta = parse_json(str(arrays.pop("meta")))
        except ValueError as exc:
            raise ActionpipeError(path, f"not a valid sample file: meta is not JSON ({exc})") from None
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            version = meta.get("format_version") if isinstance(meta, dict) else None
            raise ActionpipeError(path, f"sample format_version {version!r} is not supported")
        check_keys(meta, _META_KEYS, path, "sample meta")
        check_keys(meta.get("pack") or {}, PackSpec.__dataclass_fields__, path, "sample meta pack")
        return cls(*_checked_arrays(path, **arrays), meta)


def _why_unreadable(exc: Exception) -> str:
    """What an exception reading an npz says about the file, in words (no Python class names)."""
    if isinstance(exc, (zipfile.BadZipFile, EOFError, zlib.error)):
        return "a damaged or cut-off archive"
    if isinstance(exc, ValueError):
        return ("holds Python objects (pickles), which are not read" if "pickle" in str(exc) else
                f"an array numpy cannot read ({(str(exc).splitlines() or ['bad header'])[0]})")
    if isinstance(exc, OSError):
        return f"cannot read ({exc.strerror or exc})"
    return "a damaged archive"


_ARRAYS = ("data", "track_ids", "frame_indices", "times", "meta")
_META_KEYS = ("format_version", "layout", "normalization", "fps", "width", "height", "source",
              "people_found", "pack")


def _check_dtype(path: Path, array: np.ndarray, what: str, integer: bool = False) -> None:
    if array.dtype.kind not in ("iub" if integer else "iubf"):
        raise ActionpipeError(path, f"{what} has dtype {array.dtype}: expected {'integers' if integer else 'numbers'}")


def _checked_arrays(path: Path, data: np.ndarray, track_ids: np.ndarray, frame_indices: np.ndarray,
                    times: np.ndarray) -> tuple[np.ndarray, ...]:
    """A sample file's arrays, shapes and types checked against each other (see :meth:`Sample.load`)."""
    _check_dtype(path, data, "data")
    if data.ndim != 5 or data.shape[1] != 3:
        raise ActionpipeError(path, f"data has shape {data.shape}, expected (1, 3, T, V, M)")
    n, _, t, v, m = data.shape
    if n != 1:
        raise ActionpipeError(path, f"data holds {n} clips (N = {n}); a sample file holds one (N = 1)")
    for size, what in ((t, "no frames (T = 0)"), (v, "no joints (V = 0)"), (m, "no person slots (M = 0)")):
        if size == 0:
            raise ActionpipeError(path, f"data has {what}")
    with np.errstate(over="ignore"):
        data = data.astype(np.float32)
    if not np.isfinite(data).all():
        raise ActionpipeError(path, "data contains NaN or infinity (or numbers beyond float32)")
    for array, what, shape, integer in ((track_ids, "track_ids", (m,), True),
                                        (frame_indices, "frame_indices", (t,), True), (times, "times", (t,), False)):
        _check_dtype(path, array, what, integer)
        if array.shape != shape:
            raise ActionpipeError(path, f"{what} has shape {array.shape}, expected {shape} for data {data.shape}")
    times = times.astype(np.float64)
    if not np.isfinite(times).all():
        raise ActionpipeError(path, "times contains NaN or infinity")
    return data, track_ids.astype(np.int64), frame_indices.astype(np.int64), times


def pack_people(pose: PoseFile, spec: PackSpec) -> Sample:
    """Pose file → ST-GCN sample, following ``spec`` (usually a model card's preprocessing)."""
    if pose.num_frames == 0:
        raise ActionpipeError(None, "pose file has no frames")
    people = select_people(pose, spec.max_people, spec.rank)
    keep = np.arange(pose.num_frames)
    if spec.fps and abs(spec.fps - pose.fps) > 1e-6:
        keep = resample_time(people.times, spec.fps)
    kp = prepare_keypoints(people.keypoints[:, keep], pose.layout, spec, pose.width, pose.height)
    frame_indices, times = people.frame_indices[keep], people.times[keep]
    if spec.frames:
        kp = fit_length(kp, spec.frames, spec.pad, axis=1)
        frame_indices = fit_length(frame_indices, spec.frames, spec.pad, axis=0)
        times = fit_length(times, spec.frames, spec.pad, axis=0)
    data = np.ascontiguousarray(kp.transpose(3, 1, 2, 0)[None])  # (M,T,V,C) → (1,C,T,V,M)
    meta = {"format_version": FORMAT_VERSION, "layout": spec.layout,
            "normalization": spec.normalization, "fps": float(spec.fps or pose.fps),
            "width": pose.width, "height": pose.height, "source": pose.source,
            "people_found": len(pose.track_ids()), "pack": asdict(spec)}
    return Sample(data.astype(np.float32), people.track_ids, frame_indices, times, meta)


def pack_track(pose: PoseFile, spec: PackSpec, track_id: int) -> Sample:
    """One person's own sample: only ``track_id``, from its first to its last frame, in slot 0.

    The other ``spec.max_people - 1`` slots stay empty, exactly as for a one-person clip in
    training (the model averages over all M slots, so M must stay what the model was trained with).
    """
    frames = [PoseFrame(f.index, f.time_s, [p for p in f.people if p.track_id == track_id])
              for f in pose.frames]
    seen = [i for i, f in enumerate(frames) if f.people]
    if not seen:
        raise ActionpipeError(None, f"track {track_id} does not appear in the pose file")
    return pack_people(replace(pose, frames=frames[seen[0]:seen[-1] + 1]), spec)
