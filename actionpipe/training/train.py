"""Train an ST-GCN on labelled skeleton clips and write a model directory (card.json + weights.pt).

Run directory (``-o RUN_DIR``), also a model directory ``--model`` accepts:

* ``card.json`` + ``weights.pt`` — the checkpoint selected on the *validation* split (held out from
  the training clips; the test split is never looked at), state_dict in the reference key format;
* ``checkpoint.pt`` — the last epoch (model, EMA, optimiser), for ``--resume``;
* ``config.json`` — the full resolved config; ``log.jsonl`` — one line per epoch.

The steps: :func:`load_training_data` (sources, classes, validation hold-out), :func:`build_model`
(from scratch, or a fine-tuning source's backbone with a new head: :mod:`actionpipe.training.finetune`),
:func:`build_optimizer`, then per epoch :func:`train_epoch`, :func:`validate` and the saves.
Clips become model input through :mod:`actionpipe.training.model_input`, exactly as at inference plus the
training augmentation. Epoch ``e`` draws its randomness from ``(seed, e)`` alone, so a resumed run
continues identically.
"""
from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from actionpipe.core import console
from actionpipe.model.cards import sha256_file
from actionpipe.training.datasets import Clip, class_names, split_validation
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import atomic_path, write_json
from actionpipe.model.infer import combine_windows, run_windows, torch_windows
from actionpipe.training.model_input import clip_sample, training_sample
from actionpipe.model.openset import softmax
from actionpipe.skeleton.pack import Sample
from actionpipe.training.config import TrainConfig, load_sources
from actionpipe.model.label_map import OTHER_LABEL


# --- data ----------------------------------------------------------------------------------------

@dataclass
class TrainingData:
    """What a run learns from: the training clips with their sampling weights, the validation clips
    (known classes only: accuracy and checkpoints), the model's classes and a description."""

    train_clips: list[Clip]
    train_weights: np.ndarray
    val_clips: list[Clip]
    classes: list[str]
    info: dict[str, Any]


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """Load every source of ``cfg``, fix the classes and hold out the validation split."""
    clips, clip_weights, info = load_sources(cfg)
    classes = class_names(c for c in clips if not c.negative)
    if len(classes) < 2:
        raise ActionpipeError(cfg.dataset or "datasets", f"training needs at least 2 classes (found {classes})")
    weight_of = {id(c): w for c, w in zip(clips, clip_weights)}
    train_clips, val_clips = split_validation(clips, cfg.val_fraction, cfg.split_seed)
    if cfg.datasets:
        info["classes"] = class_sources(clips)
    return TrainingData(train_clips, np.array([weight_of[id(c)] for c in train_clips]),
                        [c for c in val_clips if not c.negative], classes, info)


def epoch_order(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch's clip indices: clip ``i`` ``floor(w_i)`` times, once more with probability of the
    fraction, shuffled. Weights all 1 give a plain permutation (one random draw: the same as before
    weights existed, so older recipes reproduce their weights)."""
    whole = np.floor(weights).astype(np.int64)
    fraction = weights - whole
    if fraction.any():
        whole += rng.random(len(weights)) < fraction
    indices = np.repeat(np.arange(len(weights)), whole)
    return indices[rng.permutation(len(indices))]


def training_loss(logits, y, label_smoothing: float, negative_weight: float):
    """Cross-entropy on clips of a class (``y >= 0``); on negatives (``y == -1``), outlier exposure:
    cross-entropy to the uniform distribution, ``negative_weight`` times as strong, so the model
    learns to spread its belief over clips of no class instead of naming one."""
    import torch
    import torch.nn.functional as F

    negative = y < 0
    if not bool(negative.any()):
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    known = ~negative
    loss = logits.new_zeros(())
    if bool(known.any()):
        loss = F.cross_entropy(logits[known], y[known], label_smoothing=label_smoothing, reduction="sum")
    uniform = -torch.log_softmax(logits[negative], dim=1).mean(1).sum()
    return (loss + negative_weight * uniform) / len(y)


# --- optimisation helpers -------------------------------------------------------------------------

def learning_rate(cfg: TrainConfig, progress: float) -> float:
    """LR at ``progress`` epochs (fractional): linear warm-up, then cosine or step decay."""
    o = cfg.optim
    if progress < o.warmup_epochs:
        return o.lr * (progress + 1e-3) / o.warmup_epochs
    if o.schedule == "cosine":
        span = max(cfg.optim.epochs - o.warmup_epochs, 1e-9)
        return o.min_lr + (o.lr - o.min_lr) * 0.5 * (1 + math.cos(math.pi * (progress - o.warmup_epochs) / span))
    return o.lr * o.lr_gamma ** sum(progress >= s for s in o.lr_steps)


class EMA:
    """Exponential moving average of a model's weights and buffers (evaluated instead of the model)."""

    def __init__(self, model, decay: float):
        self.decay, self.updates = decay, 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def update(self, model) -> None:
        import torch

        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))  # short memory at the start
        with torch.no_grad():
            for e, v in zip(self.model.state_dict().values(), model.state_dict().values()):
                if e.dtype.is_floating_point:
                    e.mul_(d).add_(v.detach(), alpha=1 - d)
                else:
                    e.copy_(v)


