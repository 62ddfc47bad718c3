"""Evaluate a model card on labelled data: top-1, top-5, per-class accuracy, confusion matrix.

Two kinds of data:

* skeleton datasets (``penn:DIR``, ``kinetics:DIR``, ``poses:LABELS.csv``; see
  :func:`actionpipe.training.config.load_dataset`): each clip is prepared exactly as in training
  and run through :class:`actionpipe.model.infer.Predictor` (the card's windows, batched);
* videos (``videos:DIR`` with one folder per class, ``videos:LABELS.csv`` with columns
  ``file,label[,group][,split]`` relative to the CSV, or a folder with a ``--labels`` CSV;
  :mod:`actionpipe.training.video_dataset`): end to end through :class:`actionpipe.pipeline.classify.Classifier` — pose, pack, model.
  ``pose_cache`` keeps each video's pose file and reuses it, so preprocessing can be compared
  without re-running the pose model: ``DIR/<precision>/<video>/pose.json``, a folder per pose
  precision, so models validated at different precisions (their cards' ``pose.precision``) share it.

Clips whose label the model does not know (e.g. ``other``) are left out of the accuracies and
listed under ``unknown_labels``, with what the model predicted for them. For a card with an
open-set rule (``actionpipe calibrate``), the metrics gain ``open_set``
(:func:`actionpipe.model.openset.open_set_report`): accuracy on the known classes with and without
rejection, the rejection rate on ``other`` clips and the ROC AUC of the open-set score.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionpipe.core import console
from actionpipe.model.cards import ModelCard
from actionpipe.core.errors import ActionpipeError
from actionpipe.model.label_map import model_label
from actionpipe.outputs.report import percent

DEFAULT_BATCH = 64  # windows per forward pass over a dataset's clips (eval, calibrate)


@dataclass
class Evaluation:
    """Predictions on a labelled set: ``probabilities`` (N, K) over the card's classes."""

    classes: list[str]
    names: list[str]
    labels: list[str]
    probabilities: np.ndarray
    open_set_scores: np.ndarray | None = None   # (N,), -inf where there was no answer
    open_set_threshold: float | None = None
    pose_precision: str | None = None   # end to end: the pose model's precision as it ran

    @property
    def rejected(self) -> np.ndarray | None:
        """(N,) bool: the clips the card's open-set rule answers ``unknown``, below the threshold or
        with the background class on top (None for a model with neither)."""
        from actionpipe.model.openset import BACKGROUND_CLASS, rejections

        if self.open_set_scores is None and BACKGROUND_CLASS not in self.classes:
            return None
        return rejections(self.classes, self.probabilities, self.open_set_scores, self.open_set_threshold)

    def metrics(self) -> dict[str, Any]:
        """top1, top5, per-class accuracy and the confusion matrix (rows: true, columns: predicted)."""
        index = {c: i for i, c in enumerate(self.classes)}
        known = [i for i, l in enumerate(self.labels) if l in index]
        k = len(self.classes)
        y = np.array([index[self.labels[i]] for i in known], dtype=np.int64)
        probs = self.probabilities[known] if known else np.zeros((0, k))
        answered = probs.sum(1) > 0   # end to end, a video may yield no person: no answer, wrong
        pred = np.where(answered, probs.argmax(1), -1) if len(known) else np.zeros(0, dtype=np.int64)
        top5 = np.where(answered[:, None], np.argsort(-probs, axis=1)[:, :5], -1)
        confusion = np.zeros((k, k), dtype=np.int64)
        np.add.at(confusion, (y[answered], pred[answered]), 1)
        clips = np.bincount(y, minlength=k)
        per_class = {c: {"clips": int(clips[i]),
                         "accuracy": round(float(confusion[i, i] / clips[i]), 4) if clips[i] else None}
                     for i, c in enumerate(self.classes)}
        unknown = [{"name": self.names[i], "label": self.labels[i],
                    "predicted": self.classes[int(self.probabilities[i].argmax())],
                    "probability": round(float(self.probabilities[i].max()), 4)}
                   for i in range(len(self.labels)) if self.labels[i] not in index]
        open_set = {}
        if self.open_set_scores is not None:
            from actionpipe.model.openset import open_set_report

            open_set = {"open_set": dict(open_set_report(
                self.labels, self.probabilities, self.open_set_scores,
                self.rejected, self.classes),
                threshold=round(float(self.open_set_threshold), 4))}
        return {**open_set, "clips": len(known), "unanswered": int((~answered).sum()) if len(known) else 0,
                "top1": round(float((pred == y).mean()), 4) if len(known) else None,
                "top5": round(float((top5 == y[:, None]).any(1).mean()), 4) if len(known) else None,
                "per_class": per_class, "classes": self.classes, "confusion": confusion.tolist(),
                "unknown_labels": unknown,
                "errors": [{"name": self.names[i], "label": self.labels[i], "predicted": self.classes[p] if p >= 0 else None}
                           for i, p, t in zip(known, pred, y) if p != t]}


