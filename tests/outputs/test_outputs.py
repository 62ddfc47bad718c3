"""Outputs never harm a user's files: devices, FIFOs and stdout are written in place, an output that
is an input is refused, only our own JSONL is appended to, and killed runs leave no temp files."""
from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from actionpipe.pipeline.classify import keep_names
from actionpipe.skeleton.pack import pack_people
from helpers import moving_pose, one_line_error, write_card


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny model, a pose file and a sample packed from it."""
    d = tmp_path_factory.mktemp("work")
    card = write_card(d / "tiny")
    moving_pose(20).save(d / "p.json")
    pack_people(moving_pose(20), card.preprocessing).save(d / "s.npz")
    return SimpleNamespace(card=card, pose=d / "p.json", sample=d / "s.npz")


def writer_args(work, command):
    """Each single-file writer's arguments up to ``-o``."""
    return {"pack": ["pack", work.pose, "--model", work.card.directory],
            "infer": ["infer", work.sample, "--model", work.card.directory, "--device", "cpu"],
            "convert": ["convert", work.pose, "--to", "kinetics"]}[command]


# --- 1. devices, FIFOs, sockets, stdout -----------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="making device nodes needs root")
@pytest.mark.parametrize("command", ["pack", "infer", "convert"])
def test_a_device_output_is_written_in_place_never_replaced(work, tmp_path, run_cli, command):
    null, full = tmp_path / "null", tmp_path / "full"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # what /dev/full is
    r = run_cli(*writer_args(work, command), "-o", null)
    assert r.exit_code == 0, r.stderr
    r = run_cli(*writer_args(work, command), "-o", full)
    assert r.exit_code == 1
    one_line_error(r, f"{full}: cannot write: No space left on device")
    assert stat.S_ISCHR(null.stat().st_mode) and stat.S_ISCHR(full.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]


def test_a_fifo_output_streams_to_its_reader(work, tmp_path, run_cli):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = {}
    reader = threading.Thread(target=lambda: got.update(data=fifo.read_bytes()), daemon=True)
    reader.start()
    r = run_cli(*writer_args(work, "pack"), "-o", fifo)
    reader.join(timeout=60)
    assert r.exit_code == 0, r.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    with np.load(io.BytesIO(got["data"])) as z:
        assert z["data"].shape == (1, 3, 20, 17, 2)


def test_dash_is_stdout(work, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run_cli(*writer_args(work, "pack"), "-o", "-")
    assert r.exit_code == 0, r.stderr
    with np.load(io.BytesIO(r.stdout_bytes)) as z:
        assert z["data"].shape == (1, 3, 20, 17, 2)
    r = run_cli(*writer_args(work, "infer"), "-o", "-")
    assert r.exit_code == 0 and json.loads(r.stdout)["format"] == "actionpipe.scores"
    assert list(tmp_path.iterdir()) == []  # no file named "-"


def test_a_socket_is_refused(work, tmp_path, run_cli):
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        r = run_cli("pack", work.pose, "-o", path)
        assert r.exit_code == 1
        one_line_error(r, f"{path}: is a socket or block device; refusing to write to it")
        assert stat.S_ISSOCK(path.stat().st_mode)


def test_dev_stdout_redirected_to_a_file_is_written_in_place(work, tmp_path):
    """``> out.json`` makes /dev/stdout a regular file the shell holds open: renaming onto it would
    lose the output (and replace the /dev/stdout link)."""
    out = tmp_path / "out.json"
    with open(out, "wb") as f:
        inode = os.fstat(f.fileno()).st_ino
        subprocess.run([sys.executable, "-c", "from actionpipe.cli.main import main; main()",
                        *map(str, writer_args(work, "infer")), "-o", "/dev/stdout"], stdout=f, check=True)
    assert out.stat().st_ino == inode and json.loads(out.read_text())["format"] == "actionpipe.scores"
    assert os.path.islink("/dev/stdout")


# --- 2. an output that is an input ------------------------------------------------------------------

def test_an_output_that_is_an_input_is_refused(work, tmp_path, run_cli, short_clip):  # noqa: F811
    pose, sample, video = tmp_path / "p.json", tmp_path / "s.npz", tmp_path / "clip.mp4"
    for src, dst in ((work.pose, pose), (work.sample, sample), (short_clip, video)):
        shutil.copy(src, dst)
    (tmp_path / "link.json").symlink_to(pose)
    os.link(pose, tmp_path / "hard.json")
    frames = tmp_path / "frames"  # an earlier extract output that now also holds the video
    frames.mkdir()
    (frames / "frames.json").write_text("{}")
    shutil.copy(short_clip, frames / "clip.mp4")
    model = ["--model", work.card.directory, "--device", "cpu"]
    cases = [["pack", pose, "-o", pose], ["pack", pose, "-o", f"{tmp_path}/./p.json"],
             ["pack", tmp_path / "link.json", "-o", pose], ["pack", pose, "-o", tmp_path / "hard.json"],
             ["infer", sample, *model, "-o", sample], ["convert", pose, "-o", pose],
             ["pose", video, "-o", video], ["render", video, "-o", video, "--pose", pose, *model],
             ["render", video, "-o", tmp_path / "out.mp4", "--pose", pose, "--save-scores", pose, *model],
             ["extract", frames / "clip.mp4", "-o", frames], ["classify", video, "--jsonl", video, *model]]
    before = {p: p.read_bytes() for p in (pose, sample, video, frames / "clip.mp4")}
    for args in cases:
        r = run_cli(*args)
        assert r.exit_code == 2, (args, r.stderr)
        one_line_error(r, "refusing to ")
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "frames", "hard.json", "link.json",
                                                          "p.json", "s.npz"]


