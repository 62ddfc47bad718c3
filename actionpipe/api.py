"""The Python API: an :class:`ActionModel` called on videos gives :class:`Result` objects.

    from actionpipe import ActionModel

    model = ActionModel()                               # the default model; or a card name, a folder, a ModelCard
    result = model("clip.mp4", window=2.0, per_person=True)   # options per call, models loaded once
    result.label, result.probability, result.top(5), result.segments, result.people, result.pose
    frame = result.plot(t=3.2)                          # one annotated frame (BGR ndarray)
    result.save("annotated.mp4"); result.to_dict(); result.to_json()
    for r in model(["a.mp4", "b.mp4"], stream=True):    # many videos, decoded ahead
        print(r)
    pose = model.pose("clip.mp4")                       # the stages: PoseFile ...
    prediction = model.predict(pose)                    # ... and Prediction

A single video that cannot be read raises :class:`~actionpipe.core.errors.ActionpipeError`; in a list
it gives a result with ``status == "error"`` and the others go on. Nothing is printed unless
``verbose=True`` (then progress bars and warnings on stderr, as the CLI shows them).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from actionpipe.core import console
from actionpipe.model.cards import ModelCard, default_card, find_card
from actionpipe.pipeline.classify import DEFAULT_MIN_TRACK_S, Classifier, PersonResult, VideoResult
from actionpipe.core.devices import DEFAULT_POSE_BACKEND
from actionpipe.core.errors import ActionpipeError
from actionpipe.model.infer import DEFAULT_BATCH, Prediction
from actionpipe.skeleton.pack import Sample, pack_people
from actionpipe.pose.posefile import PoseFile
from actionpipe.outputs.report import DEFAULT_TOP_K, top_k
from actionpipe.pipeline.speed import DEFAULT_SPEED
from actionpipe.outputs.timeline import Segment, Timeline


class _Answer:
    """label / probability / top / segments of one prediction (a video's or a person's)."""

    prediction: Prediction | None
    timeline: Timeline | None
    classes: list[str]

    @property
    def label(self) -> str | None:
        """The class, or None when there is none (no person, too short, rejected as unknown ...)."""
        if self.prediction is None or self.prediction.rejected:
            return None
        return self.top(1)[0][0]

    @property
    def probability(self) -> float | None:
        """The label's probability (None without a label)."""
        return self.top(1)[0][1] if self.label is not None else None

    def top(self, k: int = DEFAULT_TOP_K) -> list[tuple[str, float]]:
        """The ``k`` most probable classes with their probabilities, best first (empty without a prediction)."""
        return [] if self.prediction is None else top_k(self.prediction.probabilities, self.classes, k)

    @property
    def segments(self) -> list[Segment]:
        """The timeline's segments (empty without ``window``)."""
        return self.timeline.segments() if self.timeline is not None else []


class Person(_Answer):
    """One tracked person classified on its own track (``per_person=True``)."""

    def __init__(self, person: PersonResult, classes: list[str]):
        self.track_id, self.start_s, self.end_s = person.track_id, person.start_s, person.end_s
        self.frames, self.box = person.frames, person.box
        self.prediction, self.timeline, self.classes = person.prediction, person.timeline, classes
        self.reps = person.reps   # repetitions of its action (classify's ``reps``), or None

    def __repr__(self) -> str:
        said = f"{self.label} {self.probability:.2f}" if self.label else "unknown"
        return f"Person(track_id={self.track_id}, {self.start_s:.1f}–{self.end_s:.1f} s, {said})"