# --- the run -------------------------------------------------------------------------------------

@dataclass
class RunState:
    epoch: int = 0                 # epochs completed
    best_val: float = -1.0
    best_epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def class_sources(clips: list[Clip]) -> dict[str, list[str]]:
    """Per model class (and ``other``), the dataset labels it was trained from: ``kind:label``."""
    sources: dict[str, set[str]] = {}
    for clip in clips:
        sources.setdefault(clip.label, set()).add(clip.origin or clip.label)
    return {label: sorted(s) for label, s in sorted(sources.items())}


def _card(cfg: TrainConfig, classes: list[str], weights: Path, state: RunState, data: dict) -> dict:
    return {
        **cfg.card, "format_version": 1, "name": cfg.name, "description": cfg.description,
        **({"label_map": cfg.label_map} if cfg.label_map else {}),
        "architecture": {"type": "stgcn", "layout": cfg.spec.layout, "in_channels": 3,
                         "num_class": len(classes), **cfg.architecture},
        "preprocessing": asdict(cfg.spec),
        # card.inference in the config adds inference-only settings (e.g. "aggregate": "motion").
        "inference": {**cfg.card.get("inference", {}), "window_frames": cfg.window_frames,
                      "window_stride": cfg.window_stride},
        "classes": classes,
        "weights": {"file": weights.name, "sha256": sha256_file(weights)},
        "metrics": [{"split": "validation (held out from train)", "top1": round(state.best_val, 4),
                     "epoch": state.best_epoch}] if state.best_val >= 0 else [],
        "training": {**cfg.card.get("training", {}), "config": cfg.to_dict(), "epochs_run": state.epoch,
                     "time_s": round(sum(h["time_s"] for h in state.history), 1),
                     "selected_epoch": state.best_epoch},
        "data": {**data, **cfg.card.get("data", {})},
    }


