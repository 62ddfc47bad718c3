"""Bad input, round 2 (issue 28), the command line's side: every size option has an upper bound and
every float option refuses NaN and infinity (one click type each, checked before any work), every
usage error exits 2 naming its option (``--set`` and ``--dataset`` too), and every ``--json``
output is one document alone on stdout. Files written and read: test_inputs_round2_files.py."""
from __future__ import annotations

import json
import math

import click
import pytest

from actionpipe.cli.main import main
from actionpipe.cli.options import FiniteFloat
from actionpipe.core import limits
from actionpipe.core.errors import ActionpipeError, UsageError
from helpers import REPO, moving_pose, one_line_error

SQUAT = REPO / "samples" / "squat.mp4"
NOT_FINITE = ["nan", "NaN", "inf", "-inf", "Infinity", "1e309"]
PLAIN_INTEGERS = {"--seed", "--label-index"}   # numbers that size nothing


def _options():
    for name, command in main.commands.items():
        for param in command.params:
            if isinstance(param, click.Option):
                yield name, param


# --- every number option: one type, bounded, finite --------------------------------------------

def test_every_float_option_is_a_finite_float_and_every_integer_option_is_bounded():
    floats = ints = 0
    for name, param in _options():
        where = f"{name} {param.opts[0]}"
        assert param.type is not click.FLOAT, f"{where}: a plain float (use cli.options.FiniteFloat)"
        if isinstance(param.type, click.FloatRange):
            assert isinstance(param.type, FiniteFloat), where
            for text in NOT_FINITE:
                with pytest.raises(click.BadParameter, match="is not a finite number"):
                    param.type.convert(text, param, None)
            floats += 1
        elif isinstance(param.type, click.IntRange):
            assert param.type.max is not None, f"{where}: no upper bound (see core.limits)"
            ints += 1
        elif param.type is click.INT:
            assert param.opts[0] in PLAIN_INTEGERS, f"{where}: an unbounded integer"
    assert floats >= 20 and ints >= 25


@pytest.mark.parametrize("args, option, bound", [
    (["pose", SQUAT, "-o", "p.json", "--imgsz", "100000"], "--imgsz", limits.MAX_IMGSZ),
    (["pose", SQUAT, "-o", "p.json", "--batch", "1000"], "--batch", limits.MAX_POSE_BATCH),
    (["pose", SQUAT, "-o", "p.json", "--max-people", "100000"], "--max-people", limits.MAX_PEOPLE),
    (["pack", "p.json", "-o", "s.npz", "--frames", "100000000"], "--frames", limits.MAX_FRAMES),
    (["pack", "p.json", "-o", "s.npz", "--max-people", "1000000"], "--max-people", limits.MAX_PEOPLE),
    (["pack", "p.json", "-o", "s.npz", "--fps", "1e300"], "--fps", f"{limits.MAX_FPS}"),
    (["infer", "s.npz", "--batch", "1000000000"], "--batch", limits.MAX_BATCH),
    (["classify", SQUAT, "--imgsz", "100000"], "--imgsz", limits.MAX_IMGSZ),
    (["classify", SQUAT, "--window", "1e300"], "--window", f"{limits.MAX_WINDOW_S}"),
    (["classify", SQUAT, "--engine", "ray", "--pose-workers", "1000000"], "--pose-workers", limits.MAX_WORKERS),
    (["render", SQUAT, "-o", "r.mp4", "--imgsz", "100000"], "--imgsz", limits.MAX_IMGSZ),
    (["watch", "0", "--imgsz", "100000"], "--imgsz", limits.MAX_IMGSZ),
    (["extract", SQUAT, "-o", "frames", "--max-side", "1000000"], "--max-side", limits.MAX_SIDE),
    (["convert", "p.json", "-o", "k.json", "--width", "1000000"], "--width", limits.MAX_SIDE),
    (["train", "-o", "run", "--threads", "1000000"], "--threads", limits.MAX_THREADS),
    (["eval", "--dataset", "penn:x", "--imgsz", "100000"], "--imgsz", limits.MAX_IMGSZ),
    (["calibrate", "--model", "general-stgcn", "--views", "1000000"], "--views", limits.MAX_VIEWS),
])
def test_sizes_past_their_bound_are_refused_before_any_work(run_cli, tmp_path, monkeypatch, args, option, bound):
    # Not run unbounded: --imgsz 100000 and pack --frames 100000000 would allocate ~24 GB.
    monkeypatch.chdir(tmp_path)
    r = run_cli(*args)
    assert r.exit_code == 2 and r.stdout == ""
    one_line_error(r, f"Invalid value for '{option}'")
    assert f"<={bound}" in r.stderr and f"{args[0]} --help'" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_library_keeps_the_same_bounds():
    from actionpipe.model.card_sections import InferenceSection, PoseSection
    from actionpipe.pose.estimator import PoseEstimator
    from actionpipe.skeleton.pack import PackSpec

    with pytest.raises(UsageError, match=f"imgsz=100000 \\(32..{limits.MAX_IMGSZ}\\)"):
        PoseEstimator(imgsz=100_000)
    with pytest.raises(ActionpipeError, match=f"frames must be a whole number from 1 to {limits.MAX_FRAMES}"):
        PackSpec(frames=100_000_000)
    with pytest.raises(ActionpipeError, match=f"max_people must be a whole number from 1 to {limits.MAX_PEOPLE}"):
        PackSpec(max_people=10 ** 6)
    with pytest.raises(ActionpipeError, match="pose.imgsz must be a whole number from 32 to"):
        PoseSection(imgsz=100_000)
    with pytest.raises(ActionpipeError, match="inference.window_frames must be a whole number from 1 to"):
        InferenceSection(window_frames=10 ** 9)


