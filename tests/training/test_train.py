"""Training: augmentation steps, config, and a real (tiny) training run on a Penn Action subset."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from actionpipe.training.augment import (AugmentConfig, augment, cut_below, drop_joints, estimator_confidence, flip,
                                        random_affine)
from actionpipe.core.errors import ActionpipeError, UsageError
from actionpipe.pose.layouts import COCO17
from actionpipe.training.config import load_config

from helpers import shared_path

W, H = 640, 480


def _person(num_frames: int = 6, seed: int = 0) -> np.ndarray:
    """A (1, T, 17, 3) standing figure in pixels: every joint present (conf 1), eyes/ears occluded (0.5)."""
    rng = np.random.default_rng(seed)
    base = np.array([[320, 100], [310, 95], [330, 95], [300, 100], [340, 100], [280, 150], [360, 150],
                     [270, 210], [370, 210], [265, 270], [375, 270], [295, 280], [345, 280],
                     [290, 360], [350, 360], [288, 440], [352, 440]], dtype=np.float32)
    kp = np.zeros((1, num_frames, 17, 3), dtype=np.float32)
    kp[0, :, :, :2] = base + rng.normal(0, 2, (num_frames, 17, 2))
    kp[0, :, :, 2] = 1.0
    kp[0, :, 1:5, 2] = 0.5
    return kp


def test_flip_swaps_left_and_right_joints_by_name():
    kp = _person()
    out = flip(kp, COCO17, W)
    for name in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle", "eye", "ear"):
        left, right = COCO17.index(f"left_{name}"), COCO17.index(f"right_{name}")
        # The person's left joint after mirroring is the mirror image of its right joint before.
        np.testing.assert_allclose(out[..., left, 0], W - kp[..., right, 0])
        np.testing.assert_allclose(out[..., left, 1], kp[..., right, 1])
        np.testing.assert_allclose(out[..., right, 2], kp[..., left, 2])
    nose = COCO17.index("nose")
    np.testing.assert_allclose(out[..., nose, 0], W - kp[..., nose, 0])
    # Image-left (smaller x) stays image-left for the same body side seen from the front: after
    # the flip, the left shoulder is on the image's left.
    assert (out[..., COCO17.index("left_shoulder"), 0] < out[..., COCO17.index("right_shoulder"), 0]).all()


def test_affine_moves_positions_but_keeps_confidences_and_missing_joints():
    kp = _person()
    kp[0, 2, 7] = 0  # a missing joint
    cfg = AugmentConfig(rotation=30, scale=0.3, shear=0.2, translate=0.2, camera_motion=1.0)
    out = random_affine(kp, np.random.default_rng(1), cfg, W, H)
    np.testing.assert_array_equal(out[..., 2], kp[..., 2])
    assert np.all(out[0, 2, 7] == 0)
    present = kp[..., 2] > 0
    assert np.abs(out[..., :2][present] - kp[..., :2][present]).max() > 5
    # Each frame's transform is affine: a joint midway between two others stays midway.
    nose, l_eye, r_eye = (COCO17.index(n) for n in ("nose", "left_eye", "right_eye"))
    kp[..., nose, :2] = (kp[..., l_eye, :2] + kp[..., r_eye, :2]) / 2
    out = random_affine(kp, np.random.default_rng(2), cfg, W, H)
    np.testing.assert_allclose(out[..., nose, :2], (out[..., l_eye, :2] + out[..., r_eye, :2]) / 2, atol=1e-3)


def test_joint_dropout_zeros_whole_joints():
    kp = _person(num_frames=40)
    out = drop_joints(kp, np.random.default_rng(0), frame_p=0.2, clip_p=0.0)
    dropped = out[..., 2] == 0
    assert 0.1 < (dropped & (kp[..., 2] > 0)).mean() < 0.3
    assert np.all(out[dropped] == 0)                        # x, y and confidence together
    np.testing.assert_array_equal(out[~dropped], kp[~dropped])
    whole = drop_joints(kp, np.random.default_rng(3), frame_p=0.0, clip_p=0.5)
    gone = (whole[..., 2] == 0).all(axis=1)[0]              # joints missing in every frame
    assert gone.any() and np.all(whole[0][:, gone] == 0)


def test_frame_cut_removes_the_legs_below_a_line_for_the_whole_clip():
    kp = _person(num_frames=10)
    out = cut_below(kp, np.random.default_rng(0), p=1.0)
    gone = (out[0, ..., 2] == 0).all(axis=0)                # (V,): missing in every frame
    ankles, shoulders = [COCO17.index("left_ankle"), COCO17.index("right_ankle")], [5, 6]
    assert gone[ankles].all() and not gone[shoulders].any()
    assert np.all(out[0][:, gone] == 0)
    np.testing.assert_array_equal(out[0][:, ~gone], kp[0][:, ~gone])
    np.testing.assert_array_equal(cut_below(kp, np.random.default_rng(0), p=0.0), kp)


def test_confidence_model_is_never_constant_and_keeps_missing_joints_missing():
    kp = _person(num_frames=50)
    kp[0, :, 0, :] = 0
    out = estimator_confidence(kp, np.random.default_rng(0))
    visible, occluded = out[..., 5:, 2], out[..., 1:5, 2]
    assert visible.std() > 0.03 and 0.85 < np.median(visible) < 1.0
    assert occluded.max() <= 0.8 and occluded.mean() < visible.mean()
    assert np.all(out[:, :, 0] == 0)
    np.testing.assert_array_equal(out[..., :2], kp[..., :2])


def test_full_augmentation_is_seeded_and_finite():
    kp = _person(num_frames=20)
    a = augment(kp, np.random.default_rng(7), AugmentConfig(), COCO17, W, H)
    b = augment(kp, np.random.default_rng(7), AugmentConfig(), COCO17, W, H)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all() and not np.array_equal(a, kp)
    assert np.all(a[a[..., 2] == 0][:, :2] == 0)


def test_validation_split_holds_out_whole_groups_per_class():
    from actionpipe.training.datasets import Clip
    from actionpipe.training.train import split_validation

    kp = np.zeros((1, 4, 17, 3), np.float32)
    clips = [Clip(f"{label}{i}", label, kp, "coco17", W, H, 30.0, group=f"{label}-video{i // 3}")
             for label in "ab" for i in range(30)]
    train, val = split_validation(clips, 0.2, seed=0)
    assert sorted(c.name for c in train + val) == sorted(c.name for c in clips)
    assert {c.group for c in train}.isdisjoint(c.group for c in val)
    for label in "ab":
        assert sum(c.label == label for c in val) == 6   # 20 % of 30, in whole groups of 3
    assert split_validation(clips, 0.2, seed=0) == (train, val)
    ungrouped = [Clip(c.name, c.label, kp, "coco17", W, H, 30.0) for c in clips]
    assert len(split_validation(ungrouped, 0.1, seed=0)[1]) == 6
    # One video cut into clips of both actions: its clips stay on one side whatever their labels.
    mixed = [Clip(f"{v}{label}", label, kp, "coco17", W, H, 30.0, group=f"video{v}") for v in range(8) for label in "ab"]
    for seed in range(10):
        train, val = split_validation(mixed, 0.5, seed)
        assert {c.group for c in train}.isdisjoint(c.group for c in val) and val and train


def test_validation_split_says_when_a_class_cannot_give_any_clip(capsys):
    from actionpipe.training.datasets import Clip
    from actionpipe.training.train import split_validation

    kp = np.zeros((1, 4, 17, 3), np.float32)
    clips = [Clip(f"a{i}", "a", kp, "coco17", W, H, 30.0, group="one video") for i in range(5)]
    clips += [Clip(f"b{i}", "b", kp, "coco17", W, H, 30.0, group=f"b{i}") for i in range(5)]
    train, val = split_validation(clips, 0.2, seed=0)
    assert [c.label for c in val] == ["b"] and len(train) == 9
    assert "class 'a': all 5 clips are one group" in capsys.readouterr().err


def test_an_override_indexes_a_list_of_datasets(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"datasets": [{"dataset": "poses:a.csv", "align": {"hip_width": 0.8}},
                                             {"dataset": "poses:b.csv", "weight": 8.0}]}))
    cfg = load_config(path, {"datasets.1.weight": 2.0, "datasets.0.align": None})
    assert [(s.dataset, s.weight, s.align) for s in cfg.sources] == [("poses:a.csv", 1.0, None), ("poses:b.csv", 2.0, None)]
    with pytest.raises(UsageError, match="--set datasets.2.weight: no item 2 in a list of 2"):
        load_config(path, {"datasets.2.weight": 1.0})
    added = load_config(path, {"datasets.2": {"dataset": "poses:c.csv", "weight": 3.0}})
    assert [(s.dataset, s.weight) for s in added.sources][2] == ("poses:c.csv", 3.0)
    with pytest.raises(UsageError, match="--set datasets.3: no item 3 in a list of 2"):
        load_config(path, {"datasets.3": {"dataset": "poses:c.csv"}})
    with pytest.raises(UsageError, match="--set datasets.1.weight: config datasets\\[1\\]: weight must be a positive number"):
        load_config(path, {"datasets.1.weight": 0})


def test_config_overrides_and_typos(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"optim": {"lr": 0.05}, "augment": {"rotation": 5}}))
    cfg = load_config(path, {"optim.epochs": 3, "augment.noise": 0.02})
    assert (cfg.optim.lr, cfg.optim.epochs, cfg.augment.rotation, cfg.augment.noise) == (0.05, 3, 5, 0.02)
    assert cfg.optim.momentum == 0.9 and cfg.optim.nesterov and cfg.architecture["dropout"] == 0.5
    path.write_text(json.dumps({"optim": {"learning_rate": 0.05}}))
    with pytest.raises(ActionpipeError, match="learning_rate"):
        load_config(path)
    with pytest.raises(ActionpipeError, match="window_stride"):
        load_config(None, {"window_stride": 0})
    path.write_text(json.dumps({"card": {"inference": {"aggregate": "maximum"}}}))
    with pytest.raises(ActionpipeError, match="card.inference.aggregate must be one of mean, motion, got 'maximum'"):
        load_config(path)
    path.write_text(json.dumps({"card": {"licence": "MIT"}}))   # a card would refuse it after training
    with pytest.raises(ActionpipeError, match="card: unknown key\\(s\\) 'licence'"):
        load_config(path)


def test_train_cli_reports_bad_config_in_one_line(tmp_path, run_cli):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    r = run_cli("train", "--config", bad, "-o", tmp_path / "run", "--dataset", "penn:.")
    assert r.exit_code == 1 and r.stderr.startswith(f"actionpipe: error: {bad}") and "Traceback" not in r.stderr


# --- a real run on a small Penn subset -----------------------------------------------------------

@pytest.fixture(scope="module")
def penn_subset(tmp_path_factory):
    """20 train clips of each of 3 distinct classes, linked into a Penn-style labels/ folder."""
    from scipy.io import loadmat

    labels = shared_path("datasets", "penn_action", "labels")
    out = tmp_path_factory.mktemp("penn") / "labels"
    out.mkdir()
    wanted = {"jumping_jacks": 0, "pullup": 0, "golf_swing": 0}
    for mat in sorted(labels.glob("*.mat")):
        d = loadmat(str(mat), variable_names=("action", "train"))
        action = str(d["action"].reshape(-1)[0])
        if action in wanted and wanted[action] < 20 and int(d["train"].reshape(-1)[0]) == 1:
            (out / mat.name).symlink_to(mat)
            wanted[action] += 1
        if all(v == 20 for v in wanted.values()):
            break
    return out.parent


def _tiny_config(penn_subset, epochs: int):
    return load_config(None, {"dataset": f"penn:{penn_subset}", "architecture": {"base_channels": 16, "dropout": 0.0},
                              "window_frames": 16, "window_stride": 8, "val_fraction": 0.25, "seed": 3,
                              "optim.epochs": epochs, "optim.batch_size": 16, "optim.lr": 0.05,
                              "optim.schedule": "cosine", "optim.warmup_epochs": 1, "optim.clip_grad": 5.0,
                              "optim.ema": 0.9})


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow   # two 10-epoch trainings
def test_training_learns_and_resume_continues_identically(penn_subset, tmp_path):
    from actionpipe.model.cards import ModelCard, sha256_file
    from actionpipe.training.train import train

    torch.set_num_threads(1)
    cfg = _tiny_config(penn_subset, epochs=10)
    straight = train(cfg, tmp_path / "straight", device="cpu")
    log = _log(straight)
    assert [e["epoch"] for e in log] == list(range(1, 11))
    assert np.mean([e["loss"] for e in log[-3:]]) < log[0]["loss"] - 0.25
    assert {"loss", "train_acc", "val_acc", "lr", "time_s"} <= set(log[0])

    split = train(cfg, tmp_path / "split", device="cpu", stop_after=5)
    assert len(_log(split)) == 5
    with pytest.raises(ActionpipeError, match="already holds"):
        train(cfg, split, device="cpu")
    train(cfg, split, resume=True, device="cpu")
    resumed = _log(split)
    for a, b in zip(log, resumed):
        assert {k: v for k, v in a.items() if k != "time_s"} == {k: v for k, v in b.items() if k != "time_s"}
    w1 = torch.load(straight / "weights.pt", weights_only=True)
    w2 = torch.load(split / "weights.pt", weights_only=True)
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    # Same weights, same bytes: the card's SHA-256 is reproducible.
    assert sha256_file(straight / "weights.pt") == sha256_file(split / "weights.pt")

    card = ModelCard.load(straight)
    assert card.classes == ["golf_swing", "jumping_jacks", "pullup"]
    assert card.preprocessing.layout == "coco17" and card.inference.window_frames == 16
    model = card.load_model()  # sha256 checked, reference keys
    assert model.fcn.out_channels == 3


def test_train_command_writes_a_model_directory(penn_subset, tmp_path, run_cli):
    run = tmp_path / "run"
    r = run_cli("train", "--dataset", f"penn:{penn_subset}", "-o", run, "--epochs", "2", "--stop-after", "1",
                "--seed", "1", "--set", "architecture={\"base_channels\": 8}", "--set", "window_frames=16",
                "--device", "cpu", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    assert len(_log(run)) == 1 and json.loads((run / "config.json").read_text())["seed"] == 1
    # --resume alone picks the run's saved config up again.
    r = run_cli("train", "-o", run, "--resume", "--device", "cpu", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    assert [e["epoch"] for e in _log(run)] == [1, 2]
    card = json.loads((run / "card.json").read_text())
    assert card["architecture"]["base_channels"] == 8 and card["preprocessing"]["normalization"] == "body"
    assert card["data"]["kind"] == "penn" and "Zhang" in card["data"]["source"]


@pytest.mark.parametrize("setting", ["optim.lr=abc", "optim.epochs=2.5", "optim.nesterov=1", "augment.flip=true"])
def test_bad_override_type_is_one_line_and_leaves_no_run_folder(tmp_path, run_cli, setting):
    penn = shared_path("datasets", "penn_action")
    r = run_cli("train", "--dataset", f"penn:{penn}", "-o", tmp_path / "run", "--set", setting)
    assert r.exit_code == 2   # a usage error, naming the option (issue 28)
    key = setting.split("=")[0]
    assert r.stderr.count("\n") == 1 and f"--set {key}: config {key}: expected" in r.stderr
    assert not (tmp_path / "run").exists()


def test_a_pose_models_confidences_are_kept_in_training():
    # Real YOLO confidences (below 1) must not be read as annotation flags ("occluded" -> uniform
    # 0.05..0.8): training would then see real footage with confidences it never has at inference.
    from dataclasses import replace

    from actionpipe.training.datasets import Clip
    from actionpipe.training.model_input import augmented_keypoints

    kp = _person(num_frames=30)
    kp[..., 2] = 0.97
    estimated = Clip("real", "squat", kp, COCO17.name, W, H, 15.0, estimated=True)
    cfg = AugmentConfig(joint_dropout=0, clip_joint_dropout=0)
    out, _ = augmented_keypoints(estimated, cfg, np.random.default_rng(0))
    np.testing.assert_allclose(out[..., 2], 0.97)
    flags, _ = augmented_keypoints(replace(estimated, estimated=False), cfg, np.random.default_rng(0))
    assert flags[..., 2].max() <= 0.8                        # annotation flags in (0, 1): "occluded"
