"""A user's labelled videos as training and evaluation clips: ``videos:DIR`` or ``videos:LABELS.csv``.

* ``DIR``: one folder per class, the folder name is the label (``DIR/squat/*.mp4``,
  ``DIR/lunge/*.mov``, ...), as image classifiers' datasets are laid out. Videos in a sub-folder of a
  class folder (``DIR/squat/anna/*.mp4``) share a group: clips of one person, session or source
  video, which a validation split keeps on one side. Other videos are their own group.
* ``LABELS.csv``: columns ``file,label`` and optionally ``group`` and ``split`` (train, val, test or
  empty); files relative to the CSV's folder, or to its ``videos/`` folder (:func:`video_path`).

Each video is posed once, with the pose settings the model is trained for (the source model's, when
fine-tuning: :meth:`actionpipe.model.cards.ModelCard.pose_settings`), and the pose file is cached in
``CACHE/poses/`` under a name made of the video's SHA-256 and a hash of the pose settings (model
input size, confidence, rate, precision, backend, weights, tracker). An edited video gets a new
hash and is posed again; a renamed or moved one is found under its old pose; other settings give
other files. A re-run therefore only poses videos it has not seen. A video that cannot be decoded,
or in which nobody is found, is reported on stderr and skipped.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionpipe.core import console
from actionpipe.training.datasets import Clip, check_split, clip_from_pose, read_labels_csv
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import sha256_file
from actionpipe.skeleton.pack import PackSpec
from actionpipe.pose.posefile import PoseFile
from actionpipe.video.reader import VIDEO_SUFFIXES

KIND = "videos"
CACHE_VERSION = 1   # bump when what a cached pose file holds changes


@dataclass
class LabelledVideo:
    """One row of a video dataset: the file, its label, group and split (None: unassigned)."""

    path: Path
    name: str                  # as the dataset names it: below DIR, or as written in the CSV
    label: str
    group: str | None = None
    split: str | None = None


def list_videos(source: str | Path, split: str | None = None) -> list[LabelledVideo]:
    """The videos of a class-folder tree or a labels CSV (of ``split``: rows of that split; "train"
    also takes rows without one). Missing files stay listed: they fail, reported, when posed."""
    check_split(split)
    source = Path(source)
    if source.is_dir():
        videos = _from_folders(source)
    elif source.is_file():
        videos = _from_csv(source)
    else:
        raise ActionpipeError(source, "dataset not found (a folder with one folder per class, or a labels CSV)")
    videos = [v for v in videos if split is None or v.split == split or (split == "train" and v.split is None)]
    if not videos:
        raise ActionpipeError(source, f"no videos{' in split ' + split if split else ''}")
    return videos


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


def _from_folders(root: Path) -> list[LabelledVideo]:
    videos = []
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    for folder in classes:
        found = sorted(p for p in folder.rglob("*") if _is_video(p) and (p.is_file() or p.is_symlink()))
        if not found:
            console.warn(f"{folder}: no video files, no class {folder.name!r}")
        for path in found:
            parent = path.parent.relative_to(root)
            videos.append(LabelledVideo(path, str(path.relative_to(root)), folder.name,
                                        group=str(parent) if parent != Path(folder.name) else None))
    stray = [p.name for p in root.iterdir() if p.is_file() and _is_video(p)]
    if stray:
        console.warn(f"{root}: videos outside a class folder are not used ({', '.join(sorted(stray)[:3])}"
                     f"{' …' if len(stray) > 3 else ''}); put each in the folder of its class")
    if not classes:
        raise ActionpipeError(root, "no class folders: expected DIR/CLASS/VIDEO files (or a labels CSV)")
    return videos


def _from_csv(labels_csv: Path) -> list[LabelledVideo]:
    return [LabelledVideo(video_path(labels_csv, row.file), row.file, row.label, row.group, row.split)
            for row in read_labels_csv(labels_csv)]


def video_path(labels_csv: Path, file: str) -> Path:
    """Where a labels CSV's ``file`` is: relative to the CSV's folder, or to its ``videos/`` folder when
    only there (a dataset that keeps its videos in ``videos/`` beside the CSV)."""
    beside = labels_csv.parent / file
    inside = labels_csv.parent / "videos" / file
    return inside if not beside.exists() and inside.exists() else beside


# --- posing, with a cache ------------------------------------------------------------------------

def default_cache_dir() -> Path:
    """``$ACTIONPIPE_CACHE/poses`` (default ``~/.cache/actionpipe/poses``)."""
    from actionpipe.pose.openvino import cache_root

    return cache_root() / "poses"


class PoseCache:
    """Pose files of videos, by content and pose settings; poses what it does not hold yet.

    ``settings``: the pose settings (``imgsz``, ``conf``, ``fps``, ``precision``: a card's
    :meth:`~actionpipe.model.cards.ModelCard.pose_settings`). The pose model is loaded on the first miss.
    """

    def __init__(self, settings: dict[str, Any], cache_dir: str | Path | None = None, device: str = "auto",
                 pose_backend: str | None = None):
        from actionpipe.core.devices import DEFAULT_POSE_BACKEND
        from actionpipe.pose.estimator import PoseEstimator

        settings = dict(settings)
        self.fps = settings.pop("fps", None)
        self.estimator = PoseEstimator(device=device, backend=pose_backend or DEFAULT_POSE_BACKEND, **settings)
        self.directory = Path(cache_dir) if cache_dir else default_cache_dir()
        e = self.estimator
        self.settings = {"version": CACHE_VERSION, "imgsz": e.imgsz, "conf": e.conf, "fps": self.fps,
                         "backend": e.pose_backend, "precision": e.precision, "weights_sha256": e.weights_sha256,
                         "max_people": e.max_people, "max_gap_s": e.max_gap_s}
        self.settings_key = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:16]

    def path_for(self, video_sha256: str) -> Path:
        """Where the pose of a video with this content is (or will be) cached."""
        return self.directory / f"{video_sha256[:32]}-{self.settings_key}.pose.json"

    def lookup(self, video: Path) -> tuple[PoseFile | None, Path]:
        """The cached pose of ``video`` (None when there is none, or it is unreadable) and its path."""
        path = self.path_for(sha256_file(video))
        if path.is_file():
            try:
                return PoseFile.load(path), path
            except ActionpipeError:
                console.warn(f"{path}: damaged cached pose file, posing {video} again")
        return None, path

    def pose(self, video: Path) -> tuple[PoseFile, bool]:
        """The pose of ``video`` and whether it came from the cache; raises ActionpipeError for a
        video that cannot be read."""
        if not video.is_file():
            raise ActionpipeError(video, "video not found" if not video.exists() else "not a regular file")
        cached, path = self.lookup(video)
        if cached is not None:
            return cached, True
        pose = self.estimator.estimate_path(video, fps=self.fps)
        path.parent.mkdir(parents=True, exist_ok=True)
        pose.save(path)
        return pose, False


def load_videos(source: str | Path, split: str | None, spec: PackSpec, cache: PoseCache) -> tuple[list[Clip], dict]:
    """Clips of the videos of ``source`` (see :func:`list_videos`), posed through ``cache``; the
    people kept per clip as ``spec`` says. Returns the clips and a summary (counts, failed videos)."""
    videos = list_videos(source, split)
    clips, failed, counts = [], [], {"posed": 0, "from_cache": 0}
    for i, video in enumerate(videos, 1):
        try:
            pose, cached = cache.pose(video.path)
        except ActionpipeError as exc:
            console.warn(f"{exc}; skipped")
            failed.append({"video": video.name, "problem": exc.problem})
            continue
        counts["from_cache" if cached else "posed"] += 1
        console.info(f"[{i}/{len(videos)}] {video.name}: {'pose from the cache' if cached else 'posed'}")
        clip = clip_from_pose(pose, video.name, video.label, spec.max_people, spec.rank, video.split,
                              path=str(video.path))
        if not (clip.track_ids >= 0).any():
            console.warn(f"{video.path}: nobody found in the video; skipped")
            failed.append({"video": video.name, "problem": "no person found"})
            continue
        clip.group = video.group
        clips.append(clip)
    if failed:
        console.warn(f"{len(failed)} of {len(videos)} videos skipped (see above)")
    if not clips:
        raise ActionpipeError(source, "no usable video: every one failed or shows nobody")
    return clips, {"videos": len(videos), **counts, "failed": failed,
                   "pose": {k: v for k, v in cache.settings.items() if k != "version"}}
