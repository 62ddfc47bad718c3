"""Format conversion: round trips through OpenPose and Kinetics-skeleton, detection, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from actionpipe.skeleton.convert import (convert, convert_pose_layout, detect_format, read_kinetics_json,
                                read_openpose_dir, write_kinetics_json, write_openpose_dir)
from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import BODY25, COCO17, OPENPOSE18, convert_keypoints
from actionpipe.pose.posefile import PoseFile
from helpers import MADE_FPS, MADE_HEIGHT, MADE_WIDTH, make_pose



def assert_same_people(a: PoseFile, b: PoseFile, atol: float) -> None:
    assert a.layout == b.layout and a.num_frames == b.num_frames
    for fa, fb in zip(a.frames, b.frames):
        assert fa.index == fb.index
        assert [p.track_id for p in fa.people] == [p.track_id for p in fb.people]
        for pa, pb in zip(fa.people, fb.people):
            np.testing.assert_allclose(pa.keypoints, pb.keypoints, atol=atol)


def test_pose_openpose_pose_round_trip(tmp_path):
    pose = make_pose()
    write_openpose_dir(pose, tmp_path / "op")
    files = sorted((tmp_path / "op").iterdir())
    assert [f.name for f in files][:2] == ["clip_000000000000_keypoints.json", "clip_000000000001_keypoints.json"]
    assert len(files) == pose.num_frames
    doc = json.loads(files[2].read_text())
    assert [p["person_id"] for p in doc["people"]] == [[1], [2]]
    assert len(doc["people"][0]["pose_keypoints_2d"]) == 18 * 3
    back = read_openpose_dir(tmp_path / "op", MADE_WIDTH, MADE_HEIGHT, MADE_FPS)
    assert back.layout == "openpose18" and (back.width, back.height, back.fps) == (MADE_WIDTH, MADE_HEIGHT, MADE_FPS)
    assert back.frames[3].people == [] and back.frames[5].time_s == pytest.approx(5 / MADE_FPS)
    # Every COCO joint exists in OpenPose-18: back in COCO-17 nothing is lost.
    assert_same_people(pose, convert_pose_layout(back, "coco17"), atol=0.006)
    person = back.frames[0].people[0]  # box and score are rebuilt from the keypoints
    seen = person.keypoints[person.keypoints[:, 2] > 0]
    assert tuple(person.box) == pytest.approx((*seen[:, :2].min(0), *seen[:, :2].max(0)))


def test_pose_kinetics_pose_round_trip(tmp_path):
    pose = make_pose()
    write_kinetics_json(pose, tmp_path / "clip.json", label="dancing", label_index=7)
    doc = json.loads((tmp_path / "clip.json").read_text())
    assert (doc["label"], doc["label_index"]) == ("dancing", 7)
    assert [d["frame_index"] for d in doc["data"]] == [1, 2, 3, 4, 5, 6]
    skeleton = doc["data"][0]["skeleton"][0]
    assert len(skeleton["pose"]) == 36 and len(skeleton["score"]) == 18
    assert max(max(s["pose"]) for d in doc["data"] for s in d["skeleton"]) <= 1.0  # normalised
    back = read_kinetics_json(tmp_path / "clip.json")
    assert (back.width, back.height, back.fps) == (MADE_WIDTH, MADE_HEIGHT, MADE_FPS)
    assert back.source["label"] == "dancing" and back.source["label_index"] == 7
    assert_same_people(pose, convert_pose_layout(back, "coco17"), atol=0.02)


def test_reads_published_kinetics_skeleton(tmp_path):
    """ST-GCN's files: 3 decimals, frame_index from 1, no track ids, no frame size, gaps."""
    pose18 = [0.5, 0.25] * 18
    pose18[2:4] = [0.0, 0.0]
    score = [0.9] * 18
    score[1] = 0.0
    doc = {"data": [{"frame_index": 1, "skeleton": [{"pose": pose18, "score": score},
                                                    {"pose": [0.1] * 36, "score": [0.5] * 18}]},
                    {"frame_index": 3, "skeleton": [{"pose": [0.2] * 36, "score": [0.7] * 18}]}],
           "label": "abseiling", "label_index": 0}
    (tmp_path / "k.json").write_text(json.dumps(doc))
    pose = read_kinetics_json(tmp_path / "k.json")
    assert (pose.layout, pose.width, pose.height, pose.fps) == ("openpose18", 340, 256, 30.0)
    assert pose.num_frames == 3 and pose.frames[1].people == []
    first = pose.frames[0].people
    assert [p.track_id for p in first] == [1, 2]  # by slot order
    assert tuple(first[0].keypoints[0]) == pytest.approx((170, 64, 0.9))
    assert tuple(first[0].keypoints[1]) == (0, 0, 0)
    assert tuple(first[1].keypoints[0]) == pytest.approx((34, 25.6, 0.5))
    assert pose.frames[2].people[0].track_id == 1
    # An explicit size wins.
    assert read_kinetics_json(tmp_path / "k.json", 680, 512).frames[0].people[0].keypoints[0, 0] == pytest.approx(340)


