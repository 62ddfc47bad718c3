"""Model cards: ``models/<name>/card.json`` beside the weights says what a model is and how to feed it.

Card (JSON, ``format_version`` 1; schema: ``docs/schemas/card.schema.json``)::

    {"format_version": 1, "name": "penn-action-stgcn", "description": "...",
     "architecture": {"type": "stgcn", "layout": "coco17", "strategy": "spatial", "max_hop": 1,
                      "dilation": 1, "edge_importance": true, "in_channels": 3, "num_class": 15,
                      "base_channels": 32, "dropout": 0.5},
     "preprocessing": {"layout": "coco17", "normalization": "body", "fps": 15, "max_people": 1,
                       "rank": "area", "joint_mask": ["left_eye", ...], "min_confidence": 0.0},
     "pose": {"imgsz": 640, "conf": 0.25, "fps": 15, "precision": "bf16"},   # all optional
     "inference": {"window_frames": 32, "window_stride": 16, "aggregate": "motion", "mirror_average": true},
     "classes": ["baseball_pitch", ...],
     "weights": {"file": "weights.pt", "sha256": "..."},        # sha256 null: not checked
     "label_map": {...},                                        # see actionpipe.training.config
     "calibration": {...}, "open_set": {...},                   # see actionpipe.model.openset
     "license": "...", "metrics": [...], "training": {...}, "data": {...},
     "development_measurements": {...}}                         # free-form documentation

The sections a program acts on are typed (:mod:`actionpipe.model.card_sections`: ``pose``, ``inference``,
``calibration``, ``open_set``; ``preprocessing`` is a :class:`~actionpipe.skeleton.pack.PackSpec`), parsed
and checked once, here. An unknown key is an error naming the card (a typo never silently becomes
a default), except inside the free-form documentation sections (:data:`DOCUMENTATION_KEYS`).

``--model`` takes a card name (looked up in ``$ACTIONPIPE_MODELS`` folders, then the shipped
models) or a directory holding a card.json. The shipped models are the repository's ``models/``,
installed as the package data ``actionpipe.models`` (in a wheel and in an editable install alike).
"""
from __future__ import annotations

import importlib.resources
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from actionpipe.model.card_sections import CalibrationSection, InferenceSection, OpenSetSection, PoseSection
from actionpipe.core import fields
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import check_keys, read_json, sha256_file, write_json
from actionpipe.skeleton.pack import PackSpec

FORMAT_VERSION = 1
# A real folder: pip installs packages unpacked (weights are read with torch.load, cards by path).
SHIPPED_MODELS = Path(str(importlib.resources.files("actionpipe.models")))
# The general model (Penn Action + UTD-MHAD + JHMDB, 31 classes); penn-action-stgcn stays available by name.
DEFAULT_MODEL = "general-stgcn"
# Free-form documentation, kept and written back as it is (only its JSON types are checked).
DOCUMENTATION_KEYS = ("description", "license", "metrics", "training", "data", "development_measurements")
CARD_KEYS = ("format_version", "name", "architecture", "preprocessing", "pose", "inference", "classes",
             "weights", "label_map", "calibration", "open_set") + DOCUMENTATION_KEYS
_DOCUMENTATION_TYPES = {"description": str, "license": str, "metrics": list, "training": dict, "data": dict,
                        "development_measurements": dict}
_JSON_NAMES = {str: "string", list: "array", dict: "object"}


def model_dirs() -> list[Path]:
    """Folders searched for cards by name: ``$ACTIONPIPE_MODELS`` (os.pathsep-separated), then shipped."""
    extra = [Path(p) for p in os.environ.get("ACTIONPIPE_MODELS", "").split(os.pathsep) if p]
    return extra + [SHIPPED_MODELS]