def evaluate_dataset(card: ModelCard, dataset: str, split: str | None = None, labels: str | None = None,
                     device: str = "auto", batch_size: int = DEFAULT_BATCH) -> Evaluation:
    """A skeleton dataset, prepared as in training, through the card's Predictor."""
    from actionpipe.model.infer import Predictor
    from actionpipe.training.model_input import clip_sample
    from actionpipe.training.config import load_dataset
    from actionpipe.training.joint_alignment import card_alignment

    clips, _ = load_dataset(dataset, split, labels, card.preprocessing, card.label_map,
                            align=card_alignment(card, dataset))
    samples = [clip_sample(clip, card.preprocessing) for clip in clips]
    predictor = Predictor(card, device, batch_size)
    predictions = predictor.predict(samples, [c.path or c.name for c in clips])
    return Evaluation(card.classes, [c.name for c in clips], [c.label for c in clips],
                      np.stack([p.probabilities for p in predictions]), *_open_set(predictor, predictions))


def _open_set(predictor, predictions) -> tuple[np.ndarray | None, float | None]:
    """Open-set scores (-inf for no prediction) and threshold, when the card has an open-set rule."""
    if predictor.open_set is None:
        return None, None
    scores = np.array([-np.inf if p is None else p.open_set_score for p in predictions], dtype=np.float64)
    return scores, float(predictor.open_set.threshold)


def read_video_labels(source: str | Path, video_root: str | Path | None = None,
                      split: str | None = None) -> list[tuple[Path, str]]:
    """(video, label) of a video dataset (:func:`actionpipe.training.video_dataset.list_videos`: a folder
    of class folders, or a ``file,label[,group][,split]`` CSV whose files are relative to
    ``video_root``, default its folder), of ``split`` when given. A missing video is an error."""
    from actionpipe.training.video_dataset import list_videos

    rows = [(Path(video_root) / v.name if video_root is not None else v.path, v.label)
            for v in list_videos(source, split)]
    for path, _ in rows:
        if not path.is_file():
            raise ActionpipeError(source, f"{path} not found")
    return rows


def _cached_pose(classifier, path: Path):
    """The pose file a former run kept at ``path``, if it was made with ``classifier``'s settings."""
    from actionpipe.pose.posefile import PoseFile

    if not path.is_file():
        return None
    try:
        pose = PoseFile.load(path)
    except ActionpipeError as exc:
        console.warn(f"{exc}; posing that video again")
        return None
    if not classifier.made_here(pose):
        console.warn(f"{path}: made with other pose settings; posing that video again")
        return None
    return pose


