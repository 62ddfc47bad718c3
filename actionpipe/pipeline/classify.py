"""``classify``: every stage in one process, video → pose → pack → ST-GCN → probabilities.

Models are loaded once and reused for every video; nothing goes through intermediate files
unless ``keep_dir`` asks for them (then each video gets ``pose.json``, ``sample.npz`` and
``scores.json`` in ``keep_dir/<name>/``, the name from :func:`keep_names`: the stem, or the path
below the videos' common folder when they come from several folders).

Beyond the clip label (the top-M people of the whole video, as the model was trained):

* ``window_s``/``stride_s``: a :class:`~actionpipe.outputs.timeline.Timeline` of sliding windows merged
  into segments; the whole-video scores are the windows' ``mean`` or ``max``.
* ``per_person``: every track seen for at least ``min_track_s`` classified on its own.

Statuses (all but ``error`` are answers; the CLI exits 0 for them):

* ``ok`` — a class: ``label``, ``probability``, ``top``;
* ``unknown`` — the card's open-set rule rejected the clip (not like any class it was trained
  on): ``label`` and ``probability`` are null, ``closest`` is ``{"class", "probability"}`` of the
  top class, ``top`` is still given; ``reject=False`` turns this off (``--no-reject``);
* ``no_person`` — nobody found; ``low_frame_rate`` — the pose's rate (the video's, or ``fps``)
  is below half the model's (a 1 fps video: the model's windows would span 32 s);
  ``too_short`` — the people kept were seen for less than ``min_person_s`` (0.5 s: fewer than 8
  frames at 15 fps), counted in frames at the pose's rate;
  ``low_confidence`` — their mean keypoint confidence (joints the model uses, frames they are
  seen in) is below ``min_keypoint_confidence``: pose too unreliable to name an action;
* ``error`` — the video could not be processed.

With an open-set rule, results carry ``open_set`` ``{"score", "threshold", "rejected"}``.

All windows of the clip and of every person go through the ST-GCN in shared batches. With
``prefetch``, a background thread decodes ahead (:mod:`actionpipe.video.prefetch`), across video
boundaries, while the pose model works (see ``benchmarks/bench_long.py`` for what it buys).
"""
from __future__ import annotations

import os
import time
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from actionpipe.model.cards import ModelCard
from actionpipe.core.devices import DEFAULT_POSE_BACKEND
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import is_number, make_dirs, write_json
from actionpipe.core.limits import MAX_WINDOW_S
from actionpipe.model.aggregates import AGGREGATES
from actionpipe.model.infer import DEFAULT_BATCH, Prediction, Predictor, prediction_item, scores_document, window_starts
from actionpipe.skeleton.pack import pack_people, pack_track
from actionpipe.outputs.results import ANSWERS, PersonResult, VideoResult  # noqa: F401 (ANSWERS: classify's statuses)
from actionpipe.pipeline.speed import DEFAULT_SPEED, SPEEDS, interpolate_pose
from actionpipe.pipeline.reps import reps_dict, track_keypoints
from actionpipe.outputs.timeline import Timeline

DEFAULT_MIN_TRACK_S = 1.0
MIN_PERSON_S = 0.5
MIN_KEYPOINT_CONFIDENCE = 0.2
MIN_FPS_SHARE = 0.5   # a pose rate below this share of the model's is low_frame_rate


def describe_tracks(pose) -> dict[int, dict[str, Any]]:
    """Per track id: first/last time (end exclusive), frames seen and median box, by first appearance."""
    boxes: dict[int, list[np.ndarray]] = {}
    times: dict[int, list[float]] = {}
    for frame in pose.frames:
        for p in frame.people:
            boxes.setdefault(p.track_id, []).append(np.asarray(p.box, dtype=np.float64))
            times.setdefault(p.track_id, []).append(frame.time_s)
    return {t: {"start_s": times[t][0], "end_s": times[t][-1] + 1.0 / pose.fps, "frames": len(times[t]),
                "box": np.median(np.stack(boxes[t]), axis=0).tolist()} for t in boxes}


def keep_names(videos: Sequence[str | Path]) -> list[str]:
    """Per video, its path below the videos' common folder without the suffix: ``squat`` for one
    video, ``jump/001`` and ``run/001`` for class folders, and with the suffix for videos that
    differ only in it (``clip.mp4``, ``clip.mov``) — names that do not collide."""
    if not videos:
        return []
    resolved = [Path(os.path.realpath(v)) for v in videos]
    root = Path(os.path.commonpath([p.parent for p in resolved]))
    stems = [str(p.with_suffix("").relative_to(root)) for p in resolved]
    files: dict[str, set[Path]] = {}
    for stem, p in zip(stems, resolved):
        files.setdefault(stem, set()).add(p)
    return [str(p.relative_to(root)) if len(files[stem]) > 1 else stem for stem, p in zip(stems, resolved)]


