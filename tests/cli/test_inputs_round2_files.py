"""Bad input, round 2 (issue 28), the files' side, on samples/squat.mp4 and the shipped model: a
``--jsonl`` file is only ever a file of classify results and one run's at a time (flock); a full
disk is one line naming the output, the batch goes on, nothing partial is left; a cut-off video and
a 1 fps video say what happened in their result; each stage refuses invalid data it reads, in words
(never ``KeyError: 'source'``); and pose | pack | infer give what classify gives."""
from __future__ import annotations

import errno
import json
import pathlib
import re
import shutil
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from actionpipe.core.errors import ActionpipeError
from actionpipe.outputs.jsonl import JsonlWriter
from actionpipe.outputs.results import ANSWERS
from actionpipe.pose.posefile import PoseFile
from helpers import REPO, one_line_error, squat_excerpt, write_card

SQUAT = REPO / "samples" / "squat.mp4"
TORCH = ["--pose-backend", "torch", "--device", "cpu"]   # no OpenVINO export in the test session
PYTHON_NOISE = re.compile(r"KeyError|ValueError|TypeError|invalid literal|Traceback")


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture(scope="module")
def kept(tmp_path_factory):
    """``classify samples/squat.mp4 --keep`` with the shipped model: a real pose file, sample,
    scores file and results JSONL."""
    from click.testing import CliRunner

    from actionpipe.cli.main import main

    if not SQUAT.is_file():
        pytest.skip("samples/squat.mp4 missing")
    d = tmp_path_factory.mktemp("kept")
    r = CliRunner().invoke(main, ["classify", str(SQUAT), "--keep", str(d / "keep"), "--jsonl", str(d / "r.jsonl"),
                                  *TORCH], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    folder = d / "keep" / "squat"
    return SimpleNamespace(dir=d, pose=folder / "pose.json", sample=folder / "sample.npz",
                           scores=folder / "scores.json", results=d / "r.jsonl",
                           result=_jsonl((d / "r.jsonl").read_text())[0])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The first 24 frames (0.8 s) of samples/squat.mp4 at 320x180 (a real person, cheap to pose)."""
    return squat_excerpt(tmp_path_factory.mktemp("clip") / "clip.mp4", 24, (320, 180))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    card = write_card(tmp_path_factory.mktemp("models") / "tiny")
    return ["--model", str(card.directory), *TORCH, "--imgsz", "320"]


def _leftovers(folder: pathlib.Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".part" in p.name]


# --- files the tool writes -----------------------------------------------------------------------

def test_jsonl_refuses_a_pose_file_and_a_scores_file(kept, clip, tiny, tmp_path, run_cli):
    for made in (kept.pose, kept.scores):   # one JSON object on one line: it parses as JSON lines
        target = tmp_path / made.name
        shutil.copy(made, target)
        r = run_cli("classify", clip, *tiny, "--jsonl", target)
        assert r.exit_code == 1, r.stderr
        one_line_error(r, f"{target}: line 1 is not a classify result: not a results JSONL file; refusing to append")
        assert target.read_bytes() == made.read_bytes()
    PoseFile.load(tmp_path / "pose.json")   # still loads


def test_a_second_run_on_a_jsonl_file_in_use_is_refused(kept, clip, tiny, tmp_path, run_cli):
    path = tmp_path / "r.jsonl"
    shutil.copy(kept.results, path)
    before = path.read_bytes()
    first = JsonlWriter(path)   # another run, writing
    try:
        with pytest.raises(ActionpipeError, match="another actionpipe run is writing this file"):
            JsonlWriter(path)
        r = run_cli("classify", clip, *tiny, "--jsonl", path, "--skip-existing")
        assert r.exit_code == 1
        one_line_error(r, f"{path}: another actionpipe run is writing this file")
        assert path.read_bytes() == before
    finally:
        first.close()
    r = run_cli("classify", clip, *tiny, "--jsonl", path, "--skip-existing")   # the lock went with it
    assert r.exit_code == 0, r.stderr
    assert [pathlib.Path(d["video"]).name for d in _jsonl(path.read_text())] == ["squat.mp4", "clip.mp4"]


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_keep_on_a_full_disk_fails_that_video_and_the_batch_goes_on(clip, tiny, tmp_path, monkeypatch, run_cli):
    from actionpipe.core import fileio

    for name in ("a", "b"):
        shutil.copy(clip, tmp_path / f"{name}.mp4")
    calls, savez = [], fileio.np.savez_compressed

    def first_fails(f, **arrays):   # a's sample.npz: half written, then the disk is full
        calls.append(1)
        if len(calls) == 1:
            f.write(b"PK\x03\x04 half an archive")
            _disk_full()
        savez(f, **arrays)

    monkeypatch.setattr(fileio.np, "savez_compressed", first_fails)
    keep = tmp_path / "keep"
    r = run_cli("classify", tmp_path / "a.mp4", tmp_path / "b.mp4", *tiny, "--keep", keep, "--jsonl", "-")
    assert r.exit_code == 1
    a, b = _jsonl(r.stdout)
    assert a["status"] == "error" and a["error"] == f"{keep / 'a' / 'sample.npz'}: cannot write: No space left on device"
    assert b["status"] in ANSWERS and sorted(p.name for p in (keep / "b").iterdir()) == ["pose.json", "sample.npz",
                                                                                          "scores.json"]
    assert [p.name for p in (keep / "a").iterdir()] == ["pose.json"] and _leftovers(keep) == []
    assert f"actionpipe: error: {keep / 'a' / 'sample.npz'}: cannot write: No space left on device" in r.stderr
    assert PYTHON_NOISE.search(r.stderr) is None


def test_report_html_on_a_full_disk_is_one_line_and_leaves_nothing(kept, tmp_path, monkeypatch, run_cli):
    write_text = pathlib.Path.write_text

    def full(self, text, *args, **kwargs):
        if ".part" not in self.name:
            return write_text(self, text, *args, **kwargs)
        write_text(self, text[:100], *args, **kwargs)
        _disk_full()

    monkeypatch.setattr(pathlib.Path, "write_text", full)
    out = tmp_path / "out"
    out.mkdir()
    r = run_cli("report", kept.results, "--html", out / "r.html")
    assert r.exit_code == 1
    one_line_error(r, f"{out / 'r.html'}: cannot write: No space left on device", at_start=True)
    assert list(out.iterdir()) == []


def test_render_on_a_full_disk_names_the_output_not_its_temporary_file(clip, tiny, tmp_path, monkeypatch, run_cli):
    import av

    from actionpipe.video import writer

    if not writer.h264_available():
        pytest.skip("no H.264 encoder: render writes mp4v through OpenCV")
    r = run_cli("classify", clip, *tiny, "--keep", tmp_path / "keep", "--jsonl", tmp_path / "r.jsonl")
    assert r.exit_code == 0, r.stderr

    def full(self, time_s):
        raise av.FFmpegError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(writer.H264Writer, "_audio_until", full)
    out = tmp_path / "out"
    out.mkdir()
    r = run_cli("render", clip, "-o", out / "r.mp4", "--pose", tmp_path / "keep" / "clip" / "pose.json",
                "--scores", tmp_path / "r.jsonl")
    assert r.exit_code == 1
    one_line_error(r, f"{out / 'r.mp4'}: cannot write video: No space left on device", at_start=True)
    assert ".part" not in r.stderr and list(out.iterdir()) == []


# --- what a result says ---------------------------------------------------------------------------

def test_a_cut_off_video_says_so_in_its_result(kept, tiny, tmp_path, run_cli):
    whole = kept.result
    assert "warnings" not in whole and whole["decoded_s"] == whole["duration_s"] == 7.1
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(SQUAT.read_bytes()[:SQUAT.stat().st_size // 8])   # its index is at the start: it opens
    r = run_cli("classify", cut, *tiny, "--jsonl", "-")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["status"] in ANSWERS and d["warnings"] == ["truncated"]
    assert d["duration_s"] == 7.1 and 0 < d["decoded_s"] < 1
    assert "decoding stopped at frame" in r.stderr


def test_a_1_fps_video_is_low_frame_rate_not_too_short(kept, tmp_path, run_cli):
    slow = tmp_path / "slow.mp4"
    cap, out = cv2.VideoCapture(str(SQUAT)), cv2.VideoWriter(str(slow), cv2.VideoWriter_fourcc(*"mp4v"), 1, (640, 360))
    for i in range(int(cap.get(cv2.CAP_PROP_FRAME_COUNT))):
        ok, frame = cap.read()
        if ok and i % 30 == 0:   # one frame a second of the 30 fps source
            out.write(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA))
    out.release()
    r = run_cli("classify", slow, *TORCH, "--jsonl", "-")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["status"] == "low_frame_rate" and d["fps"] == 1.0 and "label" not in d
    assert d["duration_s"] == d["decoded_s"] == 8.0 and "frame rate is too low for the model" in r.stderr


# --- files the tool reads ---------------------------------------------------------------------------

def _edited(path: pathlib.Path, tmp_path: pathlib.Path, edit) -> pathlib.Path:
    doc = json.loads(path.read_text())
    edit(doc)
    out = tmp_path / f"edited_{path.name}"
    out.write_text(json.dumps(doc))
    return out


def _set_conf(doc, value):
    doc["frames"][0]["people"][0]["keypoints"][0][2] = value


@pytest.mark.parametrize("kind, edit, problem", [
    ("scores", lambda d: d["items"][0].update(probabilities=[1.0] * len(d["classes"])),
     "\"probabilities\" sum to 31, not 1"),
    ("scores", lambda d: d["classes"].__setitem__(1, d["classes"][0]), "classes: 'arm_curl' named more than once"),
    ("pose", lambda d: _set_conf(d, -0.5), "keypoint confidences must be between 0 and 1"),
    ("pose", lambda d: d["frames"][1].update(index=d["frames"][0]["index"]), "frame indices must increase"),
    ("pose", lambda d: d["frames"][0]["people"][0].update(track_id="x"), "track_id must be a whole number >= 0, got 'x'"),
    ("pose", lambda d: d.pop("width"), "not a valid pose file: missing \"width\""),
])
def test_invalid_data_is_refused_by_the_stage_that_reads_it(kept, tmp_path, run_cli, kind, edit, problem):
    path = _edited(kept.scores if kind == "scores" else kept.pose, tmp_path, edit)
    args = ["report", path] if kind == "scores" else ["pack", path, "-o", tmp_path / "s.npz"]
    r = run_cli(*args)
    assert r.exit_code == 1 and r.stdout == ""
    one_line_error(r, f"{path}: ", at_start=True)
    assert problem in r.stderr and PYTHON_NOISE.search(r.stderr) is None
    assert not (tmp_path / "s.npz").exists()


def test_a_max_aggregate_item_may_sum_past_1(kept, tmp_path, run_cli):
    path = _edited(kept.scores, tmp_path, lambda d: d["items"][0].update(probabilities=[1.0] * len(d["classes"]),
                                                                         aggregate="max"))
    assert run_cli("report", path).exit_code == 0


def test_a_card_that_names_a_class_twice_is_refused(kept, tmp_path, run_cli):
    from actionpipe.model.cards import default_card

    folder = tmp_path / "twice"
    shutil.copytree(default_card().directory, folder)
    card = json.loads((folder / "card.json").read_text())
    card["classes"][2] = card["classes"][0]
    (folder / "card.json").write_text(json.dumps(card))
    r = run_cli("infer", kept.sample, "--model", folder, "--device", "cpu")
    assert r.exit_code == 1
    one_line_error(r, f"{folder / 'card.json'}: classes: '{card['classes'][0]}' named more than once")


def test_messages_name_the_file_and_the_problem_not_pythons_exception(kept, tmp_path, run_cli):
    from actionpipe.video.extract import extract_frames

    frames = tmp_path / "frames"
    extract_frames(SQUAT, frames, end=0.2, max_side=64)
    manifest = json.loads((frames / "frames.json").read_text())
    del manifest["source"]
    (frames / "frames.json").write_text(json.dumps(manifest))
    no_data = tmp_path / "no_data.npz"
    with np.load(kept.sample) as z:
        np.savez(no_data, **{k: z[k] for k in z.files if k != "data"})
    card = tmp_path / "card"
    shutil.copytree(kept.dir / "keep" / "squat", card)   # any folder, with a card.json lacking weights
    (card / "card.json").write_text(json.dumps({k: v for k, v in json.loads(
        (REPO / "models" / "general-stgcn" / "card.json").read_text()).items() if k != "weights"}))
    for args, said in ((["pose", frames, "-o", tmp_path / "p.json"], f"{frames / 'frames.json'}: not a valid frames "
                                                                      "manifest: missing \"source\""),
                       (["infer", no_data, "--device", "cpu"], f"{no_data}: not a valid sample file: no data array"),
                       (["infer", kept.sample, "--model", card], f"{card / 'card.json'}: missing \"weights\"")):
        r = run_cli(*args)
        assert r.exit_code == 1, (args, r.stderr)
        one_line_error(r, said, at_start=True)
        assert PYTHON_NOISE.search(r.stderr) is None, r.stderr


# --- the stages chained answer as classify does --------------------------------------------------------

def test_pose_pack_infer_give_what_classify_gives(kept, tmp_path, run_cli):
    r = run_cli("pose", SQUAT, "-o", tmp_path / "p.json", *TORCH)
    assert r.exit_code == 0, r.stderr
    assert "the pose settings of general-stgcn" in r.stderr
    mine, classify = PoseFile.load(tmp_path / "p.json"), PoseFile.load(kept.pose)
    assert (mine.fps, mine.num_frames, mine.backend["imgsz"]) == (classify.fps, classify.num_frames,
                                                                   classify.backend["imgsz"]) == (15, 107, 640)
    assert run_cli("pack", tmp_path / "p.json", "-o", tmp_path / "s.npz").exit_code == 0
    assert run_cli("infer", tmp_path / "s.npz", "-o", tmp_path / "scores.json", "--device", "cpu").exit_code == 0
    chained = json.loads((tmp_path / "scores.json").read_text())["items"][0]["probabilities"]
    whole = json.loads(kept.scores.read_text())["items"][0]["probabilities"]
    np.testing.assert_allclose(chained, whole, atol=1e-4)
    assert int(np.argmax(chained)) == json.loads(kept.scores.read_text())["classes"].index(kept.result["label"])