def _save_state(state: dict, path: Path) -> None:
    """``torch.save`` through a buffer: the archive then has a fixed inner name (torch uses the file's
    name otherwise), so equal weights give equal bytes and the card's SHA-256 is reproducible."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def build_model(cfg: TrainConfig, classes: list[str], device: str):
    """The run's ST-GCN: from scratch, or the fine-tuning source's weights with a new head
    (:mod:`actionpipe.training.finetune`). Returns the model, its frozen modules and what was carried over."""
    import torch

    from actionpipe.model.stgcn import STGCN

    torch.manual_seed(cfg.seed)
    model = STGCN(in_channels=3, num_class=len(classes), layout=cfg.spec.layout, **cfg.architecture)
    frozen, carried = [], None
    if cfg.finetune.source:
        from actionpipe.model.cards import find_card
        from actionpipe.training.finetune import frozen_modules, transfer_weights

        carried = transfer_weights(model, find_card(cfg.finetune.source), classes)
        frozen = frozen_modules(model, cfg.finetune.freeze_blocks)
        carried["freeze_blocks"] = cfg.finetune.freeze_blocks
    return model.to(device), frozen, carried


def build_optimizer(cfg: TrainConfig, model):
    """SGD over the trainable parameters; when fine-tuning, the backbone at ``finetune.backbone_lr``
    × the head's rate (each group's ``lr_scale``)."""
    import torch

    o = cfg.optim
    if cfg.finetune.source:
        from actionpipe.training.finetune import parameter_groups
        groups = parameter_groups(model, cfg.finetune.backbone_lr)
    else:
        groups = [{"params": list(model.parameters()), "lr_scale": 1.0}]
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay)


def train_epoch(cfg: TrainConfig, epoch: int, data: TrainingData, model, optimizer, ema, frozen: list,
                device: str, advance) -> dict[str, float]:
    """One epoch over ``data.train_clips`` (drawn per their weights); ``advance(loss)`` after each batch.
    Its randomness comes from ``(seed, epoch)`` alone, so a resumed run continues identically."""
    import torch

    from actionpipe.training.finetune import hold_frozen

    o = cfg.optim
    rng = np.random.default_rng([cfg.seed, epoch])
    torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: same numbers after --resume
    label_of = {c: i for i, c in enumerate(data.classes)} | {OTHER_LABEL: -1}
    order = epoch_order(data.train_weights, rng)
    batches = math.ceil(len(order) / o.batch_size)
    model.train()
    hold_frozen(frozen)
    loss_sum = correct = seen = 0
    lr = o.lr
    for b in range(batches):
        idx = order[b * o.batch_size:(b + 1) * o.batch_size]
        x = torch.from_numpy(np.stack([training_sample(data.train_clips[i], cfg.spec, cfg.window_frames,
                                                       cfg.augment, rng) for i in idx])).to(device)
        y = torch.tensor([label_of[data.train_clips[i].label] for i in idx], device=device)
        lr = learning_rate(cfg, epoch + b / batches)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        logits = model(x)
        loss = training_loss(logits, y, o.label_smoothing, o.negative_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if o.clip_grad:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_grad)
        optimizer.step()
        if ema:
            ema.update(model)
        loss_sum += float(loss.detach()) * len(idx)
        correct += int((logits.argmax(1) == y).sum())   # negatives (y = -1) are never right
        seen += len(idx)
        advance(loss_sum / seen)
    return {"loss": loss_sum / seen, "train_acc": correct / seen, "lr": lr}


def validate(cfg: TrainConfig, model, samples: list[Sample], labels: np.ndarray, device: str) -> tuple[float, float]:
    """Accuracy and loss on the validation samples, through the card's windows and aggregate as at
    inference (NaN without validation clips)."""
    if not samples:
        return float("nan"), float("nan")
    aggregate = cfg.card.get("inference", {}).get("aggregate", "mean")
    model.eval()
    probs = np.stack([combine_windows(softmax(w.logits), w.motion, aggregate) for w in run_windows(
        torch_windows(model, device), samples, cfg.window_frames, cfg.window_stride, cfg.spec.pad, 64)])
    loss = float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-9)).mean())
    return float((probs.argmax(1) == labels).mean()), loss


def _check_run_dir(run_dir: Path, resume: bool) -> None:
    if resume and not (run_dir / "checkpoint.pt").is_file():
        raise ActionpipeError(run_dir / "checkpoint.pt", "nothing to resume: no checkpoint here")
    if not resume and (run_dir / "card.json").exists():
        raise ActionpipeError(run_dir, "already holds a trained model (use --resume, or another -o)")


def _resume(ckpt_path: Path, cfg: TrainConfig, model, optimizer, ema, device: str) -> RunState:
    import torch

    ck = torch.load(ckpt_path, map_location=device, weights_only=True)
    if ck["config"] != cfg.to_dict():
        raise ActionpipeError(ckpt_path, "the checkpoint was made with another config; resume with the same one")
    model.load_state_dict(ck["model"])
    optimizer.load_state_dict(ck["optimizer"])
    if ema:
        ema.model.load_state_dict(ck["ema"])
        ema.updates = ck["ema_updates"]
    return RunState(ck["epoch"], ck["best_val"], ck["best_epoch"], ck["history"])


def _save_epoch(run_dir: Path, cfg: TrainConfig, data: TrainingData, state: RunState, model, optimizer, ema,
                improved: bool) -> None:
    """The model when it improved on validation, then the card, the checkpoint and the log."""
    import torch

    evaluated = ema.model if ema else model
    if improved:
        _save_state({k: v.cpu() for k, v in evaluated.state_dict().items()}, run_dir / "weights.pt")
    write_json(run_dir / "card.json", _card(cfg, data.classes, run_dir / "weights.pt", state, data.info), indent=2)
    with atomic_path(run_dir / "checkpoint.pt") as tmp:
        torch.save({"config": cfg.to_dict(), "epoch": state.epoch, "best_val": state.best_val,
                    "best_epoch": state.best_epoch, "history": state.history,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "ema": ema.model.state_dict() if ema else {},
                    "ema_updates": ema.updates if ema else 0}, tmp)
    with atomic_path(run_dir / "log.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(h) + "\n" for h in state.history))


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, device: str = "auto",
          threads: int | None = None, stop_after: int | None = None, data: TrainingData | None = None) -> Path:
    """Train per ``cfg`` into ``run_dir`` (created); returns the run directory (a model directory).

    ``stop_after``: stop once this many epochs are done (the schedule still spans
    ``cfg.optim.epochs``); ``resume=True`` continues from the last checkpoint. ``data``: the clips
    to learn from (default: :func:`load_training_data` of ``cfg``).
    """
    import torch

    from actionpipe.core.devices import resolve_device

    run_dir = Path(run_dir)
    _check_run_dir(run_dir, resume)
    dev = resolve_device(device)
    data = data or load_training_data(cfg)
    if threads:   # after the data: posing videos sets torch to every core
        torch.set_num_threads(threads)
    run_dir.mkdir(parents=True, exist_ok=True)  # only now: a bad dataset leaves no empty run folder
    label_of = {c: i for i, c in enumerate(data.classes)}
    val_samples = [clip_sample(c, cfg.spec) for c in data.val_clips]
    val_labels = np.array([label_of[c.label] for c in data.val_clips])
    model, frozen, carried = build_model(cfg, data.classes, dev)
    if carried:
        data.info["finetuned_from"] = carried
        console.info(f"fine-tuning {carried['model']}: {len(carried['classes_kept'])} class(es) kept, "
                     f"{len(carried['new_classes'])} new, {cfg.finetune.freeze_blocks} block(s) frozen")
    optimizer = build_optimizer(cfg, model)
    ema = EMA(model, cfg.optim.ema) if cfg.optim.ema else None
    state = RunState()
    if resume:
        state = _resume(run_dir / "checkpoint.pt", cfg, model, optimizer, ema, dev)
        console.info(f"resuming {run_dir} after epoch {state.epoch}")
    write_json(run_dir / "config.json", cfg.to_dict(), indent=2)
    data.info.update(train_clips=len(data.train_clips), validation_clips=len(data.val_clips))

    o = cfg.optim
    last_epoch = min(o.epochs, stop_after or o.epochs)
    with console.progress() as bar:
        task = bar.add_task("training", total=max(last_epoch - state.epoch, 0)
                            * math.ceil(data.train_weights.sum() / o.batch_size))
        for epoch in range(state.epoch, last_epoch):
            started = time.perf_counter()
            result = train_epoch(cfg, epoch, data, model, optimizer, ema, frozen, dev, lambda loss: bar.update(
                task, advance=1, description=f"epoch {epoch + 1}/{o.epochs} loss {loss:.3f}"))
            val_acc, val_loss = validate(cfg, ema.model if ema else model, val_samples, val_labels, dev)
            entry = {"epoch": epoch + 1, "loss": round(result["loss"], 5), "train_acc": round(result["train_acc"], 5),
                     "val_acc": round(val_acc, 5), "val_loss": round(val_loss, 5), "lr": round(result["lr"], 6),
                     "time_s": round(time.perf_counter() - started, 2)}
            state.history.append(entry)
            state.epoch = epoch + 1
            # No validation split: the last epoch is the model.
            improved = not val_samples or val_acc >= state.best_val
            if improved:
                state.best_val, state.best_epoch = (val_acc if val_samples else -1.0), epoch + 1
            _save_epoch(run_dir, cfg, data, state, model, optimizer, ema, improved)
            console.info(f"epoch {epoch + 1}/{o.epochs}: loss {entry['loss']:.4f}, train {entry['train_acc']:.3f}, "
                         f"val {val_acc:.3f}, lr {result['lr']:.4g}, {entry['time_s']:.0f}s")
    return run_dir
