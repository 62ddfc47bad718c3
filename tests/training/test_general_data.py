"""UTD-MHAD, JHMDB, MSR Action3D and UTKinect-Action3D readers (joint mapping checked geometrically), virtual cameras, the label map,
weighted multi-dataset sampling, outlier exposure and a short multi-dataset training run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17
from actionpipe.training.train import epoch_order, training_loss
from actionpipe.training.config import TrainConfig, load_dataset, load_sources
from actionpipe.model.label_map import OTHER_LABEL, apply_label_map
from actionpipe.training.virtual_camera import Camera, project

from helpers import shared_path

LS, RS = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")
LH, RH = COCO17.index("left_hip"), COCO17.index("right_hip")


@pytest.fixture(scope="module")
def utd_train():
    return load_dataset(f"utd:{shared_path('datasets', 'utd_mhad')}", "train")[0]


def _seen(clip, joint):
    return clip.keypoints[0, :, joint, :2]


def test_utd_reader_maps_by_name_and_the_person_faces_the_camera(utd_train):
    assert len(utd_train) == 431 and {c.split for c in utd_train} == {"train"}
    assert {int(c.group.split("-s")[1].split("-")[0]) for c in utd_train} == {1, 3, 5, 7}
    for clip in utd_train:
        # Facing the sensor, the person's left shoulder and hip are on the image's right, the head on top
        # (at the start: some actions bend down).
        assert (_seen(clip, LS)[:, 0] > _seen(clip, RS)[:, 0]).mean() > 0.95, clip.name
        assert (_seen(clip, LH)[:, 0] > _seen(clip, RH)[:, 0]).mean() > 0.95, clip.name
        assert _seen(clip, COCO17.index("nose"))[0, 1] < _seen(clip, LS)[0, 1], clip.name  # starts upright
        # Eyes and ears do not exist in Kinect skeletons: missing, never guessed.
        assert not clip.keypoints[0, :, 1:5].any()
        assert clip.points3d is not None and clip.present3d[0, :, 5:].all()


def test_virtual_camera_views(utd_train):
    clip = utd_train[0]
    front, back, side = (project(clip.points3d, clip.present3d, Camera(yaw=y)) for y in (0, 180, 90))
    width = np.abs(front[0, :, LS, 0] - front[0, :, RS, 0]).mean()
    # From behind, left and right trade image sides; from the side, the shoulders nearly overlap.
    assert (back[0, :, LS, 0] < back[0, :, RS, 0]).all()
    assert np.abs(side[0, :, LS, 0] - side[0, :, RS, 0]).mean() < 0.35 * width
    # Farther away, smaller; a longer lens, larger.
    far = project(clip.points3d, clip.present3d, Camera(distance=6.0))
    assert np.ptp(far[0, :, :, 1][clip.present3d[0]]) < np.ptp(front[0, :, :, 1][clip.present3d[0]])
    assert not far[~clip.present3d].any()
    # A fixed view from the dataset string, the same as projecting by hand.
    turned = load_dataset(f"utd:{shared_path('datasets', 'utd_mhad')}@90", "train")[0][0]
    np.testing.assert_allclose(turned.keypoints, side)
    rng = np.random.default_rng(0)
    yaws = [Camera.random(rng, 180, 20).yaw for _ in range(200)]
    assert min(yaws) < -150 and max(yaws) > 150


def test_utd_view_must_be_a_number():
    with pytest.raises(ActionpipeError, match="degrees"):
        load_dataset(f"utd:{shared_path('datasets', 'utd_mhad')}@side", "test")


def test_jhmdb_reader_maps_by_name():
    path = shared_path("datasets", "jhmdb_partial", "split1.npz")
    train, _ = load_dataset(f"jhmdb:{path}", "train")
    test, _ = load_dataset(f"jhmdb:{path}", "test")
    assert (len(train), len(test)) == (433, 176)
    assert len({c.label for c in train}) == 14
    agree, upright = [], []
    for clip in train + test:
        kp = clip.keypoints[0]
        assert not kp[:, 1:5].any() and (kp[:, 5:, 2] == 1).all()
        # The same body side on the same image side for shoulders and hips (a swapped joint table
        # would put them on opposite sides), and the face above the shoulders.
        agree.append(np.sign(kp[:, LS, 0] - kp[:, RS, 0]) == np.sign(kp[:, LH, 0] - kp[:, RH, 0]))
        upright.append(kp[:, 0, 1] < kp[:, [LS, RS], 1].max(1))
    assert np.concatenate(agree).mean() > 0.85 and np.concatenate(upright).mean() > 0.9
    with pytest.raises(ActionpipeError, match="split file"):
        load_dataset(f"jhmdb:{path.parent}", "train")


def test_msr_action3d_reader_cross_subject_and_facing_the_camera():
    root = shared_path("datasets", "msr_action3d")
    train, info = load_dataset(f"msr:{root}", "train")
    test, _ = load_dataset(f"msr:{root}", "test")
    assert len(train) + len(test) == 567 and "MSR Action3D" in info["source"]
    assert {int(c.group.split("-s")[1].split("-")[0]) % 2 for c in train} == {1}
    assert {int(c.group.split("-s")[1].split("-")[0]) % 2 for c in test} == {0}
    assert len({c.label for c in train}) == 20 and train[0].fps == 15.0
    facing, upright = [], []
    for clip in train + test:
        kp = clip.keypoints[0]
        assert not kp[:, 1:5].any() and kp.shape[1:] == (17, 3)
        assert np.all(kp[kp[..., 2] == 0][:, :2] == 0)                   # missing joints are zeros
        both = (kp[:, LS, 2] > 0) & (kp[:, RS, 2] > 0) & (kp[:, LH, 2] > 0) & (kp[:, RH, 2] > 0)
        # Facing the camera: the left shoulder and hip on the image's right; the head above them.
        facing.append(((kp[:, LS, 0] > kp[:, RS, 0]) & (kp[:, LH, 0] > kp[:, RH, 0]))[both])
        upright.append(kp[0, 0, 1] < kp[0, LS, 1])
    assert np.concatenate(facing).mean() > 0.95 and np.mean(upright) > 0.95
    # a06_s03_e03 holds the sensor's overflow value (v = 2**31 - 1) for lost joints: missing, not a position.
    broken = next(c for c in train if c.name == "a06_s03_e03").keypoints[0]
    assert broken[..., 1].max() <= 240 and (broken[..., 2] == 0).any()


def test_a_clip_with_a_joint_far_off_its_frame_is_left_out_with_a_warning(capsys):
    from actionpipe.training.datasets import Clip, drop_off_frame

    kp = np.zeros((1, 8, 17, 3), np.float32)
    kp[..., :2], kp[..., 2] = 100.0, 1.0
    good = Clip("good", "a", kp, "coco17", 320, 240, 15.0)
    edge = Clip("edge", "a", kp + np.array([250.0, 200.0, 0.0], np.float32), "coco17", 320, 240, 15.0)  # just off
    bad_kp = kp.copy()
    bad_kp[0, 3, 5, 1] = 2.0 ** 31 - 1
    bad = Clip("bad", "a", bad_kp, "coco17", 320, 240, 15.0)
    assert [c.name for c in drop_off_frame([good, edge, bad], "msr:X")] == ["good", "edge"]
    assert "msr:X: clip bad: 1 joint position(s) far outside its 320×240 frame" in capsys.readouterr().err


def test_utkinect_reader_segments_resampled_cross_subject_and_facing_the_camera():
    root = shared_path("datasets", "utkinect_action3d")
    train, info = load_dataset(f"utk:{root}", "train")
    test, _ = load_dataset(f"utk:{root}", "test")
    assert len(train) + len(test) == 199 and "UTKinect" in info["source"]   # s10 carry is NaN NaN
    assert {int(c.group.split("-s")[1].split("-")[0]) % 2 for c in train} == {1}
    assert {int(c.group.split("-s")[1].split("-")[0]) % 2 for c in test} == {0}
    assert len({c.label for c in train}) == 10 and {"sit_down", "pick_up", "wave_hands"} <= {c.label for c in train}
    # s01_e01 walk is frame ids 252..390 of a 30 fps count: 4.6 s, 70 frames at 15 fps.
    walk = next(c for c in train if c.name == "s01_e01_walk")
    assert walk.fps == 15.0 and walk.keypoints.shape[1] == 70 and walk.points3d is not None
    facing = []
    for clip in train + test:
        kp = clip.keypoints[0]
        assert not kp[:, 1:5].any() and (kp[:, [0, 5, 6, 11, 12, 15, 16], 2] == 1).all()
        facing.append((kp[:, LS, 0] > kp[:, RS, 0]) & (kp[:, LH, 0] > kp[:, RH, 0]) & (kp[:, 0, 1] < kp[:, LS, 1]))
    # The person's left on the image's right, the head above the shoulders: the sensor faces them.
    assert np.concatenate(facing).mean() > 0.95
    with pytest.raises(ActionpipeError, match="no UTKinect-Action3D joints/actionLabel_modified.txt"):
        load_dataset(f"utk:{root / 'README.md'}", "train")


def test_label_map_merges_leaves_out_and_marks_negatives(utd_train):
    label_map = {"utd": {"rename": {"bowling": "bowl"}, "exclude": ["knock"], "negatives": ["draw_x"]}}
    mapped = apply_label_map(utd_train, "utd", label_map)
    labels = {c.label for c in mapped}
    assert "bowl" in labels and "bowling" not in labels and "knock" not in labels and "draw_x" not in labels
    assert len(mapped) == len(utd_train) - 16
    negatives = [c for c in mapped if c.negative]
    assert len(negatives) == 15 and {c.label for c in negatives} == {OTHER_LABEL}   # a8_s1_t4 is missing
    assert all(c.label_index is None for c in mapped)
    assert apply_label_map(utd_train, "penn", label_map) is utd_train   # other kinds untouched
    # Through load_dataset, with the origin of each label kept.
    clips, _ = load_dataset(f"utd:{shared_path('datasets', 'utd_mhad')}", "test", label_map=label_map)
    assert {c.origin for c in clips if c.label == "bowl"} == {"utd:bowling"}


@pytest.mark.parametrize("label_map, message", [
    ({"nope": {}}, "dataset kind"),
    ({"utd": {"rename": {"a": "b"}, "typo": []}}, "dataset kind"),
    ({"utd": {"exclude": "knock"}}, "lists of labels"),
    ({"utd": {"rename": {"draw_x": OTHER_LABEL}}}, "negatives instead"),
    ({"utd": {"weights": {"bowling": 0}}}, "positive numbers"),
    ({"utd": {"weights": {"bowling": float("inf")}}}, "positive numbers"),
    ({"utd": {"weights": ["bowling"]}}, "positive numbers"),
])
def test_label_map_errors(label_map, message):
    with pytest.raises(ActionpipeError, match=message):
        TrainConfig.from_dict({"dataset": "penn:x", "label_map": label_map})


def test_datasets_entries_are_checked():
    with pytest.raises(ActionpipeError, match="not both"):
        TrainConfig.from_dict({"dataset": "penn:x", "datasets": [{"dataset": "utd:y"}]})
    with pytest.raises(ActionpipeError, match="weight"):
        TrainConfig.from_dict({"datasets": [{"dataset": "utd:y", "weight": 0}]})
    for weight in (True, float("inf")):   # a bool is no weight; infinity would drown every other clip
        with pytest.raises(ActionpipeError, match="weight must be a positive number"):
            TrainConfig.from_dict({"datasets": [{"dataset": "utd:y", "weight": weight}]})
    with pytest.raises(ActionpipeError, match="datasets\\[0\\]"):
        TrainConfig.from_dict({"datasets": [{"dataset": "utd:y", "wieght": 1}]})


def test_label_map_weights_multiply_the_dataset_weight():
    utd = f"utd:{shared_path('datasets', 'utd_mhad')}"
    config = {"datasets": [{"dataset": utd, "split": "train", "weight": 2.0}],
              "label_map": {"utd": {"rename": {"bowling": "bowl"}, "negatives": ["draw_x"],
                                    "weights": {"bowling": 3.0, "draw_x": 0.5}}}}
    clips, weights, _ = load_sources(TrainConfig.from_dict(config))
    by_origin = {}
    for clip, weight in zip(clips, weights):
        by_origin.setdefault(clip.origin, set()).add(float(weight))
    # Keyed by the dataset's own label, before renaming; applies to negatives too.
    assert by_origin["utd:bowling"] == {6.0} and by_origin["utd:draw_x"] == {1.0} and by_origin["utd:wave"] == {2.0}
    assert {c.label for c in clips if c.origin == "utd:bowling"} == {"bowl"}
    config["label_map"]["utd"]["weights"] = {"bowlnig": 3.0}
    with pytest.raises(ActionpipeError, match="no training clip is labelled bowlnig"):
        load_sources(TrainConfig.from_dict(config))


def test_epoch_order_weights():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(epoch_order(np.ones(10), rng_a), rng_b.permutation(10))  # as before weights
    order = epoch_order(np.array([2.0, 2.0, 1.0]), np.random.default_rng(0))
    assert sorted(order.tolist()) == [0, 0, 1, 1, 2]
    counts = np.bincount(np.concatenate([epoch_order(np.array([0.5, 1.0]), np.random.default_rng(s))
                                         for s in range(400)]), minlength=2)
    assert counts[1] == 400 and 150 < counts[0] < 250


def test_outlier_exposure_loss():
    logits = torch.randn(4, 5)
    y = torch.tensor([0, 1, 2, 3])
    assert torch.equal(training_loss(logits, y, 0.1, 0.5),
                       torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1))
    # A negative with uniform logits costs log(K) times the weight, and its gradient pushes
    # a confident negative towards uniform.
    flat = torch.zeros(1, 5)
    assert torch.isclose(training_loss(flat, torch.tensor([-1]), 0.0, 0.5), 0.5 * torch.log(torch.tensor(5.0)))
    confident = torch.tensor([[4.0, 0, 0, 0, 0]], requires_grad=True)
    training_loss(confident, torch.tensor([-1]), 0.0, 1.0).backward()
    assert confident.grad[0, 0] > 0 and (confident.grad[0, 1:] < 0).all()


@pytest.mark.slow
def test_multi_dataset_training_smoke(tmp_path, run_cli):
    """Two real datasets, a label map with a merge and negatives, weights that keep the epoch short."""
    config = {
        "name": "mix", "window_frames": 16, "window_stride": 8,
        "datasets": [{"dataset": f"utd:{shared_path('datasets', 'utd_mhad')}", "weight": 0.05},
                     {"dataset": f"jhmdb:{shared_path('datasets', 'jhmdb_partial', 'split1.npz')}", "weight": 0.05}],
        "label_map": {"utd": {"rename": {"sit_to_stand": "stand_up", "jog": "run"}, "exclude": ["knock"],
                              "negatives": ["draw_x", "draw_triangle"]},
                      "jhmdb": {"rename": {"stand": "stand_up"}}},
        "architecture": {"base_channels": 8}, "optim": {"epochs": 1, "batch_size": 16},
        "val_fraction": 0.05, "card": {"inference": {"aggregate": "motion"}},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    r = run_cli("train", "--config", tmp_path / "config.json", "-o", tmp_path / "run", "--threads", "1")
    assert r.exit_code == 0, r.output + r.stderr
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    classes = set(card["classes"])
    assert OTHER_LABEL not in classes and "knock" not in classes and "draw_x" not in classes
    assert {"stand_up", "run", "golf", "arm_curl"} <= classes and "sit_to_stand" not in classes
    assert card["label_map"] == config["label_map"]
    assert card["data"]["classes"]["stand_up"] == ["jhmdb:stand", "utd:sit_to_stand"]
    assert card["data"]["classes"][OTHER_LABEL] == ["utd:draw_triangle", "utd:draw_x"]
    assert [s["kind"] for s in card["data"]["sources"]] == ["utd", "jhmdb"]
    # eval reads UTD's labels through the card's label map: negatives count as unknown clips.
    r = run_cli("eval", "--model", tmp_path / "run", "--dataset",
                f"utd:{shared_path('datasets', 'utd_mhad')}@45", "--split", "test", "--json")
    assert r.exit_code == 0, r.output + r.stderr
    metrics = json.loads(r.stdout)
    assert {u["label"] for u in metrics["unknown_labels"]} == {OTHER_LABEL}
    assert metrics["clips"] == 430 - 3 * 16   # the test subjects minus knock, draw_x and draw_triangle
