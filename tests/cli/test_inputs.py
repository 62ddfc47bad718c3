"""Bad input is one clean line and a non-zero exit: library noise, non-finite numbers, degenerate
and mistyped samples, deep JSON, unreadable videos and folders, and values our formats do not have."""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from actionpipe.core import console
from actionpipe.core.errors import ActionpipeError
from actionpipe.core.fileio import write_json
from actionpipe.skeleton.pack import pack_people
from helpers import moving_pose, one_line_error, write_card


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("work")
    card = write_card(d / "tiny")
    sample = pack_people(moving_pose(20), card.preprocessing)
    sample.save(d / "s.npz")
    return SimpleNamespace(dir=d, card=card, sample=sample, model=["--model", str(card.directory), "--device", "cpu"])


def save_arrays(path, sample, **replace):
    """A sample file with some of its arrays replaced (shapes and dtypes the packer never writes)."""
    arrays = {"data": sample.data, "track_ids": sample.track_ids, "frame_indices": sample.frame_indices,
              "times": sample.times, "meta": np.array(json.dumps(sample.meta))}
    np.savez(path, **{**arrays, **replace})
    return path


# --- 6. stdout carries results only ---------------------------------------------------------------

def test_imgsz_is_rounded_here_and_said_on_stderr(capsys):
    from actionpipe.pose.estimator import PoseEstimator

    assert PoseEstimator(imgsz=100).imgsz == 128
    captured = capsys.readouterr()
    assert captured.out == "" and "imgsz 100 is not a multiple of 32; using 128" in captured.err


def test_stdout_is_json_lines_and_an_error_is_one_line(work, short_clip, tmp_path):  # noqa: F811
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(short_clip.read_bytes()[:3000])  # FFmpeg: "moov atom not found"
    r = subprocess.run([sys.executable, "-c", "from actionpipe.cli.main import main; main()", "-q", "classify",
                        str(broken), str(short_clip), "--imgsz", "100", "--fps", "5", "--jsonl", "-",
                        "--pose-backend", "torch", *work.model], capture_output=True, text=True)
    assert r.returncode == 1
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert [d["status"] == "error" for d in lines] == [True, False]
    errors = [line for line in r.stderr.splitlines() if not line.startswith("warning: ")]
    assert errors == [f"actionpipe: error: {broken}: not a readable video (OpenCV could not open it)"], r.stderr


def test_library_warnings_are_silenced():
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        console.quiet_libraries()
        torch.nn.functional.softmax(torch.ones(2, 2))  # torch's "implicit dimension" UserWarning
        np.asarray([1e308], dtype=np.float32)           # numpy's "overflow encountered in cast"
    assert caught == []


# --- 7. non-finite numbers --------------------------------------------------------------------------

def test_huge_input_data_is_an_error_not_nan_probabilities(work, tmp_path, run_cli):
    card = write_card(tmp_path / "motion", aggregate="motion")  # motion-weighted windows make NaN of data * 1e30
    path = save_arrays(tmp_path / "huge.npz", work.sample, data=work.sample.data * 1e30)
    r = run_cli("infer", path, "--model", card.directory, "--device", "cpu", "-o", tmp_path / "scores.json")
    assert r.exit_code == 1
    one_line_error(r, f"{path}: the model's output is not finite")
    assert not (tmp_path / "scores.json").exists()


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_nan_in_a_scores_file_is_one_line(work, tmp_path, run_cli, fmt):
    path = tmp_path / "scores.json"
    path.write_text('{"format": "actionpipe.scores", "format_version": 1, "classes": ["a", "b"], '
                    '"items": [{"source": "x", "probabilities": [NaN, 0.5]}]}')
    r = run_cli("report", path, "--format", fmt)
    assert r.exit_code == 1 and r.stdout == ""
    one_line_error(r, f"{path}: not a valid scores file: NaN is not JSON")


