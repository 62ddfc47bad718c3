"""What ``classify`` says about a video: :class:`VideoResult` (status, prediction, timeline, the
people) and :class:`PersonResult`, as Python objects and as the JSON objects of ``--json``/``--jsonl``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actionpipe.model.infer import Prediction
from actionpipe.outputs.report import DEFAULT_TOP_K, answer, ranked, top_k
from actionpipe.outputs.timeline import Timeline

ANSWERS = ("ok", "unknown", "no_person", "low_frame_rate", "too_short", "low_confidence")  # statuses that are results


def _top_dict(prediction: Prediction, classes: list[str], k: int, threshold: float | None = None) -> dict[str, Any]:
    """label/probability/top, or for a rejected clip label null and the ``closest`` class; open_set."""
    d: dict[str, Any] = answer(ranked(prediction.probabilities, classes, k), prediction.rejected)
    if prediction.open_set_score is not None:
        d["open_set"] = {"score": round(prediction.open_set_score, 4),
                         "threshold": None if threshold is None else round(threshold, 4),
                         "rejected": prediction.rejected}
    return d


@dataclass
class PersonResult:
    """One tracked person classified on its own track; ``box``: median x1, y1, x2, y2 in pixels."""

    track_id: int
    start_s: float
    end_s: float
    frames: int
    box: list[float]
    prediction: Prediction
    timeline: Timeline | None = None
    reps: dict[str, Any] | None = None        # repetitions of its action (pipeline.reps), or None

    def __repr__(self) -> str:
        return f"PersonResult(track_id={self.track_id}, {self.start_s:.1f}–{self.end_s:.1f} s, {self.frames} frames)"

    def to_dict(self, classes: list[str], k: int = DEFAULT_TOP_K, threshold: float | None = None) -> dict[str, Any]:
        d = {"track_id": self.track_id, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
             "frames": self.frames, "box": [round(v, 1) for v in self.box],
             **_top_dict(self.prediction, classes, k, threshold), "reps": self.reps}
        if self.timeline is not None:
            d["timeline"] = self.timeline.to_dict(k)
        return d


@dataclass
class VideoResult:
    """What ``classify`` says about one video. ``status``: one of :data:`ANSWERS`, or error."""

    video: str
    status: str
    classes: list[str]
    prediction: Prediction | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)
    timeline: Timeline | None = None
    people: list[PersonResult] | None = None  # None: not asked for (--per-person)
    threshold: float | None = None            # the card's open-set threshold, if it has one
    reps: dict[str, Any] | None = None        # the main person's repetitions (pipeline.reps), or None

    @property
    def ok(self) -> bool:
        return self.status != "error"

    def __repr__(self) -> str:
        said = self.label or self.error or ""
        if self.label:
            said += f" {float(self.prediction.probabilities.max()):.2f}"
        return f"VideoResult({self.video!r}, {self.status!r}{', ' + said if said else ''})"

    @property
    def label(self) -> str | None:
        """The class, or None when there is none to report (rejected as unknown, no person, ...)."""
        if self.prediction is None or self.prediction.rejected:
            return None
        return top_k(self.prediction.probabilities, self.classes, 1)[0][0]

    def to_dict(self, k: int = DEFAULT_TOP_K) -> dict[str, Any]:
        """JSON-ready: video, status, label, probability (or closest), top-k, open_set, timeline, people."""
        d: dict[str, Any] = {"video": self.video, "status": self.status}
        if self.prediction is not None:
            d.update(_top_dict(self.prediction, self.classes, k, self.threshold))
        d["reps"] = self.reps
        if self.error:
            d["error"] = self.error
        d.update(self.info)
        if self.timeline is not None:
            d["timeline"] = self.timeline.to_dict(k)
        if self.people is not None:
            d["per_person"] = [p.to_dict(self.classes, k, self.threshold) for p in self.people]
        return d

    def summary_lines(self) -> list[str]:
        """Human lines for the timeline segments and the people (empty when neither was asked for)."""
        lines = []
        if self.timeline is not None:
            lines.append("segments:")
            lines += [f"  {s}" for s in self.timeline.segments()]
        for p in self.people or []:
            label, prob = top_k(p.prediction.probabilities, self.classes, 1)[0]
            box = ",".join(f"{v:.0f}" for v in p.box)
            said = f"unknown (closest {label} {prob:.2f})" if p.prediction.rejected else f"{label} {prob:.2f}"
            lines.append(f"person {p.track_id}: {p.start_s:.1f}–{p.end_s:.1f} s, box {box}: {said}")
            lines += [f"  {s}" for s in (p.timeline.segments() if p.timeline else [])]
        return lines
