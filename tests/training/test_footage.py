"""Real-footage figures: answers with open-set rejection, top-1 vs honest rate, bootstrap intervals,
the paired comparison of two models on the same clips."""
from __future__ import annotations

import numpy as np
import pytest

from actionpipe.model.label_map import model_label
from actionpipe.training.evaluate import Evaluation
from actionpipe.training.footage import compare, footage_metrics, interval, operating_curve, paired_difference

CLASSES = ["squat", "pushup", "arm_curl"]


def evaluation(tops: list[str | None], labels: list[str], rejected: list[bool]) -> Evaluation:
    probs = np.zeros((len(tops), len(CLASSES)))
    for i, top in enumerate(tops):
        if top is not None:   # None: nobody found, no answer
            probs[i] = 0.1
            probs[i, CLASSES.index(top)] = 0.8
    scores = np.where(rejected, -20.0, 0.0)
    return Evaluation(CLASSES, [f"clip{i}" for i in range(len(tops))], labels, probs, scores, -10.0)


def test_answers_top1_and_honest_rate():
    ev = evaluation(["squat", "pushup", "squat", "pushup", None, "squat"],
                    ["squat", "squat", "arm_curl", "plank", "pushup", "other"],
                    [False, False, False, True, False, False])
    m = footage_metrics(ev)
    # known clips: squat right, squat->pushup wrong, arm_curl->squat wrong, pushup unanswered wrong
    assert m["known_clips"] == 4 and m["top1"]["value"] == 0.25
    # honest: the right squat, the rejected plank; the 'other' answered squat is not
    assert m["honest_rate"]["value"] == pytest.approx(2 / 6, abs=1e-4)
    assert m["per_label"]["plank"] == {"clips": 1, "known": False, "top1": None, "honest": 1.0}
    assert m["confusion"]["squat"] == {"squat": 1, "pushup": 1}
    assert m["confusion"]["pushup"] == {"unknown": 1}
    lo, hi = m["honest_rate"]["ci95"]
    assert lo <= m["honest_rate"]["value"] <= hi and hi - lo > 0.1   # six clips: a wide interval


def test_rejecting_a_known_clip_costs_the_honest_rate_not_top1():
    accepted = footage_metrics(evaluation(["squat"], ["squat"], [False]))
    rejected = footage_metrics(evaluation(["squat"], ["squat"], [True]))
    assert accepted["top1"]["value"] == rejected["top1"]["value"] == 1.0
    assert accepted["honest_rate"]["value"] == 1.0 and rejected["honest_rate"]["value"] == 0.0
    assert rejected["top1_answered"]["value"] == 0.0


def test_the_background_class_answers_unknown_and_labels_no_model_class():
    # A model trained with a background class: its answer is unknown, calibrated or not, and a clip
    # the label map sends to it (here an 'other' clip, labelled as the model names it) has no class.
    classes = ["squat", "no_action"]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    labels = ["squat", "squat", "no_action", "no_action"]
    for scores, threshold in ((None, None), (np.zeros(4), -10.0)):
        ev = Evaluation(classes, ["a", "b", "c", "d"], labels, probs, scores, threshold)
        assert ev.rejected.tolist() == [False, True, True, False]
        m = footage_metrics(ev)
        assert m["known_clips"] == 2 and m["top1"]["value"] == 0.5
        # honest: the squat answered squat and the no_action clip answered unknown
        assert m["honest_rate"]["value"] == 0.5 and m["per_label"]["no_action"]["known"] is False
    curve = operating_curve(ev)   # the background answer is never 'answered', whatever the threshold
    assert max(c["answered"] for c in curve) == 0.5
    assert Evaluation(["squat", "pushup"], ["a"], ["squat"], probs[:1]).rejected is None


def test_synonyms_name_labels_as_the_model_does():
    assert model_label("bicep_curl", set(CLASSES)) == "arm_curl"
    assert model_label("bicep_curl", {"bicep_curl"}) == "bicep_curl"
    assert model_label("plank", set(CLASSES)) == "plank"
    assert model_label("curl", set(CLASSES), {"curl": "arm_curl"}) == "arm_curl"


