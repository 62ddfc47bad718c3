"""Multi-person tracking: gives each detected person a ``track_id`` that stays the same across frames.

Each frame's detections are matched to the live tracks with the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``). The cost of a pair mixes box overlap (1 - IoU) and the
mean distance between their confident keypoints, divided by the person's size, so it is
comparable for near and far people. Tracks are compared at their *predicted* place: the last box
moved by a constant velocity for the frames since it was seen, which keeps two people apart when
they cross (their boxes overlap, but they move in opposite directions) and finds someone again who
was hidden for a few frames. The longer a track is unseen, the farther away its person may
reappear (``distance_growth``), so someone who vanished behind an obstacle and came out elsewhere
keeps the id; a track unseen for more than ``max_gap`` frames ends, and a person appearing later
gets a new id. Detectors sometimes report one person twice (an arms-out box and a tighter one);
``suppress_duplicates`` drops the weaker of two detections whose keypoints coincide.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-cost one-to-one matching of rows to columns. One track or one detection (most
    frames) is the row's or column's minimum; only crowds need scipy, imported then (0.5 s of start-up)."""
    if cost.shape[0] == 1:
        return np.array([0]), np.array([int(cost[0].argmin())])
    if cost.shape[1] == 1:
        return np.array([int(cost[:, 0].argmin())]), np.array([0])
    from scipy.optimize import linear_sum_assignment

    return linear_sum_assignment(cost)


@dataclass
class Detection:
    """One person found in one frame, in pixels: box x1, y1, x2, y2 and keypoints ``(V, 3)``."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    keypoints: np.ndarray
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # box centre, px per frame
    hits: int = 1

    def predicted_shift(self, frame: int, max_extrapolation: int) -> np.ndarray:
        return self.velocity * min(frame - self.last_frame, max_extrapolation)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4): an (N, M) array."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def _size(box: np.ndarray) -> float:
    return float(np.sqrt(max(box[2] - box[0], 1.0) * max(box[3] - box[1], 1.0)))


def keypoint_distance(kp_a: np.ndarray, box_a: np.ndarray, kp_b: np.ndarray, box_b: np.ndarray,
                      min_conf: float = 0.3) -> float:
    """Mean distance of the joints confident in both poses, over the people's mean size.

    With fewer than 3 such joints the box centres stand in for the keypoints.
    """
    both = (kp_a[:, 2] >= min_conf) & (kp_b[:, 2] >= min_conf)
    if both.sum() >= 3:
        dist = float(np.linalg.norm(kp_a[both, :2] - kp_b[both, :2], axis=1).mean())
    else:
        centre_a = (box_a[:2] + box_a[2:]) / 2
        centre_b = (box_b[:2] + box_b[2:]) / 2
        dist = float(np.linalg.norm(centre_a - centre_b))
    return dist / ((_size(box_a) + _size(box_b)) / 2)


def suppress_duplicates(detections: list[Detection], max_distance: float = 0.15,
                        min_conf: float = 0.3) -> list[Detection]:
    """Drop detections whose keypoints lie within ``max_distance`` (size-normalised) of a
    higher-scored one: the same person reported twice."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: -d.score):
        if all(keypoint_distance(k.keypoints, k.box, det.keypoints, det.box, min_conf) > max_distance
               for k in kept):
            kept.append(det)
    return kept


class Tracker:
    """Assigns stable track ids to per-frame detections; call ``update`` once per frame, in order.

    Lengths are in frames (``for_fps`` sets them from seconds). ``max_gap``: frames a track may go
    unseen before it ends. ``max_distance``: the largest size-normalised keypoint distance a match
    may have when the boxes do not overlap, growing by ``distance_growth`` per frame unseen.
    ``max_extrapolation``: frames the constant-velocity prediction runs on before it stops.
    ``iou_weight``: share of box overlap in the matching cost (the rest is keypoint distance).
    """

    def __init__(self, max_gap: int = 60, max_distance: float = 1.0, distance_growth: float = 0.05,
                 max_extrapolation: int = 15, iou_weight: float = 0.5, min_keypoint_conf: float = 0.3):
        self.max_gap = max_gap
        self.max_distance = max_distance
        self.distance_growth = distance_growth
        self.max_extrapolation = max_extrapolation
        self.iou_weight = iou_weight
        self.min_keypoint_conf = min_keypoint_conf
        self.frame = -1
        self.tracks: list[_Track] = []
        self._next_id = 1

    @classmethod
    def for_fps(cls, fps: float, max_gap_s: float = 3.0) -> "Tracker":
        """A tracker whose gap, growth and extrapolation are set in seconds for ``fps`` video."""
        return cls(max_gap=max(1, round(max_gap_s * fps)), distance_growth=1.5 / fps,
                   max_extrapolation=max(1, round(0.5 * fps)))

    def params(self) -> dict:
        """The settings, for provenance in the pose file."""
        return {"method": "hungarian-iou-keypoints", "max_gap": self.max_gap,
                "max_distance": self.max_distance, "distance_growth": round(self.distance_growth, 4),
                "max_extrapolation": self.max_extrapolation, "iou_weight": self.iou_weight}

    def _cost(self, detections: list[Detection]) -> np.ndarray:
        """(tracks, detections) matching cost; ``inf`` where a pair is too far apart to match."""
        cost = np.full((len(self.tracks), len(detections)), np.inf)
        for i, track in enumerate(self.tracks):
            unseen = self.frame - track.last_frame - 1
            reach = self.max_distance + self.distance_growth * unseen
            shift = track.predicted_shift(self.frame, self.max_extrapolation)
            box = track.box + np.tile(shift, 2)
            kps = track.keypoints.copy()
            kps[:, :2] += shift
            ious = box_iou(box, np.array([d.box for d in detections]))[0]
            for j, det in enumerate(detections):
                dist = keypoint_distance(kps, box, det.keypoints, det.box, self.min_keypoint_conf)
                if ious[j] <= 0 and dist > reach:
                    continue
                # A small age term makes a recently seen track win a tie against a stale one.
                cost[i, j] = (self.iou_weight * (1 - ious[j]) + (1 - self.iou_weight) * dist
                              + 0.01 * unseen)
        return cost

    def update(self, detections: list[Detection]) -> list[int]:
        """Match this frame's detections to the tracks; returns one track id per detection."""
        self.frame += 1
        self.tracks = [t for t in self.tracks if self.frame - t.last_frame <= self.max_gap]
        ids = [0] * len(detections)
        matched: set[int] = set()
        if self.tracks and detections:
            cost = self._cost(detections)
            rows, cols = assignment(np.where(np.isfinite(cost), cost, 1e6))
            for i, j in zip(rows, cols):
                if np.isfinite(cost[i, j]):
                    self._follow(self.tracks[i], detections[j])
                    ids[j] = self.tracks[i].track_id
                    matched.add(j)
        for j, det in enumerate(detections):
            if j not in matched:
                track = _Track(self._next_id, np.asarray(det.box, float), np.asarray(det.keypoints, float),
                               self.frame)
                self.tracks.append(track)
                ids[j] = track.track_id
                self._next_id += 1
        return ids

    def _follow(self, track: _Track, det: Detection) -> None:
        box = np.asarray(det.box, float)
        gap = self.frame - track.last_frame
        step = ((box[:2] + box[2:]) - (track.box[:2] + track.box[2:])) / 2 / gap
        # Smoothed so one jittery detection does not fling the prediction away.
        track.velocity = step if track.hits == 1 else 0.5 * track.velocity + 0.5 * step
        track.hits += 1
        track.box, track.keypoints, track.last_frame = box, np.asarray(det.keypoints, float), self.frame
