"""Training configuration (JSON or YAML, every field overridable) and the datasets it names.

Config file (all sections optional; defaults are the ST-GCN paper's recipe: SGD with Nesterov
momentum 0.9, weight decay 1e-4, lr 0.01 decayed ×0.1 at chosen epochs, dropout 0.5)::

    {"name": "my-model", "description": "...",
     "dataset": "penn:../shared/datasets/penn_action",   # penn:DIR | kinetics:DIR | poses:LABELS.csv |
                                                         # utd:DIR[@YAW] | jhmdb:DIR/splitK.npz |
                                                         # videos:DIR | videos:LABELS.csv
     "datasets": [                                       # several at once (instead of "dataset"):
         {"dataset": "utd:../shared/datasets/utd_mhad", "split": "train", "weight": 2.0}, ...],
     "label_map": {"utd": {"rename": {"bowling": "bowl"},      # dataset label -> model class
                           "exclude": ["knock"],               # left out altogether
                           "negatives": ["draw_x"],            # trained against: "other"
                           "weights": {"bowling": 3.0}}},      # drawn 3x as often (x dataset weight)
     "labels": null,                                     # kinetics: label JSON (default DIR_label.json)
     "preprocessing": {PackSpec fields}, "window_frames": 32, "window_stride": 16,
     "architecture": {"base_channels": 64, "dropout": 0.5, ...},   # STGCN keyword arguments, e.g.
                                                         # "input_features": "joint_bone_motion"
     "optim": {OptimConfig fields}, "augment": {AugmentConfig fields},
     "val_fraction": 0.1, "split_seed": 0, "seed": 0,
     "finetune": {"source": "penn-action-stgcn",         # start from this model (card name or folder)
                  "freeze_blocks": 0, "backbone_lr": 0.1},
     "pose_cache": null,                                 # videos: pose file cache (default $ACTIONPIPE_CACHE/poses)
     "card": {...}}             # extra card.json sections, copied as they are (e.g. "pose", "license")

Fine-tuning (``finetune.source``, :mod:`actionpipe.training.finetune`) takes the source model's preprocessing,
architecture, windows and pose settings (a config or override that sets them otherwise is refused),
and its optimiser defaults are :data:`actionpipe.training.finetune.FINETUNE_OPTIM` instead of the paper's.

A dataset's ``weight`` multiplies how often each of its clips is drawn per epoch (2.0: twice; 0.5:
half the epochs); a label map's ``weights`` multiply it again for chosen dataset labels (a small
source of a merged class that the larger one would otherwise drown out). The label map
(:mod:`actionpipe.model.label_map`) is keyed by dataset kind and is written into the model card,
so ``eval`` and ``calibrate`` read each dataset's labels the way training did. Negatives become the
label ``other``: no class of the model, trained towards a uniform output (outlier exposure,
``optim.negative_weight``) and counted as unknown by ``eval``.

Overrides are dotted keys with JSON values: ``optim.lr=0.05``, ``augment.rotation=15``.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from actionpipe.training.augment import AugmentConfig
from actionpipe.training.joint_alignment import align_clip, check_alignment
from actionpipe.core.errors import ActionpipeError, UsageError
from actionpipe.core.fileio import first_non_finite, is_number, parse_json
from actionpipe.model.cards import parse_sections
from actionpipe.skeleton.pack import PackSpec
from actionpipe.model.label_map import DATASET_KINDS, apply_label_map, check_label_map, check_weighted_labels, label_weight



@dataclass
class DatasetEntry:
    """One training source: ``KIND:PATH``, the split it trains on, its sampling weight and how its
    joints are moved to the pose model's proportions (:mod:`actionpipe.training.joint_alignment`)."""

    dataset: str
    split: str = "train"
    weight: float = 1.0
    align: dict[str, float] | None = None


@dataclass
class OptimConfig:
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    schedule: str = "step"             # "step" (× lr_gamma at lr_steps) or "cosine" (to min_lr)
    lr_steps: list[int] = field(default_factory=lambda: [10, 20])
    lr_gamma: float = 0.1
    min_lr: float = 0.0
    warmup_epochs: float = 0.0
    clip_grad: float | None = None     # max gradient norm
    ema: float | None = None           # weight EMA decay (e.g. 0.998); the EMA model is evaluated
    label_smoothing: float = 0.0
    negative_weight: float = 0.5       # outlier-exposure loss on negative clips, relative to the rest


