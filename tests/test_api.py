"""The Python API end to end, as a notebook would use it: the shipped default model on samples/squat.mp4."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO
SQUAT = REPO / "samples" / "squat.mp4"


def test_import_is_light_and_exports_lazily():
    code = ("import sys, actionpipe; heavy = [m for m in ('torch', 'cv2', 'ultralytics', 'openvino') if m in sys.modules];"
            "assert not heavy, heavy; from actionpipe import ActionModel, PoseFile; print(ActionModel.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0 and out.stdout.strip() == "ActionModel", out.stderr
    import actionpipe
    with pytest.raises(AttributeError):
        actionpipe.NoSuchThing  # noqa: B018


@pytest.fixture(scope="module")
def model():
    from actionpipe import ActionModel

    return ActionModel(device="cpu")


@pytest.fixture(scope="module")
def result(model):
    return model(SQUAT, window=2.0, per_person=True)


@pytest.mark.slow
def test_notebook_session(model, result, tmp_path, capfd):
    from actionpipe import PoseFile, Prediction

    # One video, options per call: the label, its probability, the ranking, segments and people.
    assert repr(model).startswith(f"ActionModel({model.card.name!r}, {len(model.classes)} classes")
    assert result.ok and result.status == "ok" and result.label == "squat"
    assert result.top(3)[0] == (result.label, result.probability) and len(result.top(3)) == 3
    assert [p for _, p in result.top(len(model.classes))] == sorted((p for _, p in result.top(len(model.classes))), reverse=True)
    assert result.segments and result.segments[0].start_s == 0.0
    assert all(a.end_s == b.start_s for a, b in zip(result.segments, result.segments[1:]))  # they tile the video
    person, = result.people
    assert person.track_id in result.pose.track_ids() and person.label in model.classes
    assert isinstance(result.pose, PoseFile) and result.pose.fps == model.classifier.fps
    # Short reprs, not kilobytes of arrays.
    for thing in (model.card, result, person, result.pose, result.prediction, result.timeline, result.result):
        assert len(repr(thing)) < 200, repr(thing)
    # JSON as `classify --json` gives it.
    d = json.loads(result.to_json())
    assert d == json.loads(json.dumps(result.to_dict()))
    assert d["label"] == "squat" and d["timeline"]["segments"] and d["per_person"][0]["track_id"] == person.track_id

    # One annotated frame, then the annotated video.
    frame = result.plot(t=2.0)
    assert frame.shape == (result.pose.height, result.pose.width, 3) and frame.dtype == np.uint8
    from actionpipe.video.reader import probe, read_frames
    plain = next(read_frames(SQUAT, start=2.0))
    assert (frame != plain.image).any(axis=2).mean() > 0.01   # something was drawn on it
    summary = result.save(tmp_path / "annotated.mp4")
    assert probe(tmp_path / "annotated.mp4").frame_count == summary["frames"] == probe(SQUAT).frame_count

    # The stages, composable: the pose the call used, and the bare prediction from it.
    pose = model.pose(SQUAT)
    assert pose.num_frames == result.pose.num_frames and pose.track_ids() == result.pose.track_ids()
    prediction = model.predict(pose)
    assert isinstance(prediction, Prediction)
    assert model.classes[int(np.argmax(prediction.probabilities))] == "squat"
    windowed = model.predict(pose, window=2.0)
    np.testing.assert_allclose(windowed.window_probabilities, result.prediction.window_probabilities, atol=1e-6)
    pose.save(tmp_path / "pose.json")
    np.testing.assert_allclose(model.predict(tmp_path / "pose.json").probabilities, prediction.probabilities, atol=1e-5)

    # A library call prints nothing.
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.slow
def test_many_videos_stream_and_a_broken_one_does_not_stop_them(model, result, tmp_path):
    from actionpipe.core.errors import ActionpipeError

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    stream = model([broken, SQUAT], stream=True)
    assert not isinstance(stream, list)
    bad, good = stream
    assert bad.status == "error" and not bad.ok and bad.label is None and bad.top() == [] and bad.pose is None
    assert "broken.mp4" in repr(bad)
    with pytest.raises(ActionpipeError, match="no pose"):
        bad.plot()
    # Without windows or people this time: the per-call options do not stick.
    assert good.label == result.label and good.timeline is None and good.people == []
    np.testing.assert_allclose(good.prediction.probabilities, model.predict(result.pose).probabilities, atol=1e-6)
    with pytest.raises(ActionpipeError, match="broken.mp4"):
        model(broken)                                  # one video: raised, not returned
    with pytest.raises(ActionpipeError, match="aggregate"):
        model(SQUAT, aggregate="median")


def test_model_argument_forms(tmp_path):
    from actionpipe import ActionModel, ModelCard
    from actionpipe.core.errors import ActionpipeError
    from helpers import write_card

    card = write_card(tmp_path / "tiny")
    for form in (card, card.directory, str(card.directory)):
        assert ActionModel(form, device="cpu").card.name == card.name
    with pytest.raises(ActionpipeError, match="no such model"):
        ActionModel(tmp_path / "nothing-here")
    assert isinstance(card, ModelCard)
