"""eval: metrics arithmetic, and the shipped model on the full Penn Action test split."""
from __future__ import annotations

import json

import numpy as np
import pytest

from actionpipe.core.devices import DEFAULT_POSE_PRECISION
from actionpipe.model.cards import DEFAULT_MODEL, SHIPPED_MODELS, ModelCard
from actionpipe.pose.estimator import runnable_precision
from actionpipe.training.evaluate import Evaluation

from helpers import shared_path


def test_metrics_top1_top5_per_class_and_confusion():
    classes = ["a", "b", "c", "d", "e", "f"]
    probs = np.array([[.9, .1, 0, 0, 0, 0],     # a -> a
                      [.1, .8, .1, 0, 0, 0],    # a -> b (a second: in top-5)
                      [0, .7, 0, 0, 0, .3],     # b -> b
                      [.3, .25, .2, .15, .1, 0],  # f -> a, f ranked 6th: not in top-5
                      [0, 0, 1, 0, 0, 0],       # other: not a model class
                      [0, 0, 0, 0, 0, 0]])      # b, but no answer (no person in the video)
    ev = Evaluation(classes, ["1", "2", "3", "4", "5", "6"], ["a", "a", "b", "f", "other", "b"], probs)
    m = ev.metrics()
    assert m["clips"] == 5 and m["top1"] == 0.4 and m["top5"] == 0.6 and m["unanswered"] == 1
    assert m["per_class"]["b"] == {"clips": 2, "accuracy": 0.5}
    assert m["per_class"]["a"] == {"clips": 2, "accuracy": 0.5}
    assert m["per_class"]["c"] == {"clips": 0, "accuracy": None}
    confusion = np.array(m["confusion"])
    assert confusion[0, 0] == 1 and confusion[0, 1] == 1 and confusion[1, 1] == 1 and confusion[5, 0] == 1
    assert confusion.sum() == 4
    assert m["unknown_labels"] == [{"name": "5", "label": "other", "predicted": "c", "probability": 1.0}]
    assert [(e["name"], e["predicted"]) for e in m["errors"]] == [("2", "b"), ("4", "a"), ("6", None)]


def test_metrics_report_open_set_rejection_on_other_clips():
    classes = ["a", "b"]
    labels = ["a", "a", "b", "b", "other", "other"]
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.6, 0.4], [0.5, 0.5]])
    scores = np.array([5.0, 1.0, 4.0, 3.0, 2.0, -np.inf])  # the last: no person, no answer
    m = Evaluation(classes, [str(i) for i in range(6)], labels, probs, scores, 2.5).metrics()
    o = m["open_set"]
    assert (o["known_clips"], o["other_clips"]) == (4, 2)
    assert o["accuracy"] == 0.75                 # clip 1 is wrong
    assert o["accuracy_with_rejection"] == 0.75  # clip 1 (score 1.0) is rejected, the rest accepted
    assert o["known_rejection_rate"] == 0.25 and o["other_rejection_rate"] == 1.0
    assert o["auroc"] == pytest.approx(7 / 8)     # known scores vs other scores, pairwise
    assert "open_set" not in Evaluation(classes, ["x"], ["a"], probs[:1]).metrics()


def _recorded_test_metrics() -> list[tuple[str, dict]]:
    """(model name, metrics entry) for every test-split figure a shipped card states."""
    found = []
    for folder in sorted(SHIPPED_MODELS.iterdir()):
        if (folder / "card.json").is_file():
            card = json.loads((folder / "card.json").read_text())
            found += [(folder.name, m) for m in card.get("metrics", []) if m.get("split") == "test"]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("model, claimed", _recorded_test_metrics(),
                         ids=[f"{n}-{m['dataset'].split('/')[-1]}" for n, m in _recorded_test_metrics()])