def test_non_finite_numbers_are_never_written(tmp_path):
    with pytest.raises(ActionpipeError, match="NaN or infinity"):
        write_json(tmp_path / "x.json", {"p": [0.5, float("nan")]})
    assert list(tmp_path.iterdir()) == []


# --- 8 and 9. degenerate, mistyped and broken sample files ------------------------------------------

@pytest.mark.parametrize("shape, problem", [((1, 3, 0, 17, 2), "data has no frames (T = 0)"),
                                            ((2, 3, 20, 17, 2), "data holds 2 clips (N = 2); a sample file holds one"),
                                            ((1, 3, 20, 17, 0), "data has no person slots (M = 0)")])
def test_degenerate_samples_are_refused_naming_the_file(work, tmp_path, run_cli, shape, problem):
    s = work.sample
    data = np.zeros(shape, np.float32)
    path = save_arrays(tmp_path / "bad.npz", s, data=data, track_ids=s.track_ids[:shape[4]],
                       frame_indices=s.frame_indices[:shape[2]], times=s.times[:shape[2]])
    r = run_cli("infer", path, *work.model)
    assert r.exit_code == 1 and r.stdout == ""
    one_line_error(r, f"{path}: {problem}")


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_float64_and_int64_data_are_cast(work, tmp_path, run_cli, dtype):
    reference = save_arrays(tmp_path / "f32.npz", work.sample, data=work.sample.data.astype(dtype).astype(np.float32))
    other = save_arrays(tmp_path / "other.npz", work.sample, data=work.sample.data.astype(dtype))
    r = run_cli("infer", reference, other, *work.model)
    assert r.exit_code == 0, r.stderr
    a, b = json.loads(r.stdout)["items"]
    assert a["probabilities"] == b["probabilities"]


def test_truncated_npz_is_one_line(work, tmp_path, run_cli):
    path = tmp_path / "cut.npz"
    path.write_bytes((work.dir / "s.npz").read_bytes()[:300])
    r = run_cli("infer", path, *work.model)
    assert r.exit_code == 1
    one_line_error(r, f"{path}: not a valid sample file")


