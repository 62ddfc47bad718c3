"""Training configuration (JSON or YAML, every field overridable) and the datasets it names.

Config file (all sections optional; defaults are the ST-GCN paper's recipe: SGD with Nesterov
momentum 0.9, weight decay 1e-4, lr 0.01 decayed ×0.1 at chosen epochs, dropout 0.5)::

    {"name": "my-model", "description": "...",
     "dataset": "penn:../shared/datasets/penn_action",   # penn:DIR | kinetics:DIR | poses:LABELS.csv
     "labels": null,                                     # kinetics: label JSON (default DIR_label.json)
     "preprocessing": {PackSpec fields}, "window_frames": 32, "window_stride": 16,
     "architecture": {"base_channels": 64, "dropout": 0.5, ...},   # STGCN keyword arguments
     "optim": {OptimConfig fields}, "augment": {AugmentConfig fields},
     "val_fraction": 0.1, "split_seed": 0, "seed": 0,
     "card": {...}}             # extra card.json sections, copied as they are (e.g. "pose", "license")

Overrides are dotted keys with JSON values: ``optim.lr=0.05``, ``augment.rotation=15``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .augment import AugmentConfig
from .errors import ActionpipeError, UsageError
from .infer import WINDOW_AGGREGATES
from .pack import PackSpec

DATASET_KINDS = ("penn", "kinetics", "poses")


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


@dataclass
class TrainConfig:
    name: str = "stgcn"
    description: str = ""
    dataset: str = ""
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
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> PackSpec:
        return PackSpec.from_dict(self.preprocessing)

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
            return section

        d = dict(check(d, cls, ""))
        try:
            d["optim"] = OptimConfig(**check(d.get("optim", {}), OptimConfig, "optim"))
            d["augment"] = AugmentConfig(**check(d.get("augment", {}), AugmentConfig, "augment"))
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
        aggregate = cfg.card.get("inference", {}).get("aggregate", "mean")
        if aggregate not in WINDOW_AGGREGATES:
            raise ActionpipeError(where, f"card.inference.aggregate {aggregate!r}: expected one of "
                                         f"{', '.join(WINDOW_AGGREGATES)}")
        if not 0 <= cfg.val_fraction < 1:
            raise ActionpipeError(where, f"val_fraction must be in [0, 1) (got {cfg.val_fraction})")
        return cfg


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A config file (JSON, or YAML by extension) with dotted-key ``overrides`` applied."""
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
                d = json.loads(text)
        except Exception as exc:  # json and yaml raise their own types
            raise ActionpipeError(path, f"not a valid config: {str(exc).splitlines()[0]}") from None
    d = TrainConfig.from_dict(d, path).to_dict()
    for key, value in (overrides or {}).items():
        node = d
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise UsageError(None, f"override {key}: {p!r} is not a config section")
            node = node[p]
        node[leaf] = value
    return TrainConfig.from_dict(d, path)


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with a JSON value (bare words are strings)."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise UsageError(None, f"--set {text!r}: expected KEY=VALUE, e.g. optim.lr=0.05")
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


def load_dataset(dataset: str, split: str | None, labels: str | None = None, spec: PackSpec | None = None):
    """Clips of ``dataset`` (of ``split``, when the dataset has splits) and a description of the data."""
    from . import datasets

    kind, path = parse_dataset(dataset)
    if not path.exists():
        raise ActionpipeError(path, "dataset not found")
    spec = spec or PackSpec()
    if kind == "penn":
        clips = datasets.load_penn_action(path, split)
    elif kind == "kinetics":
        clips = datasets.load_kinetics_skeleton(path, labels)
        clips = [c for c in clips if split is None or c.split in (split, None)]
    else:
        clips = datasets.load_labeled_poses(path, max(spec.max_people, 1), spec.rank)
        clips = [c for c in clips if split is None or c.split == split or (split == "train" and c.split is None)]
    if not clips:
        raise ActionpipeError(path, f"no clips{' in split ' + split if split else ''}")
    info: dict[str, Any] = {"dataset": dataset, "kind": kind, "split": split, "clips": len(clips)}
    if kind == "penn":
        info["source"] = ("Penn Action (Weiyu Zhang, Menglong Zhu, Konstantinos G. Derpanis: \"From Actemes "
                          "to Action: A Strongly-supervised Representation for Detailed Action "
                          "Understanding\", ICCV 2013); keypoint annotations; for research use only")
    return clips, info