def write_openpose_frames(directory: Path, people_per_frame: list[list[list[float]]], person_id=-1) -> None:
    directory.mkdir()
    for n, people in enumerate(people_per_frame):
        doc = {"version": 1.3, "people": [{"person_id": [person_id], "pose_keypoints_2d": kp,
                                           "face_keypoints_2d": []} for kp in people]}
        (directory / f"vid_{n:012d}_keypoints.json").write_text(json.dumps(doc))


def test_reads_body25_openpose_and_maps_by_name(tmp_path):
    kp = np.zeros((25, 3), dtype=np.float32)
    for name, xy in (("neck", (100, 50)), ("left_wrist", (300, 120)), ("right_wrist", (20, 130)),
                     ("mid_hip", (110, 200)), ("left_big_toe", (130, 400))):
        kp[BODY25.index(name)] = (*xy, 0.8)
    write_openpose_frames(tmp_path / "op", [[kp.ravel().tolist()], []])
    pose = read_openpose_dir(tmp_path / "op", 640, 480)
    assert pose.layout == "body25" and pose.num_frames == 2 and pose.frames[1].people == []
    assert pose.frames[0].people[0].track_id == 1  # person_id -1: numbered by slot
    op18 = convert_pose_layout(pose, "openpose18").frames[0].people[0].keypoints
    assert tuple(op18[OPENPOSE18.index("left_wrist")]) == pytest.approx((300, 120, 0.8))
    assert tuple(op18[OPENPOSE18.index("neck")]) == pytest.approx((100, 50, 0.8))
    coco = convert_pose_layout(pose, "coco17").frames[0].people[0].keypoints
    assert tuple(coco[COCO17.index("right_wrist")]) == pytest.approx((20, 130, 0.8))


def test_openpose_tracker_ids_and_forced_layout(tmp_path):
    kp = convert_keypoints(make_pose().frames[0].people[0].keypoints, "coco17", "openpose18")
    write_openpose_frames(tmp_path / "op", [[kp.ravel().tolist()]] * 3, person_id=4)
    pose = read_openpose_dir(tmp_path / "op", MADE_WIDTH, MADE_HEIGHT, layout="openpose18")
    assert pose.track_ids() == [4]
    with pytest.raises(ActionpipeError, match="expected a list of 75 numbers, got 54"):
        read_openpose_dir(tmp_path / "op", MADE_WIDTH, MADE_HEIGHT, layout="body25")


def test_convert_openpose18_pose_file_to_coco17(tmp_path):
    source = convert_pose_layout(make_pose(), "openpose18")
    source.save(tmp_path / "op18.json")
    summary = convert(tmp_path / "op18.json", tmp_path / "coco.json", "pose", layout="coco17")
    assert summary["layout"] == "coco17" and summary["input_format"] == "pose"
    assert_same_people(make_pose(), PoseFile.load(tmp_path / "coco.json"), atol=0.006)


