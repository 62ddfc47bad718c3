"""Train an ST-GCN on labelled skeleton clips and write a model directory (card.json + weights.pt).

Run directory (``-o RUN_DIR``), also a model directory ``--model`` accepts:

* ``card.json`` + ``weights.pt`` — the checkpoint selected on the *validation* split (held out from
  the training clips; the test split is never looked at), state_dict in the reference key format;
* ``checkpoint.pt`` — the last epoch (model, EMA, optimiser), for ``--resume``;
* ``config.json`` — the full resolved config; ``log.jsonl`` — one line per epoch.

Clips go through :func:`actionpipe.pack.prepare_keypoints` exactly as at inference, after the
pixel-space augmentation of :mod:`actionpipe.augment` and a speed-jittered resampling to the
model's frame rate, then a random ``window_frames`` crop (loop-padded when short, like inference).
Epoch ``e`` draws its randomness from ``(seed, e)`` alone, so a resumed run continues identically.
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

from . import console
from .augment import AugmentConfig, augment
from .cards import sha256_file
from .datasets import Clip, class_names
from .errors import ActionpipeError
from .fileio import atomic_path, write_json
from .infer import combine_windows, run_windows
from .openset import softmax
from .pack import PackSpec, Sample, fit_length, prepare_keypoints, resample_time
from .trainconfig import OTHER_LABEL, TrainConfig, load_sources


# --- clips -> model input ------------------------------------------------------------------------

def clip_to_model_space(clip: Clip, spec: PackSpec, speed: float = 1.0,
                        keypoints: np.ndarray | None = None) -> np.ndarray:
    """A clip's first ``spec.max_people`` people resampled to ``spec.fps`` (as if played ``speed``×
    faster) and prepared like inference does: ``(C, T, V, M)`` float32."""
    kp = clip.keypoints if keypoints is None else keypoints
    m = spec.max_people
    if kp.shape[0] < m:
        kp = np.concatenate([kp, np.zeros((m - kp.shape[0],) + kp.shape[1:], np.float32)])
    kp = kp[:m]
    if spec.fps:
        kp = kp[:, resample_time(np.arange(kp.shape[1]) / (clip.fps * speed), spec.fps)]
    out = prepare_keypoints(kp, clip.layout, spec, clip.width, clip.height)
    return np.ascontiguousarray(out.transpose(3, 1, 2, 0))


def clip_sample(clip: Clip, spec: PackSpec) -> Sample:
    """A dataset clip prepared exactly as in training, as a Sample the Predictor takes."""
    data = clip_to_model_space(clip, spec)
    t = data.shape[1]
    return Sample(data[None], np.arange(spec.max_people), np.arange(t),
                  np.arange(t) / float(spec.fps or clip.fps), {"layout": spec.layout})


def augmented_keypoints(clip: Clip, aug: AugmentConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The clip's keypoints with the spatial augmentation, and a random speed factor (the jitter).
    A 3-D clip is first filmed by a random virtual camera (``aug.view_yaw``/``view_pitch``)."""
    kp = clip.keypoints
    if clip.points3d is not None and (aug.view_yaw or aug.view_pitch):
        from .virtual_camera import Camera, project
        kp = project(clip.points3d, clip.present3d, Camera.random(rng, aug.view_yaw, aug.view_pitch))
    kp = augment(kp, rng, aug, clip.layout, clip.width, clip.height)
    speed = math.exp(rng.uniform(-1, 1) * math.log1p(aug.speed)) if aug.speed else 1.0
    return kp, speed


def training_sample(clip: Clip, spec: PackSpec, window: int, aug: AugmentConfig,
                    rng: np.random.Generator) -> np.ndarray:
    """One augmented training input ``(C, window, V, M)``: spatial augmentation, speed jitter, crop."""
    kp, speed = augmented_keypoints(clip, aug, rng)
    data = clip_to_model_space(clip, spec, speed, kp)
    length = data.shape[1]
    if length > window:
        start = int(rng.integers(0, length - window + 1))
        data = data[:, start:start + window]
    return fit_length(data, window, spec.pad, axis=1)