def covered_seconds(pose) -> float:
    """How much video the pose file covers: its frames at its rate, but never more than the source
    video is long (at 0.1 fps one frame of a 3 s video is 3 s, not 10)."""
    duration = pose.num_frames / pose.fps
    source_fps, source_frames = pose.source.get("fps"), pose.source.get("frame_count")
    if isinstance(source_fps, (int, float)) and source_fps > 0 and isinstance(source_frames, int) and source_frames > 0:
        duration = min(duration, source_frames / source_fps)
    return duration


def timing(pose) -> dict[str, Any]:
    """What a result says of the video's time: ``duration_s``, the video's length (its container's
    frame count and rate; else what the pose covers), ``decoded_s``, what the pose covers (what the
    answer is about), ``fps``, the pose's rate, and ``warnings: ["truncated"]`` when decoding
    stopped before the container's end (a cut-off or damaged file, said by the decoder)."""
    covered = covered_seconds(pose)
    source_fps, source_frames = pose.source.get("fps"), pose.source.get("frame_count")
    known = is_number(source_fps) and source_fps > 0 and is_number(source_frames, whole=True) and source_frames > 0
    said = {"duration_s": round(source_frames / source_fps if known else covered, 3), "decoded_s": round(covered, 3),
            "fps": round(float(pose.fps), 3)}
    return {**said, "warnings": ["truncated"]} if "decoded_frames" in pose.source else said


@dataclass
class _Packed:
    """A video packed for the model: its samples (the whole clip, then each track's)."""

    video: str
    info: dict[str, Any]
    samples: list
    tracks: dict[int, dict[str, Any]]
    keep: Path | None
    windows: list | None = None  # with --window: per sample, each window packed on its own
    keypoints: dict[int, Any] | None = None  # per counted track: (T, 17, 3) for repetition counting
    fps: float = 0.0


def _first_frames(sample, frames: int):
    """``sample`` cut to its first ``frames`` frames (a window packed at another rate may get one more)."""
    if len(sample.frame_indices) <= frames:
        return sample
    return replace(sample, data=sample.data[:, :, :frames], frame_indices=sample.frame_indices[:frames],
                   times=sample.times[:frames])


