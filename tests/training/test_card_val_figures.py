"""Each shipped card's recorded real-footage `val` figures hold: they agree with the per-clip answers
recorded beside them, and a fresh end-to-end evaluation of a few of those clips (the real pose model
and the card's model, nothing mocked) gives the recorded answers again."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from actionpipe.core.devices import DEFAULT_POSE_PRECISION
from actionpipe.model.cards import SHIPPED_MODELS, find_card
from actionpipe.training.evaluate import evaluate_videos
from actionpipe.training.footage import answers
from helpers import REPO, shared_path

VAL_CSV = REPO / "benchmarks" / "data" / "real_val.csv"
FRESH_CLIPS = 3   # the shortest recorded clips, re-evaluated from the videos


def shipped_cards():
    return sorted(p.name for p in SHIPPED_MODELS.iterdir() if (p / "card.json").is_file())


def val_entry(card):
    found = [m for m in card.metrics if m.get("dataset", "").endswith("real_val.csv") and m.get("footage")]
    assert found, f"{card.name}: no recorded real-footage val figures (actionpipe eval ... --record)"
    return found[0]


@pytest.mark.parametrize("name", shipped_cards())
def test_recorded_figures_agree_with_recorded_answers(name):
    card = find_card(name)
    entry = val_entry(card)
    # The card says the pose precision its val figures were measured at (its own pose.precision).
    assert entry["pose_precision"] == (card.pose.precision or DEFAULT_POSE_PRECISION)
    footage = entry["footage"]
    rows = footage["clip_answers"]
    classes = set(card.classes)
    known = [r for r in rows if r["label"] in classes]
    assert footage["top1"]["n"] == len(known) and footage["honest_rate"]["n"] == len(rows)
    assert footage["top1"]["value"] == pytest.approx(np.mean([r["top"] == r["label"] for r in known]), abs=1e-4)
    honest = [r["answer"] == r["label"] if r["label"] in classes else r["answer"] == "unknown" for r in rows]
    assert footage["honest_rate"]["value"] == pytest.approx(np.mean(honest), abs=1e-4)
    # The card's operating point on the recorded curve is the rejection behind those answers.
    chosen = [c for c in footage["operating_curve"] if c.get("chosen")]
    assert len(chosen) == 1 and chosen[0]["honest_rate"] == pytest.approx(footage["honest_rate"]["value"], abs=1e-4)
    assert chosen[0]["answered"] == pytest.approx(np.mean([r["answer"] != "unknown" for r in rows]), abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", shipped_cards())
def test_a_fresh_evaluation_gives_the_recorded_answers(name, tmp_path):
    shared_path("datasets/realvideo_dev")
    card = find_card(name)
    recorded = {Path(r["name"]).name: r for r in val_entry(card)["footage"]["clip_answers"]}  # names are unique
    with open(VAL_CSV, newline="") as f:
        rows = [r for r in csv.DictReader(f)]
    import cv2

    duration = {}
    for r in rows:
        video = cv2.VideoCapture(str(VAL_CSV.parent / r["file"]))
        duration[r["file"]] = video.get(cv2.CAP_PROP_FRAME_COUNT) / max(video.get(cv2.CAP_PROP_FPS), 1.0)
        video.release()
    chosen = sorted(rows, key=lambda r: duration[r["file"]])[:FRESH_CLIPS]
    subset = tmp_path / "labels.csv"
    with open(subset, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file", "label", "split"])
        writer.writeheader()
        for r in chosen:
            writer.writerow({"file": str(VAL_CSV.parent / r["file"]), "label": r["label"], "split": "val"})
    fresh = evaluate_videos(card, subset, "cpu", split="val")
    for file, answer, probs in zip(fresh.names, answers(fresh), fresh.probabilities):
        key = Path(file).name
        assert answer == recorded[key]["answer"], file
        assert float(probs.max()) == pytest.approx(recorded[key]["probability"], abs=0.02), file