@dataclass
class FinetuneConfig:
    source: str | None = None          # the model to start from: a card name or model directory
    freeze_blocks: int = 0             # data_bn and the first N ST-GCN blocks keep the source's weights
    backbone_lr: float = 0.1           # the backbone's learning rate as a fraction of optim.lr (head: optim.lr)


@dataclass
class TrainConfig:
    name: str = "stgcn"
    description: str = ""
    dataset: str = ""
    datasets: list[dict[str, Any]] = field(default_factory=list)
    label_map: dict[str, dict[str, Any]] = field(default_factory=dict)
    labels: str | None = None
    preprocessing: dict[str, Any] = field(default_factory=lambda: {"layout": "coco17", "normalization": "body",
                                                                   "fps": 15, "max_people": 1, "rank": "area"})
    window_frames: int = 32
    window_stride: int = 16
    architecture: dict[str, Any] = field(default_factory=lambda: {"base_channels": 64, "dropout": 0.5})
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    val_fraction: float = 0.1
    split_seed: int = 0
    seed: int = 0
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    pose_cache: str | None = None
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> PackSpec:
        return PackSpec.from_dict(self.preprocessing)

    @property
    def sources(self) -> list[DatasetEntry]:
        """The training datasets: ``datasets``, or the single ``dataset``."""
        return [DatasetEntry(**d) for d in self.datasets] if self.datasets else [DatasetEntry(self.dataset)]

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str | Path | None = None) -> "TrainConfig":
        """Build and validate; unknown keys are errors (a typo must not be silently ignored)."""
        def check(section: dict, klass, name: str) -> dict:
            if not isinstance(section, dict):
                raise ActionpipeError(where, f"config {name or 'file'}: expected a mapping")
            unknown = set(section) - {f.name for f in fields(klass)}
            if unknown:
                raise ActionpipeError(where, f"config{' ' + name if name else ''}: unknown key(s) "
                                             f"{', '.join(sorted(unknown))}")
            for f in fields(klass):
                if f.name in section and not _has_type(section[f.name], f.type):
                    raise ActionpipeError(where, f"config {name + '.' if name else ''}{f.name}: expected "
                                                 f"{f.type}, got {section[f.name]!r}")
            return section

        d = dict(check(d, cls, ""))
        try:
            d["optim"] = OptimConfig(**check(d.get("optim", {}), OptimConfig, "optim"))
            d["augment"] = AugmentConfig(**check(d.get("augment", {}), AugmentConfig, "augment"))
            d["finetune"] = FinetuneConfig(**check(d.get("finetune", {}), FinetuneConfig, "finetune"))
            cfg = cls(**d)
            cfg.spec  # validates the preprocessing
        except ActionpipeError as exc:
            raise ActionpipeError(where, exc.problem) if exc.path is None else exc from None
        except TypeError as exc:
            raise ActionpipeError(where, f"bad config: {exc}") from None
        if cfg.optim.schedule not in ("step", "cosine"):
            raise ActionpipeError(where, f"optim.schedule {cfg.optim.schedule!r}: expected step or cosine")
        if min(cfg.window_frames, cfg.window_stride, cfg.optim.epochs, cfg.optim.batch_size) < 1:
            raise ActionpipeError(where, "window_frames, window_stride, optim.epochs and optim.batch_size must be >= 1")
        try:
            parse_sections(cfg.card, within="card")   # what it adds to the card: checked now, not after training
        except ActionpipeError as exc:
            raise ActionpipeError(where, exc.problem) from None
        if cfg.finetune.freeze_blocks < 0 or not cfg.finetune.backbone_lr >= 0:
            raise ActionpipeError(where, "finetune.freeze_blocks and finetune.backbone_lr must be >= 0")
        if cfg.finetune.freeze_blocks and not cfg.finetune.source:
            raise ActionpipeError(where, "finetune.freeze_blocks (--freeze) needs a model to start from (--from)")
        if not 0 <= cfg.val_fraction < 1:
            raise ActionpipeError(where, f"val_fraction must be in [0, 1) (got {cfg.val_fraction})")
        _check_sources(cfg, where)
        check_label_map(cfg.label_map, where)
        return cfg