def test_the_library_refuses_non_finite_rates_and_windows():
    from actionpipe.pipeline.classify import Classifier
    from actionpipe.skeleton.pack import PackSpec
    from actionpipe.video.reader import read_frames

    with pytest.raises(ActionpipeError, match="fps must be a positive number"):
        next(read_frames(SQUAT, fps=math.nan))
    with pytest.raises(ActionpipeError, match="fps must be a positive number up to"):
        PackSpec(fps=math.inf)
    classifier = Classifier.__new__(Classifier)   # configure() alone: no model needed
    for window in (math.nan, math.inf, 1e300):
        with pytest.raises(ActionpipeError, match="must be positive seconds up to"):
            classifier.configure(window_s=window)


# --- NaN and infinity on the command line and in configs ----------------------------------------

@pytest.mark.parametrize("option, value", [("--fps", "nan"), ("--fps", "1e309"), ("--window", "nan"),
                                           ("--window", "1e309"), ("--stride", "inf"), ("--conf", "nan"),
                                           ("--min-track-s", "nan")])
def test_classify_refuses_non_finite_numbers(run_cli, option, value):
    extra = ["--window", "2"] if option == "--stride" else []
    r = run_cli("classify", SQUAT, option, value, *extra)
    assert r.exit_code == 2 and r.stdout == ""
    one_line_error(r, f"Invalid value for '{option}': '{value}' is not a finite number")


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e309"])
def test_set_refuses_non_finite_numbers(run_cli, tmp_path, value):
    r = run_cli("train", "-o", tmp_path / "run", "--dataset", "penn:x", "--set", f"optim.lr={value}")
    assert r.exit_code == 2
    one_line_error(r, f"--set optim.lr={value}: '{value}' is not a finite number")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, text, where", [
    ("config.json", '{"optim": {"lr": NaN}}', "NaN is not JSON"),
    ("config.json", '{"optim": {"lr": 1e999}}', "out of range"),
    ("config.yaml", "optim:\n  lr: .nan\n", "config optim.lr: not a finite number"),
    ("config.yaml", "architecture:\n  dropout: .inf\n", "config architecture.dropout: not a finite number")])
def test_a_config_file_with_non_finite_numbers_is_its_files_error(run_cli, tmp_path, name, text, where):
    config = tmp_path / name
    config.write_text(text)
    r = run_cli("train", "--config", config, "-o", tmp_path / "run", "--dataset", "penn:x")
    assert r.exit_code == 1
    one_line_error(r, f"{config}: ", at_start=True)
    assert where in r.stderr


