"""Training and evaluation data: Penn Action, Kinetics-skeleton and a user's own labelled pose files,
all read into the same :class:`Clip` (keypoints in pixels, with their layout, frame size and rate).

Penn Action (``labels/*.mat``): one annotated person, 13 joints mapped to COCO-17 by name (the
dataset's "L" joints are the person's *right*; see its README). Eyes and ears do not exist there:
confidence 0. Confidence is Penn's visibility: 1.0 for a visible joint, :data:`OCCLUDED_CONFIDENCE`
for an occluded one, whose position is the annotator's guess and is kept (a confidence of 0 would
mean "no position"), except where nobody annotated it (stored at x or y = 0): then it is
missing. The raw 0/1 flags are kept in :attr:`Clip.visibility`. Loading all 2,326 files takes
about a second, so there is no cache.

Kinetics-skeleton (ST-GCN's ``kinetics_train/`` of per-clip JSON plus ``kinetics_train_label.json``
mapping clip id to ``{label, label_index, has_skeleton}``): coordinates are stored divided by the
frame size, so they are scaled back with ``width``/``height`` (340×256, the size of ST-GCN's
videos). The format has no track ids: people are numbered by their slot in each frame's list.

UTD-MHAD (3-D) and JHMDB have their own modules, :mod:`actionpipe.training.utd_mhad` and
:mod:`actionpipe.training.jhmdb`, reading into the same :class:`Clip`.

User data: a CSV ``file,label[,split][,group]`` naming pose files (or Kinetics-skeleton JSON) relative to
the CSV; the top ``max_people`` tracks of each are kept (:func:`actionpipe.skeleton.pack.select_people`).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, TypeVar

import numpy as np

from actionpipe.core import console
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import read_json
from actionpipe.pose.layouts import COCO17
from actionpipe.pose.posefile import PoseFile

SPLITS = ("train", "val", "test")
PENN_ACTION_CLASSES = ("baseball_pitch", "baseball_swing", "bench_press", "bowl", "clean_and_jerk",
                       "golf_swing", "jump_rope", "jumping_jacks", "pullup", "pushup", "situp", "squat",
                       "strum_guitar", "tennis_forehand", "tennis_serve")
PENN_FPS = 30.0  # not stated by the dataset; its clips are ordinary ~30 fps web video
OCCLUDED_CONFIDENCE = 0.5
# COCO-17 joint <- Penn column. Penn's nominal order is head, L_shoulder, R_shoulder, L_elbow, ...
# but its "L" is the person's right (on front-view clips column 1 sits on the image left), hence
# left_* <- the "R" columns. "head" (top of head) stands in for the nose.
PENN_TO_COCO17 = {"nose": 0, "left_shoulder": 2, "right_shoulder": 1, "left_elbow": 4, "right_elbow": 3,
                  "left_wrist": 6, "right_wrist": 5, "left_hip": 8, "right_hip": 7, "left_knee": 10,
                  "right_knee": 9, "left_ankle": 12, "right_ankle": 11}

Item = TypeVar("Item")


@dataclass
class Clip:
    """One labelled clip: keypoints ``(M, T, V, 3)`` float32, x and y in pixels, then confidence."""

    name: str
    label: str
    keypoints: np.ndarray
    layout: str
    width: int
    height: int
    fps: float
    split: str | None = None                 # "train", "test" or None (unassigned)
    label_index: int | None = None           # the dataset's own class number, when it has one
    track_ids: np.ndarray | None = None      # (M,) int, -1 for a slot nobody fills
    visibility: np.ndarray | None = None     # (M, T, V) uint8, Penn's raw 1 visible / 0 occluded
    path: str | None = None
    group: str | None = None                 # clips cut from one source video share it (None: its own)
    points3d: np.ndarray | None = None       # (M, T, V, 3) metres, for 3-D datasets: re-filmed in training
    present3d: np.ndarray | None = None      # (M, T, V) bool, the joints of points3d that exist
    negative: bool = False                   # a label the model must not know (outlier exposure)
    origin: str | None = None                # "kind:label" as the dataset names it, before any label map
    estimated: bool = False                  # confidences are a pose model's, not annotation flags

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[1]


def class_names(clips: Iterable[Clip]) -> list[str]:
    """Class names in a stable order: by the dataset's ``label_index`` when every clip has one
    (so Kinetics keeps its checkpoints' order), else alphabetical. List positions are class ids."""
    index_of: dict[str, int | None] = {}
    for clip in clips:
        if index_of.setdefault(clip.label, clip.label_index) != clip.label_index:
            raise ActionpipeError(clip.path, f"class {clip.label!r} has label_index {clip.label_index} "
                                             f"here and {index_of[clip.label]} elsewhere")
    if index_of and all(i is not None for i in index_of.values()):
        return sorted(index_of, key=lambda name: (index_of[name], name))
    return sorted(index_of)


def split_validation(clips: list[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """Stratified hold-out of about ``fraction`` of each class's clips, drawn as whole groups
    (:attr:`Clip.group`: clips of one source video stay on one side, whatever their labels), so a
    class may give a few clips more than its share. A class keeps at least one group for training;
    one that cannot give any clip (a single clip, or a single group) is said on stderr, as the
    training and calibration that use this split then know nothing of how well it is learnt."""
    rng = np.random.default_rng(seed)
    held_out: dict[Any, bool] = {}   # group -> in validation; decided once, for every label in it
    train, val = [], []
    for label in sorted({c.label for c in clips}):
        groups: dict[Any, list[Clip]] = {}
        for i, c in enumerate(clips):
            if c.label == label:
                groups.setdefault(c.group if c.group is not None else (None, i), []).append(c)
        size = sum(len(g) for g in groups.values())
        target = min(size - 1, max(1 if size > 1 else 0, round(fraction * size)))
        held = sum(len(g) for key, g in groups.items() if held_out.get(key))
        keys = list(groups)
        for key in (keys[j] for j in rng.permutation(len(keys))):
            if key not in held_out:   # whole groups until the target is met, never the class's last
                held_out[key] = held < target and held + len(groups[key]) < size
                held += len(groups[key]) if held_out[key] else 0
            (val if held_out[key] else train).extend(groups[key])
        if fraction and size == 1:
            console.warn(f"class {label!r}: only 1 clip, too few to validate (none held out; "
                         "at least 2 clips, better 5 or more in several groups, are needed)")
        elif target and not held:
            console.warn(f"class {label!r}: all {size} clips are one group, none held out for validation")
    return train, val


# A seen joint further than this many frame sizes outside its frame is a broken value, not a position.
FRAME_MARGIN = 1.0


def drop_off_frame(clips: list[Clip], where) -> list[Clip]:
    """``clips`` without those holding a seen joint far outside the frame (:data:`FRAME_MARGIN`),
    each left out with a warning naming it: one broken coordinate, such as a sensor's overflow
    value, would swamp training's input normalisation (the data batch norm's statistics)."""
    kept = []
    for clip in clips:
        kp = clip.keypoints
        seen = kp[..., 2] > 0
        x, y = kp[..., 0][seen], kp[..., 1][seen]
        off = ((x < -FRAME_MARGIN * clip.width) | (x > (1 + FRAME_MARGIN) * clip.width)
               | (y < -FRAME_MARGIN * clip.height) | (y > (1 + FRAME_MARGIN) * clip.height))
        if off.any():
            console.warn(f"{where}: clip {clip.name}: {int(off.sum())} joint position(s) far outside its "
                         f"{clip.width}×{clip.height} frame (e.g. {x[off][0]:.4g}, {y[off][0]:.4g}); left out")
            continue
        kept.append(clip)
    return kept


def odd_subject_split(subject: int) -> str:
    """The cross-subject split of the Kinect sets (MSR Action3D, UTKinect): odd subjects train, even test."""
    return "train" if subject % 2 else "test"


def check_split(split: str | None) -> None:
    if split is not None and split not in SPLITS:
        raise ActionpipeError(None, f"unknown split {split!r} (expected {' or '.join(SPLITS)})")


def each_with_progress(items: list[Item], description: str) -> Iterator[Item]:
    """Iterate with a progress bar on stderr (worth it for thousands of files)."""
    with console.progress() as bar:
        task = bar.add_task(description, total=len(items))
        for item in items:
            yield item
            bar.advance(task)


# --- Penn Action ---------------------------------------------------------------------------------

def _mat_text(value: np.ndarray) -> str:
    return str(np.asarray(value).reshape(-1)[0])


def load_penn_clip(path: str | Path) -> Clip:
    """One Penn Action ``.mat`` annotation as a COCO-17 clip (one person)."""
    from scipy.io import loadmat

    path = Path(path)
    try:
        mat = loadmat(str(path))
        x = np.asarray(mat["x"], dtype=np.float32)  # some files store uint8/uint16
        y = np.asarray(mat["y"], dtype=np.float32)
        visible = np.asarray(mat["visibility"]) > 0
        height, width = (int(v) for v in np.asarray(mat["dimensions"]).reshape(-1)[:2])
        action, train = _mat_text(mat["action"]), int(np.asarray(mat["train"]).reshape(-1)[0])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ActionpipeError(path, f"not a readable Penn Action annotation: {type(exc).__name__}: {exc}") from None
    num_frames = x.shape[0]  # nframes may be stored as uint8: the arrays are the truth
    if x.ndim != 2 or x.shape[1] != 13 or y.shape != x.shape or visible.shape != x.shape:
        raise ActionpipeError(path, f"x, y, visibility must all be T×13 (got {x.shape}, {y.shape}, {visible.shape})")
    keypoints = np.zeros((1, num_frames, COCO17.num_joints, 3), dtype=np.float32)
    visibility = np.zeros((1, num_frames, COCO17.num_joints), dtype=np.uint8)
    for joint, column in PENN_TO_COCO17.items():
        j = COCO17.index(joint)
        keypoints[0, :, j, 0] = x[:, column]
        keypoints[0, :, j, 1] = y[:, column]
        keypoints[0, :, j, 2] = np.where(visible[:, column], 1.0, OCCLUDED_CONFIDENCE)
        visibility[0, :, j] = visible[:, column]
        # Joints nobody annotated (mostly out of the frame; 8 % of all joints, in 687 of 2,326
        # clips) are stored as occluded at x or y = 0: as positions they are wild outliers after
        # normalisation, and a pose estimator would not report them either, so they are missing.
        unannotated = ~visible[:, column] & ((x[:, column] <= 1) | (y[:, column] <= 1))
        keypoints[0, unannotated, j] = 0.0
    return Clip(path.stem, action, keypoints, COCO17.name, width, height, PENN_FPS,
                split="train" if train == 1 else "test", track_ids=np.array([1]),
                visibility=visibility, path=str(path))


def load_penn_action(root: str | Path, split: str | None = None) -> list[Clip]:
    """All Penn Action clips under ``root`` (the dataset directory or its ``labels/``), by name.

    ``split`` ("train" or "test") keeps only that split (1,258 and 1,068 clips).
    """
    check_split(split)
    root = Path(root)
    labels = root / "labels" if (root / "labels").is_dir() else root
    files = sorted(labels.glob("*.mat"))
    if not files:
        raise ActionpipeError(root, "no Penn Action labels/*.mat files here")
    clips = [load_penn_clip(f) for f in each_with_progress(files, "Penn Action")]
    _group_penn_runs(clips)
    return [c for c in clips if split is None or c.split == split]


def _group_penn_runs(clips: list[Clip]) -> None:
    """Penn Action does not name its source videos, but it cut several clips from each and numbered
    them consecutively, and split train/test by video (the split flag runs in blocks of ~3 clips).
    A run of consecutive numbers with the same split and action is taken as one video, so a
    validation split holds out whole runs: held-out clips of the training videos would flatter it."""
    run, previous = 0, None
    for clip in clips:
        key = (clip.split, clip.label)
        if previous is None or key != previous[0] or not (clip.name.isdigit() and previous[1].isdigit()
                                                          and int(clip.name) == int(previous[1]) + 1):
            run += 1
        clip.group = f"penn-run-{run}"
        previous = (key, clip.name)


# --- from pose files -----------------------------------------------------------------------------

def clip_from_pose(pose: PoseFile, name: str, label: str, max_people: int | None = None,
                   rank: str = "confidence", split: str | None = None,
                   label_index: int | None = None, path: str | None = None) -> Clip:
    """A clip of the top ``max_people`` tracks of a pose file (all of them when None), each in a
    fixed slot for the whole clip, ranked by :func:`actionpipe.skeleton.pack.select_people`."""
    from actionpipe.skeleton.pack import select_people

    people = select_people(pose, max(1, max_people or len(pose.track_ids())), rank)
    return Clip(name, label, people.keypoints, pose.layout, pose.width, pose.height, pose.fps, split,
                label_index, people.track_ids, path=path, estimated=True)


def _split_from_dir(directory: Path) -> str | None:
    stem = directory.name.lower()
    return "train" if stem.endswith("train") else "test" if stem.endswith(("val", "test")) else None


def load_kinetics_skeleton(data_dir: str | Path, label_file: str | Path | None = None,
                           width: int = 340, height: int = 256, fps: float = 30.0,
                           max_people: int | None = None, split: str | None = None) -> list[Clip]:
    """Clips of a Kinetics-skeleton directory (layout openpose18 in the published data).

    ``label_file`` defaults to ``<data_dir>_label.json`` beside the directory; entries with
    ``has_skeleton`` false are skipped, as ST-GCN does. Without a label file each clip's own
    ``label``/``label_index`` is used. ``split`` is recorded on the clips; by default it comes
    from the directory name (``kinetics_train`` -> train, ``kinetics_val`` -> test).
    """
    from actionpipe.skeleton.convert import read_kinetics_json

    check_split(split)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ActionpipeError(data_dir, "not a directory of Kinetics-skeleton JSON files")
    split = split or _split_from_dir(data_dir)
    label_path = Path(label_file) if label_file else data_dir.with_name(data_dir.name + "_label.json")
    if label_file or label_path.is_file():
        labels = read_json(label_path, "Kinetics-skeleton label file")
        if not isinstance(labels, dict):
            raise ActionpipeError(label_path, "not a label file: expected {clip id: {label, label_index, has_skeleton}}")
        names = sorted(k for k, v in labels.items() if not isinstance(v, dict) or v.get("has_skeleton", True))
    else:
        labels, names = {}, sorted(p.stem for p in data_dir.glob("*.json"))
    clips = []
    for name in each_with_progress(names, "Kinetics-skeleton"):
        path = data_dir / f"{name}.json"
        if not path.is_file():
            raise ActionpipeError(label_path, f"clip {name!r} is listed but {path} does not exist")
        pose = read_kinetics_json(path, width, height, fps)
        info = labels.get(name, pose.source)
        if not isinstance(info, dict) or not isinstance(info.get("label"), str):
            raise ActionpipeError(label_path if labels else path, f"clip {name!r}: no \"label\"")
        index = info.get("label_index")
        clips.append(clip_from_pose(pose, name, info["label"], max_people, split=split,
                                    label_index=index if isinstance(index, int) and index >= 0 else None,
                                    path=str(path)))
    return clips


@dataclass
class LabelRow:
    """One row of a user's labels CSV: ``file`` as written, its label, group and split (None: unassigned)."""

    file: str
    label: str
    group: str | None
    split: str | None
    where: str                   # "LABELS.csv:LINE", for messages


def read_labels_csv(labels_csv: str | Path) -> list[LabelRow]:
    """The rows of a CSV with columns ``file,label`` and optionally ``group`` and ``split``
    (train, test or empty), in file order; a bad header or row is an error naming its line."""
    labels_csv = Path(labels_csv)
    if not labels_csv.is_file():
        raise ActionpipeError(labels_csv, "labels CSV not found")
    with open(labels_csv, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"file", "label"} <= {c.strip() for c in reader.fieldnames if c}:
            raise ActionpipeError(labels_csv, f"needs a header with columns file,label[,group][,split] "
                                              f"(got {reader.fieldnames})")
        rows = [({k.strip(): (v or "").strip() for k, v in row.items() if k}, reader.line_num) for row in reader]
    out = []
    for row, line in rows:
        where = f"{labels_csv}:{line}"
        if not row["file"] or not row["label"]:
            raise ActionpipeError(where, "empty file or label")
        split = row.get("split") or None
        if split is not None and split not in SPLITS:
            raise ActionpipeError(where, f"split {split!r}: expected {', '.join(SPLITS)} or empty")
        out.append(LabelRow(row["file"], row["label"], row.get("group") or None, split, where))
    return out


def load_labeled_poses(labels_csv: str | Path, max_people: int = 2, rank: str = "confidence",
                       split: str | None = None) -> list[Clip]:
    """A user's clips: a CSV (:func:`read_labels_csv`) with columns ``file,label`` and optionally
    ``split`` (train/test/empty) and ``group`` (clips cut from one source video share a group, and a
    validation split keeps them together); ``file`` is a pose file (or Kinetics-skeleton JSON)
    relative to the CSV's directory.

    ``split`` keeps only the rows of that split. Clip names are the files' paths as written.
    """
    from actionpipe.skeleton.convert import read_any

    check_split(split)
    labels_csv = Path(labels_csv)
    rows = [row for row in read_labels_csv(labels_csv) if split is None or row.split == split]
    clips = []
    for row in each_with_progress(rows, "pose files"):
        path = labels_csv.parent / row.file
        if not path.exists():
            raise ActionpipeError(row.where, f"{path} not found")
        pose, _ = read_any(path)
        clip = clip_from_pose(pose, row.file, row.label, max_people, rank, row.split, path=str(path))
        clip.group = row.group
        clips.append(clip)
    return clips