@pytest.mark.parametrize("command", [["pack"], ["report"], ["convert", "-o", "out.json"]])
def test_deeply_nested_json_is_one_line(tmp_path, run_cli, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    args = [command[0], path, *command[1:]] + (["-o", "s.npz"] if command == ["pack"] else [])
    r = run_cli(*args)
    assert r.exit_code == 1
    one_line_error(r, f"{path}: not a valid ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.json"]


# --- 10. unreadable videos and folders in a batch ----------------------------------------------------

def _without_root_file_access() -> None:
    """In the child before exec: drop root's permission to ignore file modes (CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH) from the bounding set, so the CLI meets modes as any user does."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_unreadable_videos_and_folders_are_failures_said_per_path(work, short_clip, tmp_path):  # noqa: F811
    folder = tmp_path / "folder"
    (folder / "locked").mkdir(parents=True)
    for path in (tmp_path / "good.mp4", tmp_path / "unreadable.mp4", folder / "good.mp4", folder / "locked" / "x.mp4"):
        shutil.copy(short_clip, path)
    (folder / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    os.chmod(tmp_path / "unreadable.mp4", 0)
    os.chmod(folder / "locked", 0)
    try:
        r = subprocess.run([sys.executable, "-c", "from actionpipe.cli.main import main; main()", "-q", "classify",
                            str(tmp_path / "good.mp4"), str(tmp_path / "unreadable.mp4"), str(folder), "--fps", "5",
                            "--jsonl", "-", "--pose-backend", "torch", *work.model], capture_output=True, text=True,
                           preexec_fn=_without_root_file_access if os.geteuid() == 0 else None)
    finally:
        os.chmod(folder / "locked", 0o755)
    assert r.returncode == 1, r.stderr
    status = {d["video"].removeprefix(f"{tmp_path}/"): (d["status"], d.get("error", ""))
              for d in map(json.loads, r.stdout.splitlines())}
    assert set(status) == {"good.mp4", "unreadable.mp4", "folder/good.mp4", "folder/gone.mp4"}
    assert status["good.mp4"][0] != "error" and status["folder/good.mp4"][0] != "error"
    assert "permission denied" in status["unreadable.mp4"][1]
    assert "dangling symbolic link" in status["folder/gone.mp4"][1]
    assert f"actionpipe: error: {folder / 'locked'}: cannot read folder (Permission denied)" in r.stderr


# --- 11. smaller -------------------------------------------------------------------------------------

def test_duration_is_the_videos_not_the_pose_rates(work, short_clip, run_cli):  # noqa: F811
    r = run_cli("classify", short_clip, "--fps", "0.1", "--jsonl", "-", "--pose-backend", "torch", *work.model)
    assert json.loads(r.stdout)["duration_s"] == 0.8  # 24 frames at 30 fps, though one frame at 0.1 fps


def _card_variant(work, tmp_path, edit, weights: bytes | None = None) -> Path:
    folder = tmp_path / "variant"
    shutil.copytree(work.card.directory, folder)
    card = json.loads((folder / "card.json").read_text())
    edit(card)
    (folder / "card.json").write_text(json.dumps(card))
    if weights is not None:
        (folder / "weights.pt").write_bytes(weights)
    return folder


@pytest.mark.parametrize("edit, problem", [
    (lambda c: c["inference"].update(window_frames=0), "inference.window_frames must be a whole number from 1 to"),
    (lambda c: c["inference"].update(window_stride=0), "inference.window_stride must be a whole number from 1 to"),
    (lambda c: c["preprocessing"].update(fps=0), "fps must be a positive number"),
    (lambda c: c.update(preprocessing={"layout": "coco17", "normalisation": "body", "max_peple": 1}),
     "preprocessing: unknown key(s) 'max_peple', 'normalisation'"),
    (lambda c: c["weights"].update(sha256=None), "cannot load weights: the file is empty")])
def test_bad_cards_are_one_line(work, tmp_path, run_cli, edit, problem):
    folder = _card_variant(work, tmp_path, edit, weights=b"")
    r = run_cli("infer", work.dir / "s.npz", "--model", folder, "--device", "cpu")
    assert r.exit_code == 1
    one_line_error(r, problem)


def test_unknown_keys_in_a_pose_file_are_refused(tmp_path, run_cli):
    pose = moving_pose(5).to_dict()
    pose["frames"][0]["poeple"] = []
    (tmp_path / "p.json").write_text(json.dumps(pose))
    r = run_cli("pack", tmp_path / "p.json", "-o", tmp_path / "s.npz")
    assert r.exit_code == 1
    one_line_error(r, "frame 0: unknown key(s) 'poeple'")


@pytest.fixture(scope="module")
def frames_dir(demo_video, tmp_path_factory):
    from actionpipe.video.extract import extract_frames

    out = tmp_path_factory.mktemp("extract") / "frames"
    extract_frames(demo_video, out, end=0.1, max_side=64)
    return out


def test_extract_folder_gets_umask_permissions(frames_dir):
    from actionpipe.core import fileio

    assert frames_dir.stat().st_mode & 0o777 == 0o777 & ~fileio._UMASK


@pytest.mark.parametrize("name", ["../outside.jpg", "/etc/hostname"])
def test_frames_manifest_cannot_name_files_outside_its_folder(frames_dir, tmp_path, run_cli, name):
    folder = tmp_path / "frames"
    shutil.copytree(frames_dir, folder)
    manifest = json.loads((folder / "frames.json").read_text())
    manifest["frames"][0]["file"] = name
    (folder / "frames.json").write_text(json.dumps(manifest))
    r = run_cli("pose", folder, "-o", tmp_path / "p.json")
    assert r.exit_code == 1
    one_line_error(r, f"frame file {name!r} is not a file name inside the frames folder")
