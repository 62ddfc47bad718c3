"""eval takes classify's pose options: --pose-backend, --pose-precision, --speed."""
from __future__ import annotations

import json

import pytest

from actionpipe.pipeline.speed import SPEEDS
from helpers import CLASSES, write_card


def test_eval_speed_choices_come_from_the_library(run_cli, tmp_path):
    r = run_cli("eval", "--dataset", f"videos:{tmp_path / 'labels.csv'}", "--speed", "warp")
    assert r.exit_code == 2
    assert all(name in r.stderr for name in SPEEDS)


@pytest.mark.slow   # the real pose model on a real clip
def test_eval_runs_the_pose_options_it_is_given(short_clip, tmp_path, run_cli):
    card = write_card(tmp_path / "tiny")
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,label\n{short_clip.name},{CLASSES[0]}\n")
    cache = tmp_path / "poses"
    r = run_cli("eval", "--model", card.directory, "--dataset", short_clip.parent, "--labels", labels,
                "--pose-cache", cache, "--imgsz", "320", "--fps", "15", "--device", "cpu", "--json",
                "--pose-backend", "openvino", "--pose-precision", "fp32", "--speed", "fast")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["clips"] == 1
    backend = json.loads((cache / "fp32" / short_clip.stem / "pose.json").read_text())["backend"]
    # OpenVINO at fp32 on every second frame (7.5 fps), interpolated to the model's 15 fps.
    assert backend["name"] == "openvino" and backend["precision"] == "fp32"
    assert backend["interpolated_from_fps"] == 7.5

    # A cached pose made with other settings is not reused: the default speed poses every frame again.
    fp32 = ("--pose-cache", cache, "--imgsz", "320", "--fps", "15", "--device", "cpu", "--json", "--pose-precision", "fp32")
    again = run_cli("eval", "--model", card.directory, "--dataset", short_clip.parent, "--labels", labels, *fp32)
    assert again.exit_code == 0, again.stderr
    assert "made with other pose settings" in again.stderr
    assert "interpolated_from_fps" not in json.loads((cache / "fp32" / short_clip.stem / "pose.json").read_text())["backend"]
    # ... and one made with the same settings is.
    third = run_cli("eval", "--model", card.directory, "--dataset", short_clip.parent, "--labels", labels, *fp32)
    assert third.exit_code == 0, third.stderr
    assert "made with other pose settings" not in third.stderr
    assert json.loads(third.stdout)["top1"] == json.loads(again.stdout)["top1"]