def evaluate_videos(card: ModelCard, labels_csv: str | Path, device: str = "auto",
                    pose_cache: str | Path | None = None, video_root: str | Path | None = None,
                    split: str | None = None, synonyms: dict[str, str] | None = None,
                    **classifier_options) -> Evaluation:
    """End to end: each video through pose → pack → model (``Classifier``, open-set rejection off,
    so every clip gets its closest class); a clip with no usable person is no answer (wrong). Labels
    are named as the model names them (:func:`~actionpipe.model.label_map.model_label`, ``synonyms``
    first)."""
    from actionpipe.pipeline.classify import Classifier, keep_names

    rows = read_video_labels(labels_csv, video_root, split)
    names = keep_names([video for video, _ in rows])  # pose cache folders that never collide
    classifier = Classifier(card, device=device, reject=False,
                            **{k: v for k, v in classifier_options.items() if v})
    k = len(card.classes)
    cache = Path(pose_cache) / classifier.pose.precision if pose_cache else None
    probs = np.zeros((len(rows), k))  # all zero: no answer
    predictions = []
    with console.progress() as bar:
        task = bar.add_task("videos", total=len(rows))
        for i, (video, _) in enumerate(rows):
            cached = _cached_pose(classifier, cache / names[i] / "pose.json") if cache else None
            if cached is not None:
                result = classifier.classify_pose(cached, video)
            else:
                result = classifier.classify(video, keep_dir=cache, keep_name=names[i])
            if result.prediction is not None:
                probs[i] = result.prediction.probabilities
            else:
                console.warn(f"{video}: {result.status}; no answer, counted as wrong")
            predictions.append(result.prediction)
            bar.advance(task)
    labels = [model_label(l, set(card.classes), synonyms) for _, l in rows]
    return Evaluation(card.classes, [str(v) for v, _ in rows], labels, probs,
                      *_open_set(classifier.predictor, predictions), pose_precision=classifier.pose.precision)


def render_metrics(metrics: dict[str, Any], console_out) -> None:
    """Per-class accuracy and the confusion matrix as rich tables."""
    from rich.table import Table

    classes = metrics["classes"]
    summary = Table(title=f"{metrics['clips']} clips: top-1 {percent(metrics['top1'])}, top-5 {percent(metrics['top5'])}",
                    show_edge=False)
    for col in ("#", "class", "clips", "accuracy"):
        summary.add_column(col, justify="right" if col != "class" else "left")
    for i, c in enumerate(classes):
        pc = metrics["per_class"][c]
        summary.add_row(str(i), c, str(pc["clips"]), percent(pc["accuracy"]))
    console_out.print(summary)
    confusion = np.array(metrics["confusion"])
    table = Table(title="confusion (rows: true class #, columns: predicted class #)", show_edge=False, padding=(0, 1))
    table.add_column("", justify="right")
    for i in range(len(classes)):
        table.add_column(str(i), justify="right")
    for i, row in enumerate(confusion):
        table.add_row(str(i), *[(f"[bold green]{v}[/]" if j == i else f"[red]{v}[/]" if v else "·")
                                for j, v in enumerate(row)])
    console_out.print(table)
    if "open_set" in metrics:
        o = metrics["open_set"]
        auroc = "-" if o["auroc"] is None else f"{o['auroc']:.3f}"
        console_out.print(f"open set (threshold {o['threshold']}): known-class accuracy {percent(o['accuracy'])} "
                          f"without rejection, {percent(o['accuracy_with_rejection'])} with; known clips rejected "
                          f"{percent(o['known_rejection_rate'])}; 'other' clips rejected {percent(o['other_rejection_rate'])} "
                          f"of {o['other_clips']}; ROC AUC {auroc}; honest rate {percent(o['honest_rate'])}", markup=False)
    for u in metrics["unknown_labels"]:
        console_out.print(f"not a model class: {u['name']} ({u['label']}) -> {u['predicted']} {u['probability']:.2f}",
                          markup=False)


def plot_confusion(metrics: dict[str, Any], path: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (matplotlib, Agg)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from actionpipe.core.fileio import atomic_path

    confusion = np.array(metrics["confusion"], dtype=float)
    rows = confusion.sum(1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros_like(confusion), where=rows > 0)
    classes = metrics["classes"]
    size = 2 + 0.45 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for i, j in zip(*np.nonzero(confusion)):
        ax.text(j, i, int(confusion[i, j]), ha="center", va="center", fontsize=7,
                color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"top-1 {percent(metrics['top1'])} on {metrics['clips']} clips", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def record_metrics(card: ModelCard, entry: dict[str, Any]) -> None:
    """Add ``entry`` to the card's ``metrics`` (replacing one of the same dataset and split)."""
    kept = [m for m in card.metrics
            if (m.get("dataset"), m.get("split")) != (entry.get("dataset"), entry.get("split"))]
    card.rewrite(metrics=kept + [entry])