def test_shipped_models_reach_their_cards_test_figures(model, claimed, run_cli, tmp_path):
    """Each shipped card's recorded test accuracy, measured again (to 1.5 points), from ../shared."""
    kind, _, path = claimed["dataset"].partition(":")
    relative = path.split("../shared/", 1)[-1]
    dataset = f"{kind}:{shared_path(*relative.split('@')[0].split('/'))}" + (f"@{path.split('@')[1]}" if "@" in path else "")
    plot = tmp_path / "confusion.png"
    r = run_cli("eval", "--model", model, "--dataset", dataset, "--split", "test", "--json", "--plot", plot)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    card = ModelCard.load(SHIPPED_MODELS / model)
    assert doc["clips"] == claimed["clips"] and len(doc["confusion"]) == len(card.classes)
    assert doc["top1"] >= claimed["top1"] - 0.015, (doc["top1"], claimed["top1"])
    assert doc["top5"] >= doc["top1"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "confusion" in r.stderr  # the rich tables go to stderr with --json


def test_every_shipped_model_states_its_test_figures():
    named = {n for n, _ in _recorded_test_metrics()}
    assert {"penn-action-stgcn", DEFAULT_MODEL} <= named


def test_default_model_is_the_general_one_and_the_penn_model_stays_by_name():
    """The default knows everyday actions besides Penn's sports; the Penn card still loads by name."""
    from actionpipe.model.cards import default_card, find_card

    card = default_card()
    assert card.name == DEFAULT_MODEL == "general-stgcn"
    assert {"walk", "run", "wave", "sit_down", "stand_up", "squat", "golf_swing"} <= set(card.classes)
    assert "other" not in card.classes  # the negatives train rejection, they are no answer
    assert find_card("penn-action-stgcn").name == "penn-action-stgcn"


def test_eval_unknown_dataset_is_one_line_error(run_cli, tmp_path):
    r = run_cli("eval", "--model", DEFAULT_MODEL, "--dataset", f"penn:{tmp_path / 'nowhere'}", "--split", "test")
    assert r.exit_code == 1 and r.stderr.startswith("actionpipe: error:") and "dataset not found" in r.stderr


@pytest.mark.slow   # the real pose model and ST-GCN over a folder of videos
def test_eval_on_a_folder_of_videos_with_labels_csv(demo_video, tmp_path, run_cli):
    """End to end (pose, pack, model) on real footage; a pose cache makes the second run skip the pose model."""
    import cv2

    from helpers import CLASSES, write_card

    card = write_card(tmp_path / "tiny")
    videos = tmp_path / "clips"
    videos.mkdir()
    cap = cv2.VideoCapture(str(demo_video))
    frames = [cv2.resize(cap.read()[1], (480, 270)) for _ in range(30)][10:]  # the man, in motion
    for name in ("a.mp4", "b.mp4"):
        writer = cv2.VideoWriter(str(videos / name), cv2.VideoWriter_fourcc(*"mp4v"), 30, (480, 270))
        for f in frames:
            writer.write(f)
        writer.release()
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,label\na.mp4,{CLASSES[0]}\nb.mp4,other\n")
    cache = tmp_path / "poses"
    args = ["eval", "--model", card.directory, "--dataset", videos, "--labels", labels, "--pose-cache", cache,
            "--imgsz", "320", "--device", "cpu", "--json"]
    r = run_cli(*args)
    assert r.exit_code == 0, r.stderr
    m = json.loads(r.stdout)
    assert m["clips"] == 1 and m["unanswered"] == 0 and m["top1"] in (0.0, 1.0)
    assert [u["label"] for u in m["unknown_labels"]] == ["other"]
    precision = runnable_precision(DEFAULT_POSE_PRECISION, "openvino")   # the card says none
    assert (cache / precision / "a" / "pose.json").is_file() and (cache / precision / "b" / "pose.json").is_file()
    # Second run from the cache: same answer without decoding (the videos may even be gone).
    for v in videos.iterdir():
        v.write_bytes(b"")
    again = run_cli(*args)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["top1"] == m["top1"]
