"""``--engine ray`` (issue 16): the single-process answers from a local Ray with 2 CPUs, a broken
video as an error line, resuming, and a pose actor killed mid-run.

One Ray session for the module (started as ``classify --engine ray`` starts one), so its start-up
is paid once. The clips are 2 s cuts of real videos, made at test time in a temporary folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO, shared_path

FPS = 10          # both engines run the pose at this rate: a short, real workload
CLIP_S = 2.0

slow = pytest.mark.slow


def _cut(source: Path, target: Path, seconds: float = CLIP_S, max_side: int = 480) -> Path:
    """The first ``seconds`` of ``source``, shrunk to ``max_side``, as an MPEG-4 file."""
    import cv2

    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS)
    width, height = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    scale = min(1.0, max_side / max(width, height))
    size = (round(width * scale) // 2 * 2, round(height * scale) // 2 * 2)
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(int(seconds * fps)):
        ok, frame = cap.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    return target


def _without_time(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "seconds"}


def _same(a, b, tol: float = 1e-5) -> bool:
    """Equal, with numbers to ``tol``: the classify actors run the windows of several videos in
    shared ST-GCN batches, on their own thread counts, which can move float rounding into the last
    digit a result prints (1e-6); labels, statuses, texts and counts must be identical."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k], tol) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= tol
    return a == b and type(a) is type(b)


def test_core_never_imports_ray():
    code = ("import sys, actionpipe, actionpipe.api, actionpipe.cli.main, actionpipe.engines.ray_engine;"
            "assert 'ray' not in sys.modules, 'ray imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr


def test_missing_ray_is_one_line(tmp_path):
    # sys.modules["ray"] = None makes `import ray` fail as it does where Ray is not installed.
    code = ("import sys; sys.modules['ray'] = None; from actionpipe.cli.main import main;"
            f"main(['classify', {str(tmp_path / 'a.mp4')!r}, '--engine', 'ray'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [
        "actionpipe: error: --engine ray needs Ray, which is not installed: pip install 'actionpipe[ray]'"]


def test_ray_options_need_the_ray_engine(run_cli, tmp_path):
    result = run_cli("classify", tmp_path / "a.mp4", "--pose-workers", "2")
    assert result.exit_code == 2 and "go with --engine ray" in result.stderr


def test_parquet_never_replaces_a_file_it_did_not_write(run_cli, tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow comes with Ray (pip install actionpipe[ray])")
    notes = tmp_path / "notes.parquet"
    notes.write_text("my notes")
    result = run_cli("classify", tmp_path / "a.mp4", "--parquet", notes)
    assert result.exit_code == 1 and "not a results Parquet file" in result.stderr
    assert notes.read_text() == "my notes"


def test_stage_plan():
    from actionpipe.engines.ray_engine import plan_stages

    plan = plan_stages({"CPU": 2.0})  # this machine: one pose actor on both cores
    assert (plan.pose_workers, plan.pose_cpus, plan.pose_gpus, plan.classify_workers) == (1, 2.0, 0.0, 1)
    assert (plan_stages({"CPU": 2.0}, 2).pose_cpus, plan_stages({"CPU": 2.0}, 3).pose_cpus) == (1.0, 2 / 3)
    assert plan_stages({"CPU": 512.0}, 100).classify_workers == 7 and plan.classify_cpus == 0
    gpus = plan_stages({"CPU": 64.0, "GPU": 4.0})  # decoding bounds a GPU node: 8 pose actors per GPU
    assert (gpus.pose_workers, gpus.pose_cpus, gpus.pose_gpus, gpus.classify_workers, gpus.classify_cpus) == (
        32, 1.0, 0.125, 32, 1.0)
    assert plan_stages({"CPU": 64.0, "GPU": 4.0}, 4).pose_gpus == 1.0
    crowded = plan_stages({"CPU": 8.0, "GPU": 1.0}, 16)  # more actors than cores: shares, never a stall
    assert (crowded.pose_cpus, crowded.classify_cpus) == (0.5, 0.0)
    cpu_only = plan_stages({"CPU": 64.0, "GPU": 4.0}, use_gpus=False)  # --device cpu
    assert (cpu_only.pose_workers, cpu_only.pose_cpus, cpu_only.pose_gpus) == (32, 2.0, 0.0)


@pytest.fixture(scope="module")
def fault_file(tmp_path_factory):
    """A local Ray for the module; its workers inherit the fault-injection variable."""
    from actionpipe.engines.ray_engine import FAULT_FILE_ENV, connect

    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install actionpipe[ray])")
    path = tmp_path_factory.mktemp("fault") / "kill-one-pose-actor"
    os.environ[FAULT_FILE_ENV] = str(path)
    connect(None)
    yield path
    ray.shutdown()
    del os.environ[FAULT_FILE_ENV]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("clips")
    sources = [REPO / "samples" / "squat.mp4", shared_path("media", "Deadlift.mp4"),
               shared_path("datasets", "realvideo_dev", "videos", "jumping_jacks__treadtv-ibbu1.mp4")]
    return [_cut(source, folder / source.name) for source in sources]


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("broken") / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    return path


@pytest.fixture(scope="module")
def local_answers(clips, broken) -> dict[str, dict]:
    from actionpipe import ActionModel

    return {r.video: _without_time(r.to_dict()) for r in ActionModel(fps=FPS)(clips + [broken])}


@pytest.fixture(scope="module")
def ray_model(fault_file):
    from actionpipe import ActionModel

    return ActionModel(fps=FPS, engine="ray")


@slow
def test_same_answers_and_a_broken_video(ray_model, clips, broken, local_answers):
    results = list(ray_model(clips + [broken], stream=True))
    answers = {r.video: _without_time(r.to_dict()) for r in results}
    assert sorted(answers) == sorted(local_answers) and len(results) == len(answers)
    assert _same(answers, local_answers), (answers, local_answers)
    assert {d["status"] for v, d in answers.items() if v != str(broken)} <= {"ok", "unknown"}
    assert answers[str(broken)]["status"] == "error" and str(broken) in answers[str(broken)]["error"]
    assert all(r.info["seconds"] > 0 for r in results if r.ok)
    with pytest.raises(Exception, match="broken.mp4"):  # a single video raises, as on the local engine
        ray_model(broken)


@slow
def test_cli_resumes_where_it_stopped(run_cli, fault_file, clips, local_answers, tmp_path):
    from actionpipe.outputs.parquet import read_results

    out, table = tmp_path / "results.jsonl", tmp_path / "results.parquet"
    first = dict(local_answers[str(clips[0])], seconds=1.0)
    out.write_text(json.dumps(first) + "\n" + '{"video": "cut off by a cra')
    result = run_cli("classify", clips[0], clips[1], "--engine", "ray", "--fps", FPS, "--jsonl", out,
                     "--parquet", table, "--skip-existing")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "1 of 2 video(s) already done, skipped" in result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0] == first and [d["video"] for d in lines] == [str(clips[0]), str(clips[1])]
    assert _same(_without_time(lines[1]), local_answers[str(clips[1])])
    assert read_results(table) == lines[1:]  # the same object, as a Parquet row
    import pyarrow.parquet as pq
    row = pq.read_table(table).to_pylist()[0]
    assert (row["video"], row["status"], row["label"], row["probability"]) == tuple(
        lines[1][key] for key in ("video", "status", "label", "probability"))


