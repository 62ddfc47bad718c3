"""``--engine ray``: classify many videos on a Ray cluster (Ray Data), with the answers of one process.

::

    paths ──▶ Dataset ──▶ pose actors ──────────────▶ classify actors ──────────▶ driver
              one video    decode + YOLO pose + tracks   pack + ST-GCN + statuses    results as they finish
              per block    (one model per actor; a GPU   (CPU; 1 per 16 pose       (JSONL / Parquet / API)
                           share when the cluster has)   actors, 1:1 with GPUs)

Each stage runs the single-process code itself (:meth:`ActionModel.pose
<actionpipe.api.ActionModel.pose>`, then :meth:`Classifier.classify_poses
<actionpipe.pipeline.classify.Classifier.classify_poses>` with the same settings and keep names), so a video
gets the same result whichever engine runs it. A video that fails is an ``error`` result, never a
failed job. Ray restarts a dead actor and retries its task (up to :data:`MAX_TASK_RETRIES` times);
the driver yields each input position once, so a retried task never doubles a line.

Ray is imported here only, and only when this engine runs (``pip install actionpipe[ray]``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from actionpipe.core import console
from actionpipe.core.errors import ActionpipeError

ENGINES = ("local", "ray")
RAY_HINT = "pip install 'actionpipe[ray]'"
LOCAL_OBJECT_STORE_BYTES = 500 * 2**20  # a local Ray's shared memory: a pose file is ~0.1-1 MB
MAX_TASK_RETRIES = 3      # a video that kills its actor every time fails the job, not loops forever
MAX_INPUT_BLOCKS = 10_000  # one video per block (one task each) up to this many videos
POSE_CPUS = 2             # cores per pose actor on a CPU cluster: its decode thread + the model
# Pose actors one classify actor keeps up with on CPUs: its work is 1/20 of a pose actor's
# (benchmarks/bench_ray.py; on GPU nodes it is not, see plan_stages).
CLASSIFY_SHARE = 16
POSE_MEMORY = 2 * 2**30   # reserved per pose actor (measured: 1.6 GB resident, torch + OpenVINO + a video)
CLASSIFY_MEMORY = 2**30   # reserved per classify actor (measured: 1.0 GB resident)
# Posed videos per classify call: their windows share ST-GCN batches (Ray bundles up to this many;
# the last bundle of a run is smaller).
CLASSIFY_BATCH = 8
FAULT_FILE_ENV = "ACTIONPIPE_RAY_FAULT_FILE"  # fault injection for tests: see _inject_fault


def import_ray():
    """The ``ray`` module with Ray Data, or one clear line saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ActionpipeError(None, f"--engine ray needs Ray, which is not installed: {RAY_HINT}") from None
    return ray


def _log_level(verbose: bool) -> int:
    """Ray's log lines: its progress with ``verbose`` (unless ``-q``), its warnings unless silenced."""
    return logging.INFO if verbose and not console.is_quiet() else logging.WARNING if verbose else logging.ERROR


def connect(address: str | None = None, verbose: bool = False):
    """Join the Ray cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``), or start a
    local one: this machine's cores, a small object store, no dashboard (it still listens on this
    machine's ports, token-authenticated, as Ray does). A session the caller already started
    (``ray.init`` in a notebook or a test) is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options: dict[str, Any] = {"address": address, "logging_level": _log_level(verbose)}
    if address is None:
        # Its CPUs: the cores Ray finds this process may use (cgroup limits included).
        options.update(object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False)
    try:
        ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "locally"
        raise ActionpipeError(None, f"cannot start Ray {where}: {str(exc).strip().splitlines()[0]}") from None
    return ray


@dataclass
class StagePlan:
    """Actors and resources per stage, from the cluster's CPUs and GPUs."""

    pose_workers: int
    pose_cpus: float
    pose_gpus: float
    classify_workers: int
    classify_cpus: float

    def __str__(self) -> str:
        gpus = f", {self.pose_gpus:g} GPU" if self.pose_gpus else ""
        return (f"{self.pose_workers} pose actor(s) ({self.pose_cpus:g} CPU{gpus} each), "
                f"{self.classify_workers} classify actor(s) ({self.classify_cpus:g} CPU each)")


