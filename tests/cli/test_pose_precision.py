"""--pose-precision on every command that takes it: the choices are devices.POSE_PRECISIONS (int8
included), a bad one is a usage error naming them, and int8 runs the pose stage."""
from __future__ import annotations

import json

import click
import pytest

from actionpipe.cli.main import main
from actionpipe.core.devices import POSE_PRECISIONS
from helpers import REPO, one_line_error

SQUAT = REPO / "samples" / "squat.mp4"
COMMANDS = sorted(name for name, command in main.commands.items()
                  if any(p.name == "pose_precision" for p in command.params))


def test_every_pose_precision_option_offers_the_librarys_list():
    assert {"pose", "classify", "render", "watch", "eval"} <= set(COMMANDS)
    for name in COMMANDS:
        [option] = [p for p in main.commands[name].params if p.name == "pose_precision"]
        assert isinstance(option.type, click.Choice) and tuple(option.type.choices) == POSE_PRECISIONS
    assert "int8" in POSE_PRECISIONS


@pytest.mark.parametrize("name", COMMANDS)
def test_a_bad_pose_precision_is_a_usage_error_naming_the_choices(run_cli, name):
    r = run_cli(name, "--pose-precision", "int4")
    assert r.exit_code == 2 and r.stdout == ""
    one_line_error(r, "Invalid value for '--pose-precision'")
    assert all(f"'{p}'" in r.stderr for p in POSE_PRECISIONS), r.stderr


@pytest.mark.slow
def test_pose_runs_at_int8(run_cli, tmp_path):
    out = tmp_path / "p.json"
    r = run_cli("pose", SQUAT, "-o", out, "--pose-precision", "int8", "--end", "0.5", "--imgsz", "640", "--json")
    assert r.exit_code == 0, r.stderr
    pose = json.loads(out.read_text())
    assert pose["backend"]["precision"] == "int8" and all(f["people"] for f in pose["frames"])
