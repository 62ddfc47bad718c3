"""Fine-tuning: a new model for new classes that starts from a trained model's backbone.

``actionpipe train --from MODEL`` (config ``finetune.source``):

* the run takes the source model's preprocessing, architecture, windows, pose settings and window
  aggregate (:func:`source_config`), so the new model sees exactly what the source saw, and its
  licence (the new weights derive from the source's training data);
* every weight but the classifier is copied; the classifier (``fcn``) gets one row per new class,
  and a class the source already knows (same name) keeps its row and bias (:func:`transfer_weights`);
* ``freeze_blocks`` N keeps ``data_bn`` and the first N of the ten ST-GCN blocks as they are
  (no gradient, batch-norm statistics not updated): with very few clips, the early, generic
  motion filters are not worth re-learning;
* the backbone learns at ``backbone_lr`` × the head's rate, and the optimiser's defaults are
  :data:`FINETUNE_OPTIM` (a short cosine schedule with warm-up) rather than the paper's
  from-scratch recipe; a config's own ``optim`` values still win.
"""
from __future__ import annotations

from typing import Any

from actionpipe.model.cards import ModelCard, find_card
from actionpipe.core.errors import ActionpipeError, UsageError

# Optimiser defaults under a fine-tuning run (keys of training.config.OptimConfig).
FINETUNE_OPTIM = {"epochs": 30, "lr": 0.05, "schedule": "cosine", "warmup_epochs": 1, "min_lr": 0.0,
                  "clip_grad": 2.0, "ema": 0.99, "label_smoothing": 0.1}
# Config keys the source model decides.
SOURCE_KEYS = ("preprocessing", "architecture", "window_frames", "window_stride")
_NOT_ARCHITECTURE = ("type", "layout", "in_channels", "num_class")   # set by the run itself


def source_config(card: ModelCard) -> dict[str, Any]:
    """The config values a run fine-tuning ``card`` takes from it (and its optimiser defaults)."""
    from dataclasses import asdict

    inference, pose = card.inference, card.pose.to_dict()
    # The weights derive from the source's, and so from its training data: its terms carry over.
    source_license = card.documentation.get("license")
    license_ = {"license": f"Fine-tuned from {card.name}, whose terms apply: {source_license}"} if source_license else {}
    return {"preprocessing": asdict(card.preprocessing),
            "architecture": {k: v for k, v in card.architecture.items() if k not in _NOT_ARCHITECTURE},
            "window_frames": inference.window_frames or 32,
            "window_stride": inference.window_stride or inference.window_frames or 16,
            "optim": dict(FINETUNE_OPTIM),
            "card": {**({"pose": pose} if pose else {}), "inference": {"aggregate": inference.aggregate}, **license_}}


def merge_source(config: dict[str, Any], overrides: dict[str, Any], where=None) -> dict[str, Any]:
    """``config`` (a config file's own keys) on top of the fine-tuning source's settings; a
    preprocessing, architecture or window that differs from the source's is refused, as the
    copied weights would not fit it (or would see input unlike what they were trained on)."""
    card = find_card(config["finetune"]["source"])
    base = source_config(card)
    for key in SOURCE_KEYS:
        if any(k == key or k.startswith(key + ".") for k in overrides):
            raise UsageError(None, f"--set {key}: a fine-tuned model keeps the preprocessing, architecture and "
                                   f"windows of {card.name}")
        if key in config and not _agrees(config[key], base[key]):
            raise ActionpipeError(where, f"config {key} differs from {card.name}'s ({config[key]!r} vs "
                                         f"{base[key]!r}): a fine-tuned model keeps the source's")
    merged = {**base, **config}
    merged["optim"] = {**base["optim"], **config.get("optim", {})}
    merged["card"] = {**base["card"], **config.get("card", {})}
    return merged


def _agrees(given: Any, source: Any) -> bool:
    if isinstance(given, dict) and isinstance(source, dict):
        return all(k in source and _agrees(v, source[k]) for k, v in given.items())
    return given == source


def transfer_weights(model, card: ModelCard, classes: list[str]) -> dict[str, Any]:
    """Load ``card``'s weights into ``model`` (same architecture, ``len(classes)`` outputs): all of the
    backbone, and the classifier rows of the classes both know. Returns what was carried over."""
    import torch

    source = card.load_model("cpu")
    state = source.state_dict()
    own = model.state_dict()
    for key, value in state.items():
        if key.startswith("fcn."):
            continue
        if key not in own or own[key].shape != value.shape:
            raise ActionpipeError(card.card_path, f"its weight {key} does not fit the new model")
        own[key] = value.clone()
    shared = [c for c in classes if c in card.classes]
    with torch.no_grad():
        for name in shared:
            i, j = classes.index(name), card.classes.index(name)
            own["fcn.weight"][i] = state["fcn.weight"][j]
            own["fcn.bias"][i] = state["fcn.bias"][j]
    model.load_state_dict(own)
    return {"model": card.name, "weights_sha256": card.weights_sha256, "classes_kept": shared,
            "new_classes": [c for c in classes if c not in card.classes]}


def frozen_modules(model, freeze_blocks: int) -> list:
    """``data_bn`` and the first ``freeze_blocks`` blocks (with their edge importance), their
    parameters switched off; keep them in eval mode while training (see :func:`hold_frozen`)."""
    if not freeze_blocks:
        return []
    blocks = len(model.st_gcn_networks)
    if freeze_blocks > blocks:
        raise ActionpipeError(None, f"finetune.freeze_blocks {freeze_blocks}: the model has {blocks} blocks")
    modules = [model.data_bn, *model.st_gcn_networks[:freeze_blocks]]
    params = [p for m in modules for p in m.parameters()]
    if model.edge_importance is not None:
        params += list(model.edge_importance[:freeze_blocks])
    for p in params:
        p.requires_grad_(False)
    return modules


def hold_frozen(modules: list) -> None:
    """Frozen modules in eval mode: their batch-norm statistics stay the source's."""
    for m in modules:
        m.eval()


def parameter_groups(model, backbone_lr: float) -> list[dict[str, Any]]:
    """The head at the optimiser's rate, the (trainable) backbone at ``backbone_lr`` × it
    (``lr_scale``, which :func:`actionpipe.training.train.set_learning_rate` applies)."""
    head = list(model.fcn.parameters())
    backbone = [p for n, p in model.named_parameters() if not n.startswith("fcn.") and p.requires_grad]
    return [{"params": head, "lr_scale": 1.0}, {"params": backbone, "lr_scale": backbone_lr}]