def plan_stages(resources: dict[str, float], pose_workers: int | None = None, use_gpus: bool = True) -> StagePlan:
    """Pose actors: by default one per :data:`POSE_CPUS` cores (at least one per GPU). Without
    GPUs each gets its share of the cores; its classify actors, one per :data:`CLASSIFY_SHARE`, take
    no CPU of the accounting, so they never starve the pose actors. With GPUs (decoding, on the CPU,
    is then the bound: benchmarks/bench_ray.py) each pose actor gets a core and a share of the GPUs,
    and a classify actor of its own gets a core of those left."""
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0)) if use_gpus else 0.0
    workers = pose_workers or max(int(gpus), int(cpus // POSE_CPUS), 1)
    if gpus:
        pose_cpus = min(1.0, cpus / workers)
        spare = max(0.0, cpus - workers * pose_cpus)
        return StagePlan(workers, pose_cpus, min(1.0, gpus / workers), workers, min(1.0, spare / workers))
    share = max(cpus, 1.0) / workers
    return StagePlan(workers, float(int(share)) if share >= 1 else share, 0.0, -(-workers // CLASSIFY_SHARE), 0.0)


def _inject_fault() -> None:
    """Tests kill an actor mid-run: when the file ``$ACTIONPIPE_RAY_FAULT_FILE`` names exists, the
    one process that removes it exits at once, as a crash or an OOM kill would."""
    path = os.environ.get(FAULT_FILE_ENV)
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        os._exit(1)


@contextlib.contextmanager
def _named_by(video: str, local: str) -> Iterator[None]:
    """Errors about a URI's local copy name the URI."""
    try:
        yield
    except ActionpipeError as exc:
        if exc.path != local or local == video:
            raise
        raise ActionpipeError(video, exc.problem) from None


def _problem(video: str, exc: Exception) -> str:
    """An error result's text: ``FILE: problem``, as the single-process path words it."""
    if isinstance(exc, ActionpipeError):
        return str(exc)
    return f"{video}: {type(exc).__name__}: {exc}"


def is_uri(path: str | Path) -> bool:
    """``s3://…``, ``gs://…``, ``file://…``: a video Ray's file systems (pyarrow's) read."""
    return "://" in str(path)


def expand_uris(uris: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The video files below each URI (a folder, listed recursively, sorted) or the URI itself (a
    file; a missing one fails as that video), and the URIs that could not be listed, with why."""
    import_ray()
    from pyarrow import ArrowException, fs

    from actionpipe.video.reader import VIDEO_SUFFIXES

    videos, unreadable = [], []
    for uri in uris:
        uri = uri.rstrip("/")
        try:
            filesystem, path = fs.FileSystem.from_uri(uri)
            if filesystem.get_file_info(path).type != fs.FileType.Directory:
                videos.append(uri)
                continue
            prefix = uri[: len(uri) - len(path)] if uri.endswith(path) else uri.split("://")[0] + "://"
            found = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
            videos += sorted(prefix + f.path for f in found
                             if f.type == fs.FileType.File and Path(f.path).suffix.lower() in VIDEO_SUFFIXES)
        except (OSError, ValueError, ArrowException) as exc:
            unreadable.append((uri, str(exc).strip().splitlines()[0]))
    return videos, unreadable


@contextlib.contextmanager
def local_copy(video: str) -> Iterator[str]:
    """A path OpenCV can open: the video itself, or a URI's temporary local copy (removed after)."""
    if not is_uri(video):
        yield video
        return
    from pyarrow import ArrowException, fs

    with tempfile.TemporaryDirectory(prefix="actionpipe-") as folder:
        local = os.path.join(folder, "video" + Path(video).suffix)
        try:
            filesystem, path = fs.FileSystem.from_uri(video)
            with filesystem.open_input_stream(path) as source, open(local, "wb") as target:
                shutil.copyfileobj(source, target, 2**20)
        except (OSError, ValueError, ArrowException) as exc:
            raise ActionpipeError(video, f"cannot read: {str(exc).strip().splitlines()[0]}") from None
        yield local


def _enter(cwd: str) -> None:
    """Relative paths mean what they meant to the driver, where its folder exists (a local Ray, or
    a cluster sharing the file system at the same mount points)."""
    if os.path.isdir(cwd):
        os.chdir(cwd)


class PoseStage:
    """Decode + pose, one video per call; the pose model is loaded once per actor."""

    def __init__(self, model_class, card, settings: dict[str, Any], cwd: str):
        _enter(cwd)
        self.model = model_class(card, **settings)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        poses, errors, seconds = [], [], []
        for video in batch["video"]:
            _inject_fault()
            start = time.perf_counter()
            try:
                with local_copy(str(video)) as local, _named_by(str(video), local):
                    poses.append(pickle.dumps(self.model.pose(local), protocol=pickle.HIGHEST_PROTOCOL))
                errors.append("")
            except Exception as exc:  # any failure is this video's result, never the job's end
                poses.append(b"")
                errors.append(_problem(str(video), exc))
            seconds.append(time.perf_counter() - start)
        return {**batch, "pose": poses, "error": errors, "pose_s": seconds}


class ClassifyStage:
    """Pack + ST-GCN + statuses of up to :data:`CLASSIFY_BATCH` posed videos per call, their windows
    batched together (:meth:`~actionpipe.pipeline.classify.Classifier.classify_poses`); yields pickled
    :class:`VideoResult` objects."""

    def __init__(self, model_class, card, settings: dict[str, Any], analysis: dict[str, Any], keep_dir: str | None,
                 cwd: str):
        _enter(cwd)
        self.model = model_class(card, **settings)
        self.model.classifier.configure(**analysis)
        self.keep_dir = keep_dir

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from actionpipe.pipeline.classify import VideoResult

        videos, errors = [str(v) for v in batch["video"]], [str(e) for e in batch["error"]]
        start = time.perf_counter()
        posed: dict[int, tuple] = {}
        for i, (pose, name) in enumerate(zip(batch["pose"], batch["keep_name"])):
            if not errors[i]:
                posed[i] = (pickle.loads(pose), videos[i], str(name))
        results: dict[int, Any] = {}
        with console.silenced():
            try:  # the windows of all these videos in shared ST-GCN batches
                results = dict(zip(posed, self.model.classifier.classify_poses(list(posed.values()), self.keep_dir)))
            except Exception:  # one video failed the batch: each on its own, so only it is an error
                for i, (pose, video, name) in posed.items():
                    try:
                        results[i] = self.model.classifier.classify_pose(pose, video, self.keep_dir, name)
                    except Exception as exc:
                        errors[i] = _problem(video, exc)
        share = (time.perf_counter() - start) / len(videos)
        out = []
        for i, video in enumerate(videos):
            result = results[i] if i in results else VideoResult(video, "error", self.model.classes, error=errors[i])
            result.info["seconds"] = round(float(batch["pose_s"][i]) + share, 3)
            out.append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return {"index": batch["index"], "result": out}


def _pipeline(ray, rows: list[dict], plan: StagePlan, model_class, card, settings: dict[str, Any],
              analysis: dict[str, Any],
              keep_dir: str | Path | None):
    """The Dataset: rows of videos -> pose actors -> classify actors -> rows of pickled results."""
    dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), MAX_INPUT_BLOCKS))
    # Ray restarts a dead actor (max_restarts=-1, its default) and retries the task it was running.
    # Ray 2.64 drops these remote args (its default then: retry forever); the pin keeps them.
    retries = {"max_restarts": -1, "max_task_retries": MAX_TASK_RETRIES}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`ray_remote_args` is deprecated", DeprecationWarning)
        # An actor given no GPU may still see the node's (Ray hides them only from those given some).
        pose_settings = dict(settings, device="cpu") if not plan.pose_gpus and settings["device"] == "auto" else settings
        dataset = dataset.map_batches(
            PoseStage, batch_size=1,
            fn_constructor_kwargs={"model_class": model_class, "card": card, "settings": pose_settings,
                                   "cwd": os.getcwd()},
            compute=ray.data.ActorPoolStrategy(size=plan.pose_workers, max_tasks_in_flight_per_actor=2),
            num_cpus=plan.pose_cpus, num_gpus=plan.pose_gpus or None, memory=POSE_MEMORY, **retries)
        # The ST-GCN stage runs on the CPU (a small share of the work; GPUs go to the pose actors).
        return dataset.map_batches(
            ClassifyStage, batch_size=CLASSIFY_BATCH, compute=ray.data.ActorPoolStrategy(size=plan.classify_workers),
            fn_constructor_kwargs={"model_class": model_class, "card": card,
                                   "settings": dict(settings, device="cpu"), "analysis": analysis,
                                   "keep_dir": None if keep_dir is None else str(keep_dir), "cwd": os.getcwd()},
            num_cpus=plan.classify_cpus, memory=CLASSIFY_MEMORY, **retries)


def classify_on_ray(model_class, card, settings: dict[str, Any], videos: Sequence[str | Path], analysis: dict[str, Any],
                    keep_dir: str | Path | None = None, address: str | None = None,
                    pose_workers: int | None = None, verbose: bool = False) -> Iterator:
    """:class:`~actionpipe.pipeline.classify.VideoResult` of each video, in the order they finish, once each.

    ``model_class``: :class:`~actionpipe.api.ActionModel` (handed in, so that this engine never imports
    the API that drives it); ``settings``: its constructor options (each actor builds its own model); ``analysis``: the per-call window/aggregate/per-person settings.
    """
    from actionpipe.pipeline.classify import keep_names

    if not videos:
        return
    ray = connect(address, verbose)
    from ray.data.exceptions import SystemException

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = _log_level(verbose) == logging.INFO
    # Without bars, Ray Data warns that they are off: only its errors then.
    logging.getLogger("ray.data").setLevel(logging.INFO if context.enable_progress_bars else logging.ERROR)
    plan = plan_stages(ray.cluster_resources(), pose_workers,
                       use_gpus=settings["device"] != "cpu" and settings["pose_backend"] != "openvino")
    if verbose:
        console.info(f"ray: {len(videos)} video(s) on {plan}")
    rows = [{"index": i, "video": str(v), "keep_name": name} for i, (v, name) in enumerate(zip(videos, keep_names(videos)))]
    dataset = _pipeline(ray, rows, plan, model_class, card, settings, analysis, keep_dir)
    seen: set[int] = set()
    try:
        for row in dataset.iter_rows():
            if int(row["index"]) in seen:  # a retried task's second answer
                continue
            seen.add(int(row["index"]))
            yield pickle.loads(row["result"])
    except (ray.exceptions.RayError, SystemException) as exc:  # a job Ray could not finish
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise ActionpipeError(None, f"the Ray job failed after {len(seen)} of {len(videos)} video(s) "
                                    f"({lines[-1] if lines else type(exc).__name__}); run again with "
                                    "--skip-existing to resume") from None
