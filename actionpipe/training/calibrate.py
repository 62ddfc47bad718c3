"""``actionpipe calibrate``: fit a card's temperature and open-set rule on its own validation split.

The validation split is the one the trainer held out of the training clips (the card's
``training.config`` gives ``dataset``, ``val_fraction`` and ``split_seed``; the same
:func:`actionpipe.training.datasets.split_validation` draws it), so nothing here was fitted on clips the
model learned from, and the test split only *measures* (ECE before/after, the rejection rate).

* temperature: minimises the NLL of the validation clips' probabilities (combined over windows
  as the card says, then tempered: :func:`actionpipe.model.openset.temper`);
* open set (:mod:`actionpipe.model.openset`): class means and the tied, shrunk covariance of the
  pooled features of the *training* clips (the rest of the train split); the threshold accepts
  ``accept`` (default 95%) of the validation clips.

The validation clips count as they are plus ``views`` copies through the trainer's augmentation
(the card's ``training.config.augment``: pose-estimator-like noise, speed, camera): the clean
split also chose the checkpoint, so on it alone the model looks better than on new data, and the
fitted temperature came out too sharp (measured on Penn test: ECE 0.056 -> 0.044 fitted on the
clean clips, -> 0.036 with three augmented views).

The card is rewritten atomically, the sidecar first; running it again gives the same result.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from actionpipe.core import console
from actionpipe.model.cards import ModelCard, sha256_file
from actionpipe.core.errors import ActionpipeError
from actionpipe.training.evaluate import DEFAULT_BATCH
from actionpipe.model.openset import (DEFAULT_SHRINKAGE, METHODS, expected_calibration_error,
                      fit_class_gaussians, fit_temperature, negative_log_likelihood, save_statistics,
                      score_clips, temper)

STATISTICS_FILE = "open_set.npz"
DEFAULT_METHOD = "mahalanobis"
DEFAULT_ACCEPT = 0.95
DEFAULT_VIEWS = 3


def augmented_clip(clip, augment_config, rng: np.random.Generator):
    """``clip`` with the trainer's spatial augmentation and speed jitter (speed as a frame-rate change)."""
    from actionpipe.training.model_input import augmented_keypoints

    kp, speed = augmented_keypoints(clip, augment_config, rng)
    return replace(clip, keypoints=kp, fps=clip.fps * speed)


def validation_views(clips, config: dict[str, Any], views: int, seed: int) -> list:
    """The clips, then ``views`` augmented copies of each (deterministic in ``seed``)."""
    from actionpipe.training.augment import AugmentConfig

    augment_config = AugmentConfig(**(config.get("augment") or {}))
    out = list(clips)
    for view in range(views):
        rng = np.random.default_rng([seed, view])
        out += [augmented_clip(c, augment_config, rng) for c in clips]
    return out


