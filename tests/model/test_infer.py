"""infer and report: probabilities, batching, determinism, mismatches; the pack→infer→report chain."""
from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
import torch

from actionpipe.model.cards import ModelCard
from actionpipe.core.errors import ActionpipeError
from actionpipe.model.infer import Predictor, combine_windows, load_scores, motion_energy, window_starts
from actionpipe.skeleton.pack import PackSpec, Sample, pack_people
from actionpipe.outputs.report import top_k
from helpers import CLASSES, moving_pose, person, write_card

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


def test_windows_are_half_open_and_scores_v2_is_written_v1_still_read(card, tmp_path, run_cli):
    sample = pack_people(moving_pose(20), card.preprocessing)
    fps = float(sample.meta["fps"])
    pred, = Predictor(card, "cpu").predict([sample])
    # [start, end): 8 frames long, and the last window ends one frame after the sample's last frame.
    np.testing.assert_allclose(pred.window_times[:, 1] - pred.window_times[:, 0], 8 / fps)
    assert pred.window_times[-1, 1] == pytest.approx(sample.times[-1] + 1 / fps)
    sample.save(tmp_path / "s.npz")
    result = run_cli("infer", tmp_path / "s.npz", "-o", tmp_path / "scores.json", "--model", card.directory)
    assert result.exit_code == 0, result.stderr
    doc = json.loads((tmp_path / "scores.json").read_text())
    assert doc["format_version"] == 2
    assert doc["items"][0]["windows"][-1]["end_s"] == pytest.approx(sample.times[-1] + 1 / fps, abs=1e-3)
    doc["format_version"] = 1
    (tmp_path / "v1.json").write_text(json.dumps(doc))
    assert run_cli("report", tmp_path / "v1.json", "--format", "json").exit_code == 0


def test_layout_mismatch_is_a_clear_error(card):
    sample = pack_people(moving_pose(), PackSpec(layout="openpose18"))
    with pytest.raises(ActionpipeError, match="does not match model"):
        Predictor(card, "cpu").predict([sample], ["x.npz"])


def test_cuda_request_without_gpu_fails_cleanly(card, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ActionpipeError, match="CUDA is not available"):
        Predictor(card, "cuda:0")
    assert Predictor(card, "auto").device == "cpu"


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


def test_report_of_a_rejected_item_says_unknown_as_classify_does(tmp_path, run_cli):
    # Stage by stage, an item the card's open-set rule rejects reads as classify's answer does.
    card = write_card(tmp_path / "m").rewrite(open_set={"method": "energy", "threshold": 1e6})
    pose_path, sample_path, scores_path = tmp_path / "p.json", tmp_path / "s.npz", tmp_path / "scores.json"
    moving_pose(30).save(pose_path)
    assert run_cli("pack", pose_path, "-o", sample_path, "--model", card.directory).exit_code == 0
    assert run_cli("infer", sample_path, "-o", scores_path, "--model", card.directory, "--device", "cpu").exit_code == 0
    assert load_scores(scores_path)["items"][0]["rejected"] is True
    item = json.loads(run_cli("report", scores_path, "--format", "json").stdout)["items"][0]
    assert item["label"] is None and item["probability"] is None
    assert item["closest"] == {"class": item["top"][0]["class"], "probability": item["top"][0]["probability"]}
    r = run_cli("report", scores_path)
    assert r.exit_code == 0 and "unknown action" in r.stdout


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
    monkeypatch.setattr("actionpipe.model.cards.SHIPPED_MODELS", tmp_path / "none")
    monkeypatch.delenv("ACTIONPIPE_MODELS", raising=False)
    r = run_cli("infer", tmp_path / "x.npz")
    assert r.exit_code == 2 and "--model" in r.stderr


def still_then_moving(still=10, moving=10, step=0.5):
    """(C, T, V, M) data: one person standing still, then its joints all moving ``step`` per frame in x."""
    t = still + moving
    data = np.zeros((3, t, 17, 1), dtype=np.float32)
    data[2] = 0.9
    data[0, still:, :, 0] = step * np.arange(1, moving + 1)[:, None]
    return data


