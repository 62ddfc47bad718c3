"""infer and report: probabilities, batching, determinism, mismatches; the pack→infer→report chain."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

from actionpipe.cards import ModelCard, sha256_file
from actionpipe.errors import ActionpipeError
from actionpipe.infer import Predictor, load_scores, window_starts
from actionpipe.pack import PackSpec, pack_people
from actionpipe.report import top_k
from test_pack import person, pose_file

CLASSES = ["wave", "squat", "jump"]


def write_card(directory, layout="coco17", window=8, base_channels=8, seed=0):
    """A small, randomly initialised model with a real card: mechanics, not accuracy."""
    from actionpipe.model import STGCN

    torch.manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arch = {"type": "stgcn", "layout": layout, "strategy": "spatial", "in_channels": 3,
            "num_class": len(CLASSES), "base_channels": base_channels, "edge_importance": True}
    model = STGCN(**{k: v for k, v in arch.items() if k != "type"})
    # Move BN statistics off their defaults so data_bn really acts.
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 16, model.layout.num_joints, 1))
    torch.save(model.state_dict(), directory / "weights.pt")
    card = {"format_version": 1, "name": directory.name, "description": "test model",
            "architecture": arch,
            "preprocessing": {"layout": layout, "normalization": "body", "max_people": 2, "rank": "area"},
            "inference": {"window_frames": window, "window_stride": window // 2},
            "classes": CLASSES,
            "weights": {"file": "weights.pt", "sha256": sha256_file(directory / "weights.pt")}}
    (directory / "card.json").write_text(json.dumps(card))
    return ModelCard.load(directory)


def moving_pose(frames=20, seed=0):
    rng = np.random.default_rng(seed)
    return pose_file([[person(1, 300 + rng.normal() * 10, 240, 60), person(2, 100, 200, 30)]
                      for _ in range(frames)])


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    return write_card(tmp_path_factory.mktemp("models") / "tiny")


def test_window_starts_cover_the_clip():
    assert window_starts(5, 8, 4) == [0]
    assert window_starts(20, 8, 4) == [0, 4, 8, 12]
    assert window_starts(22, 8, 4) == [0, 4, 8, 12, 14]


def test_probabilities_sum_to_one_and_batching_changes_nothing(card):
    samples = [pack_people(moving_pose(n, seed=n), card.preprocessing) for n in (5, 20, 37)]
    batched = Predictor(card, "cpu", batch_size=16).predict(samples)
    single = [Predictor(card, "cpu", batch_size=1).predict([s])[0] for s in samples]
    for b, s, sample in zip(batched, single, samples):
        assert b.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert np.allclose(b.probabilities, s.probabilities, atol=1e-5)
        assert len(b.window_probabilities) == len(window_starts(sample.data.shape[2], 8, 4))
    again = Predictor(card, "cpu", batch_size=16).predict(samples)
    assert all(np.array_equal(a.probabilities, b.probabilities) for a, b in zip(again, batched))
    # Different inputs give different outputs: the model is not ignoring its input.
    assert not np.allclose(batched[0].probabilities, batched[2].probabilities)


def test_layout_mismatch_is_a_clear_error(card):
    sample = pack_people(moving_pose(), PackSpec(layout="openpose18"))
    with pytest.raises(ActionpipeError, match="does not match model"):
        Predictor(card, "cpu").predict([sample], ["x.npz"])


def test_cuda_request_without_gpu_fails_cleanly(card, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ActionpipeError, match="CUDA is not available"):
        Predictor(card, "cuda:0")
    assert Predictor(card, "auto").device.type == "cpu"


def test_weights_hash_is_checked(tmp_path):
    card = write_card(tmp_path / "m")
    (tmp_path / "m" / "weights.pt").write_bytes(b"tampered")
    with pytest.raises(ActionpipeError, match="SHA-256"):
        card.load_model()


def test_top_k_orders_and_breaks_ties():
    assert top_k([0.2, 0.5, 0.3], CLASSES, 2) == [("squat", 0.5), ("jump", 0.3)]
    assert [c for c, _ in top_k([0.5, 0.5, 0.0], CLASSES, 3)] == ["wave", "squat", "jump"]


def test_pack_infer_report_chain(card, tmp_path, run_cli):
    pose_path, sample_path, scores_path = tmp_path / "p.json", tmp_path / "s.npz", tmp_path / "scores.json"
    moving_pose(30).save(pose_path)
    r = run_cli("pack", pose_path, "-o", sample_path, "--model", card.directory)
    assert r.exit_code == 0, r.stderr
    r = run_cli("infer", sample_path, "-o", scores_path, "--model", card.directory, "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    doc = load_scores(scores_path)
    assert sum(doc["items"][0]["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    r = run_cli("report", scores_path, "--top", "2", "--format", "json")
    top = json.loads(r.stdout)["items"][0]["top"]
    assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]
    assert top[0]["class"] in CLASSES
    r = run_cli("report", scores_path, "--format", "csv", "--top", "3")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [int(row["rank"]) for row in rows] == [1, 2, 3]
    r = run_cli("report", scores_path)
    assert r.exit_code == 0 and top[0]["class"] in r.stdout


@pytest.mark.parametrize("content, problem", [
    ('{"format": "actionpipe.pose", "format_version": 1, "layout": "coco17", "width": 640, '
     '"height": 480, "fps": 30, "frames": []}', "no frames"),
    ('{"format": "actionpipe.pose", "format_version": 1, "layout": "coco17", "width": 640, '
     '"height": 480, "fps": 30, "frames": [{"index": 0, "time_s": 0, "people": [{"track_id": 1, '
     '"box": [0,0,1,1], "keypoints": ' + json.dumps([[float("nan"), 0, 1]] * 17).replace("NaN", "NaN") + '}]}]}',
     "NaN"),
    ('{"format": "actionpipe.pose", "format_version": 1, "layout": "coco17", "width": 640, '
     '"height": 480, "fps": 30, "frames": [{"index": 0, "time_s": 0, "people": [{"track_id": 1, '
     '"box": [0,0,1,1], "keypoints": ' + json.dumps([[1, 2, 1]] * 18) + '}]}]}', "shape"),
    ("{not json", "not a valid pose file"),
])
def test_bad_pose_files_fail_in_one_line(tmp_path, run_cli, card, content, problem):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    out = tmp_path / "s.npz"
    r = run_cli("pack", bad, "-o", out, "--model", card.directory)
    assert r.exit_code == 1
    assert problem in r.stderr and "bad.json" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob("*.part"))


def test_infer_without_model_points_at_model_flag(tmp_path, run_cli, monkeypatch):
    monkeypatch.setattr("actionpipe.cards.SHIPPED_MODELS", tmp_path / "none")
    monkeypatch.delenv("ACTIONPIPE_MODELS", raising=False)
    r = run_cli("infer", tmp_path / "x.npz")
    assert r.exit_code == 2 and "--model" in r.stderr
