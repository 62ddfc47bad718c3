"""pose: the real YOLO11n-pose model on real photos and the sample video; every bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionpipe.video.extract import extract_frames
from actionpipe.pose.layouts import COCO17
from actionpipe.core.devices import resolve_device
from actionpipe.pose.estimator import WEIGHTS_SHA256, PoseEstimator, default_weights
from actionpipe.model.cards import default_card
from actionpipe.pose.posefile import PoseFile

from helpers import bad_videos, one_line_error, write_card, write_video

NOSE, L_SHOULDER, R_SHOULDER = COCO17.index("nose"), COCO17.index("left_shoulder"), COCO17.index("right_shoulder")
L_HIP, R_HIP = COCO17.index("left_hip"), COCO17.index("right_hip")
PAN_PX = 12  # per frame, in the source picture's pixels
FRAMES = 6


@pytest.fixture(scope="module")
def estimator() -> PoseEstimator:
    return PoseEstimator(device="cpu", batch=4)


def photo_clip(photo: Path, path: Path, pan: int) -> Path:
    """A few-frame video of a real photo, shifted right by ``pan`` pixels a frame."""
    image = cv2.imread(str(photo))
    h, w = image.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (w, h))
    for i in range(FRAMES):
        shift = np.float32([[1, 0, pan * i], [0, 1, 0]])
        writer.write(cv2.warpAffine(image, shift, (w, h), borderMode=cv2.BORDER_REPLICATE))
    writer.release()
    return path


@pytest.fixture(scope="module")
def zidane_pan(ultralytics_assets, tmp_path_factory) -> Path:
    return photo_clip(ultralytics_assets / "zidane.jpg", tmp_path_factory.mktemp("pose") / "zidane.mp4", PAN_PX)


@pytest.fixture(scope="module")
def zidane_pose(estimator, zidane_pan) -> PoseFile:
    return estimator.estimate_path(zidane_pan)


def by_x(people):
    return sorted(people, key=lambda p: p.box[0])


def test_finds_both_people_with_plausible_keypoints_in_source_pixels(zidane_pose):
    pose = zidane_pose
    assert (pose.width, pose.height, pose.fps, pose.num_frames) == (1280, 720, 10.0, FRAMES)
    assert [f.time_s for f in pose.frames] == pytest.approx([i / 10 for i in range(FRAMES)])
    first = by_x(pose.frames[0].people)
    assert len(first) == 2
    # Ancelotti (left) and Zidane (right) in zidane.jpg, in full-size pixels although the model saw 320.
    assert first[0].box == pytest.approx([147, 200, 1065, 718], abs=25)
    assert first[1].box == pytest.approx([741, 39, 1266, 715], abs=25)
    for p in first:
        k = p.keypoints
        assert p.score > 0.5 and k.shape == (17, 3)
        assert k[NOSE, 1] < k[L_SHOULDER, 1] and k[NOSE, 1] < k[L_HIP, 1] and k[NOSE, 1] < k[R_HIP, 1]
        # Both face the camera: their left shoulder is on the image's right.
        assert k[L_SHOULDER, 0] > k[R_SHOULDER, 0]
        inside = (p.box[0] - 5 <= k[:, 0]) & (k[:, 0] <= p.box[2] + 5) & (p.box[1] - 5 <= k[:, 1]) & (k[:, 1] <= p.box[3] + 5)
        assert inside[k[:, 2] > 0.5].all()


def test_track_ids_stable_while_the_picture_pans(zidane_pose):
    ids = [[p.track_id for p in by_x(f.people)] for f in zidane_pose.frames]
    assert ids == [[1, 2]] * FRAMES
    # The keypoints follow the pan (the model sees 1/4 of the pixels: a few pixels of jitter).
    for person in (0, 1):
        head = [by_x(f.people)[person].keypoints[:5, 0].mean() for f in zidane_pose.frames]
        assert head[-1] - head[0] == pytest.approx(PAN_PX * (FRAMES - 1), abs=12)


def test_frames_folder_gives_the_same_people_in_source_pixels(estimator, zidane_pan, zidane_pose, tmp_path):
    extract_frames(zidane_pan, tmp_path / "f", max_side=640, end=0.3)
    pose = estimator.estimate_path(tmp_path / "f")
    assert (pose.width, pose.height, pose.num_frames) == (1280, 720, 3)
    assert pose.source["frames_dir"] == str(tmp_path / "f")
    for got, ref in zip(pose.frames, zidane_pose.frames):
        assert [p.track_id for p in by_x(got.people)] == [1, 2]
        for a, b in zip(by_x(got.people), by_x(ref.people)):
            assert a.box == pytest.approx(b.box, abs=20)


def test_bus_photo_full_bodies(estimator, ultralytics_assets):
    image = cv2.imread(str(ultralytics_assets / "bus.jpg"))
    people = [d for d in estimator.detect([image])[0] if d.score > 0.7]
    assert len(people) >= 2
    for d in people:
        k = d.keypoints
        assert k[NOSE, 1] < k[L_SHOULDER, 1] < k[L_HIP, 1] < k[COCO17.index("left_ankle"), 1]
        assert k[L_SHOULDER, 0] > k[R_SHOULDER, 0]


def test_demo_video_both_people_keep_their_ids(estimator, demo_video):
    # 1.5 s to 4 s: the man on the roof and the woman walking in, subsampled to 10 fps.
    pose = estimator.estimate_path(demo_video, fps=10, start=1.5, end=4.0)
    assert pose.num_frames == 25 and pose.fps == 10.0 and (pose.width, pose.height) == (1768, 994)
    assert sorted(pose.track_ids()) == [1, 2]
    # The man stands on the roof (upper half), the woman walks on the grass (lower half): each
    # track id stays with one of them.
    upper = {tid: {bool((p.box[1] + p.box[3]) / 2 < 497) for f in pose.frames for p in f.people
                   if p.track_id == tid} for tid in (1, 2)}
    assert sorted(map(tuple, upper.values())) == [(False,), (True,)]
    assert sum(len(f.people) == 2 for f in pose.frames) >= 20


def test_cli_writes_a_valid_pose_file(run_cli, zidane_pan, tmp_path):
    out = tmp_path / "p.json"
    result = run_cli("pose", zidane_pan, "-o", out, "--json", "--end", "0.2", "--max-people", "1")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 2 and summary["track_ids"] == [1]
    doc = json.loads(out.read_text())
    assert doc["weights_sha256"] == WEIGHTS_SHA256 and doc["layout"] == "coco17"
    # No --model: the default model card's settings, as classify takes them (imgsz 640).
    assert doc["joints"] == list(COCO17.joints) and doc["backend"]["imgsz"] == default_card().pose.imgsz
    pose = PoseFile.load(out)
    assert [len(f.people) for f in pose.frames] == [1, 1]
    assert pose.frames[0].people[0].score > 0.8  # the best-scored person was kept


def test_video_without_people_is_valid_and_warns(run_cli, tmp_path):
    video = write_video(tmp_path / "blank.mp4", frames=5)
    out = tmp_path / "p.json"
    result = run_cli("pose", video, "-o", out)
    assert result.exit_code == 0, result.stderr
    assert "warning:" in result.stderr and "no person detected" in result.stderr
    pose = PoseFile.load(out)
    assert pose.num_frames == 5 and all(f.people == [] for f in pose.frames)


def assert_failed_cleanly(result, out: Path, start: str, code: int = 1):
    assert result.exit_code == code, result.stderr
    one_line_error(result, start, at_start=True)
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(("p.json", ".p.json"))) == []


@pytest.mark.parametrize("case", ["missing", "not a video", "truncated", "zero frames"])
def test_bad_video(run_cli, tmp_path, case):
    path, problem = bad_videos(tmp_path)[case]
    out = tmp_path / "p.json"
    assert_failed_cleanly(run_cli("pose", path, "-o", out), out, f"{path}: {problem}")


def test_frames_folder_without_manifest(run_cli, tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "000001.jpg").write_bytes(b"")
    out = tmp_path / "p.json"
    assert_failed_cleanly(run_cli("pose", tmp_path / "frames", "-o", out), out,
                          f"{tmp_path / 'frames'}: no frames.json")


def test_weights_missing_or_wrong_hash(run_cli, tmp_path, zidane_pan):
    out = tmp_path / "p.json"
    missing = tmp_path / "none.pt"
    assert_failed_cleanly(run_cli("pose", zidane_pan, "-o", out, "--weights", missing), out,
                          f"{missing}: pose weights file not found")
    damaged = tmp_path / "damaged.pt"
    data = bytearray(default_weights().read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    assert_failed_cleanly(run_cli("pose", zidane_pan, "-o", out, "--weights", damaged), out,
                          f"{damaged}: pose weights have SHA-256")
    # Other weights are accepted when their hash is given (and it is recorded).
    copy = shutil.copy(default_weights(), tmp_path / "copy.pt")
    result = run_cli("pose", zidane_pan, "-o", out, "--weights", copy, "--weights-sha256", WEIGHTS_SHA256,
                     "--end", "0.1")
    assert result.exit_code == 0, result.stderr
    assert PoseFile.load(out).weights_sha256 == WEIGHTS_SHA256


def test_unwritable_output(run_cli, zidane_pan, tmp_path):
    for out in (tmp_path / "no" / "dir" / "p.json", Path("/proc/p.json")):
        result = run_cli("pose", zidane_pan, "-o", out)
        assert result.exit_code == 1
        one_line_error(result, f"{out}: cannot write", at_start=True)


@pytest.mark.parametrize("args", [["--device", "tpu"], ["--imgsz", "8"], ["--conf", "1.5"],
                                  ["--start", "2", "--end", "1"], ["--weights-sha256", "00"]])
def test_usage_errors_exit_2(run_cli, zidane_pan, tmp_path, args):
    result = run_cli("pose", zidane_pan, "-o", tmp_path / "p.json", *args)
    assert result.exit_code == 2, result.stderr
    assert not (tmp_path / "p.json").exists()


def test_fps_with_a_frames_folder_is_a_usage_error(run_cli, zidane_pan, tmp_path):
    extract_frames(zidane_pan, tmp_path / "f", end=0.1)
    result = run_cli("pose", tmp_path / "f", "-o", tmp_path / "p.json", "--fps", "5")
    assert result.exit_code == 2 and "frames folder" in result.stderr


def test_device_resolution(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr("actionpipe.core.devices.nvidia_gpu_present", lambda: False)
    assert resolve_device("auto") == "cpu"   # no GPU device at all: torch is not even asked
    with pytest.raises(Exception, match="CUDA is not available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr("actionpipe.core.devices.nvidia_gpu_present", lambda: True)
    assert (resolve_device("auto"), resolve_device("cuda"), resolve_device("cuda:1")) == ("cuda:0", "cuda:0", "cuda:1")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(Exception, match="only 2 CUDA"):
        resolve_device("cuda:2")


def test_cli_pose_with_a_model_takes_the_cards_pose_settings(run_cli, zidane_pan, tmp_path):
    """pose --model reproduces classify's pose stage: the card's imgsz, conf and rate; flags override."""
    from actionpipe.model.cards import ModelCard

    card_dir = write_card(tmp_path / "card").directory
    doc = json.loads((card_dir / "card.json").read_text())
    doc["pose"] = {"imgsz": 256, "conf": 0.4, "fps": 10}
    (card_dir / "card.json").write_text(json.dumps(doc))
    assert ModelCard.load(card_dir).pose_settings(conf=0.3) == {"imgsz": 256, "conf": 0.3, "fps": 10}
    out = tmp_path / "p.json"
    result = run_cli("pose", zidane_pan, "-o", out, "--model", card_dir, "--end", "0.5", "--pose-backend", "torch")
    assert result.exit_code == 0, result.stderr
    pose = PoseFile.load(out)
    assert (pose.backend["imgsz"], pose.backend["conf"], pose.fps) == (256, 0.4, 10)
    result = run_cli("pose", zidane_pan, "-o", out, "--model", card_dir, "--end", "0.5", "--imgsz", "320",
                     "--fps", "5", "--pose-backend", "torch")
    assert result.exit_code == 0, result.stderr
    pose = PoseFile.load(out)
    assert (pose.backend["imgsz"], pose.backend["conf"], pose.fps) == (320, 0.4, 5)


def test_first_ultralytics_import_on_a_machine_says_nothing_on_stdout(tmp_path):
    """On a fresh machine ultralytics announces its new settings file on stdout, which landed in the
    middle of `eval --json` output; the pose model's loader keeps it on stderr."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "YOLO_CONFIG_DIR": str(tmp_path)}  # no settings file yet: the first import
    r = subprocess.run([sys.executable, "-c", "from actionpipe.pose.estimator import _load_yolo, default_weights; "
                        "_load_yolo(default_weights())"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert any(tmp_path.rglob("settings.json")), "ultralytics did not create its settings: nothing was tested"
    assert r.stdout == ""