# --- 3. JSONL: only ever our own file; devices and FIFOs work ----------------------------------------

def test_jsonl_refuses_a_file_that_is_not_results(work, tmp_path, run_cli, short_clip):  # noqa: F811
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nline two without a newline")
    other_video = tmp_path / "other.mp4"
    shutil.copy(short_clip, other_video)
    config = tmp_path / "config.json"
    config.write_text('{"epochs": 3}')  # one JSON document, no newline: not a cut-off line of ours
    non_utf8 = tmp_path / "results.jsonl"
    non_utf8.write_bytes(b'{"video": "a.mp4", "status": "ok"}\n\xff\xfe not text\n')
    for target, flags in ((notes, []), (other_video, []), (config, []), (non_utf8, ["--skip-existing"])):
        before = target.read_bytes()
        r = run_cli("classify", short_clip, "--model", work.card.directory, "--device", "cpu",
                    "--jsonl", target, *flags)
        assert r.exit_code == 1, (target, r.stderr)
        one_line_error(r, f"{target}: ")
        assert "refusing to append" in r.stderr and target.read_bytes() == before


def test_jsonl_to_dev_null_and_to_a_fifo(work, tmp_path, run_cli, short_clip):  # noqa: F811
    args = ["classify", short_clip, "--model", work.card.directory, "--device", "cpu", "--fps", "5"]
    r = run_cli(*args, "--jsonl", "/dev/null")
    assert r.exit_code == 0, r.stderr
    fifo = tmp_path / "results"
    os.mkfifo(fifo)
    got = {}
    reader = threading.Thread(target=lambda: got.update(text=fifo.read_text()), daemon=True)
    reader.start()
    r = run_cli(*args, "--jsonl", fifo)
    reader.join(timeout=60)
    assert r.exit_code == 0, r.stderr
    lines = [json.loads(line) for line in got["text"].splitlines()]
    assert len(lines) == 1 and lines[0]["video"] == str(short_clip) and stat.S_ISFIFO(fifo.stat().st_mode)


# --- 4. --keep names ------------------------------------------------------------------------------

def test_keep_names_keep_the_suffix_of_videos_that_differ_only_in_it(tmp_path):
    names = keep_names([tmp_path / "clip.mp4", tmp_path / "clip.mov", tmp_path / "other.mp4"])
    assert names == ["clip.mp4", "clip.mov", "other"]


# --- 5. killed runs ---------------------------------------------------------------------------------

def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from actionpipe.cli.main import main; main()", "-q",
                             *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_for_temp(folder, pattern: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120  # a guard against a hung test, not a timing assertion
    while not list(folder.glob(pattern)):
        assert proc.poll() is None and time.monotonic() < deadline, "the run never made its temporary output"
        time.sleep(0.02)


def test_killed_runs_leave_no_temporary_files(demo_video, tmp_path, run_cli):
    out = tmp_path / "frames"
    proc = _start("extract", demo_video, "-o", out)
    _wait_for_temp(tmp_path, ".frames.*.part", proc)
    proc.kill()  # SIGKILL: nothing runs, so the next run writing into the folder cleans up
    proc.wait()
    r = run_cli("extract", demo_video, "-o", out, "--end", "0.2")
    assert r.exit_code == 0, r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]
    proc = _start("pose", demo_video, "-o", tmp_path / "p.json")
    _wait_for_temp(tmp_path, ".p.json.*.part", proc)
    proc.terminate()  # SIGTERM: the run removes its own temporary file
    assert proc.wait() == 128 + 15
    assert [p.name for p in tmp_path.iterdir()] == ["frames"]
