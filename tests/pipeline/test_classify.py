"""classify end to end on real footage with a small test model: mechanics, not accuracy.

Timelines, per-person results and resumable JSONL output included."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from actionpipe.pipeline.classify import ANSWERS, Classifier
from actionpipe.model.infer import window_starts
from actionpipe.outputs.jsonl import JsonlWriter, done_videos, repair_jsonl
from actionpipe.skeleton.pack import pack_track
from actionpipe.pose.posefile import PoseFile
from helpers import CLASSES, make_side_by_side, write_card


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    return write_card(tmp_path_factory.mktemp("models") / "tiny")


def test_classify_folder_skips_broken_video_and_fails_exit_code(card, short_clip, tmp_path, run_cli):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(short_clip.read_bytes())
    (folder / "broken.mp4").write_bytes(short_clip.read_bytes()[:2000])  # truncated
    (folder / "notes.txt").write_text("not a video, and not picked up")
    r = run_cli("classify", folder, "--model", card.directory, "--device", "cpu", "--imgsz", "320",
                "--json", "--top", "2")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    by_name = {res["video"].rsplit("/", 1)[-1]: res for res in doc["results"]}
    assert set(by_name) == {"a.mp4", "broken.mp4"}
    assert by_name["a.mp4"]["status"] == "ok" and len(by_name["a.mp4"]["top"]) == 2
    assert by_name["broken.mp4"]["status"] == "error" and "broken.mp4" in by_name["broken.mp4"]["error"]
    assert "broken.mp4" in r.stderr


def test_classify_jsonl_and_no_person(card, tmp_path, run_cli):
    blank = tmp_path / "blank.mp4"
    writer = cv2.VideoWriter(str(blank), cv2.VideoWriter_fourcc(*"mp4v"), 15, (320, 240))
    for i in range(10):
        writer.write(np.full((240, 320, 3), 40 + i, np.uint8))
    writer.release()
    r = run_cli("classify", blank, "--model", card.directory, "--device", "cpu", "--jsonl", "-")
    assert r.exit_code == 0
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["status"] == "no_person" and "label" not in lines[0]
    # The human table output says so on stdout too.
    r = run_cli("classify", blank, "--model", card.directory, "--device", "cpu")
    assert r.exit_code == 0 and r.stdout.strip() == f"{blank}: no person found"


def test_classify_usage_errors(card, tmp_path, run_cli):
    r = run_cli("classify", tmp_path, "--model", card.directory)
    assert r.exit_code == 2 and "no video files" in r.stderr
    for flags, problem in ((["--json", "--jsonl", "-"], "pick one"), (["--skip-existing"], "--jsonl FILE"),
                           (["--skip-existing", "--jsonl", "-"], "--jsonl FILE"), (["--stride", "1"], "--window")):
        r = run_cli("classify", tmp_path / "missing.mp4", "--model", card.directory, *flags)
        assert r.exit_code == 2 and problem in r.stderr, (flags, r.stderr)


# --- long videos, several people -----------------------------------------------------------------

@pytest.fixture(scope="module")
def side_by_side(demo_video, tmp_path_factory):
    return make_side_by_side(demo_video, tmp_path_factory.mktemp("clips") / "side_by_side.mp4")


@pytest.fixture(scope="module")
def timeline_run(card, side_by_side, tmp_path_factory):
    """One real run with 0.8 s windows and per person: (classifier, result, kept pose file)."""
    keep = tmp_path_factory.mktemp("keep")
    classifier = Classifier(card, device="cpu", imgsz=320, fps=15, window_s=0.8, stride_s=0.4,
                            per_person=True, min_track_s=0.3)
    result = classifier.classify(side_by_side, keep_dir=keep)
    return classifier, result, PoseFile.load(keep / "side_by_side" / "pose.json")


def test_classifier_runs_every_stage_on_real_footage(timeline_run, tmp_path):
    _, result, _ = timeline_run
    assert result.status == "ok" and result.label in CLASSES
    assert result.prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert result.info["people"] >= 2 and len(result.info["tracks_used"]) == 2
    assert result.info["frames"] == 36  # 72 frames at 30 fps, posed at 15 fps


def test_timeline_windows_are_the_predictors_batched_windows(timeline_run):
    classifier, result, pose = timeline_run
    tl = result.timeline
    # 36 frames at 15 fps, 12-frame windows every 6 frames: starts 0, 6, 12, 18, 24.
    inference = classifier.card.inference   # the timeline's windows are per call: the card's stay
    assert (classifier.predictor.window, classifier.predictor.stride) == (inference.window_frames, inference.stride)
    assert np.allclose(tl.starts, np.array([0, 6, 12, 18, 24]) / 15)
    assert np.allclose(tl.ends - tl.starts, 0.8)
    assert np.allclose(result.prediction.probabilities, tl.probabilities.mean(0))
    segs = tl.segments()
    assert segs[0].start_s == 0 and segs[-1].end_s == pytest.approx(2.4)
    assert all(a.end_s == b.start_s for a, b in zip(segs, segs[1:]))
    d = result.to_dict(2)
    assert len(d["timeline"]["windows"]) == 5 and len(d["timeline"]["windows"][0]["top"]) == 2
    assert d["timeline"]["segments"] and d["timeline"]["window_s"] == 0.8
    # --aggregate max, from the same pose without the pose model: each class's best window.
    maxed = Classifier(classifier.card, device="cpu", fps=15, window_s=0.8, stride_s=0.4, aggregate="max",
                       load_pose=False).classify_pose(pose, "side_by_side.mp4")
    assert np.allclose(maxed.prediction.probabilities, tl.probabilities.max(0), atol=1e-6)


def test_video_scores_follow_the_cards_window_aggregate_unless_overridden(timeline_run, tmp_path):
    _, _, pose = timeline_run
    motion_card = write_card(tmp_path / "motion", aggregate="motion")
    by_card = Classifier(motion_card, device="cpu", fps=15, load_pose=False).classify_pose(pose, "v.mp4")
    p = by_card.prediction
    weights = p.window_motion / p.window_motion.sum()
    assert len(weights) > 1 and not np.allclose(weights, weights.mean())
    assert np.allclose(p.probabilities, weights @ p.window_probabilities, atol=1e-6)
    mean = Classifier(motion_card, device="cpu", fps=15, aggregate="mean", load_pose=False).classify_pose(pose, "v.mp4")
    assert np.allclose(mean.prediction.probabilities, p.window_probabilities.mean(0), atol=1e-6)


def test_naming_the_cards_own_aggregate_changes_nothing_on_a_calibrated_card(timeline_run, tmp_path):
    _, _, pose = timeline_run
    card = write_card(tmp_path / "calibrated", aggregate="motion")
    card = card.rewrite(calibration={"temperature": 0.02})
    by_card = Classifier(card, device="cpu", fps=15, load_pose=False).classify_pose(pose, "v.mp4").prediction
    named = Classifier(card, device="cpu", fps=15, aggregate="motion", load_pose=False).classify_pose(pose, "v.mp4")
    assert np.allclose(named.prediction.probabilities, by_card.probabilities, atol=1e-6)
    # Combined before tempering: the motion-weighted mean of the untempered windows, then tempered.
    from actionpipe.model.openset import softmax, temper

    weights = by_card.window_motion / by_card.window_motion.sum()
    assert np.allclose(by_card.probabilities, temper(weights @ softmax(by_card.window_logits), 0.02), atol=1e-6)


def test_per_person_gives_each_person_its_own_track_span_box_and_label(timeline_run):
    classifier, result, pose = timeline_run
    people = {p.track_id: p for p in result.people}
    assert len(people) == 2
    left, right = sorted(people.values(), key=lambda p: p.box[0])
    assert (left.box[0] + left.box[2]) / 2 < 320 < (right.box[0] + right.box[2]) / 2
    assert left.start_s == 0 and left.end_s == pytest.approx(2.4)
    assert 0.8 < right.start_s < 1.8 and right.end_s == pytest.approx(2.4)  # she walks in at ~1.3 s
    assert right.frames < left.frames
    # Each person's scores are the model's on that person's own track, not the clip's.
    for person in (left, right):
        own = pack_track(pose, classifier.card.preprocessing, person.track_id)
        assert own.track_ids[0] == person.track_id and (own.track_ids[1:] == -1).all()
        assert own.times[0] == pytest.approx(person.start_s)
        # The timeline's 0.8 s / 0.4 s windows (12 / 6 frames) of that track, each packed on its own.
        windows = [pack_track(replace(pose, frames=[f for f in pose.frames if own.frame_indices[s] <= f.index
                                                    <= own.frame_indices[min(s + 12, len(own.times)) - 1]]),
                              classifier.card.preprocessing, person.track_id)
                   for s in window_starts(len(own.times), 12, 6)]
        expected = classifier.predictor.predict_windows([windows], window=12)[0]
        assert np.allclose(person.prediction.probabilities, expected.probabilities, atol=1e-6)
        assert person.timeline.starts[0] == pytest.approx(person.start_s)
    assert not np.allclose(left.prediction.probabilities, right.prediction.probabilities, atol=1e-7)
    d = result.to_dict(3)
    assert [p["track_id"] for p in d["per_person"]] == [p.track_id for p in result.people]
    assert {"start_s", "end_s", "box", "label", "top", "timeline"} <= set(d["per_person"][0])
    lines = result.summary_lines()
    assert lines[0] == "segments:" and sum(line.startswith("person ") for line in lines) == 2


def test_min_track_length_drops_short_tracks(timeline_run):
    classifier, _, pose = timeline_run
    strict = Classifier(classifier.card, device="cpu", fps=15, per_person=True, min_track_s=2.0, load_pose=False)
    result = strict.classify_pose(pose, "side_by_side.mp4")
    assert [p.start_s for p in result.people] == [0.0]  # only the man, seen for 2.4 s
    assert result.timeline is None  # no --window: the clip label as before


def test_prefetch_and_serial_decoding_agree(card, short_clip):
    results = [Classifier(card, device="cpu", imgsz=320, fps=15, prefetch=prefetch).classify(short_clip)
               for prefetch in (True, False)]
    assert np.array_equal(results[0].prediction.probabilities, results[1].prediction.probabilities)


def _jsonl(path):
    text = path.read_text()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_jsonl_resumes_after_a_killed_run(card, short_clip, tmp_path, run_cli):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in "abcd":
        (folder / f"{name}.mp4").write_bytes(short_clip.read_bytes())
    out = tmp_path / "results.jsonl"
    cmd = [sys.executable, "-c", "from actionpipe.cli.main import main; main()", "-q", "classify", str(folder),
           "--model", str(card.directory), "--device", "cpu", "--imgsz", "320", "--fps", "10",
           "--jsonl", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out.exists() and out.read_bytes().count(b"\n") >= 1) and proc.poll() is None:
        assert time.monotonic() < deadline, "no result line in 120 s"
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    first = _jsonl(out)
    assert 1 <= len(first) <= 4 and all(d["status"] == "ok" for d in first)
    # A crash in the middle of a write: a cut-off last line.
    with open(out, "ab") as f:
        f.write(b'{"video": "' + str(folder / "zz.mp4").encode() + b'", "stat')
    r = run_cli("classify", folder, "--model", card.directory, "--device", "cpu", "--imgsz", "320",
                "--fps", "10", "--jsonl", out, "--skip-existing")
    assert r.exit_code == 0, r.stderr
    assert "partial last line" in r.stderr and f"{len(first)} of 4 video(s) already done" in r.stderr
    final = _jsonl(out)
    assert final[:len(first)] == first  # earlier results untouched
    assert sorted(Path(d["video"]).name for d in final) == ["a.mp4", "b.mp4", "c.mp4", "d.mp4"]
    r = run_cli("classify", folder, "--model", card.directory, "--jsonl", out, "--skip-existing")
    assert r.exit_code == 0 and _jsonl(out) == final and "4 of 4" in r.stderr


def test_repair_and_done_videos(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"video": "a.mp4", "status": "ok"}\n{"video": "b.mp4", "status": "error"}\n{"vid')
    assert repair_jsonl(path) == len('{"vid')
    assert path.read_text().endswith('"error"}\n') and repair_jsonl(path) == 0
    # Failed videos are tried again on resume.
    assert done_videos(path, ANSWERS) == {os.path.realpath("a.mp4")}
    writer = JsonlWriter(path)
    writer.write({"video": "c.mp4", "status": "no_person"})
    writer.close()
    assert done_videos(path, ANSWERS) == {os.path.realpath("a.mp4"), os.path.realpath("c.mp4")}


def test_person_seen_too_briefly_is_too_short_not_a_class(card, demo_video, tmp_path, run_cli):
    """6 real frames (0.2 s): a status, exit code 0, no label."""
    clip = tmp_path / "glimpse.mp4"
    cap = cv2.VideoCapture(str(demo_video))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 360))
    for _ in range(6):
        ok, frame = cap.read()
        assert ok
        writer.write(cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA))
    writer.release()
    r = run_cli("classify", clip, "--model", card.directory, "--device", "cpu", "--imgsz", "320", "--jsonl", "-")
    assert r.exit_code == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["status"] == "too_short" and "label" not in d and 0 < d["person_frames"] < 8
    assert "too short" in r.stderr


def test_keep_names_do_not_collide_across_class_folders(tmp_path):
    from actionpipe.pipeline.classify import keep_names

    assert keep_names([tmp_path / "squat.mp4"]) == ["squat"]
    assert keep_names([tmp_path / "a.mp4", tmp_path / "b.mp4"]) == ["a", "b"]
    names = keep_names([tmp_path / "jump" / "001.mp4", tmp_path / "run" / "001.mp4"])
    assert names == ["jump/001", "run/001"]


def test_classifying_posed_videos_together_gives_each_its_own_answer(timeline_run):
    """classify_poses (Ray's classify actors) batches the windows of many videos: each video's
    result is the one classify_pose gives it alone, statuses included."""
    classifier, _, pose = timeline_run
    half = replace(pose, frames=pose.frames[: len(pose.frames) // 2])
    nobody = replace(pose, frames=[replace(f, people=[]) for f in pose.frames])
    posed = [(pose, "a.mp4", None), (nobody, "b.mp4", None), (half, "c.mp4", None)]
    together = classifier.classify_poses(posed)
    alone = [classifier.classify_pose(p, video) for p, video, _ in posed]
    assert [r.status for r in together] == ["ok", "no_person", "ok"]
    for t, a in zip(together, alone):
        assert t.video == a.video and t.status == a.status and t.label == a.label
        if a.prediction is not None:
            assert np.allclose(t.prediction.probabilities, a.prediction.probabilities, atol=1e-6)
            assert np.allclose(t.timeline.probabilities, a.timeline.probabilities, atol=1e-6)
            assert [p.track_id for p in t.people] == [p.track_id for p in a.people]