@slow
def test_killed_pose_actor_loses_and_doubles_nothing(ray_model, fault_file, clips, local_answers):
    # The videos as file:// URIs, so the actors also fetch them as they would s3:// ones.
    uris = {f"file://{c}": str(c) for c in clips}
    fault_file.touch()  # the first pose actor to see it exits mid-run; Ray restarts it and retries
    answers = [_without_time(r.to_dict()) for r in ray_model(list(uris), stream=True)]
    assert not fault_file.exists()  # an actor did die
    assert sorted(d["video"] for d in answers) == sorted(uris)  # each exactly once
    assert _same({uris[d["video"]]: dict(d, video=uris[d["video"]]) for d in answers},
                 {str(c): local_answers[str(c)] for c in clips})


def test_uris_are_listed_and_need_the_ray_engine(run_cli, tmp_path):
    from actionpipe.engines.ray_engine import expand_uris

    pytest.importorskip("ray", reason="Ray is not installed (pip install actionpipe[ray])")
    (tmp_path / "sub").mkdir()
    for name in ("b.mp4", "sub/a.MOV", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    videos, unreadable = expand_uris([f"file://{tmp_path}/", f"file://{tmp_path}/missing.mp4", "nosuch://x"])
    assert videos == [f"file://{tmp_path}/b.mp4", f"file://{tmp_path}/sub/a.MOV", f"file://{tmp_path}/missing.mp4"]
    assert [uri for uri, _ in unreadable] == ["nosuch://x"]
    result = run_cli("classify", f"file://{tmp_path}")
    assert result.exit_code == 2 and "URIs are read with --engine ray" in result.stderr
