"""Training on a user's own videos (videos:DIR / videos:LABELS.csv) and fine-tuning (--from)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from actionpipe.model.cards import find_card
from actionpipe.training.datasets import Clip, split_validation
from actionpipe.core.errors import ActionpipeError
from actionpipe.training.config import load_config
from actionpipe.training.video_dataset import PoseCache, list_videos

from helpers import REPO, shared_path


def cut(source: Path, out: Path, start: float, seconds: float, width: int = 480) -> Path:
    """Frames [start, start + seconds) of ``source``, shrunk to ``width`` px, written as MPEG-4."""
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.set(cv2.CAP_PROP_POS_FRAMES, round(start * fps))
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for _ in range(round(seconds * fps)):
        ok, frame = cap.read()
        if not ok:
            break
        frame = cv2.resize(frame, (width, round(frame.shape[0] * width / frame.shape[1] / 2) * 2),
                           interpolation=cv2.INTER_AREA)
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    cap.release()
    return out


# --- head transfer and freezing (the shipped model, no datasets needed) --------------------------

def test_head_transfer_keeps_shared_class_rows_and_the_whole_backbone():
    from actionpipe.training.train import build_model

    source = find_card("penn-action-stgcn")
    cfg = load_config(None, {"finetune.source": "penn-action-stgcn", "finetune.freeze_blocks": 2})
    classes = ["deadlift", "squat", "zumba", "pullup"]
    model, frozen, carried = build_model(cfg, classes, "cpu")
    assert carried["classes_kept"] == ["squat", "pullup"] and carried["new_classes"] == ["deadlift", "zumba"]
    original = source.load_model("cpu").state_dict()
    own = model.state_dict()
    for key, value in original.items():
        if not key.startswith("fcn."):
            assert torch.equal(own[key], value), key
    for name in ("squat", "pullup"):
        i, j = classes.index(name), source.classes.index(name)
        assert torch.equal(own["fcn.weight"][i], original["fcn.weight"][j])
        assert own["fcn.bias"][i] == original["fcn.bias"][j]
    new_rows = own["fcn.weight"][[0, 2]].flatten(1)
    assert not any(torch.allclose(row, old) for row in new_rows for old in original["fcn.weight"].flatten(1))
    # The settings came from the source: what the copied weights were trained on.
    assert cfg.preprocessing == find_card("penn-action-stgcn").to_dict()["preprocessing"]
    assert cfg.card["pose"] == {"imgsz": 640, "precision": "fp32"} and cfg.optim.schedule == "cosine"


def test_frozen_blocks_do_not_move_while_the_rest_learns():
    from actionpipe.training.finetune import hold_frozen
    from actionpipe.training.train import build_model, build_optimizer

    cfg = load_config(None, {"finetune.source": "penn-action-stgcn", "finetune.freeze_blocks": 3})
    model, frozen, _ = build_model(cfg, ["a", "b"], "cpu")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = build_optimizer(cfg, model)
    assert [g["lr_scale"] for g in optimizer.param_groups] == [1.0, cfg.finetune.backbone_lr]
    model.train()
    hold_frozen(frozen)
    x = torch.randn(4, 3, 32, 17, 1)
    for group in optimizer.param_groups:
        group["lr"] = 0.05 * group["lr_scale"]
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 0, 1]))
    loss.backward()
    optimizer.step()
    after = model.state_dict()
    frozen_keys = [k for k in before if k.startswith(("data_bn.", "st_gcn_networks.0.", "st_gcn_networks.1.",
                                                       "st_gcn_networks.2.", "edge_importance.0",
                                                       "edge_importance.1", "edge_importance.2"))]
    assert len(frozen_keys) > 20
    for key in frozen_keys:   # weights and batch-norm statistics alike
        assert torch.equal(before[key], after[key]), key
    assert not torch.equal(before["st_gcn_networks.5.tcn.2.weight"], after["st_gcn_networks.5.tcn.2.weight"])
    assert not torch.equal(before["fcn.weight"], after["fcn.weight"])


def test_finetune_config_refuses_other_preprocessing_and_freezing_alone(tmp_path):
    with pytest.raises(ActionpipeError, match="fine-tuned model keeps"):
        load_config(None, {"finetune.source": "penn-action-stgcn", "preprocessing.fps": 30})
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"finetune": {"source": "penn-action-stgcn"}, "architecture": {"base_channels": 64}}))
    with pytest.raises(ActionpipeError, match="architecture differs from penn-action-stgcn"):
        load_config(config)
    with pytest.raises(ActionpipeError, match="needs a model to start from"):
        load_config(None, {"finetune.freeze_blocks": 2})
    with pytest.raises(ActionpipeError, match="no such model"):
        load_config(None, {"finetune.source": str(tmp_path / "nothing")})


def test_a_class_with_one_clip_is_said_not_fatal(capsys):
    kp = np.zeros((1, 4, 17, 3), np.float32)
    clips = [Clip(f"a{i}", "a", kp, "coco17", 64, 64, 30.0) for i in range(5)] + [Clip("b0", "b", kp, "coco17", 64, 64, 30.0)]
    train, val = split_validation(clips, 0.2, seed=0)
    assert [c.name for c in train if c.label == "b"] == ["b0"] and all(c.label == "a" for c in val)
    assert "class 'b': only 1 clip, too few to validate" in capsys.readouterr().err


# --- video datasets -------------------------------------------------------------------------------

def test_video_folders_and_csv_list_labels_groups_and_splits(tmp_path):
    for name in ("squat/anna/1.mp4", "squat/anna/2.MOV", "squat/3.mp4", "lunge/1.mkv", "lunge/notes.txt"):
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / name).write_bytes(b"")
    videos = list_videos(tmp_path / "d")
    assert [(v.name, v.label, v.group) for v in videos] == [
        ("lunge/1.mkv", "lunge", None), ("squat/3.mp4", "squat", None),
        ("squat/anna/1.mp4", "squat", "squat/anna"), ("squat/anna/2.MOV", "squat", "squat/anna")]
    labels = tmp_path / "labels.csv"
    labels.write_text("file,label,group,split\na.mp4,squat,p1,train\nb.mp4,squat,p1,\nc.mp4,lunge,,test\n")
    assert [(v.name, v.group, v.split) for v in list_videos(labels, "train")] == [("a.mp4", "p1", "train"),
                                                                                 ("b.mp4", "p1", None)]
    assert [v.name for v in list_videos(labels, "test")] == ["c.mp4"]
    labels.write_text("video,class\na.mp4,squat\n")
    with pytest.raises(ActionpipeError, match="file,label"):
        list_videos(labels)


def test_pose_cache_follows_content_and_settings_not_names(demo_video, tmp_path):
    video = cut(demo_video, tmp_path / "a.mp4", 1.0, 1.0, width=320)
    settings = {"imgsz": 320, "fps": 5}
    cache = PoseCache(settings, tmp_path / "cache", device="cpu")
    pose, cached = cache.pose(video)
    assert not cached and pose.num_frames == 5 and len(list((tmp_path / "cache").iterdir())) == 1
    renamed = video.rename(tmp_path / "renamed.mp4")
    again, cached = cache.pose(renamed)
    assert cached and again.to_dict()["frames"] == pose.to_dict()["frames"]
    cut(demo_video, renamed, 3.0, 1.0, width=320)          # edited in place: new content, same name
    edited, cached = cache.pose(renamed)
    assert not cached and edited.to_dict()["frames"] != pose.to_dict()["frames"]
    other = PoseCache({**settings, "conf": 0.5}, tmp_path / "cache", device="cpu")
    assert other.path_for("0" * 64) != cache.path_for("0" * 64)
    assert not other.pose(renamed)[1] and other.pose(renamed)[1]
    assert len(list((tmp_path / "cache").iterdir())) == 3
    with pytest.raises(ActionpipeError, match="not found"):
        cache.pose(tmp_path / "missing.mp4")


@pytest.fixture(scope="module")
def own_videos(tmp_path_factory):
    """A user's folder: squat (3 clips, two of one session), deadlift (2), walk (1: too few), and a
    broken file; cut from the CC BY gym videos in ../shared/media and samples/demo.mp4."""
    media = shared_path("media")
    root = tmp_path_factory.mktemp("own") / "videos"
    for i, start in enumerate((0.5, 2.5, 4.5)):
        cut(media / "Squat.mp4", root / "squat" / ("session1" if i < 2 else "") / f"squat{i}.mp4", start, 1.6)
    for i, start in enumerate((0.5, 3.5)):
        cut(media / "Deadlift.mp4", root / "deadlift" / f"deadlift{i}.mp4", start, 1.6)
    cut(REPO / "samples" / "demo.mp4", root / "walk" / "walk0.mp4", 2.0, 1.6)
    (root / "deadlift" / "broken.mp4").write_bytes(b"not a video")
    return root


@pytest.mark.slow   # about 1 minute on 2 cores: the pose model at the card's imgsz 640 on 9 clips
def test_train_from_a_model_on_own_videos_then_classify_eval_calibrate(own_videos, tmp_path, run_cli):
    torch.set_num_threads(1)
    run, poses = tmp_path / "run", tmp_path / "poses"
    r = run_cli("train", "--dataset", f"videos:{own_videos}", "--from", "penn-action-stgcn", "--freeze", "2",
                "-o", run, "--epochs", "2", "--set", "val_fraction=0.3", "--threads", "1", "--pose-cache", poses)
    assert r.exit_code == 0, r.stderr
    assert "broken.mp4" in r.stderr and "1 of 7 videos skipped" in r.stderr
    assert "class 'walk': only 1 clip, too few to validate" in r.stderr
    card = find_card(run)
    assert card.classes == ["deadlift", "squat", "walk"] and card.pose_settings() == {"fps": 15, "imgsz": 640, "precision": "fp32"}
    data = card.to_dict()["data"]
    assert data["posed"] == 6 and data["from_cache"] == 0 and data["finetuned_from"]["classes_kept"] == ["squat"]
    assert data["validation_clips"] >= 2 and card.to_dict()["training"]["config"]["finetune"]["freeze_blocks"] == 2

    # A second run poses nothing again: every video comes from the cache.
    (own_videos / "deadlift" / "broken.mp4").unlink()
    again = run_cli("-q", "train", "--dataset", f"videos:{own_videos}", "--from", "penn-action-stgcn",
                    "-o", tmp_path / "again", "--epochs", "1", "--threads", "1", "--pose-cache", poses)
    assert again.exit_code == 0, again.stderr
    assert find_card(tmp_path / "again").to_dict()["data"]["from_cache"] == 6

    r = run_cli("classify", own_videos / "deadlift" / "deadlift0.mp4", "--model", run, "--json")
    assert r.exit_code == 0, r.stderr
    result = json.loads(r.stdout)["results"][0]
    assert result["status"] in ("ok", "unknown") and result["top"][0]["class"] in card.classes

    # Held-out videos as a labels CSV (here: one clip of each class, a test split row among train rows).
    labels = own_videos / "labels.csv"
    labels.write_text("file,label,group,split\nsquat/squat2.mp4,squat,,test\ndeadlift/deadlift1.mp4,deadlift,,test\n"
                      "walk/walk0.mp4,walk,,test\nsquat/session1/squat0.mp4,squat,session1,train\n")
    r = run_cli("eval", "--model", run, "--dataset", f"videos:{labels}", "--split", "test", "--json")
    assert r.exit_code == 0, r.stderr
    metrics = json.loads(r.stdout)
    assert metrics["clips"] == 3 and set(metrics["per_class"]) == {"deadlift", "squat", "walk"}
    confusion = np.array(metrics["confusion"])
    assert confusion.shape == (3, 3) and confusion.sum() + metrics["unanswered"] == 3

    r = run_cli("calibrate", "--model", run, "--views", "1")
    assert r.exit_code == 0, r.stderr
    assert find_card(run).calibration is not None and find_card(run).open_set is not None
