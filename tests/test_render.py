"""render: a playable video of the same frames, size and rate, with skeletons where the people are."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from actionpipe.errors import ActionpipeError
from actionpipe.posefile import PoseFile
from actionpipe.render import CODECS, load_result, open_video_writer
from actionpipe.video import probe
from test_classify import make_side_by_side
from test_infer import write_card


@pytest.fixture(scope="module")
def clip(demo_video, tmp_path_factory):
    return make_side_by_side(demo_video, tmp_path_factory.mktemp("clips") / "side.mp4")


@pytest.fixture(scope="module")
def rendered(clip, tmp_path_factory):
    """Render with everything computed (pose, 0.8 s windows, per person), saving pose and scores."""
    from click.testing import CliRunner

    from actionpipe.cli import main

    out = tmp_path_factory.mktemp("render")
    card = write_card(out / "tiny")
    r = CliRunner().invoke(main, ["render", str(clip), "-o", str(out / "out.mp4"), "--model", str(card.directory),
                                  "--device", "cpu", "--imgsz", "320", "--fps", "15", "--window", "0.8",
                                  "--min-track-s", "0.3", "--save-pose", str(out / "pose.json"),
                                  "--save-scores", str(out / "scores.json"), "--json"])
    assert r.exit_code == 0, r.stderr
    return out, json.loads(r.stdout), r.stderr


def frames_of(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return out
        out.append(frame)


def test_render_keeps_frames_size_and_rate(clip, rendered):
    out, summary, stderr = rendered
    src, dst = probe(clip), probe(out / "out.mp4")
    assert (dst.width, dst.height, dst.fps) == (src.width, src.height, src.fps)
    assert len(frames_of(out / "out.mp4")) == len(frames_of(clip)) == summary["frames"] == 72
    assert summary["codec"] in CODECS and summary["codec"] in stderr
    assert not list(out.glob(".*part*"))


def drawn_at_keypoints(src, dst, pose):
    """How many confident keypoints there are, and the share of them where the frame was drawn on."""
    changed = []
    for pose_frame in pose.frames:
        i = round(pose_frame.time_s * 30)  # the video frame the pose frame was taken from
        diff = np.abs(dst[i].astype(int) - src[i].astype(int)).sum(-1)
        for person in pose_frame.people:
            for x, y, conf in person.keypoints:
                x, y = round(float(x)), round(float(y))
                if conf >= 0.5 and 2 <= x < diff.shape[1] - 2 and 2 <= y < diff.shape[0] - 2:
                    changed.append(diff[y - 2:y + 3, x - 2:x + 3].max() > 120)
    return len(changed), float(np.mean(changed))


def test_skeletons_are_drawn_on_the_people(clip, rendered):
    out, _, _ = rendered
    pose = PoseFile.load(out / "pose.json")
    scores = json.loads((out / "scores.json").read_text())
    assert {p["track_id"] for p in scores["per_person"]} == set(pose.track_ids())
    src, dst = frames_of(clip), frames_of(out / "out.mp4")
    checked, share = drawn_at_keypoints(src, dst, pose)
    assert checked > 50 and share > 0.9
    # Away from people and panels the picture is the source's, up to compression.
    middle = np.abs(dst[30].astype(int) - src[30].astype(int))[150:200, 400:500]
    assert middle.mean() < 8


def test_render_from_saved_pose_and_scores_needs_no_model(clip, rendered, run_cli, tmp_path, monkeypatch):
    out, _, _ = rendered
    monkeypatch.setattr("actionpipe.cards.SHIPPED_MODELS", tmp_path / "none")
    monkeypatch.delenv("ACTIONPIPE_MODELS", raising=False)
    again = tmp_path / "again.mp4"
    r = run_cli("render", clip, "-o", again, "--pose", out / "pose.json", "--scores", out / "scores.json")
    assert r.exit_code == 0, r.stderr
    a, b = frames_of(out / "out.mp4"), frames_of(again)
    # The same picture. Not bit-identical: the saved pose is rounded to 0.01 px, so a line may move
    # by a pixel, and the lossy inter-frame codec spreads such changes a little.
    assert len(a) == len(b) and max(np.abs(x.astype(int) - y.astype(int)).mean() for x, y in zip(a, b)) < 5
    assert drawn_at_keypoints(frames_of(clip), b, PoseFile.load(out / "pose.json"))[1] > 0.9


def test_pose_of_another_video_is_refused(clip, rendered, run_cli, tmp_path):
    out, _, _ = rendered
    pose = PoseFile.load(out / "pose.json")
    pose.width = 640
    pose.save(tmp_path / "other.json")
    r = run_cli("render", clip, "-o", tmp_path / "x.mp4", "--pose", tmp_path / "other.json",
                "--scores", out / "scores.json")
    assert r.exit_code == 1 and "640x360" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("*.mp4*")) and not list(tmp_path.glob(".x.mp4*"))


def test_load_result_picks_the_video_from_jsonl_and_json(tmp_path):
    lines = [{"video": "dir/a.mp4", "status": "ok", "label": "wave"},
             {"video": "dir/b.mp4", "status": "error", "error": "broken"}]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("".join(json.dumps(d) + "\n" for d in lines))
    assert load_result(jsonl, "elsewhere/a.mp4")["label"] == "wave"
    with pytest.raises(ActionpipeError, match="is an error"):
        load_result(jsonl, "b.mp4")
    with pytest.raises(ActionpipeError, match="no result for c.mp4"):
        load_result(jsonl, "c.mp4")
    doc = tmp_path / "r.json"
    doc.write_text(json.dumps({"model": "m", "results": lines[:1]}))
    assert load_result(doc, "any.mp4")["video"] == "dir/a.mp4"
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ActionpipeError, match="not classify JSON"):
        load_result(tmp_path / "bad.json", "a.mp4")


def test_writer_codec_is_detected(tmp_path):
    writer, codec = open_video_writer(tmp_path / "w.mp4", 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 40, np.uint8))
    writer.release()
    assert codec in CODECS and len(frames_of(tmp_path / "w.mp4")) == 5


def test_render_of_a_missing_video_fails_first_and_leaves_nothing(rendered, run_cli, tmp_path):
    out, saved = tmp_path / "r.mp4", tmp_path / "saved.json"
    r = run_cli("render", tmp_path / "missing.mp4", "-o", out, "--pose", rendered[0] / "pose.json",
                "--save-scores", saved)
    assert r.exit_code == 1 and "missing.mp4: file not found" in r.stderr
    assert not out.exists() and not saved.exists() and not list(tmp_path.glob(".*part"))


def test_scores_are_matched_to_the_same_file_before_the_same_name(tmp_path):
    from actionpipe.render import load_result

    (tmp_path / "jump").mkdir()
    (tmp_path / "run").mkdir()
    results = [{"video": str(tmp_path / d / "001.mp4"), "status": "ok", "label": d} for d in ("jump", "run")]
    path = tmp_path / "results.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in results))
    assert load_result(path, tmp_path / "jump" / "001.mp4")["label"] == "jump"
    assert load_result(path, tmp_path / "run" / "001.mp4")["label"] == "run"
    assert load_result(path, tmp_path / "elsewhere" / "001.mp4")["label"] == "run"  # same name: the last