_TYPES = {"int": int, "float": (int, float), "bool": bool, "str": str, "None": type(None), "list": list,
          "dict": dict, "Any": object, "AugmentConfig": (dict, AugmentConfig), "OptimConfig": (dict, OptimConfig),
          "FinetuneConfig": (dict, FinetuneConfig)}


def _has_type(value: Any, annotation: str) -> bool:
    """Whether ``value`` fits a field annotation such as ``float | None`` or ``list[int]`` (the outer
    type only); bools are not numbers here, so ``--set optim.lr=true`` is refused too."""
    for name in annotation.split("|"):
        expected = _TYPES.get(name.strip().split("[")[0], object)
        if isinstance(value, bool) and expected is not bool and expected is not object:
            continue
        if isinstance(value, float) and expected is not object and not is_number(value):
            continue   # NaN and infinity are not numbers a config can mean
        if isinstance(value, expected):
            return True
    return False


def _check_sources(cfg: TrainConfig, where) -> None:
    if cfg.datasets and cfg.dataset:
        raise ActionpipeError(where, "config: give either dataset or datasets, not both")
    for i, entry in enumerate(cfg.datasets):
        if not isinstance(entry, dict) or set(entry) - {f.name for f in fields(DatasetEntry)} or "dataset" not in entry:
            raise ActionpipeError(where, f"config datasets[{i}]: expected {{dataset, split, weight, align}} "
                                         f"(got {entry!r})")
        source = DatasetEntry(**entry)
        if not isinstance(source.dataset, str) or source.split not in ("train", "test"):
            raise ActionpipeError(where, f"config datasets[{i}]: dataset must be KIND:PATH and split train or test")
        if not is_number(source.weight) or not source.weight > 0:
            raise ActionpipeError(where, f"config datasets[{i}]: weight must be a positive number")
        if source.align is not None:
            check_alignment(source.align, f"{where}: datasets[{i}]" if where else f"datasets[{i}]")


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None,
                flags: dict[str, str] | None = None) -> TrainConfig:
    """A config file (JSON, or YAML by extension) with dotted-key ``overrides`` applied. A bad
    override is a usage error naming its option: ``flags[key]`` (``--lr``), else ``--set KEY``."""
    d: dict[str, Any] = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise ActionpipeError(path, "config file not found")
        text = path.read_text(encoding="utf-8")
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml
                d = yaml.safe_load(text) or {}
            else:
                d = parse_json(text)   # strict: NaN, Infinity and 1e999 are refused
        except Exception as exc:  # json and yaml raise their own types
            raise ActionpipeError(path, f"not a valid config: {str(exc).splitlines()[0]}") from None
        if first_non_finite(d) is not None:   # YAML's .nan and .inf
            raise ActionpipeError(path, f"config {first_non_finite(d)}: not a finite number")
    overrides = overrides or {}
    finetune = d.get("finetune") if isinstance(d, dict) else None
    source = overrides.get("finetune.source") or (finetune.get("source") if isinstance(finetune, dict) else None)
    if source:   # the source model's settings first, the file's own keys on top
        from actionpipe.training.finetune import merge_source
        d = merge_source({**d, "finetune": {**(finetune or {}), "source": source}}, overrides, path)
    d = TrainConfig.from_dict(d, path).to_dict()
    for key, value in overrides.items():
        node, option = d, (flags or {}).get(key, f"--set {key}")
        *parents, leaf = key.split(".")
        for p in parents:   # a number indexes a list: datasets.5.weight
            child = _config_child(node, p, option)
            if not isinstance(child, (dict, list)):
                raise UsageError(None, f"{option}: {p!r} is not a config section")
            node = child
        if isinstance(node, list) and leaf == str(len(node)):   # the next index adds an item
            node.append(value)
        elif isinstance(node, list):
            _config_child(node, leaf, option)   # the item must exist
            node[int(leaf)] = value
        else:
            node[leaf] = value
        try:   # each override checked as it lands, so the message names the option, not the file
            TrainConfig.from_dict(d)
        except ActionpipeError as exc:
            raise UsageError(None, f"{option}: {exc.problem}") from None
    return TrainConfig.from_dict(d, path)