def test_cli_round_trip_through_openpose_and_kinetics(tmp_path, run_cli):
    make_pose().save(tmp_path / "pose.json")
    r = run_cli("convert", tmp_path / "pose.json", "-o", tmp_path / "op", "--to", "openpose")
    assert r.exit_code == 0, r.stderr
    assert detect_format(tmp_path / "op") == "openpose"
    r = run_cli("convert", tmp_path / "op", "-o", tmp_path / "back.json", "--width", MADE_WIDTH,
                "--height", MADE_HEIGHT, "--fps", MADE_FPS, "--layout", "coco17", "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["input_format"] == "openpose" and summary["frames"] == 6 and summary["tracks"] == 2
    assert_same_people(make_pose(), PoseFile.load(tmp_path / "back.json"), atol=0.006)
    r = run_cli("convert", tmp_path / "back.json", "-o", tmp_path / "k.json", "--to", "kinetics", "--label", "wave")
    assert r.exit_code == 0, r.stderr
    assert detect_format(tmp_path / "k.json") == "kinetics"
    r = run_cli("convert", tmp_path / "k.json", "-o", tmp_path / "again.json", "--layout", "coco17")
    assert r.exit_code == 0, r.stderr
    assert_same_people(make_pose(), PoseFile.load(tmp_path / "again.json"), atol=0.02)


def test_cli_video_option_fills_frame_size(tmp_path, run_cli, demo_video):
    make_pose().save(tmp_path / "pose.json")
    assert run_cli("convert", tmp_path / "pose.json", "-o", tmp_path / "op", "--to", "openpose").exit_code == 0
    r = run_cli("convert", tmp_path / "op", "-o", tmp_path / "p.json", "--video", demo_video)
    assert r.exit_code == 0, r.stderr
    pose = PoseFile.load(tmp_path / "p.json")
    assert (pose.width, pose.height, pose.fps) == pytest.approx((1768, 994, 30.0), rel=1e-3)


def _bad_openpose(tmp_path: Path, content: str) -> Path:
    good = {"people": [{"pose_keypoints_2d": [1.0] * 54}]}
    write_openpose_frames(tmp_path / "op", [])
    (tmp_path / "op" / "v_000000000000_keypoints.json").write_text(json.dumps(good))
    (tmp_path / "op" / "v_000000000001_keypoints.json").write_text(content)
    return tmp_path / "op" / "v_000000000001_keypoints.json"


@pytest.mark.parametrize("content,problem", [
    ("{\"people\": [", "not a valid OpenPose JSON file"),
    (json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 60}]}), "expected a list of 54 numbers, got 60"),
    (json.dumps({"persons": []}), "no \"people\" list"),
    (json.dumps({"people": [{"face_keypoints_2d": []}]}), "no \"pose_keypoints_2d\" list"),
    (json.dumps({"people": [{"pose_keypoints_2d": ["a"] * 54}]}), "keypoints must be numbers"),
])
def test_malformed_openpose_is_one_line_error_without_output(tmp_path, run_cli, content, problem):
    bad = _bad_openpose(tmp_path, content)
    r = run_cli("convert", tmp_path / "op", "-o", tmp_path / "out.json", "--width", 640, "--height", 480)
    assert r.exit_code == 1
    assert r.stderr.startswith(f"actionpipe: error: {bad}: ") and problem in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["op"]


@pytest.mark.parametrize("doc,problem", [
    ("[1, 2", "not a valid JSON file"),
    ({"data": [{"frame_index": 1, "skeleton": [{"pose": [0.5] * 36}]}]}, "no \"score\" list"),
    ({"data": [{"frame_index": 1, "skeleton": [{"pose": [0.5] * 30, "score": [1] * 18}]}]},
     "expected a list of 36 numbers, got 30"),
    ({"data": [{"skeleton": []}]}, "integer \"frame_index\""),
    ({"data": [{"frame_index": 1, "skeleton": [{"pose": [0.5] * 40, "score": [1] * 20}]}]},
     "20 keypoints per person"),
])
def test_malformed_kinetics_is_one_line_error_without_output(tmp_path, run_cli, doc, problem):
    bad = tmp_path / "k.json"
    bad.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    r = run_cli("convert", bad, "-o", tmp_path / "out")
    assert r.exit_code == 1
    assert r.stderr.startswith(f"actionpipe: error: {bad}: ") and problem in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]


def test_cli_refusals(tmp_path, run_cli):
    make_pose().save(tmp_path / "pose.json")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    r = run_cli("convert", tmp_path / "pose.json", "-o", tmp_path / "full", "--to", "openpose")
    assert r.exit_code == 1 and "not empty" in r.stderr
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    r = run_cli("convert", tmp_path / "pose.json", "-o", tmp_path / "full", "--to", "openpose", "--force")
    assert r.exit_code == 0 and len(list((tmp_path / "full").glob("*_keypoints.json"))) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "pose.json"]  # no temp left behind
    r = run_cli("convert", tmp_path / "full", "-o", tmp_path / "x.json")
    assert r.exit_code == 1 and "--width/--height" in r.stderr
    r = run_cli("convert", tmp_path / "pose.json", "-o", tmp_path / "x.json", "--to", "kinetics", "--layout", "coco17")
    assert r.exit_code == 1 and not (tmp_path / "x.json").exists()
    assert r.stderr.startswith(f"actionpipe: error: {tmp_path / 'x.json'}: ") and "openpose18 or body25" in r.stderr
    r = run_cli("convert", tmp_path / "pose.json", "-o", tmp_path / "x", "--to", "jpeg")
    assert r.exit_code == 2
    r = run_cli("convert", tmp_path / "full" / "clip_000000000000_keypoints.json", "-o", tmp_path / "x.json")
    assert r.exit_code == 1 and "single OpenPose frame" in r.stderr