def split_validation(clips: list[Clip], fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """Stratified hold-out of about ``fraction`` of each class's clips, drawn as whole groups
    (:attr:`Clip.group`: clips of one source video stay on one side, whatever their labels), so a
    class may give a few clips more than its share. A class keeps at least one group for training;
    one that cannot give any clip (a single group) is said on stderr."""
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
        if target and not held:
            console.warn(f"class {label!r}: all {size} clips are one group, none held out for validation")
    return train, val


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


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, device: str = "auto",
          threads: int | None = None, stop_after: int | None = None) -> Path:
    """Train per ``cfg`` into ``run_dir`` (created); returns the run directory (a model directory).

    ``stop_after``: stop once this many epochs are done (the schedule still spans
    ``cfg.optim.epochs``); ``resume=True`` continues from the last checkpoint.
    """
    import torch

    from .devices import resolve_device
    from .model import STGCN

    run_dir = Path(run_dir)
    ckpt_path = run_dir / "checkpoint.pt"
    if resume and not ckpt_path.is_file():
        raise ActionpipeError(ckpt_path, "nothing to resume: no checkpoint here")
    if not resume and (run_dir / "card.json").exists():
        raise ActionpipeError(run_dir, "already holds a trained model (use --resume, or another -o)")
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)

    clips, clip_weights, data_info = load_sources(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)  # only now: a bad dataset leaves no empty run folder
    classes = class_names(c for c in clips if not c.negative)
    if len(classes) < 2:
        raise ActionpipeError(cfg.dataset or "datasets", f"training needs at least 2 classes (found {classes})")
    weight_of = {id(c): w for c, w in zip(clips, clip_weights)}
    train_clips, val_clips = split_validation(clips, cfg.val_fraction, cfg.split_seed)
    train_weights = np.array([weight_of[id(c)] for c in train_clips])
    label_of = {c: i for i, c in enumerate(classes)} | {OTHER_LABEL: -1}
    spec = cfg.spec
    val_clips = [c for c in val_clips if not c.negative]   # accuracy and checkpoints: on known classes
    val_samples = [clip_sample(c, spec) for c in val_clips]
    aggregate = cfg.card.get("inference", {}).get("aggregate", "mean")
    val_labels = np.array([label_of[c.label] for c in val_clips])
    if cfg.datasets:
        data_info["classes"] = class_sources(clips)

    torch.manual_seed(cfg.seed)
    model = STGCN(in_channels=3, num_class=len(classes), layout=spec.layout, **cfg.architecture).to(dev)
    o = cfg.optim
    optimizer = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                                weight_decay=o.weight_decay)
    ema = EMA(model, o.ema) if o.ema else None
    state = RunState()
    if resume:
        ck = torch.load(ckpt_path, map_location=dev, weights_only=True)
        if ck["config"] != cfg.to_dict():
            raise ActionpipeError(ckpt_path, "the checkpoint was made with another config; resume with the same one")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        if ema:
            ema.model.load_state_dict(ck["ema"])
            ema.updates = ck["ema_updates"]
        state = RunState(ck["epoch"], ck["best_val"], ck["best_epoch"], ck["history"])
        console.info(f"resuming {run_dir} after epoch {state.epoch}")
    write_json(run_dir / "config.json", cfg.to_dict(), indent=2)
    data_info.update(train_clips=len(train_clips), validation_clips=len(val_clips))

    batches = math.ceil(train_weights.sum() / o.batch_size)
    last_epoch = min(o.epochs, stop_after or o.epochs)
    with console.progress() as bar:
        task = bar.add_task("training", total=max(last_epoch - state.epoch, 0) * batches)
        for epoch in range(state.epoch, last_epoch):
            started = time.perf_counter()
            rng = np.random.default_rng([cfg.seed, epoch])
            torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout: same numbers after --resume
            order = epoch_order(train_weights, rng)
            batches = math.ceil(len(order) / o.batch_size)
            model.train()
            loss_sum = correct = seen = 0
            for b in range(batches):
                idx = order[b * o.batch_size:(b + 1) * o.batch_size]
                x = torch.from_numpy(np.stack([training_sample(train_clips[i], spec, cfg.window_frames,
                                                               cfg.augment, rng) for i in idx])).to(dev)
                y = torch.tensor([label_of[train_clips[i].label] for i in idx], device=dev)
                lr = learning_rate(cfg, epoch + b / batches)
                for group in optimizer.param_groups:
                    group["lr"] = lr
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
                bar.update(task, advance=1, description=f"epoch {epoch + 1}/{o.epochs} loss {loss_sum / seen:.3f}")
            evaluated = ema.model if ema else model
            val_acc = val_loss = float("nan")
            if val_clips:
                evaluated.eval()
                probs = np.stack([combine_windows(softmax(w.logits), w.motion, aggregate) for w in run_windows(
                    evaluated, val_samples, cfg.window_frames, cfg.window_stride, spec.pad, dev, 64)])
                val_acc = float((probs.argmax(1) == val_labels).mean())
                val_loss = float(-np.log(np.maximum(probs[np.arange(len(val_labels)), val_labels], 1e-9)).mean())
            entry = {"epoch": epoch + 1, "loss": round(loss_sum / seen, 5), "train_acc": round(correct / seen, 5),
                     "val_acc": round(val_acc, 5), "val_loss": round(val_loss, 5), "lr": round(lr, 6),
                     "time_s": round(time.perf_counter() - started, 2)}
            state.history.append(entry)
            state.epoch = epoch + 1
            # No validation split: the last epoch is the model.
            if not val_clips or val_acc >= state.best_val:
                state.best_val, state.best_epoch = (val_acc if val_clips else -1.0), epoch + 1
                _save_state({k: v.cpu() for k, v in evaluated.state_dict().items()}, run_dir / "weights.pt")
            write_json(run_dir / "card.json", _card(cfg, classes, run_dir / "weights.pt", state, data_info), indent=2)
            with atomic_path(ckpt_path) as tmp:
                torch.save({"config": cfg.to_dict(), "epoch": state.epoch, "best_val": state.best_val,
                            "best_epoch": state.best_epoch, "history": state.history,
                            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                            "ema": ema.model.state_dict() if ema else {},
                            "ema_updates": ema.updates if ema else 0}, tmp)
            with atomic_path(run_dir / "log.jsonl") as tmp:
                tmp.write_text("".join(json.dumps(h) + "\n" for h in state.history))
            console.info(f"epoch {epoch + 1}/{o.epochs}: loss {entry['loss']:.4f}, train {entry['train_acc']:.3f}, "
                         f"val {val_acc:.3f}, lr {lr:.4g}, {entry['time_s']:.0f}s")
    return run_dir