class Result(_Answer):
    """What the model says about one video, with the pose it saw (``pose``)."""

    def __init__(self, result: VideoResult, pose: PoseFile | None, verbose: bool = False):
        self.result, self.pose, self.verbose = result, pose, verbose
        self.video, self.status, self.error = result.video, result.status, result.error
        self.prediction, self.timeline, self.classes = result.prediction, result.timeline, result.classes
        self.info = result.info
        self.reps = result.reps   # the main person's repetitions: count, partial, times_s, ... or None

    @property
    def ok(self) -> bool:
        """False only for ``status == "error"`` (every other status is an answer)."""
        return self.result.ok

    @property
    def people(self) -> list[Person]:
        """Each tracked person's own result (empty unless ``per_person=True``)."""
        return [Person(p, self.classes) for p in self.result.people or []]

    def to_dict(self, k: int = DEFAULT_TOP_K) -> dict[str, Any]:
        """The JSON object ``actionpipe classify --json`` gives for this video."""
        return self.result.to_dict(k)

    def to_json(self, k: int = DEFAULT_TOP_K, indent: int | None = None) -> str:
        from actionpipe.core.fileio import dumps

        return dumps(self.to_dict(k), indent=indent)

    def plot(self, t: float = 0.0, k: int = DEFAULT_TOP_K) -> np.ndarray:
        """The video's frame at ``t`` seconds with skeletons, labels, bars and timeline (BGR, as OpenCV)."""
        from actionpipe.outputs.render import render_frame

        with console.silenced(not self.verbose):
            return render_frame(self.video, self._pose(), self, t, k)

    def save(self, path: str | Path, k: int = DEFAULT_TOP_K) -> dict[str, Any]:
        """Write the annotated video (as ``actionpipe render``); returns frames, codec, size."""
        from actionpipe.outputs.render import render_video

        with console.silenced(not self.verbose):
            return render_video(self.video, path, self._pose(), self, k)

    def _pose(self) -> PoseFile:
        if self.pose is None:
            raise ActionpipeError(self.video, f"no pose to draw (status {self.status}: {self.error})")
        return self.pose

    def __repr__(self) -> str:
        said = [f"{self.label} {self.probability:.2f}"] if self.label else [self.error or ""]
        said += [f"{len(self.segments)} segments"] if self.timeline is not None else []
        said += [f"{len(self.result.people)} people"] if self.result.people is not None else []
        return f"Result({self.video!r}, {self.status!r}, {', '.join(s for s in said if s)})"


def _card(model: str | os.PathLike | ModelCard | None) -> ModelCard:
    if isinstance(model, ModelCard):
        return model
    card = find_card(model) if model is not None else default_card()
    if card is None:
        raise ActionpipeError(None, "no default model is installed: pass a model card name or folder")
    return card