def test_motion_energy_is_squared_mean_joint_speed_of_seen_joints():
    data = still_then_moving()
    assert motion_energy(data[:, :10]) == 0.0                       # standing still
    assert motion_energy(data[:, 10:]) == pytest.approx(0.25)       # 0.5 per frame, squared
    assert motion_energy(data[:, 5:15]) == pytest.approx(0.25 * 5 / 9)  # 5 of 9 steps move
    unseen = data.copy()
    unseen[:, 10:, :5] = 0                                           # joints not seen: not motion
    assert motion_energy(unseen[:, 10:]) == pytest.approx(0.25)
    # One joint flickering 3 units a frame next to 16 still ones: the mean speed is squared after
    # averaging over joints, so it counts (3/17)², not 3²/17.
    flicker = np.zeros((3, 4, 17, 1), dtype=np.float32)
    flicker[2] = 1.0
    flicker[0, 1::2, 0, 0] = 3.0
    assert motion_energy(flicker) == pytest.approx((3 / 17) ** 2)
    assert motion_energy(np.zeros((3, 5, 17, 1), dtype=np.float32)) == 0.0


def test_motion_aggregate_lets_moving_windows_outvote_idle_ones():
    # Three idle windows vote class 2 ("jump" stands in for jump_rope on a standing person), one
    # window with the action votes class 0: the plain mean picks the idle vote, motion the action.
    probs = np.array([[0.1, 0.1, 0.8]] * 3 + [[0.9, 0.05, 0.05]])
    energies = np.array([0.001, 0.0, 0.002, 0.3])
    assert combine_windows(probs, energies, "mean").argmax() == 2
    weighted = combine_windows(probs, energies, "motion")
    assert weighted.argmax() == 0 and weighted.sum() == pytest.approx(1.0)
    assert np.allclose(weighted, (energies @ probs) / energies.sum())
    # Equal energies are the plain mean; nothing moving at all falls back on it.
    assert np.allclose(combine_windows(probs, np.full(4, 0.2), "motion"), probs.mean(0))
    assert np.allclose(combine_windows(probs, np.zeros(4), "motion"), probs.mean(0))
    with pytest.raises(ValueError, match="one non-negative energy per window"):
        combine_windows(probs, np.ones(3), "motion")
    with pytest.raises(ValueError, match="unknown aggregate"):
        combine_windows(probs, energies, "median")


def test_predictor_uses_the_cards_aggregate(card, tmp_path):
    sample = pack_people(moving_pose(40), card.preprocessing)
    sample.data[:, :, :20] = sample.data[:, :, :1]   # the first half stands still
    plain = Predictor(card, "cpu").predict([sample])[0]
    motion_card = write_card(tmp_path / "motion", aggregate="motion")
    moving = Predictor(motion_card, "cpu").predict([sample])[0]
    assert np.allclose(plain.window_probabilities, moving.window_probabilities)   # same weights
    assert np.allclose(plain.probabilities, plain.window_probabilities.mean(0), atol=1e-6)
    assert len(moving.window_motion) == len(moving.window_probabilities)
    assert moving.window_motion[0] == 0.0 and moving.window_motion[-1] > 0
    assert np.allclose(moving.probabilities, combine_windows(moving.window_probabilities, moving.window_motion,
                                                             "motion"), atol=1e-6)
    assert not np.allclose(moving.probabilities, plain.probabilities)


def test_unknown_aggregate_in_card_is_a_clear_error(tmp_path):
    with pytest.raises(ActionpipeError, match=r"bad/card.json: inference.aggregate must be one of mean, motion, "
                                              r"got 'median'"):
        write_card(tmp_path / "bad", aggregate="median")


def test_calibration_temperature_never_changes_the_class(tmp_path):
    from actionpipe.model.cards import ModelCard
    from actionpipe.model.openset import softmax

    plain = write_card(tmp_path / "plain", aggregate="motion")
    raw = json.loads((tmp_path / "plain" / "card.json").read_text())
    raw["calibration"] = {"temperature": 0.25}
    (tmp_path / "sharp").mkdir()
    (tmp_path / "sharp" / "weights.pt").write_bytes((tmp_path / "plain" / "weights.pt").read_bytes())
    (tmp_path / "sharp" / "card.json").write_text(json.dumps(raw))
    sharp = ModelCard.load(tmp_path / "sharp")
    samples = [pack_people(moving_pose(n, seed=n), plain.preprocessing) for n in (9, 30, 41, 57)]
    a = Predictor(plain, "cpu").predict(samples)
    b = Predictor(sharp, "cpu").predict(samples)
    for pa, pb in zip(a, b):
        assert len(pa.window_probabilities) > 1
        assert pa.probabilities.argmax() == pb.probabilities.argmax()
        assert pb.probabilities.max() > pa.probabilities.max()  # T < 1 sharpens
        assert np.allclose(pb.window_probabilities, softmax(pb.window_logits / 0.25), atol=1e-6)