@dataclass
class ModelCard:
    """A parsed card.json; ``directory`` is where its weights file is looked up."""

    name: str
    directory: Path
    architecture: dict[str, Any]
    preprocessing: PackSpec
    classes: list[str]
    weights_file: str
    weights_sha256: str | None
    inference: InferenceSection = field(default_factory=InferenceSection)
    pose: PoseSection = field(default_factory=PoseSection)
    calibration: CalibrationSection | None = None
    open_set: OpenSetSection | None = None
    label_map: dict[str, Any] = field(default_factory=dict)   # see actionpipe.model.label_map
    documentation: dict[str, Any] = field(default_factory=dict)   # DOCUMENTATION_KEYS, as they are

    def __repr__(self) -> str:
        return f"ModelCard({self.name!r}, {len(self.classes)} classes, {self.preprocessing.layout}, {self.directory})"

    @property
    def weights_path(self) -> Path:
        return self.directory / self.weights_file

    @property
    def card_path(self) -> Path:
        return self.directory / "card.json"

    @property
    def description(self) -> str:
        return self.documentation.get("description", "")

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """The measurements recorded in the card (``eval --record``)."""
        return list(self.documentation.get("metrics", []))

    @property
    def training_config(self) -> dict[str, Any]:
        """The training config the model was trained with (``training.config``; empty when not said)."""
        return (self.documentation.get("training") or {}).get("config") or {}

    @property
    def temperature(self) -> float:
        """The fitted calibration temperature (1.0: not calibrated)."""
        return self.calibration.temperature if self.calibration else 1.0

    def pose_settings(self, **given: Any) -> dict[str, Any]:
        """The pose settings to run with (the fields of :class:`PoseSection`): those ``given``
        (None: not given), else the card's ``pose`` section (what its accuracy was measured with),
        ``fps`` else the model's rate; absent when neither says."""
        settings = {"fps": self.preprocessing.fps, **self.pose.to_dict()}
        settings.update({k: v for k, v in given.items() if v is not None})
        return {k: v for k, v in settings.items() if v is not None}

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON (what :meth:`from_dict` reads back to an equal card)."""
        sections = {"pose": self.pose.to_dict() or None, "inference": self.inference.to_dict(),
                    "label_map": self.label_map or None,
                    "calibration": self.calibration.to_dict() if self.calibration else None,
                    "open_set": self.open_set.to_dict() if self.open_set else None}
        d = {"format_version": FORMAT_VERSION, "name": self.name, "architecture": self.architecture,
             "preprocessing": asdict(self.preprocessing), **sections, "classes": list(self.classes),
             "weights": {"file": self.weights_file, "sha256": self.weights_sha256}, **self.documentation}
        return {k: v for k, v in d.items() if v is not None}

    def rewrite(self, **sections: Any) -> "ModelCard":
        """Write card.json again (atomically) with ``sections`` (their JSON; None removes one) in
        place of its own; the result is checked before anything is written. Returns the new card."""
        d = {k: v for k, v in {**self.to_dict(), **sections}.items() if v is not None}
        card = ModelCard.from_dict(d, self.directory)
        write_json(self.card_path, card.to_dict(), indent=2)   # the sections in the card's own order
        return card

    @classmethod
    def load(cls, directory: str | Path) -> "ModelCard":
        """Read and validate ``directory/card.json``."""
        directory = Path(directory)
        return cls.from_dict(read_json(directory / "card.json", "model card"), directory)

    @classmethod
    def from_dict(cls, d: Any, directory: str | Path) -> "ModelCard":
        """Validate and build a card read from ``directory/card.json``; every problem is one
        ActionpipeError naming that file."""
        directory = Path(directory)
        path = directory / "card.json"
        try:
            sections = parse_sections(d)
            if d.get("format_version") != FORMAT_VERSION:
                raise ActionpipeError(None, f"card format_version {d.get('format_version')!r} is not supported")
            arch = fields.mapping(fields.need(d, "architecture"), "architecture")
            listed = fields.items(fields.need(d, "classes"), "classes")
            classes = fields.distinct([fields.text(c, "classes") for c in listed], "classes")
            if fields.whole(fields.need(arch, "num_class", "architecture"), "architecture.num_class") != len(classes):
                raise ActionpipeError(None, f"architecture.num_class is {arch['num_class']} "
                                            f"but {len(classes)} class labels are listed")
            prep = PackSpec.from_dict(d.get("preprocessing", {}))
            if prep.layout != arch.get("layout", prep.layout):
                raise ActionpipeError(None, f"preprocessing.layout {prep.layout!r} differs from "
                                            f"architecture.layout {arch['layout']!r}")
            weights = fields.need(d, "weights")
            check_keys(weights, ("file", "sha256"), None, "weights")
            return cls(str(d.get("name", directory.name)), directory, dict(arch), prep, classes,
                       fields.text(fields.need(weights, "file", "weights"), "weights.file"), weights.get("sha256"),
                       **sections)
        except ActionpipeError as exc:
            if exc.path is None:
                raise ActionpipeError(path, exc.problem) from None
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # what the checks above did not foresee
            raise ActionpipeError(path, f"not a valid model card: {exc}") from None

    def build_model(self):
        """An untrained ST-GCN of this card's architecture."""
        from actionpipe.model.stgcn import STGCN

        arch = {k: v for k, v in self.architecture.items() if k != "type"}
        try:
            return STGCN(**arch)
        except TypeError as exc:
            raise ActionpipeError(self.card_path, f"architecture not understood: {exc}") from None

    def load_model(self, device: str = "cpu"):
        """The card's model with its weights, in eval mode, on ``device``; the weights hash is checked."""
        import torch

        from actionpipe.model.stgcn import load_reference_state_dict

        if not self.weights_path.is_file():
            raise ActionpipeError(self.weights_path, "model weights file not found")
        if self.weights_sha256:
            digest = sha256_file(self.weights_path)
            if digest != self.weights_sha256:
                raise ActionpipeError(self.weights_path, f"SHA-256 {digest[:12]}… does not match the "
                                                         f"card's {self.weights_sha256[:12]}…")
        model = self.build_model()
        try:
            state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if self.weights_path.stat().st_size == 0:
                reason = "the file is empty"
            raise ActionpipeError(self.weights_path, f"cannot load weights: {reason}") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        load_reference_state_dict(model, state, source=self.weights_path)
        return model.to(device).eval()