class ActionModel:
    """The pose model and the action model of one card, loaded once; call it on videos.

    ``model``: None (the default model), a card name, a folder with a card.json, or a
    :class:`~actionpipe.model.cards.ModelCard`. The pose settings (``imgsz``, ``conf``, ``fps``,
    ``pose_backend``, ``pose_precision``, ``speed``) default to the card's, as for
    ``actionpipe classify``; ``reject=False`` never answers ``unknown``.
    """

    def __init__(self, model: str | os.PathLike | ModelCard | None = None, *, device: str = "auto",
                 imgsz: int | None = None, conf: float | None = None, fps: float | None = None,
                 batch: int = DEFAULT_BATCH,
                 pose_backend: str = DEFAULT_POSE_BACKEND, pose_precision: str | None = None,
                 speed: str = DEFAULT_SPEED, reject: bool = True, prefetch: bool = True, verbose: bool = False,
                 engine: str = "local", address: str | None = None, pose_workers: int | None = None):
        from actionpipe.engines.ray_engine import ENGINES, import_ray

        if engine not in ENGINES:
            raise ActionpipeError(None, f"unknown engine {engine!r} (expected one of {', '.join(ENGINES)})")
        if engine == "ray":
            import_ray()  # a missing Ray is one line now, not at the first video
        self.verbose, self.engine, self.address, self.pose_workers = verbose, engine, address, pose_workers
        # What a Ray actor builds its own model from (engine="ray").
        self.settings = dict(device=device, imgsz=imgsz, conf=conf, fps=fps, batch=batch, pose_backend=pose_backend,
                             pose_precision=pose_precision, speed=speed, reject=reject, prefetch=prefetch)
        with console.silenced(not verbose):
            self.card = _card(model)
            self.classifier = Classifier(self.card, **self.settings)

    @property
    def classes(self) -> list[str]:
        return self.card.classes

    def __repr__(self) -> str:
        pose = self.classifier.pose
        return (f"ActionModel({self.card.name!r}, {len(self.classes)} classes, device {self.classifier.predictor.device}, "
                f"pose {pose.pose_backend} imgsz {pose.imgsz} at {self.classifier.fps:g} fps)")

    def __call__(self, source: str | os.PathLike | Sequence[str | os.PathLike], *, window: float | None = None,
                 stride: float | None = None, aggregate: str | None = None, per_person: bool = False,
                 min_track_s: float = DEFAULT_MIN_TRACK_S, stream: bool = False, pose: PoseFile | None = None,
                 keep_dir: str | os.PathLike | None = None) -> Result | list[Result] | Iterator[Result]:
        """Classify a video (a :class:`Result`) or a list of them (a list, or with ``stream`` a generator).

        ``window``/``stride`` (seconds): a timeline of sliding windows merged into segments;
        ``aggregate``: how windows make the video's scores (``mean``, ``motion``, ``max``; default
        the card's); ``per_person``: each track seen for ``min_track_s`` classified on its own;
        ``pose``: a pose file already made for this one video (skips the pose model);
        ``keep_dir``: each video's pose.json, sample.npz and scores.json written there.
        """
        settings = dict(window_s=window, stride_s=stride, aggregate=aggregate, per_person=per_person,
                        min_track_s=min_track_s)
        self.classifier.configure(**settings)  # bad settings fail now, not at the first video
        single = isinstance(source, (str, os.PathLike))
        videos = [source] if single else list(source)
        if pose is not None and not single:
            raise ActionpipeError(None, "pose= goes with one video, not a list")
        if self.engine == "ray":
            if pose is not None:
                raise ActionpipeError(None, "pose= runs on the local engine, not on ray")
            results = self._ray_results(videos, settings, keep_dir, raise_errors=single)
        else:
            results = self._results(videos, settings, pose, keep_dir, raise_errors=single)
        if single:
            result = next(results)
            results.close()  # ends the decode-ahead thread now
            return result
        return results if stream else list(results)

    def _results(self, videos: list, settings: dict, pose: PoseFile | None, keep_dir,
                 raise_errors: bool) -> Iterator[Result]:
        from actionpipe.pipeline.classify import keep_names

        poses = ([(Path(videos[0]), pose, time.perf_counter())] if pose is not None
                 else self.classifier.poses(videos))
        for (video, found, start), name in zip(self._quietly(poses), keep_names(videos)):
            with console.silenced(not self.verbose):
                try:
                    if isinstance(found, ActionpipeError):
                        raise found
                    # Settings per video: another call may have changed the shared classifier's.
                    self.classifier.configure(**settings)
                    result = Result(self.classifier.classify_pose(found, video, keep_dir, name), found, self.verbose)
                except ActionpipeError as exc:
                    if raise_errors:
                        raise
                    result = Result(VideoResult(str(video), "error", self.classes, error=str(exc)), None, self.verbose)
            result.info["seconds"] = round(time.perf_counter() - start, 3)
            yield result

    def _ray_results(self, videos: list, settings: dict, keep_dir, raise_errors: bool) -> Iterator[Result]:
        """Results from the Ray cluster (:mod:`actionpipe.engines.ray_engine`), in the order they finish;
        ``result.pose`` is None (the pose stays on the cluster)."""
        from actionpipe.engines.ray_engine import classify_on_ray

        for found in classify_on_ray(type(self), self.card, self.settings, videos, settings, keep_dir, self.address,
                                     self.pose_workers, self.verbose):
            if raise_errors and not found.ok:
                raise ActionpipeError(None, found.error)
            yield Result(found, None, self.verbose)

    def _quietly(self, items: Iterable) -> Iterator:
        """``items``, each one made with the console silenced (but not while the caller holds it)."""
        iterator = iter(items)
        while True:
            with console.silenced(not self.verbose):
                try:
                    item = next(iterator)
                except StopIteration:
                    return
            yield item

    def pose(self, video: str | os.PathLike) -> PoseFile:
        """The video's tracked pose at the model's rate, as ``classify`` computes it."""
        ((_, found, _),) = list(self._quietly(self.classifier.poses([video])))
        if isinstance(found, ActionpipeError):
            raise found
        return found

    def predict(self, data: PoseFile | Sample | str | os.PathLike, *, window: float | None = None,
                stride: float | None = None, aggregate: str | None = None) -> Prediction:
        """The model's :class:`~actionpipe.model.infer.Prediction` for a pose file or a packed sample (or a
        path to either: ``.json`` / ``.npz``), packed as the card says. This is the bare stage: no
        ``no_person``/``too_short``/``unknown`` statuses (``prediction.rejected`` says the last)."""
        source = data
        if isinstance(data, (str, os.PathLike)):
            data = Sample.load(data) if Path(data).suffix == ".npz" else PoseFile.load(data)
        sample = pack_people(data, self.card.preprocessing) if isinstance(data, PoseFile) else data
        self.classifier.configure(window_s=window, stride_s=stride, aggregate=aggregate)
        # A pose's windows are packed each on its own, as classify packs them; a sample's are cut from it.
        windows = self.classifier.pack_windows(data, [sample], []) if window and isinstance(data, PoseFile) else None
        with console.silenced(not self.verbose):
            ((prediction, _),) = self.classifier.predict_samples([sample], [source], windows)
        return prediction

    def watch(self, source: str | int | os.PathLike, **options):
        """Classify a camera (``0``), a device, a stream URL or a video file as it plays: a
        :class:`~actionpipe.pipeline.live.Watch` (opened now) to iterate for windows and events as they happen.
        ``options``: ``window``, ``stride``, ``per_person``, ``events_only``, ``realtime``, ``duration``,
        ``show``, ``save`` ... (see :class:`~actionpipe.pipeline.live.Watch`)."""
        from actionpipe.pipeline.live import Watch

        return Watch(self, source, **options)
