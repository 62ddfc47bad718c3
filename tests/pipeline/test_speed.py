"""Speed profiles: pose at half the rate, interpolated back to the model's rate."""
from __future__ import annotations

import numpy as np
import pytest

from actionpipe.pose.estimator import PoseEstimator
from actionpipe.pose.posefile import Person, PoseFile, PoseFrame
from actionpipe.pose.openvino import native_precisions
from actionpipe.pipeline.speed import interpolate_pose


def person(track_id: int, x: float, conf: float = 0.9) -> Person:
    kp = np.tile([x, 50.0, conf], (17, 1)).astype(np.float32)
    return Person(track_id, 0.8, np.array([x - 10, 0, x + 10, 100.0]), kp)


def test_linear_motion_is_filled_in_exactly_and_unmatched_people_are_left_out():
    one_seen_once = person(2, 300)
    a, b = person(1, 100), person(1, 120)
    b.keypoints[3, 2] = 0  # joint 3 unseen in the later frame
    pose = PoseFile("coco17", 640, 480, 7.5, [PoseFrame(0, 0.0, [a, one_seen_once]),
                                               PoseFrame(1, 2 / 15, [b])])
    out = interpolate_pose(pose, 15)
    assert out.fps == 15 and [f.index for f in out.frames] == [0, 1, 2]
    assert [f.time_s for f in out.frames] == pytest.approx([0, 1 / 15, 2 / 15])
    middle = out.frames[1].people
    assert [p.track_id for p in middle] == [1]
    assert middle[0].keypoints[0] == pytest.approx([110, 50, 0.9])
    assert middle[0].keypoints[3] == pytest.approx([0, 0, 0])
    assert middle[0].box == pytest.approx([100, 0, 120, 100])
    assert out.frames[0].people == pose.frames[0].people and out.frames[2].people == pose.frames[1].people
    assert out.backend["interpolated_from_fps"] == 7.5
    assert interpolate_pose(pose, 7.5) is pose  # nothing to fill in


def test_half_rate_pose_interpolated_is_close_to_full_rate_pose(demo_video):
    # The man on the roof and the woman walking, 1.5 s to 3.5 s of the sample video.
    estimator = PoseEstimator(imgsz=320, device="cpu")
    full = estimator.estimate_path(demo_video, fps=15, start=1.5, end=3.5)
    half = interpolate_pose(estimator.estimate_path(demo_video, fps=7.5, start=1.5, end=3.5), 15)
    assert half.fps == 15 and abs(half.num_frames - full.num_frames) <= 1
    errors = []
    for f, h in zip(full.frames, half.frames):
        assert h.time_s == pytest.approx(f.time_s, abs=0.02)
        for p in f.people:
            # Nearest interpolated person by box centre (track ids of two runs need not agree).
            centre = (p.box[:2] + p.box[2:]) / 2
            q = min(h.people, key=lambda q: np.linalg.norm((q.box[:2] + q.box[2:]) / 2 - centre))
            seen = (p.keypoints[:, 2] > 0.5) & (q.keypoints[:, 2] > 0.5)
            size = max(p.box[3] - p.box[1], 1)
            errors.append(np.median(np.linalg.norm(p.keypoints[seen, :2] - q.keypoints[seen, :2], axis=1)) / size)
    assert len(errors) >= 40
    assert np.median(errors) < 0.05  # within 5 % of the person's height


def test_classify_fast_gives_the_models_rate_with_half_the_pose_frames(run_cli, demo_video, tmp_path):
    import json

    result = run_cli("-q", "classify", demo_video, "--speed", "fast", "--jsonl", "-", "--keep", tmp_path)
    assert result.exit_code == 0, result.stderr
    line = json.loads(result.stdout.splitlines()[-1])
    pose = PoseFile.load(tmp_path / "demo" / "pose.json")
    assert line["status"] == "ok" and pose.fps == 15 and line["frames"] == pose.num_frames
    assert abs(pose.num_frames - 115) <= 1 and pose.backend["interpolated_from_fps"] == 7.5
    assert pose.backend["precision"] == ("bf16" if "bf16" in native_precisions() else "fp32")
    assert run_cli("classify", demo_video, "--speed", "warp").exit_code == 2


def test_the_pose_runs_in_bf16_where_the_cpu_has_it_unless_a_precision_is_given(monkeypatch):
    from actionpipe.pose import openvino as pose_openvino
    from actionpipe.model.cards import DEFAULT_MODEL, find_card
    from actionpipe.pipeline.classify import Classifier

    card = find_card(DEFAULT_MODEL)

    def precision(**options) -> str:
        return Classifier(card, device="cpu", **options).pose.precision

    native = "bf16" if "bf16" in native_precisions() else "fp32"
    assert precision(speed="fast") == native
    assert precision(speed="fast", pose_precision="fp32") == "fp32"
    # The shipped cards were validated at bf16 (their pose.precision), so normal runs it too.
    assert card.pose.precision == "bf16" and precision(speed="normal") == native and precision() == native
    assert precision(speed="fast", pose_backend="torch") == "fp32"
    # A CPU without bf16 units runs fp32 instead (OpenVINO would emulate bf16, slower); int8 stays int8.
    monkeypatch.setattr(pose_openvino, "native_precisions", lambda: frozenset({"fp32", "int8"}))
    assert precision(speed="fast") == "fp32" and precision() == "fp32"
    assert precision(pose_precision="bf16") == "fp32" and precision(pose_precision="int8") == "int8"