class Classifier:
    """Pose model + action model, loaded once; call :meth:`classify` per video.

    Pose settings default to the card's ``pose`` section (the settings its accuracy was measured
    with; ``pose.precision`` too), then to the pose stage's defaults; the pose runs at the model's
    frame rate. ``pose_backend``: see :class:`~actionpipe.pose.estimator.PoseEstimator`; ``speed``: a
    profile of :mod:`actionpipe.pipeline.speed` (``fast``: pose at half the rate, interpolated, and in bf16
    where the CPU has it, unless ``pose_precision`` is given).
    ``load_pose=False`` skips the pose model for callers that only use :meth:`classify_pose`.
    ``stgcn_engine``: see :class:`~actionpipe.model.infer.Predictor` (auto: OpenVINO on the CPU).
    ``reject=False`` never answers ``unknown``; the ``min_*`` settings are the degenerate-case
    limits (see the module docstring).
    """

    def __init__(self, card: ModelCard, *, device: str = "auto", imgsz: int | None = None,
                 conf: float | None = None, fps: float | None = None, batch: int = DEFAULT_BATCH,
                 pose_weights: str | Path | None = None, window_s: float | None = None,
                 stride_s: float | None = None, aggregate: str | None = None, per_person: bool = False,
                 min_track_s: float = DEFAULT_MIN_TRACK_S, prefetch: bool = True, load_pose: bool = True,
                 reject: bool = True, min_person_s: float = MIN_PERSON_S,
                 min_keypoint_confidence: float = MIN_KEYPOINT_CONFIDENCE, pose_backend: str = DEFAULT_POSE_BACKEND,
                 pose_precision: str | None = None, speed: str = DEFAULT_SPEED, stgcn_engine: str = "auto"):
        from actionpipe.pose.estimator import PoseEstimator

        if speed not in SPEEDS:
            raise ActionpipeError(None, f"unknown speed {speed!r} (expected one of {', '.join(SPEEDS)})")
        if pose_precision is None:
            pose_precision = SPEEDS[speed].pose_precision
        settings = card.pose_settings(imgsz=imgsz, conf=conf, fps=fps, precision=pose_precision)
        self.card = card
        self.fps = settings.pop("fps", None)
        self.pose = PoseEstimator(pose_weights, device=device, backend=pose_backend, **settings) if load_pose else None
        self.predictor = Predictor(card, device, batch, reject=reject, engine=stgcn_engine)
        self.min_person_s = min_person_s
        self.min_keypoint_confidence = min_keypoint_confidence
        self.configure(window_s=window_s, stride_s=stride_s, aggregate=aggregate, per_person=per_person,
                       min_track_s=min_track_s)
        self.prefetch = prefetch
        if speed != DEFAULT_SPEED and not self.fps:
            raise ActionpipeError(None, f"speed {speed} needs a frame rate (--fps, or the model card's)")
        self.speed = speed

    def configure(self, *, window_s: float | None = None, stride_s: float | None = None,
                  aggregate: str | None = None, per_person: bool = False,
                  min_track_s: float = DEFAULT_MIN_TRACK_S) -> None:
        """The analysis settings (windows, aggregate, per person): they change no loaded model, so
        they can change between videos."""
        if aggregate is not None and aggregate not in AGGREGATES:
            raise ActionpipeError(None, f"unknown aggregate {aggregate!r} (expected one of {', '.join(AGGREGATES)})")
        def bad(seconds) -> bool:  # NaN and infinity included: they fail is_number
            return seconds is not None and not (is_number(seconds) and 0 < seconds <= MAX_WINDOW_S)

        if bad(window_s) or bad(stride_s) or (stride_s is not None and window_s is None):
            raise ActionpipeError(None, f"window ({window_s}) and stride ({stride_s}) must be positive "
                                        f"seconds up to {MAX_WINDOW_S:g}, and a stride needs a window")
        self.window_s, self.stride_s = window_s, (stride_s or (window_s / 2 if window_s else None))
        self.aggregate, self.per_person, self.min_track_s = aggregate, per_person, min_track_s

    def model_windows(self) -> tuple[float, float]:
        """The card's own window and stride in seconds (2 s / 1 s when it has none)."""
        frames, rate = self.card.inference.window_frames, self.card.preprocessing.fps or self.fps
        if not frames or not rate:
            return 2.0, 1.0
        return frames / rate, self.card.inference.stride / rate

    def classify(self, video: str | Path, keep_dir: str | Path | None = None,
                 keep_name: str | None = None) -> VideoResult:
        """Classify one video; raises ActionpipeError for a broken one. ``keep_name``: its folder
        in ``keep_dir`` (default: the file's stem)."""
        return next(self._classify_all([Path(video)], keep_dir, keep_going=False,
                                       names=[keep_name] if keep_name else None))

    def classify_many(self, videos: Iterable[str | Path],
                      keep_dir: str | Path | None = None) -> Iterator[VideoResult]:
        """Classify each video; a broken one yields an ``error`` result and the rest go on."""
        yield from self._classify_all([Path(v) for v in videos], keep_dir, keep_going=True)

    @property
    def pose_fps(self) -> float | None:
        """The rate the pose model runs at: the model's, or ``speed``'s share of it (``fast``: every
        second frame, the others interpolated); None (no model rate): every frame."""
        return self.fps / SPEEDS[self.speed].pose_every if self.fps else None

    def poses(self, videos: Sequence[str | Path]) -> Iterator[tuple[Path, Any, float]]:
        """Per video: (path, its PoseFile or the ActionpipeError it raised, when its work started),
        decoded ahead with ``prefetch``; the pose runs at the model's rate (or ``speed``'s)."""
        for video, pose, start in self.pose.estimate_videos(videos, fps=self.pose_fps, ahead=self.prefetch):
            if self.fps and not isinstance(pose, ActionpipeError):
                pose = interpolate_pose(pose, min(self.fps, pose.source["fps"]))
            yield video, pose, start

    def made_here(self, pose) -> bool:
        """Whether ``pose`` is what :meth:`poses` would make of its video: same pose model settings
        (backend, input size, threshold, precision), rate and speed (interpolated or not)."""
        own = self.pose.backend()
        source_fps = pose.source.get("fps") or pose.fps

        def at_source(fps: float | None) -> float:  # read_frames never goes above the source's rate
            return min(fps, source_fps) if fps else source_fps

        posed_at = pose.backend.get("interpolated_from_fps", pose.fps)
        return (all(pose.backend.get(key) == own.get(key) for key in ("name", "model", "imgsz", "conf", "precision"))
                and abs(pose.fps - at_source(self.fps)) < 1e-6 and abs(posed_at - at_source(self.pose_fps)) < 1e-6)

    def _classify_all(self, videos: list[Path], keep_dir, keep_going: bool,
                      names: list[str] | None = None) -> Iterator[VideoResult]:
        names = names or keep_names(videos)
        for (video, pose, start), name in zip(self.poses(videos), names):
            try:
                if isinstance(pose, ActionpipeError):
                    raise pose
                result = self.classify_pose(pose, video, keep_dir, name)
            except ActionpipeError as exc:
                if not keep_going:
                    raise
                result = VideoResult(str(video), "error", self.card.classes, error=str(exc))
            result.info["seconds"] = round(time.perf_counter() - start, 3)
            yield result

    def classify_pose(self, pose, video: str | Path, keep_dir: str | Path | None = None,
                      keep_name: str | None = None) -> VideoResult:
        """Classify a video whose pose file is already known (what :meth:`classify` does after pose)."""
        return self.classify_poses([(pose, video, keep_name)], keep_dir)[0]

    def classify_poses(self, posed: Sequence[tuple[Any, str | Path, str | None]],
                       keep_dir: str | Path | None = None) -> list[VideoResult]:
        """:meth:`classify_pose` of each ``(pose, video, keep_name)``, the windows of all of them in
        shared ST-GCN batches (one pass per sample rate: windows are cut in frames)."""
        prepared = [self._pack(pose, video, keep_dir, name) for pose, video, name in posed]
        pending = [job for job in prepared if isinstance(job, _Packed)]
        outputs: dict[int, list] = {}
        for fps in dict.fromkeys(float(job.samples[0].meta["fps"]) for job in pending):
            jobs = [job for job in pending if float(job.samples[0].meta["fps"]) == fps]
            windows = None if self.window_s is None else [w for job in jobs for w in job.windows]
            predicted = iter(self.predict_samples([s for job in jobs for s in job.samples],
                                                  [job.video for job in jobs for _ in job.samples], windows))
            for job in jobs:
                outputs[id(job)] = [next(predicted) for _ in job.samples]
        return [job if isinstance(job, VideoResult) else self._result(job, outputs[id(job)]) for job in prepared]

    def _pack(self, pose, video: str | Path, keep_dir: str | Path | None, keep_name: str | None):
        """The video's samples (whole clip, then each person's track) ready for the model, or the
        :class:`VideoResult` of a video that has nothing to classify."""
        spec = self.card.preprocessing
        sample = pack_people(pose, spec)
        info = {"frames": pose.num_frames, **timing(pose),
                "people": len(pose.track_ids()), "tracks_used": [int(t) for t in sample.track_ids if t >= 0]}
        keep = None
        if keep_dir is not None:
            keep = make_dirs(Path(keep_dir) / (keep_name or Path(video).stem))
            pose.save(keep / "pose.json")
            sample.save(keep / "sample.npz")
        status = "no_person"
        if info["tracks_used"]:
            status = self._degenerate(sample, info, pose.fps)
        if status is not None:
            return VideoResult(str(video), status, self.card.classes, info=info,
                               people=[] if self.per_person else None)
        tracks = {t: d for t, d in describe_tracks(pose).items()
                  if d["frames"] / pose.fps >= self.min_track_s} if self.per_person else {}
        samples = [sample] + [pack_track(pose, spec, t) for t in tracks]
        windows = self.pack_windows(pose, samples, list(tracks)) if self.window_s else None
        counted = info["tracks_used"][:1] + list(tracks)   # the main person, then each track asked for
        return _Packed(str(video), info, samples, tracks, keep, windows,
                       {t: track_keypoints(pose, t) for t in counted}, pose.fps)

    def window_frames(self, sample_fps: float) -> tuple[int, int]:
        """``--window``/``--stride`` in frames at the rate a sample is packed at (``watch`` counts
        its windows with this too)."""
        return max(1, round(self.window_s * sample_fps)), max(1, round(self.stride_s * sample_fps))

    def pack_windows(self, pose, samples: list, track_ids: list[int]) -> list[list]:
        """Per sample (the clip, then each track's), each ``--window`` of it packed from that
        window's pose frames alone: people chosen and normalised on them, as ``watch`` packs the
        windows of a stream, so a window's label never depends on frames outside it."""
        spec, out = self.card.preprocessing, []
        times = [f.time_s for f in pose.frames]   # increasing (checked on load): windows found by bisection
        for sample, track in zip(samples, [None] + track_ids):
            window, stride = self.window_frames(float(sample.meta["fps"]))
            pieces = []
            for start in window_starts(len(sample.times), window, stride):
                span = sample.times[start:start + window]   # min/max: a card's fixed length may loop them
                piece = replace(pose, frames=pose.frames[bisect_left(times, span.min()):bisect_right(times, span.max())])
                if track is not None:
                    only = [replace(f, people=[p for p in f.people if p.track_id == track]) for f in piece.frames]
                    # A window the person is not in packs as nobody; one they are in starts where they do.
                    piece = replace(piece, frames=only)
                    packed = pack_track(piece, spec, track) if any(f.people for f in only) else pack_people(piece, spec)
                else:
                    packed = pack_people(piece, spec)
                pieces.append(_first_frames(packed, window))
            out.append(pieces)
        return out

    def _result(self, job: "_Packed", predicted: list[tuple[Prediction, Timeline | None]]) -> VideoResult:
        (prediction, clip_timeline), *per_track = predicted
        result = VideoResult(job.video, "unknown" if prediction.rejected else "ok", self.card.classes, prediction,
                             info=job.info, timeline=clip_timeline,
                             threshold=self.predictor.open_set.threshold if self.predictor.open_set else None)
        main = job.info["tracks_used"][0]
        result.reps = reps_dict(result.label, job.keypoints.get(main), job.fps)
        if self.per_person:
            result.people = [PersonResult(int(t), d["start_s"], d["end_s"], d["frames"], d["box"], pred, tl,
                                          reps_dict(None if pred.rejected else self.card.classes[int(pred.probabilities.argmax())],
                                                    job.keypoints.get(t), job.fps))
                             for (t, d), (pred, tl) in zip(job.tracks.items(), per_track)]
        if job.keep is not None:
            item = prediction_item(job.video, prediction, self.aggregate)
            write_json(job.keep / "scores.json", scores_document(self.card, [item]))
        return result

    def _degenerate(self, sample, info: dict[str, Any], pose_fps: float) -> str | None:
        """``low_frame_rate``, ``too_short`` or ``low_confidence`` when the kept people cannot carry a
        class, else None; records ``person_frames`` and ``keypoint_confidence`` in ``info``."""
        model_fps = self.card.preprocessing.fps
        if model_fps and pose_fps < model_fps * MIN_FPS_SHARE:
            return "low_frame_rate"   # its windows would span many times the seconds the model knows
        from actionpipe.pose.layouts import get_layout

        layout = get_layout(self.card.preprocessing.layout)
        used = [j for j in range(layout.num_joints) if layout.joints[j] not in self.card.preprocessing.joint_mask]
        conf = sample.data[0, 2][:, used][..., sample.track_ids >= 0]  # (T, joints used, people kept)
        present = conf.max(axis=1) > 0                                  # (T, people kept)
        frames = int(present.any(axis=1).sum())
        fps = min(float(sample.meta["fps"]), pose_fps)   # packing never repeats frames: slower stays slower
        mean_conf = float(conf.transpose(0, 2, 1)[present].mean()) if present.any() else 0.0
        info.update(person_frames=frames, keypoint_confidence=round(mean_conf, 4))
        if frames / fps < self.min_person_s:
            return "too_short"
        if mean_conf < self.min_keypoint_confidence:
            return "low_confidence"
        return None

    def predict_samples(self, samples, sources, windows: list | None = None) -> list[tuple[Prediction, Timeline | None]]:
        """One batched pass over every window of every sample (all at one rate; ``sources``: what
        each came from, for messages); aggregate and build timelines. ``windows``: with a
        ``--window``, each sample's windows packed on their own (see :meth:`pack_windows`);
        without, the windows are cut from the samples."""
        if windows is not None:
            window, _ = self.window_frames(float(samples[0].meta["fps"]))
            predictions = self.predictor.predict_windows(windows, sources, window)
        elif self.window_s:
            # The Predictor cuts windows in frames; the timeline's seconds depend on this video's rate.
            predictions = self.predictor.predict(samples, sources, *self.window_frames(float(samples[0].meta["fps"])))
        else:
            predictions = self.predictor.predict(samples, sources)
        out = []
        for pred in predictions:
            if self.aggregate is not None:  # None keeps the card's own rule, which the Predictor applied
                pred = replace(pred, probabilities=self.predictor.combine(pred.window_logits, pred.window_motion,
                                                                          self.aggregate))
            timeline = None
            if self.window_s:
                settings = {"window_s": self.window_s, "stride_s": self.stride_s,
                            "aggregate": self.aggregate or self.predictor.aggregate}
                timeline = Timeline(pred.window_times[:, 0], pred.window_times[:, 1],
                                    pred.window_probabilities, self.card.classes, settings)
            out.append((pred, timeline))
        return out