def parse_sections(d: Any, within: str | None = None) -> dict[str, Any]:
    """A card's typed sections (``inference``, ``pose``, ``calibration``, ``open_set``), ``label_map``
    and ``documentation``, as :class:`ModelCard` takes them. Also checks a training config's ``card``
    (``within="card"``: the sections it adds to the card it makes, named so in the messages).
    Unknown keys and bad values are path-less errors."""
    check_keys(d, CARD_KEYS, None, within or "model card")
    try:
        for key, kind in _DOCUMENTATION_TYPES.items():
            if not isinstance(d.get(key, kind()), kind):
                raise ActionpipeError(None, f"{key} must be a JSON {_JSON_NAMES[kind]}")
        label_map = d.get("label_map") or {}
        if label_map:
            from actionpipe.model.label_map import check_label_map

            check_label_map(label_map)
        optional = {s.key: s.from_dict(d[s.key]) if d.get(s.key) is not None else None
                    for s in (CalibrationSection, OpenSetSection)}
        return {"inference": InferenceSection.from_dict(d.get("inference", {})),
                "pose": PoseSection.from_dict(d.get("pose", {})), **optional, "label_map": label_map,
                "documentation": {k: d[k] for k in DOCUMENTATION_KEYS if k in d}}
    except ActionpipeError as exc:
        if within is None:
            raise
        raise ActionpipeError(exc.path, f"{within}.{exc.problem}") from None


def find_card(name_or_dir: str | Path) -> ModelCard:
    """Resolve ``--model``: a directory with a card.json, or a card name in :func:`model_dirs`."""
    path = Path(name_or_dir)
    if (path / "card.json").is_file():
        return ModelCard.load(path)
    if path.name == "card.json" and path.is_file():
        return ModelCard.load(path.parent)
    for folder in model_dirs():
        if (folder / str(name_or_dir) / "card.json").is_file():
            return ModelCard.load(folder / str(name_or_dir))
    known = ", ".join(c.name for c in list_cards()) or "none installed"
    raise ActionpipeError(name_or_dir, f"no such model (not a directory with card.json, nor a card name; known: {known})")


def default_card() -> ModelCard | None:
    """The default model's card (:data:`DEFAULT_MODEL`), or None when it is not installed."""
    for folder in model_dirs():
        if (folder / DEFAULT_MODEL / "card.json").is_file():
            return ModelCard.load(folder / DEFAULT_MODEL)
    return None


def list_cards() -> list[ModelCard]:
    """Every valid card in :func:`model_dirs`, first one of a name wins."""
    cards: dict[str, ModelCard] = {}
    for folder in model_dirs():
        for card_json in sorted(folder.glob("*/card.json")) if folder.is_dir() else []:
            try:
                card = ModelCard.load(card_json.parent)
            except ActionpipeError:
                continue
            cards.setdefault(card.name, card)
    return list(cards.values())