@pytest.mark.parametrize("doc, problem", [
    ({"items": []}, "classes"),
    ({"classes": ["a"], "items": [3]}, "items"),
    ({"classes": ["a"], "items": [{"source": "x", "probabilities": ["x"]}]}, "probabilities"),
    ({"classes": ["a", "b"], "items": [{"source": "x", "probabilities": [1.0]}]}, "probabilities"),
])
def test_report_rejects_malformed_scores_in_one_line(tmp_path, run_cli, doc, problem):
    path = tmp_path / "scores.json"
    path.write_text(json.dumps({"format": "actionpipe.scores", "format_version": 1, **doc}))
    r = run_cli("report", path)
    assert r.exit_code == 1 and problem in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_pack_layout_override_drops_the_cards_mask_for_joints_it_lacks(card, tmp_path, run_cli):
    pose_path = tmp_path / "p.json"
    moving_pose(10).save(pose_path)
    raw = json.loads(card.card_path.read_text())
    raw["preprocessing"]["joint_mask"] = ["left_eye", "right_eye"]
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "card.json").write_text(json.dumps(raw))
    r = run_cli("pack", pose_path, "-o", tmp_path / "s.npz", "--model", tmp_path / "m", "--layout", "ntu25")
    assert r.exit_code == 0, r.stderr
    assert Sample.load(tmp_path / "s.npz").data.shape[3] == 25
    with pytest.raises(ActionpipeError, match="left_eye"):
        PackSpec(layout="ntu25", joint_mask=["left_eye"])


def test_mirror_average_makes_the_answer_the_same_for_a_mirrored_video(tmp_path):
    from dataclasses import replace

    from actionpipe.pose.layouts import COCO17

    card = write_card(tmp_path / "m")
    pose = moving_pose(24, seed=3)
    # The same people filmed in a mirror: x -> W - x, and every left joint is the right one.
    perm = COCO17.flip_permutation()
    frames = [replace(f, people=[replace(p, keypoints=np.column_stack([pose.width - p.keypoints[perm, 0],
                                                                         p.keypoints[perm, 1:]]))
                                 for p in f.people]) for f in pose.frames]
    sample, mirror = (pack_people(p, card.preprocessing) for p in (pose, replace(pose, frames=frames)))
    plain = Predictor(card, "cpu").predict([sample, mirror])
    # The model alone tells the two apart (a random tiny model: its features show it, not its
    # near-uniform probabilities).
    assert np.abs(plain[0].features - plain[1].features).max() > 1e-4
    averaged = Predictor(card.rewrite(inference={**card.inference.to_dict(), "mirror_average": True}),
                         "cpu").predict([sample, mirror])
    assert np.allclose(averaged[0].probabilities, averaged[1].probabilities, atol=1e-6)
    assert np.abs(averaged[0].features - averaged[1].features).max() < 1e-6
    assert np.abs(averaged[0].features - plain[0].features).max() > 1e-5


@pytest.mark.parametrize("name", ["general-stgcn", "penn-action-stgcn"])
def test_openvino_stgcn_matches_torch(name):
    """The OpenVINO export of a shipped card gives the torch model's logits and features (1e-4), for
    the card's window and another length, and the Predictor takes it on the CPU by default."""
    from actionpipe.model.cards import find_card
    from actionpipe.model.infer import torch_windows
    from actionpipe.model.openvino_stgcn import OpenVinoSTGCN

    card = find_card(name)
    openvino, reference = OpenVinoSTGCN(card).windows, torch_windows(card.load_model("cpu"), "cpu")
    rng = np.random.default_rng(0)
    for shape in [(4, 3, 32, 17, 1), (1, 3, 75, 17, 1)]:
        x = rng.normal(size=shape).astype(np.float32)
        (f, logits), (f_ref, logits_ref) = openvino(x), reference(x)
        assert np.abs(logits - logits_ref).max() < 1e-4 and np.abs(f - f_ref).max() < 1e-4
    assert Predictor(card, "cpu").engine == "openvino" and Predictor(card, "cpu", engine="torch").engine == "torch"


@pytest.mark.slow
def test_classify_on_the_cpu_never_imports_torch():
    """The API end to end on the CPU (pose and ST-GCN through OpenVINO, exports cached) without torch."""
    import subprocess
    import sys

    from helpers import REPO

    code = ("import sys\nfrom actionpipe import ActionModel\nmodel = ActionModel()\n"
            f"r = model({str(REPO / 'samples' / 'squat.mp4')!r})\n"
            "print(r.label, 'torch' in sys.modules)")
    env = {**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""}
    for _ in range(2):   # the first run may export the models (that needs torch); the second must not
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["squat", "False"], out
