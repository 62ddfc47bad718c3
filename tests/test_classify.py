"""classify end to end on real footage with a small test model: mechanics, not accuracy."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from actionpipe.classify import Classifier
from test_infer import CLASSES, write_card


@pytest.fixture(scope="module")
def short_clip(demo_video, tmp_path_factory):
    """The first 24 frames of the sample video (two real people), shrunk to 640 px."""
    path = tmp_path_factory.mktemp("clips") / "two_people.mp4"
    cap = cv2.VideoCapture(str(demo_video))
    writer = None
    for _ in range(24):
        ok, frame = cap.read()
        assert ok
        frame = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
        if writer is None:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    return write_card(tmp_path_factory.mktemp("models") / "tiny")


def test_classifier_runs_every_stage_on_real_footage(card, short_clip, tmp_path):
    result = Classifier(card, device="cpu", imgsz=320, fps=15).classify(short_clip, keep_dir=tmp_path)
    assert result.status == "ok" and result.label in CLASSES
    assert result.prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert result.info["people"] >= 2 and len(result.info["tracks_used"]) == 2
    assert result.info["frames"] == 12  # 24 frames at 30 fps, posed at 15 fps
    kept = tmp_path / "two_people"
    assert {p.name for p in kept.iterdir()} == {"pose.json", "sample.npz", "scores.json"}


def test_classify_folder_skips_broken_video_and_fails_exit_code(card, short_clip, tmp_path, run_cli):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(short_clip.read_bytes())
    (folder / "broken.mp4").write_bytes(short_clip.read_bytes()[:2000])  # truncated
    (folder / "notes.txt").write_text("not a video, and not picked up")
    r = run_cli("classify", folder, "--model", card.directory, "--device", "cpu", "--imgsz", "320",
                "--json", "--top", "2")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    by_name = {res["video"].rsplit("/", 1)[-1]: res for res in doc["results"]}
    assert set(by_name) == {"a.mp4", "broken.mp4"}
    assert by_name["a.mp4"]["status"] == "ok" and len(by_name["a.mp4"]["top"]) == 2
    assert by_name["broken.mp4"]["status"] == "error" and "broken.mp4" in by_name["broken.mp4"]["error"]
    assert "broken.mp4" in r.stderr


def test_classify_jsonl_and_no_person(card, tmp_path, run_cli):
    blank = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"mp4v"), 15, (320, 240))
    for i in range(10):
        writer.write(np.full((240, 320, 3), 40 + i, np.uint8))
    writer.release()
    r = run_cli("classify", blank, "--model", card.directory, "--device", "cpu", "--jsonl")
    assert r.exit_code == 0
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["status"] == "no_person" and "label" not in lines[0]


def test_classify_usage_errors(card, tmp_path, run_cli):
    r = run_cli("classify", tmp_path, "--model", card.directory)
    assert r.exit_code == 2 and "no video files" in r.stderr
    r = run_cli("classify", tmp_path / "missing.mp4", "--model", card.directory, "--json", "--jsonl")
    assert r.exit_code == 2