def _config_child(node: dict | list, key: str, option: str):
    """``node[key]`` of a section (None when absent), or of a list (``key`` a number in range, else a
    usage error naming ``option``)."""
    if not isinstance(node, list):
        return node.get(key)
    if not (key.isdigit() and int(key) < len(node)):
        raise UsageError(None, f"{option}: no item {key} in a list of {len(node)}")
    return node[int(key)]


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with a JSON value (bare words are strings)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UsageError(None, f"--set {text!r}: expected KEY=VALUE, e.g. optim.lr=0.05")
    try:
        number = float(raw)
    except ValueError:
        number = 0.0
    if not math.isfinite(number):   # nan, inf, 1e309: never a bare word, never a value
        raise UsageError(None, f"--set {text}: {raw!r} is not a finite number")
    try:
        return key.strip(), json.loads(raw)
    except json.JSONDecodeError:
        return key.strip(), raw


def parse_dataset(dataset: str) -> tuple[str, Path]:
    """``KIND:PATH`` → (kind, path); a bare path is guessed (labels/*.mat → penn, .csv → poses)."""
    kind, sep, rest = dataset.partition(":")
    if sep and kind in DATASET_KINDS:
        return kind, Path(rest)
    path = Path(dataset)
    if path.suffix.lower() == ".csv":
        return "poses", path
    if (path / "labels").is_dir() or any(path.glob("*.mat")):
        return "penn", path
    if path.is_dir():
        return "kinetics", path
    raise ActionpipeError(dataset, f"unknown dataset: use {', '.join(k + ':PATH' for k in DATASET_KINDS)}")


DATA_SOURCES = {
    "penn": "Penn Action (Weiyu Zhang, Menglong Zhu, Konstantinos G. Derpanis: \"From Actemes to Action: A "
            "Strongly-supervised Representation for Detailed Action Understanding\", ICCV 2013); keypoint "
            "annotations; for research use only",
    "utd": "UTD-MHAD (Chen Chen, Roozbeh Jafari, Nasser Kehtarnavaz: \"UTD-MHAD: A Multimodal Dataset for Human "
           "Action Recognition Utilizing a Depth Camera and a Wearable Inertial Sensor\", ICIP 2015); Kinect "
           "skeletons; distributed by UT Dallas for research use",
    "jhmdb": "JHMDB (Hueihan Jhuang, Juergen Gall, Silvia Zuffi, Cordelia Schmid, Michael J. Black: \"Towards "
             "understanding action recognition\", ICCV 2013); 2-D joint annotations; for research use",
    "urfd": "UR Fall Detection (Bogdan Kwolek, Michal Kepski: \"Human fall detection on embedded platform using "
            "depth maps and wireless accelerometer\", Computer Methods and Programs in Biomedicine 2014); 2-D "
            "poses by AlphaPose; free for research",
    "msr": "MSR Action3D (Wanqing Li, Zhengyou Zhang, Zicheng Liu: \"Action recognition based on a bag of 3D "
           "points\", CVPR Workshops 2010); Kinect skeletons in depth-image pixels; research use",
    "utk": "UTKinect-Action3D (Lu Xia, Chia-Chih Chen, J. K. Aggarwal: \"View invariant human action recognition "
           "using histograms of 3D joints\", CVPR Workshops 2012); Kinect skeletons; research use",
}


