"""``classify``: every stage in one process, video → pose → pack → ST-GCN → probabilities.

Models are loaded once and reused for every video; nothing goes through intermediate files
unless ``keep_dir`` asks for them (then each video gets ``pose.json``, ``sample.npz`` and
``scores.json`` in ``keep_dir/<video stem>/``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .cards import ModelCard
from .errors import ActionpipeError
from .fileio import write_json
from .infer import Prediction, Predictor, prediction_item, scores_document
from .pack import pack_people
from .report import top_k


@dataclass
class VideoResult:
    """What ``classify`` says about one video. ``status``: ok, no_person or error."""

    video: str
    status: str
    classes: list[str]
    prediction: Prediction | None = None
    error: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "error"

    @property
    def label(self) -> str | None:
        return top_k(self.prediction.probabilities, self.classes, 1)[0][0] if self.prediction else None

    def to_dict(self, k: int = 5) -> dict[str, Any]:
        """JSON-ready: video, status, label, probability, top-k, and the run's details."""
        d: dict[str, Any] = {"video": self.video, "status": self.status}
        if self.prediction is not None:
            top = top_k(self.prediction.probabilities, self.classes, k)
            d.update(label=top[0][0], probability=round(top[0][1], 6),
                     top=[{"class": c, "probability": round(p, 6)} for c, p in top])
        if self.error:
            d["error"] = self.error
        d.update(self.info)
        return d


class Classifier:
    """Pose model + action model, loaded once; call :meth:`classify` per video.

    Pose settings default to the card's ``pose`` section (the settings its accuracy was measured
    with), then to the pose stage's defaults; the pose runs at the model's frame rate.
    """

    def __init__(self, card: ModelCard, *, device: str = "auto", imgsz: int | None = None,
                 conf: float | None = None, fps: float | None = None, batch: int = 16,
                 pose_weights: str | Path | None = None):
        from .pose import PoseEstimator

        pose_defaults = card.raw.get("pose", {})
        settings = {"imgsz": imgsz or pose_defaults.get("imgsz"), "conf": conf or pose_defaults.get("conf")}
        self.card = card
        self.fps = fps or pose_defaults.get("fps") or card.preprocessing.fps
        self.pose = PoseEstimator(pose_weights, device=device,
                                  **{k: v for k, v in settings.items() if v is not None})
        self.predictor = Predictor(card, device, batch)

    def classify(self, video: str | Path, keep_dir: str | Path | None = None) -> VideoResult:
        """Classify one video; raises ActionpipeError for a broken one."""
        start = time.perf_counter()
        pose = self.pose.estimate_path(video, fps=self.fps)
        sample = pack_people(pose, self.card.preprocessing)
        info = {"frames": pose.num_frames, "duration_s": round(pose.num_frames / pose.fps, 3),
                "people": len(pose.track_ids()), "tracks_used": [int(t) for t in sample.track_ids if t >= 0]}
        keep = None
        if keep_dir is not None:
            keep = Path(keep_dir) / Path(video).stem
            keep.mkdir(parents=True, exist_ok=True)
            pose.save(keep / "pose.json")
            sample.save(keep / "sample.npz")
        if not info["tracks_used"]:
            result = VideoResult(str(video), "no_person", self.card.classes, info=info)
        else:
            prediction = self.predictor.predict([sample], [video])[0]
            result = VideoResult(str(video), "ok", self.card.classes, prediction, info=info)
            if keep is not None:
                write_json(keep / "scores.json", scores_document(self.card, [prediction_item(str(video), prediction)]))
        result.info["seconds"] = round(time.perf_counter() - start, 3)
        return result

    def classify_many(self, videos: Iterable[str | Path],
                      keep_dir: str | Path | None = None) -> Iterator[VideoResult]:
        """Classify each video; a broken one yields an ``error`` result and the rest go on."""
        for video in videos:
            try:
                yield self.classify(video, keep_dir)
            except ActionpipeError as exc:
                yield VideoResult(str(video), "error", self.card.classes, error=str(exc))