def clip_predictions(predictor, clips) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Window logits (one ``(W, K)`` array per clip), mean window features ``(N, D)`` and the clips'
    probabilities ``(N, K)`` as the predictor combines them (the card's aggregate)."""
    from actionpipe.training.model_input import clip_sample

    preds = predictor.predict([clip_sample(c, predictor.card.preprocessing) for c in clips],
                              [c.path or c.name for c in clips])
    return ([p.window_logits for p in preds], np.stack([p.features for p in preds]),
            np.stack([p.probabilities for p in preds]))


def clip_outputs(predictor, clips) -> tuple[list[np.ndarray], np.ndarray]:
    """Window logits (one ``(W, K)`` array per clip) and mean window features ``(N, D)``."""
    return clip_predictions(predictor, clips)[:2]


def uncalibrated(card: ModelCard) -> ModelCard:
    """The card without its calibration and open-set sections (what fitting starts from)."""
    return replace(card, calibration=None, open_set=None)


def training_clips(card: ModelCard, dataset: str | None = None) -> tuple[list, list[str]]:
    """The clips the card's model was trained from (train splits, labels mapped as in training) and
    the names of their sources: ``dataset`` instead, when given."""
    from actionpipe.training.config import TrainConfig, load_dataset, load_sources
    from actionpipe.training.joint_alignment import card_alignment

    config = card.training_config
    if dataset:
        return load_dataset(dataset, "train", config.get("labels"), card.preprocessing, card.label_map,
                            align=card_alignment(card, dataset))[0], [dataset]
    if not config.get("dataset") and not config.get("datasets"):
        raise ActionpipeError(card.card_path, "the card names no training dataset: pass --dataset")
    cfg = TrainConfig.from_dict(config, card.card_path)
    return load_sources(cfg, card.preprocessing)[0], [s.dataset for s in cfg.sources]


def calibrate(card: ModelCard, dataset: str | None = None, method: str = DEFAULT_METHOD,
              accept: float = DEFAULT_ACCEPT, shrinkage: float = DEFAULT_SHRINKAGE, views: int = DEFAULT_VIEWS,
              device: str = "auto", batch_size: int = DEFAULT_BATCH) -> dict[str, Any]:
    """Fit, write ``calibration`` and ``open_set`` into the card (and the sidecar); returns both sections
    plus ``test`` measurements (ECE, accuracy, rejection rate on the sources' test splits, if any).

    Validation clips of negative labels (``other``: trained against, :mod:`actionpipe.training.config`)
    measure the rule: the share of them it rejects and, per method, the ROC AUC of known against
    them, recorded in ``open_set.validation_negatives``."""
    from actionpipe.model.infer import Predictor
    from actionpipe.training.datasets import split_validation
    from actionpipe.model.label_map import OTHER_LABEL

    if method not in METHODS:
        raise ActionpipeError(None, f"unknown open-set method {method!r} (expected one of {', '.join(METHODS)})")
    if not 0 < accept < 1:
        raise ActionpipeError(None, f"accept must be between 0 and 1 (got {accept})")
    config = card.training_config
    clips, sources = training_clips(card, dataset)
    unknown = sorted({c.label for c in clips} - set(card.classes) - {OTHER_LABEL})
    if unknown:
        raise ActionpipeError(", ".join(sources), f"labels the model does not know: {', '.join(unknown[:5])}")
    val_fraction, split_seed = float(config.get("val_fraction", 0.1)), int(config.get("split_seed", 0))
    fit_clips, val_clips = split_validation(clips, val_fraction, split_seed)
    val_negatives = [c for c in val_clips if c.label == OTHER_LABEL]
    fit_clips, val_clips = ([c for c in group if c.label != OTHER_LABEL] for group in (fit_clips, val_clips))
    if not val_clips:
        raise ActionpipeError(", ".join(sources), "no validation clips to calibrate on (val_fraction is 0?)")
    index = {c: i for i, c in enumerate(card.classes)}
    predictor = Predictor(uncalibrated(card), device, batch_size, reject=False)
    console.info(f"calibrating on {len(val_clips)} validation clips (+{views} augmented views each); "
                 f"class statistics from {len(fit_clips)} clips")
    val_views = validation_views(val_clips, config, views, split_seed)
    val_logits, val_features, val_probs = clip_predictions(predictor, val_views)
    val_y = np.array([index[c.label] for c in val_views])

    temperature = fit_temperature(val_probs, val_y)
    fitted_on = (f"{' + '.join(sources)} train split{'s' if len(sources) > 1 else ''}, validation hold-out: "
                 f"{len(val_clips)} clips (val_fraction {val_fraction}, split_seed {split_seed}, as in training), "
                 f"each as it is and in {views} views through the training augmentation")
    _, fit_features = clip_outputs(predictor, fit_clips)
    means, precision = fit_class_gaussians(fit_features, np.array([index[c.label] for c in fit_clips]),
                                           len(card.classes), shrinkage)
    val_scores = score_clips(method, val_features, val_logits, temperature, means, precision)
    threshold = float(np.quantile(val_scores, 1 - accept))

    calibration = {"temperature": round(temperature, 4), **_calibration_metrics(val_probs, val_y, temperature),
                   "measured_on": "the validation clips and views it was fitted on", "fitted_on": fitted_on}
    open_set: dict[str, Any] = {"method": method, "threshold": round(threshold, 4), "accept": accept,
                                "chosen": f"accepts {accept:.0%} of the {len(val_views)} validation clips and views "
                                          "(higher score = more like the training data; below: unknown)"}
    if method == "mahalanobis":
        path = card.directory / STATISTICS_FILE
        _save_if_changed(path, means, precision)
        open_set.update(file=STATISTICS_FILE, sha256=sha256_file(path), shrinkage=shrinkage,
                        fitted_on=f"{len(fit_clips)} training clips (train split minus the validation hold-out)")
    if val_negatives:
        open_set["validation_negatives"] = _measure_negatives(
            predictor, validation_views(val_negatives, config, views, split_seed), method, threshold,
            temperature, means, precision, val_features, val_logits)
    test = _measure_test(predictor, sources, config.get("labels"), card, index, temperature, method,
                         threshold, means, precision)
    if test is not None:
        calibration["held_out"] = {"split": f"{' + '.join(sources)} test", **test}
    card.rewrite(calibration=calibration, open_set=open_set)
    return {"calibration": calibration, "open_set": open_set, "test": test}


def _measure_negatives(predictor, negatives, method, threshold, temperature, means, precision,
                       known_features, known_logits) -> dict[str, Any]:
    """How the rule treats validation clips of negative labels: the share rejected at the threshold
    and, for every method, the ROC AUC of the known validation clips against them."""
    from actionpipe.model.openset import roc_auc

    logits, features, _ = clip_predictions(predictor, negatives)
    auroc = {}
    for m in METHODS:
        known = score_clips(m, known_features, known_logits, temperature, means, precision)
        other = score_clips(m, features, logits, temperature, means, precision)
        auroc[m] = round(roc_auc(known, other), 4)
        if m == method:
            rejected = float((other < threshold).mean())
    return {"clips": len(negatives), "rejected": round(rejected, 4), "auroc": auroc}


def _save_if_changed(path, means: np.ndarray, precision: np.ndarray) -> None:
    """Keep an identical sidecar as it is, so a second run leaves the card's SHA-256 unchanged
    (npz files carry timestamps, so rewriting the same arrays changes the bytes)."""
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                if np.array_equal(z["means"], means) and np.array_equal(z["precision"], precision):
                    return
        except (OSError, ValueError, KeyError):
            pass
    save_statistics(path, means, precision)


def _measure_test(predictor, sources, labels, card, index, temperature, method, threshold, means, precision):
    """ECE before/after, accuracy and the rejection rate on the sources' test splits (None when
    there are none)."""
    from actionpipe.training.config import load_dataset
    from actionpipe.training.joint_alignment import card_alignment

    clips = []
    for dataset in sources:
        try:
            clips += load_dataset(dataset, "test", labels, card.preprocessing, card.label_map,
                                  align=card_alignment(card, dataset))[0]
        except ActionpipeError:
            continue
    clips = [c for c in clips if c.label in index]
    if not clips:
        return None
    logits, features, probs = clip_predictions(predictor, clips)
    y = np.array([index[c.label] for c in clips])
    scores = score_clips(method, features, logits, temperature, means, precision)
    return {"clips": len(clips), **_calibration_metrics(probs, y, temperature),
            "accuracy": round(float((probs.argmax(1) == y).mean()), 4),
            "rejection_rate": round(float((scores < threshold).mean()), 4)}


def _calibration_metrics(probabilities: np.ndarray, labels: np.ndarray, temperature: float) -> dict[str, float]:
    """ECE and NLL of the clips' untempered ``probabilities``, before and after tempering."""
    before, after = probabilities, temper(probabilities, temperature)
    return {"ece_before": round(expected_calibration_error(before, labels), 4),
            "ece_after": round(expected_calibration_error(after, labels), 4),
            "nll_before": round(negative_log_likelihood(before, labels), 4),
            "nll_after": round(negative_log_likelihood(after, labels), 4)}