def load_dataset(dataset: str, split: str | None, labels: str | None = None, spec: PackSpec | None = None,
                 label_map: dict[str, dict[str, Any]] | None = None, pose_cache=None,
                 align: dict[str, float] | None = None):
    """Clips of ``dataset`` (of ``split``, when the dataset has splits), their labels mapped per
    ``label_map`` (:func:`apply_label_map`), their joints moved per ``align``
    (:func:`~actionpipe.training.joint_alignment.align_clip`), and a description of the data.
    ``videos:`` datasets are posed through ``pose_cache`` (:class:`actionpipe.training.video_dataset.PoseCache`)."""
    from actionpipe.training import datasets

    kind, path = parse_dataset(dataset)
    spec = spec or PackSpec()
    if kind == "videos":
        from actionpipe.training.video_dataset import load_videos
        if pose_cache is None:
            raise ActionpipeError(path, "a video dataset needs pose settings (train it, or eval it end to end)")
        clips, summary = load_videos(path, split, spec, pose_cache)
        for clip in clips:
            clip.origin = f"{kind}:{clip.label}"
        clips = [align_clip(c, align) for c in apply_label_map(clips, kind, label_map)]
        return clips, {"dataset": dataset, "kind": kind, "split": split,
                                                         "clips": len(clips), **summary}
    if kind == "utd":
        from actionpipe.training.utd_mhad import parse_source
        if not parse_source(str(path))[0].exists():   # DIR@YAW: the folder is DIR
            raise ActionpipeError(path, "dataset not found")
    elif not path.exists():
        raise ActionpipeError(path, "dataset not found")
    if kind == "penn":
        clips = datasets.load_penn_action(path, split)
    elif kind == "utd":
        from actionpipe.training.utd_mhad import load_utd_mhad
        clips = load_utd_mhad(path, split)
    elif kind == "jhmdb":
        from actionpipe.training.jhmdb import load_jhmdb
        clips = load_jhmdb(path, split)
    elif kind == "urfd":
        from actionpipe.training.urfd_fall import load_urfd_fall
        clips = load_urfd_fall(path, split)
    elif kind == "msr":
        from actionpipe.training.msr_action3d import load_msr_action3d
        clips = load_msr_action3d(path, split)
    elif kind == "utk":
        from actionpipe.training.utkinect import load_utkinect
        clips = load_utkinect(path, split)
    elif kind == "kinetics":
        clips = datasets.load_kinetics_skeleton(path, labels)
        clips = [c for c in clips if split is None or c.split in (split, None)]
    else:
        clips = datasets.load_labeled_poses(path, max(spec.max_people, 1), spec.rank)
        clips = [c for c in clips if split is None or c.split == split or (split == "train" and c.split is None)]
    for clip in clips:
        clip.origin = f"{kind}:{clip.label}"
    clips = datasets.drop_off_frame(clips, dataset)
    clips = [align_clip(c, align) for c in apply_label_map(clips, kind, label_map)]
    if not clips:
        raise ActionpipeError(path, f"no clips{' in split ' + split if split else ''}")
    info: dict[str, Any] = {"dataset": dataset, "kind": kind, "split": split, "clips": len(clips)}
    if kind in DATA_SOURCES:
        info["source"] = DATA_SOURCES[kind]
    return clips, info


def load_sources(cfg: TrainConfig, spec: PackSpec | None = None):
    """Every training source of ``cfg``: the clips, each clip's sampling weight ``(N,)`` and a
    description per source (one source: that description itself)."""
    import numpy as np

    clips, weights, infos = [], [], []
    cache = None
    for source in cfg.sources:
        if cache is None and parse_dataset(source.dataset)[0] == "videos":
            from actionpipe.training.video_dataset import PoseCache
            cache = PoseCache(pose_settings(cfg), cfg.pose_cache)
        some, info = load_dataset(source.dataset, source.split, cfg.labels, spec or cfg.spec, cfg.label_map, cache,
                                  source.align)
        clips += some
        weights += [source.weight * label_weight(cfg.label_map, c.origin) for c in some]
        infos.append({**info, "weight": source.weight} if cfg.datasets else info)
    check_weighted_labels(cfg.label_map, {c.origin for c in clips})
    return clips, np.array(weights, dtype=np.float64), (infos[0] if not cfg.datasets else {"sources": infos})


def pose_settings(cfg: TrainConfig) -> dict[str, Any]:
    """The pose settings a run's videos are posed with: those its model will run with in
    ``classify`` (the card's ``pose`` section, from the source model when fine-tuning; the
    model's frame rate), by the one rule :meth:`actionpipe.model.cards.ModelCard.pose_settings`."""
    from actionpipe.model.card_sections import PoseSection
    from actionpipe.model.cards import ModelCard

    card = ModelCard(cfg.name, Path("."), {}, cfg.spec, [], "", None,
                     pose=PoseSection.from_dict(cfg.card.get("pose") or {}))
    return card.pose_settings()
