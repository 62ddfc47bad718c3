"""Model cards: ``models/<name>/card.json`` beside the weights says what a model is and how to feed it.

Card (JSON, ``format_version`` 1)::

    {"format_version": 1, "name": "penn-action-stgcn", "description": "...",
     "architecture": {"type": "stgcn", "layout": "coco17", "strategy": "spatial", "max_hop": 1,
                      "dilation": 1, "edge_importance": true, "in_channels": 3, "num_class": 15,
                      "base_channels": 32, "dropout": 0.5},
     "preprocessing": {"layout": "coco17", "normalization": "body", "fps": 15, "max_people": 1,
                       "rank": "area", "joint_mask": ["left_eye", ...], "min_confidence": 0.0},
     "inference": {"window_frames": 32, "window_stride": 16},   # test-time averaging over windows
     "classes": ["baseball_pitch", ...],
     "weights": {"file": "weights.pt", "sha256": "..."},        # sha256 null: not checked
     "metrics": [...], "training": {...}, "data": {...}}         # free-form documentation

``--model`` takes a card name (looked up in ``$ACTIONPIPE_MODELS`` folders, then the shipped
models) or a directory holding a card.json. The shipped models are the repository's ``models/``,
installed as the package data ``actionpipe.models`` (in a wheel and in an editable install alike).
"""
from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ActionpipeError
from .fileio import check_keys, read_json, sha256_file
from .pack import PackSpec

FORMAT_VERSION = 1
# A real folder: pip installs packages unpacked (weights are read with torch.load, cards by path).
SHIPPED_MODELS = Path(str(importlib.resources.files("actionpipe.models")))
DEFAULT_MODEL = "penn-action-stgcn"
POSE_KEYS = ("imgsz", "conf", "fps", "precision")  # the pose settings a card's accuracy was measured with


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
    inference: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"ModelCard({self.name!r}, {len(self.classes)} classes, {self.preprocessing.layout}, {self.directory})"

    @property
    def weights_path(self) -> Path:
        return self.directory / self.weights_file

    @property
    def card_path(self) -> Path:
        return self.directory / "card.json"

    def pose_settings(self, **given: Any) -> dict[str, Any]:
        """The pose settings to run with (:data:`POSE_KEYS`): those ``given`` (None: not given),
        else the card's ``pose`` section (what its accuracy was measured with), ``fps`` else the
        model's rate; absent when neither says."""
        settings = {k: v for k, v in self.raw.get("pose", {}).items() if v is not None}
        settings.setdefault("fps", self.preprocessing.fps)
        settings.update({k: v for k, v in given.items() if v is not None})
        return {k: v for k, v in settings.items() if v is not None}

    @property
    def label_map(self) -> dict[str, Any]:
        """How its training datasets' labels map to its classes (:func:`actionpipe.trainconfig.apply_label_map`)."""
        return self.raw.get("label_map") or {}

    @classmethod
    def load(cls, directory: str | Path) -> "ModelCard":
        """Read and validate ``directory/card.json``."""
        directory = Path(directory)
        path = directory / "card.json"
        d = read_json(path, "model card")
        try:
            if d.get("format_version") != FORMAT_VERSION:
                raise ActionpipeError(path, f"card format_version {d.get('format_version')!r} is not supported")
            arch = dict(d["architecture"])
            classes = [str(c) for c in d["classes"]]
            if int(arch["num_class"]) != len(classes):
                raise ActionpipeError(path, f"architecture.num_class is {arch['num_class']} "
                                            f"but {len(classes)} class labels are listed")
            prep = PackSpec.from_dict(d.get("preprocessing", {}))
            if prep.layout != arch.get("layout", prep.layout):
                raise ActionpipeError(path, f"preprocessing.layout {prep.layout!r} differs from "
                                            f"architecture.layout {arch['layout']!r}")
            weights = d["weights"]
            check_keys(weights, ("file", "sha256"), None, "weights")
            inference = d.get("inference", {})
            check_keys(inference, ("window_frames", "window_stride", "aggregate"), None, "inference")
            for key in ("window_frames", "window_stride"):
                value = inference.get(key)
                if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                    raise ActionpipeError(None, f"inference.{key} must be a whole number >= 1 (or absent), "
                                                f"got {value!r}")
            check_keys(d.get("pose", {}), POSE_KEYS, None, "pose")
            return cls(str(d.get("name", directory.name)), directory, arch, prep, classes,
                       str(weights["file"]), weights.get("sha256"), dict(inference), d)
        except ActionpipeError as exc:
            if exc.path is None:
                raise ActionpipeError(path, exc.problem) from None
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ActionpipeError(path, f"not a valid model card: {type(exc).__name__}: {exc}") from None

    def build_model(self):
        """An untrained ST-GCN of this card's architecture."""
        from .model import STGCN

        arch = {k: v for k, v in self.architecture.items() if k != "type"}
        try:
            return STGCN(**arch)
        except TypeError as exc:
            raise ActionpipeError(self.card_path, f"architecture not understood: {exc}") from None

    def load_model(self, device: str = "cpu"):
        """The card's model with its weights, in eval mode, on ``device``; the weights hash is checked."""
        import torch

        from .model import load_reference_state_dict

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
