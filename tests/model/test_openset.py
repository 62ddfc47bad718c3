"""Open-set score, temperature scaling and the degenerate cases.

The measurements run the shipped model on real Penn Action clips (subsets, to stay fast); the
mechanics (calibrate command, card sections, unknown / too short / low confidence results) use
a small test model on crafted pose files and real footage.
"""
from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from actionpipe.training.calibrate import clip_outputs
from actionpipe.model.cards import SHIPPED_MODELS, ModelCard, sha256_file
from actionpipe.pipeline.classify import Classifier
from actionpipe.core.errors import ActionpipeError
from actionpipe.model.infer import Predictor
from actionpipe.pose.layouts import convert_keypoints
from actionpipe.model.openset import (BACKGROUND_CLASS, OpenSet, clip_probabilities, expected_calibration_error, fit_class_gaussians,
                                fit_temperature, open_set_report, roc_auc, score_clips, softmax)
from actionpipe.skeleton.pack import pack_people
from actionpipe.training.train import split_validation
from helpers import CLASSES, person, pose_file, shared_path, write_card


# --- the maths ------------------------------------------------------------------------------------

def test_ece_auc_and_temperature_on_known_numbers():
    labels = np.array([0, 0, 1, 1])
    # Always 0.9 confident, right half the time: ECE |0.5 - 0.9| = 0.4; perfectly calibrated: 0.
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.1, 0.9], [0.9, 0.1]])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)
    assert expected_calibration_error(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])) == 0
    assert roc_auc([3, 4], [1, 2]) == 1 and roc_auc([1, 2], [3, 4]) == 0 and roc_auc([1], [1]) == 0.5
    # Logits 5x too confident (of a well-calibrated model): the fitted temperature is ~5.
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, (4000, 3))
    y = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    t = fit_temperature(softmax(true_logits * 5), y)
    assert t == pytest.approx(5, rel=0.1)


def test_open_set_report():
    classes = ["a", "b"]
    labels = ["a", "b", "a", "other", "other", "zzz"]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4], [0.5, 0.5], [0.5, 0.5]])
    scores = np.array([5.0, 4.0, 1.0, 2.0, 0.5, 9.0])
    rejected = scores < 1.5
    r = open_set_report(labels, probs, scores, rejected, classes)
    assert (r["known_clips"], r["other_clips"]) == (3, 2)
    assert r["accuracy"] == pytest.approx(2 / 3, abs=1e-4) and r["accuracy_with_rejection"] == pytest.approx(2 / 3, abs=1e-4)
    assert r["known_rejection_rate"] == pytest.approx(1 / 3, abs=1e-4) and r["other_rejection_rate"] == 0.5
    assert r["accepted_accuracy"] == 1.0
    assert r["auroc"] == pytest.approx(5 / 6, abs=1e-4)  # known (5, 4, 1) vs other (2, 0.5)
    assert r["honest_rate"] == pytest.approx(3 / 5)      # two known accepted and right, one other rejected
    assert open_set_report(labels, probs, None, None, classes)["auroc"] is None


# --- on real Penn Action clips with the shipped model ---------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    if not (SHIPPED_MODELS / "penn-action-stgcn" / "weights.pt").is_file():
        pytest.skip("the shipped model models/penn-action-stgcn is not installed")
    return ModelCard.load(SHIPPED_MODELS / "penn-action-stgcn")


@pytest.fixture(scope="module")
def penn(shipped):
    """Penn Action through the shipped model: window logits, features and labels of subsets of the
    training clips (class statistics) and of the test split."""
    from actionpipe.training.datasets import load_penn_action

    root = shared_path("datasets", "penn_action")
    config = shipped.training_config
    fit, _ = split_validation(load_penn_action(root, "train"), config["val_fraction"], config["split_seed"])
    test = load_penn_action(root, "test")
    rng = np.random.default_rng(0)
    subsets = {"fit": [fit[i] for i in rng.permutation(len(fit))[:240]],
               "test": [test[i] for i in rng.permutation(len(test))[:640]]}
    predictor = Predictor(shipped, "cpu", 64, reject=False)
    index = {c: i for i, c in enumerate(shipped.classes)}
    out = {name: (*clip_outputs(predictor, clips), np.array([index[c.label] for c in clips]), clips)
           for name, clips in subsets.items()}
    return predictor, out


