"""The label map: per dataset kind, how a dataset's own labels become the model's classes.

``{kind: {"rename": {label: class}, "exclude": [label], "negatives": [label], "weights": {label: factor}}}``:
synonyms merge into one class (``rename``), labels are left out (``exclude``) or become negatives
(:data:`OTHER_LABEL`, trained against), and ``weights`` multiply the dataset's sampling weight for
chosen labels. It is written into the model card, so ``eval`` and ``calibrate`` read each dataset
as training did (:mod:`actionpipe.training.config`).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import is_number

DATASET_KINDS = ("penn", "kinetics", "poses", "utd", "jhmdb", "urfd", "msr", "utk", "videos")
OTHER_LABEL = "other"          # clips of no class of the model (negatives; eval's unknown clips)
LABEL_MAP_KEYS = ("rename", "exclude", "negatives", "weights")


def check_label_map(label_map: Any, where=None) -> None:
    """``{kind: {"rename": {label: class}, "exclude": [label], "negatives": [label],
    "weights": {label: factor}}}``, or raise."""
    if not isinstance(label_map, dict):
        raise ActionpipeError(where, "label_map: expected a mapping of dataset kind to its map")
    for kind, entry in label_map.items():
        if kind not in DATASET_KINDS or not isinstance(entry, dict) or set(entry) - set(LABEL_MAP_KEYS):
            raise ActionpipeError(where, f"label_map.{kind}: expected a dataset kind ({', '.join(DATASET_KINDS)}) "
                                         f"mapping to {{{', '.join(LABEL_MAP_KEYS)}}}")
        rename = entry.get("rename", {})
        lists = [entry.get("exclude", []), entry.get("negatives", [])]
        if (not isinstance(rename, dict) or not all(isinstance(v, str) and v for v in rename.values())
                or not all(isinstance(x, list) and all(isinstance(v, str) for v in x) for x in lists)):
            raise ActionpipeError(where, f"label_map.{kind}: rename maps labels to class names; "
                                         "exclude and negatives are lists of labels")
        weights = entry.get("weights", {})
        if not isinstance(weights, dict) or not all(is_number(v) and v > 0 for v in weights.values()):
            raise ActionpipeError(where, f"label_map.{kind}.weights: maps labels to positive numbers")
        if OTHER_LABEL in rename.values():
            raise ActionpipeError(where, f"label_map.{kind}: {OTHER_LABEL!r} is not a class; list negatives instead")


def apply_label_map(clips: list, kind: str, label_map: dict[str, dict[str, Any]] | None) -> list:
    """The clips with their labels mapped per ``label_map[kind]``: renamed, excluded ones dropped,
    negatives relabelled :data:`OTHER_LABEL` and flagged. A mapped dataset loses its own class
    numbers (the model's classes are then the mapped names, alphabetically)."""
    entry = (label_map or {}).get(kind)
    if not entry:
        return clips
    rename, exclude, negatives = entry.get("rename", {}), set(entry.get("exclude", [])), set(entry.get("negatives", []))
    out = []
    for clip in clips:
        if clip.label in exclude:
            continue
        negative = clip.label in negatives
        out.append(replace(clip, label=OTHER_LABEL if negative else rename.get(clip.label, clip.label),
                           negative=negative, label_index=None))
    return out


def label_weight(label_map: dict[str, dict[str, Any]] | None, origin: str) -> float:
    """The label map's extra sampling weight for a clip of ``origin`` ("kind:label", the dataset's own label)."""
    kind, label = origin.split(":", 1)
    return float((label_map or {}).get(kind, {}).get("weights", {}).get(label, 1.0))


def check_weighted_labels(label_map: dict[str, dict[str, Any]] | None, origins: set[str]) -> None:
    """Raise unless every label given a weight names some training clip (``origins``: "kind:label")."""
    for kind, entry in (label_map or {}).items():
        unknown = sorted(label for label in entry.get("weights", {}) if f"{kind}:{label}" not in origins)
        if unknown:   # a misspelt label would otherwise weigh nothing, silently
            raise ActionpipeError(None, f"label_map.{kind}.weights: no training clip is labelled {', '.join(unknown)}")


# Names one action goes by in different datasets: a clip labelled with one is right when the model
# answers the other (realclips' ``bicep_curl`` is UTD-MHAD's ``arm_curl``). Symmetric.
SYNONYMS = {"bicep_curl": "arm_curl", "arm_curl": "bicep_curl", "pull_up": "pullup", "push_up": "pushup",
            "sit_up": "situp", "jumping_jack": "jumping_jacks", "jump_jack": "jumping_jacks"}


def model_label(label: str, classes, synonyms: dict[str, str] | None = None) -> str:
    """``label`` as the model with ``classes`` names it: itself when it is a class, else its synonym
    (``synonyms``, then :data:`SYNONYMS`) when that is one; else unchanged (a label the model lacks)."""
    if label in classes:
        return label
    for table in (synonyms or {}, SYNONYMS):
        if table.get(label) in classes:
            return table[label]
    return label
