"""Timelines of long videos: per-window class probabilities, merged into labelled segments.

A :class:`Timeline` holds W windows (start/end seconds, half-open) and their probabilities (W, C).
Neighbouring windows whose top class is the same merge into a :class:`Segment`; where two
overlapping windows disagree, the boundary is put in the middle of their overlap, so segments tile
the video without overlapping. Everything here is pure: crafted scores in, segments out.

JSON (inside a ``classify`` result, under ``"timeline"``)::

    {"window_s": 2.0, "stride_s": 1.0, "aggregate": "mean",
     "windows": [{"start_s": 0.0, "end_s": 2.0, "label": "squat", "probability": 0.93,
                  "top": [{"class": "squat", "probability": 0.93}, ...]}, ...],
     "segments": [{"start_s": 0.0, "end_s": 4.2, "label": "squat", "probability": 0.91,
                   "windows": 4}, ...]}
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from actionpipe.outputs.report import DEFAULT_TOP_K, ranked

@dataclass
class Segment:
    """A stretch of video whose windows share a top class; ``probability``: that class's mean."""

    start_s: float
    end_s: float
    label: str
    probability: float
    windows: int

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3), "label": self.label,
                "probability": round(self.probability, 6), "windows": self.windows}

    def __str__(self) -> str:
        return format_segment(self.start_s, self.end_s, self.label, self.probability)


def format_segment(start_s: float, end_s: float, label: str, probability: float) -> str:
    """``0.0–4.2 s squat 0.93``."""
    return f"{start_s:.1f}–{end_s:.1f} s {label} {probability:.2f}"


def merge_segments(starts: Sequence[float], ends: Sequence[float], probabilities: np.ndarray,
                   classes: Sequence[str]) -> list[Segment]:
    """Merge time-ordered windows with the same top class into segments that tile [start, end).

    Window k and k+1 of different segments meet at ``(start[k+1] + end[k]) / 2``: the middle of
    their overlap (or of the gap between them). Ties between classes go to the earlier class.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    if len(p) == 0:
        return []
    if not (len(starts) == len(ends) == len(p)):
        raise ValueError(f"{len(starts)} starts, {len(ends)} ends and {len(p)} probability rows differ")
    if np.any(np.diff(starts) < 0):
        raise ValueError("windows must be ordered by start time")
    top = p.argmax(1)  # argmax returns the first maximum: ties go to the earlier class
    segments: list[Segment] = []
    first = 0
    for k in range(1, len(p) + 1):
        if k < len(p) and top[k] == top[first]:
            continue
        start = starts[0] if first == 0 else (starts[first] + ends[first - 1]) / 2
        end = ends[-1] if k == len(p) else (starts[k] + ends[k - 1]) / 2
        segments.append(Segment(float(start), float(end), classes[top[first]],
                                float(p[first:k, top[first]].mean()), k - first))
        first = k
    return segments


@dataclass
class Timeline:
    """Windows of one video (or one person's track) and their class probabilities."""

    starts: np.ndarray         # (W,) seconds
    ends: np.ndarray           # (W,) seconds, exclusive
    probabilities: np.ndarray  # (W, C)
    classes: list[str]
    settings: dict[str, Any] = field(default_factory=dict)  # window_s, stride_s, aggregate: for the JSON

    def __repr__(self) -> str:
        return f"Timeline({len(self.starts)} windows, {len(self.segments())} segments)"

    def segments(self) -> list[Segment]:
        return merge_segments(self.starts, self.ends, self.probabilities, self.classes)

    def to_dict(self, k: int = DEFAULT_TOP_K) -> dict[str, Any]:
        """JSON-ready settings, windows (with top-``k``) and segments."""
        windows = []
        for s, e, p in zip(self.starts, self.ends, self.probabilities):
            windows.append({"start_s": round(float(s), 3), "end_s": round(float(e), 3),
                            **ranked(p, self.classes, k)})
        return {**self.settings, "windows": windows, "segments": [s.to_dict() for s in self.segments()]}


def window_at(starts: Sequence[float], ends: Sequence[float], time_s: float) -> int | None:
    """Index of the window "current" at ``time_s``: of those containing it, the one whose centre is
    nearest; ``None`` when no window contains it."""
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    inside = np.flatnonzero((starts <= time_s) & (time_s < ends))
    if len(inside) == 0:
        return None
    centres = (starts[inside] + ends[inside]) / 2
    return int(inside[np.argmin(np.abs(centres - time_s))])