def _crafted(clips, kind, rng):
    """Out-of-distribution versions of real clips (COCO-17, pixels)."""
    out = []
    for c in clips:
        kp = c.keypoints.copy()
        if kind == "random motion":  # joints wandering independently around the frame centre
            walk = np.cumsum(rng.normal(0, 0.03 * c.height, kp.shape[:-1] + (2,)), axis=1)
            spread = rng.normal(0, 0.15 * c.height, (kp.shape[0], 1, kp.shape[2], 2))
            kp[..., :2] = np.array([c.width / 2, c.height / 2]) + spread + walk
            kp[..., 2] = (kp[..., 2] > 0).astype(np.float32)
        elif kind == "static pose":  # the middle frame, frozen
            kp = np.repeat(kp[:, kp.shape[1] // 2:][:, :1], kp.shape[1], axis=1)
        elif kind == "another layout":  # Kinetics-skeleton (openpose18) joint order read as COCO-17
            kp = np.ascontiguousarray(convert_keypoints(kp, "coco17", "openpose18")[:, :, :17])
        out.append(replace(c, keypoints=kp))
    return out


@pytest.mark.slow   # the shipped model on 880 Penn Action clips
@pytest.mark.parametrize("kind, min_auc", [("random motion", 0.85), ("static pose", 0.65), ("another layout", 0.85)])
def test_open_set_score_ranks_crafted_inputs_below_real_clips(penn, kind, min_auc):
    predictor, data = penn
    _, fit_features, fit_y, _ = data["fit"]
    test_logits, test_features, _, test_clips = data["test"]
    means, precision = fit_class_gaussians(fit_features, fit_y, len(predictor.card.classes))
    rng = np.random.default_rng(1)
    sources = [test_clips[i] for i in rng.permutation(len(test_clips))[:80]]
    crafted_logits, crafted_features = clip_outputs(predictor, _crafted(sources, kind, rng))
    real = score_clips("mahalanobis", test_features, test_logits, means=means, precision=precision)
    crafted = score_clips("mahalanobis", crafted_features, crafted_logits, means=means, precision=precision)
    # Measured on the whole test split (statistics from all 1,131 training clips): 0.93, 0.78, 0.96.
    assert roc_auc(real, crafted) > min_auc
    assert np.median(crafted) < np.median(real)


@pytest.mark.slow
def test_temperature_fitted_on_some_clips_lowers_ece_on_others(penn):
    """Temperature scaling fitted on one half of the Penn test clips lowers ECE on the other half.

    (Measured with ``actionpipe calibrate``'s fit on the validation split, see the report.)"""
    _, data = penn
    logits, _, y, _ = data["test"]
    fit, held = np.flatnonzero(np.arange(len(y)) % 2 == 0), np.flatnonzero(np.arange(len(y)) % 2 == 1)
    t = fit_temperature(clip_probabilities([logits[i] for i in fit]), y[fit])
    held_logits = [logits[i] for i in held]
    before = expected_calibration_error(clip_probabilities(held_logits), y[held])
    after = expected_calibration_error(clip_probabilities(held_logits, t), y[held])
    assert after < before
    # Temperature scaling never changes a clip's class, multi-window clips included (the windows
    # are combined before tempering).
    assert sum(len(l) > 1 for l in held_logits) > 50
    assert (clip_probabilities(held_logits, t).argmax(1) == clip_probabilities(held_logits).argmax(1)).all()
    # A single window's tempered distribution is softmax(logits / T).
    one = held_logits[0][:1]
    assert np.allclose(clip_probabilities([one], t)[0], softmax(one[0] / t), atol=1e-9)


# --- the calibrate command, and what the Predictor / classify do with its card --------------------

@pytest.fixture(scope="module")
def pose_dataset(tmp_path_factory):
    """poses:LABELS.csv: 8 crafted clips per test class, each class its own motion."""
    folder = tmp_path_factory.mktemp("poses")
    rows = []
    rng = np.random.default_rng(0)
    motions = {"wave": lambda t: (0, 40 * np.sin(t / 2)), "squat": lambda t: (30 * np.sin(t / 3), 0),
               "jump": lambda t: (-50 * abs(np.sin(t / 4)), 0)}
    for label, motion in motions.items():
        for i in range(8):
            frames = []
            for t in range(40):
                dy, dx = motion(t + rng.uniform(0, 6))
                frames.append([person(1, 320 + dx + rng.normal(0, 2), 240 + dy, 60 + rng.normal(0, 2))])
            name = f"{label}{i}.json"
            pose_file(frames).save(folder / name)
            rows.append({"file": name, "label": label})
    with open(folder / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["file", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return folder / "labels.csv"


def test_calibrate_writes_card_and_sidecar_idempotently(tmp_path, pose_dataset, run_cli):
    card = write_card(tmp_path / "m")
    args = ["calibrate", "--model", card.directory, "--dataset", f"poses:{pose_dataset}", "--device", "cpu",
            "--views", "1"]
    r = run_cli(*args, "--json")
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    doc = json.loads(card.card_path.read_text())
    assert doc["calibration"] == out["calibration"] and doc["open_set"] == out["open_set"]
    assert doc["calibration"]["temperature"] > 0 and "validation" in doc["calibration"]["fitted_on"]
    assert doc["open_set"]["method"] == "mahalanobis"
    assert doc["open_set"]["sha256"] == sha256_file(card.directory / "open_set.npz")
    assert doc["classes"] == CLASSES and doc["weights"] == card.to_dict()["weights"]  # the rest kept
    first = card.card_path.read_bytes()
    r = run_cli(*args)
    assert r.exit_code == 0 and card.card_path.read_bytes() == first
    # The Predictor applies the card: temperature and open-set score.
    calibrated = ModelCard.load(card.directory)
    predictor = Predictor(calibrated, "cpu")
    assert predictor.temperature == doc["calibration"]["temperature"]
    pred = predictor.predict([pack_people(pose_file([[person(1, 320, 240, 60)]] * 20), calibrated.preprocessing)])[0]
    assert pred.open_set_score is not None and pred.rejected == (pred.open_set_score < doc["open_set"]["threshold"])
    assert np.allclose(pred.probabilities, softmax(pred.window_logits, predictor.temperature).mean(0), atol=1e-6)
    # A tampered sidecar is refused in one line.
    (card.directory / "open_set.npz").write_bytes(b"x")
    with pytest.raises(ActionpipeError, match="SHA-256"):
        OpenSet.from_card(calibrated)


def _with_open_set(card, threshold):
    """The card with an energy rule of the given threshold."""
    return card.rewrite(open_set={"method": "energy", "threshold": threshold})


def test_rejected_clip_is_unknown_with_closest_class_and_no_reject_turns_it_off(tmp_path):
    card = _with_open_set(write_card(tmp_path / "m"), 1e6)
    pose = pose_file([[person(1, 320 + 5 * np.sin(t), 240, 60)] for t in range(30)], fps=15)
    result = Classifier(card, device="cpu", load_pose=False).classify_pose(pose, "clip.mp4")
    d = result.to_dict(3)
    assert result.status == "unknown" and result.label is None and result.ok
    assert d["label"] is None and d["probability"] is None and d["closest"]["class"] in CLASSES
    assert d["closest"]["probability"] == d["top"][0]["probability"] and len(d["top"]) == 3
    assert d["open_set"]["rejected"] and d["open_set"]["threshold"] == 1e6
    kept = Classifier(card, device="cpu", load_pose=False, reject=False).classify_pose(pose, "clip.mp4").to_dict(3)
    assert kept["status"] == "ok" and kept["label"] == d["closest"]["class"]
    assert kept["open_set"]["score"] == d["open_set"]["score"] and not kept["open_set"]["rejected"]


def test_the_background_class_on_top_is_unknown_without_an_open_set_rule(tmp_path):
    # Rename whichever class a real (small, random) model puts on top to the background class.
    card = write_card(tmp_path / "m")
    pose = pose_file([[person(1, 320 + 5 * np.sin(t), 240, 60)] for t in range(30)], fps=15)
    top = Classifier(card, device="cpu", load_pose=False).classify_pose(pose, "clip.mp4").label
    card = card.rewrite(classes=[BACKGROUND_CLASS if c == top else c for c in card.classes])
    d = Classifier(card, device="cpu", load_pose=False).classify_pose(pose, "clip.mp4").to_dict(3)
    assert d["status"] == "unknown" and d["label"] is None and d["closest"]["class"] == BACKGROUND_CLASS
    assert "open_set" not in d
    kept = Classifier(card, device="cpu", load_pose=False, reject=False).classify_pose(pose, "clip.mp4")
    assert kept.status == "ok" and kept.label == BACKGROUND_CLASS


@pytest.mark.parametrize("frames, status", [
    ([[]] * 30, "no_person"),
    ([[person(1, 320, 240, 60)] if 10 <= t < 15 else [] for t in range(30)], "too_short"),  # 5 frames, 0.33 s
    ([[person(1, 320 + t, 240, 60, conf=0.1)] for t in range(30)], "low_confidence"),
    ([[person(1, 320 + t, 240, 60)] for t in range(30)], "ok"),
])
def test_degenerate_cases_are_answers_not_classes(tmp_path, frames, status):
    card = write_card(tmp_path / "m")
    result = Classifier(card, device="cpu", load_pose=False).classify_pose(pose_file(frames, fps=15), "clip.mp4")
    assert result.status == status and result.ok
    assert ("label" in result.to_dict()) == (status == "ok")