# --- usage errors exit 2 and name the option -----------------------------------------------------

@pytest.mark.parametrize("args, said", [
    (["--set", "optim.lr=abc"], "--set optim.lr: config optim.lr: expected float, got 'abc'"),
    (["--set", "optim.lrr=1"], "--set optim.lrr: config optim: unknown key(s) lrr"),
    (["--set", "bogus.lr=1"], "--set bogus.lr: 'bogus' is not a config section"),
    (["--set", "val_fraction=2"], "--set val_fraction: val_fraction must be in [0, 1)"),
    (["--freeze", "3"], "--freeze: finetune.freeze_blocks (--freeze) needs a model to start from (--from)"),
    (["--dataset", "nope:x"], "--dataset nope:x: unknown dataset"),
])
def test_bad_overrides_and_dataset_specs_are_usage_errors_naming_the_option(run_cli, tmp_path, args, said):
    config = tmp_path / "config.json"
    config.write_text('{"optim": {"epochs": 2}}')
    dataset = [] if "--dataset" in args else ["--dataset", "penn:x"]
    r = run_cli("train", "--config", config, "-o", tmp_path / "run", *dataset, *args)
    assert r.exit_code == 2
    one_line_error(r, said)
    assert str(config) not in r.stderr and not (tmp_path / "run").exists()


def test_the_same_bad_value_in_the_config_file_is_the_files_error(run_cli, tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"optim": {"lr": "abc"}}')
    r = run_cli("train", "--config", config, "-o", tmp_path / "run", "--dataset", "penn:x")
    assert r.exit_code == 1
    one_line_error(r, f"{config}: config optim.lr: expected float, got 'abc'")


@pytest.mark.parametrize("args", [["eval", "--dataset", "nope:x"],
                                  ["calibrate", "--model", "general-stgcn", "--dataset", "nope:x"]])
def test_eval_and_calibrate_refuse_a_bad_dataset_spec_as_usage(run_cli, args):
    r = run_cli(*args)
    assert r.exit_code == 2
    one_line_error(r, "--dataset nope:x: unknown dataset: use penn:PATH")


def test_click_usage_errors_are_one_line_too(run_cli):
    r = run_cli("pack", "p.json", "-o", "s.npz", "--frames", "0")
    assert r.exit_code == 2
    one_line_error(r, "Invalid value for '--frames': 0 is not in the range")
    r = run_cli("classify")
    assert r.exit_code == 2
    one_line_error(r, "Missing argument 'INPUTS...'")


# --- stdout holds one document -------------------------------------------------------------------

@pytest.mark.parametrize("args", [["pose", SQUAT, "-o", "-"], ["pack", "p.json", "-o", "-"], ["infer", "s.npz"],
                                  ["infer", "s.npz", "-o", "-"], ["convert", "p.json", "-o", "-"],
                                  ["render", SQUAT, "-o", "-"], ["render", SQUAT, "-o", "r.mp4", "--save-scores", "-"],
                                  ["eval", "--dataset", "penn:x", "--html", "-"]])
def test_json_and_another_output_on_stdout_are_refused(run_cli, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    r = run_cli(*args, "--json")
    assert r.exit_code == 2 and r.stdout == ""
    one_line_error(r, "--json and ")
    assert "both write to stdout" in r.stderr and list(tmp_path.iterdir()) == []


def test_pack_and_infer_have_json_summaries(run_cli, tmp_path):
    from helpers import write_card

    card = write_card(tmp_path / "tiny")
    moving_pose(12).save(tmp_path / "p.json")
    r = run_cli("pack", tmp_path / "p.json", "-o", tmp_path / "s.npz", "--model", card.directory, "--json")
    assert r.exit_code == 0, r.stderr
    packed = json.loads(r.stdout)
    assert packed["output"] == str(tmp_path / "s.npz") and packed["shape"][:2] == [1, 3]
    r = run_cli("infer", tmp_path / "s.npz", "-o", tmp_path / "scores.json", "--model", card.directory,
                "--device", "cpu", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout) == {"output": str(tmp_path / "scores.json"), "samples": 1, "model": "tiny",
                                    "classes": 3}