def test_operating_curve_trades_answers_for_accuracy():
    # Scores fall from right answers to wrong ones to clips of no class: a stricter threshold
    # answers fewer clips, more of them right; the card's own point matches the headline figures.
    tops = ["squat", "pushup", "squat", "squat", "pushup", "squat", "squat", "pushup"]
    labels = ["squat", "pushup", "squat", "pushup", "squat", "plank", "other", "other"]
    ev = evaluation(tops, labels, [False] * 8)
    ev.open_set_scores = np.array([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -12.0, -15.0])
    curve = operating_curve(ev)
    answered = [c["answered"] for c in curve]
    assert answered == sorted(answered, reverse=True) and answered[0] == 1.0
    full = next(c for c in curve if c["answered"] == 1.0 and not c.get("chosen"))
    assert full["accuracy_answered"] == pytest.approx(3 / 8, abs=1e-4)
    half = next(c for c in curve if c["answered"] == 0.5)
    assert half["accuracy_answered"] == pytest.approx(3 / 4, abs=1e-4)
    chosen = [c for c in curve if c.get("chosen")]
    assert len(chosen) == 1 and chosen[0]["threshold"] == -10.0 and chosen[0]["answered"] == 0.75
    assert chosen[0]["honest_rate"] == footage_metrics(ev)["honest_rate"]["value"] == pytest.approx(5 / 8, abs=1e-4)
    ev.open_set_scores = None
    assert operating_curve(ev) is None


def test_bootstrap_interval():
    assert interval(np.ones(20)) == [1.0, 1.0]
    lo, hi = interval(np.r_[np.ones(50), np.zeros(50)])
    assert 0.38 < lo < 0.45 and 0.55 < hi < 0.62   # the normal approximation: 0.5 +- 0.098
    assert interval(np.zeros(0)) is None


def test_paired_difference_cancels_shared_outcomes():
    a = np.r_[np.ones(30), np.zeros(30)]
    same = paired_difference(a, a)
    assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0]
    better = paired_difference(np.r_[a[:30], np.ones(5), a[35:]], a)   # 5 more right of 60
    assert better["difference"] == pytest.approx(5 / 60, abs=1e-4) and better["ci95"][0] > 0


def test_compare_uses_the_classes_both_models_have():
    first = evaluation(["squat", "arm_curl", "squat"], ["squat", "arm_curl", "other"], [False, False, True])
    second = Evaluation(["squat", "pushup"], first.names, first.labels,
                        np.array([[0.2, 0.8], [0.9, 0.1], [0.9, 0.1]]), None, None)
    c = compare(first, second)
    assert c["shared_classes"] == ["squat"]
    assert c["top1_shared"]["difference"] == 1.0     # squat: first right, second wrong
    # honest: first 3/3 (arm_curl right, other rejected); second 0/3 (no rule, arm_curl unknown to it
    # but answered squat, other answered squat)
    assert c["honest_rate"]["first"]["value"] == 1.0 and c["honest_rate"]["second"]["value"] == 0.0
    with pytest.raises(ValueError):
        compare(first, evaluation(["squat"], ["squat"], [False]))


def test_val_ensemble_averages_probabilities_and_open_set_margins():
    import importlib.util

    from helpers import REPO

    spec = importlib.util.spec_from_file_location("val_ensemble", REPO / "benchmarks" / "val_ensemble.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    a = evaluation(["squat", "pushup"], ["squat", "plank"], [False, False])
    b = evaluation(["pushup", "pushup"], ["squat", "plank"], [False, True])
    b.open_set_threshold = -5.0   # own thresholds: margins 10, 10 (a) and 5, -15 (b)
    mixed = module.ensemble([a, b])
    assert np.allclose(mixed.probabilities, (a.probabilities + b.probabilities) / 2)
    assert mixed.open_set_scores.tolist() == [7.5, -2.5] and mixed.rejected.tolist() == [False, True]
    # the squat/pushup tie goes to the first class, squat (right); the plank clip is rejected (honest)
    assert footage_metrics(mixed)["honest_rate"]["value"] == 1.0
