"""extract: exact frame selection and timestamps on videos written here, atomic output, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionpipe.core.errors import ActionpipeError
from actionpipe.video.extract import FramesManifest, extract_frames, read_frames_dir
from helpers import GREY_FPS, GREY_FRAMES, bad_videos, one_line_error, write_video



@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "grey.mp4")


def source_index_of(image: np.ndarray) -> int:
    return round(float(image.mean()) / 8)


@pytest.mark.parametrize("fps, expected", [
    (None, list(range(30))),
    (5, list(range(0, 30, 2))),
    (3, [0, 3, 7, 10, 13, 17, 20, 23, 27]),   # nearest source frame to k/3 s
    (20, list(range(30))),                    # above the source rate: every frame, none twice
])
def test_fps_resampling_picks_nearest_frames(video, tmp_path, fps, expected):
    m = extract_frames(video, tmp_path / "f", fps=fps)
    assert [r.source_index for r in m.frames] == expected
    assert [r.index for r in m.frames] == list(range(len(expected)))
    assert [r.time_s for r in m.frames] == pytest.approx([i / GREY_FPS for i in expected])
    assert m.fps == min(fps or GREY_FPS, GREY_FPS)
    # The images really are those source frames, in order, named from 000001.
    assert [r.file for r in m.frames] == [f"{i + 1:06d}.jpg" for i in range(len(expected))]
    for r in m.frames:
        assert source_index_of(cv2.imread(str(tmp_path / "f" / r.file))) == r.source_index


def test_start_end_and_manifest_on_disk(video, tmp_path, run_cli):
    result = run_cli("extract", video, "-o", tmp_path / "f", "--start", "1", "--end", "2", "--fps", "5", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["frames"] == 5
    doc = json.loads((tmp_path / "f" / "frames.json").read_text())
    assert doc["format"] == "actionpipe.frames" and doc["format_version"] == 1
    assert doc["source"] == {"path": str(video), "fps": 10.0, "width": 160, "height": 120, "frame_count": 30}
    assert [f["source_index"] for f in doc["frames"]] == [10, 12, 14, 16, 18]
    assert [f["time_s"] for f in doc["frames"]] == pytest.approx([1.0, 1.2, 1.4, 1.6, 1.8])
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [f"00000{i}.jpg" for i in range(1, 6)] + ["frames.json"]
    manifest, frames = read_frames_dir(tmp_path / "f")
    assert manifest == FramesManifest.from_dict(doc)
    assert [(f.index, f.source_index) for f in frames] == [(i, 10 + 2 * i) for i in range(5)]


def test_max_side_and_png(video, tmp_path):
    m = extract_frames(video, tmp_path / "f", max_side=80, image_format="png", end=0.5)
    assert (m.width, m.height) == (80, 60) and len(m.frames) == 5
    image = cv2.imread(str(tmp_path / "f" / "000003.png"))
    assert image.shape == (60, 80, 3) and source_index_of(image) == 2
    assert m.source.width == 160  # the manifest keeps the source size for scaling back
    m = extract_frames(video, tmp_path / "g", max_side=400, end=0.2)  # never enlarged
    assert (m.width, m.height) == (160, 120)


def test_rerun_replaces_earlier_output_but_not_foreign_folders(video, tmp_path):
    extract_frames(video, tmp_path / "f")
    extract_frames(video, tmp_path / "f", fps=5)
    assert len(list((tmp_path / "f").glob("*.jpg"))) == 15
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ActionpipeError, match="refusing to replace"):
        extract_frames(video, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "mine"]  # no temp folders left


def test_truncated_video_keeps_decoded_frames_and_warns(tmp_path, capsys):
    path = write_video(tmp_path / "v.avi", fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    m = extract_frames(path, tmp_path / "f")
    assert 0 < len(m.frames) < GREY_FRAMES
    assert "truncated or corrupt" in capsys.readouterr().err


@pytest.mark.parametrize("case", ["missing", "not a video", "truncated", "zero frames"])
def test_bad_video_is_one_line_error_without_output(tmp_path, run_cli, case):
    path, problem = bad_videos(tmp_path)[case]
    result = run_cli("extract", path, "-o", tmp_path / "out")
    assert result.exit_code == 1
    one_line_error(result, f"{path}: {problem}", at_start=True)
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.*"))


def test_start_beyond_the_end_is_an_error(video, tmp_path, run_cli):
    result = run_cli("extract", video, "-o", tmp_path / "out", "--start", "10")
    assert result.exit_code == 1
    one_line_error(result, f"{video}: nothing to decode from 10 s: the video is 3.0 s long", at_start=True)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args", [["--end", "1", "--start", "2"], ["--fps", "0"], ["--format", "gif"],
                                  ["--quality", "0"], ["--format", "png", "--quality", "90"]])
def test_usage_errors_exit_2(video, tmp_path, run_cli, args):
    result = run_cli("extract", video, "-o", tmp_path / "out", *args)
    assert result.exit_code == 2, result.stderr
    assert not (tmp_path / "out").exists()


def test_unwritable_output(video, tmp_path, run_cli):
    for out in (tmp_path / "no" / "such" / "dir", Path("/proc/actionpipe-frames")):
        result = run_cli("extract", video, "-o", out)
        assert result.exit_code == 1
        one_line_error(result, f"{out}: cannot write", at_start=True)


def test_frames_dir_without_manifest(tmp_path):
    (tmp_path / "000001.jpg").write_bytes(b"")
    with pytest.raises(ActionpipeError, match="no frames.json in this folder"):
        read_frames_dir(tmp_path)
    (tmp_path / "frames.json").write_text('{"format": "something else"}')
    with pytest.raises(ActionpipeError, match="not a frames manifest"):
        read_frames_dir(tmp_path)

