"""The INT8 pose model (pose.int8): fp32's person and keypoints on real frames, its cache and its key."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import openvino as ov
import pytest

from actionpipe.pose import int8
from actionpipe.pose.estimator import WEIGHTS_SHA256, PoseEstimator, _load_yolo, default_weights
from actionpipe.pose.openvino import FILES
from actionpipe.pose.tracking import box_iou
from actionpipe.video.reader import read_frames

from helpers import REPO

SQUAT = REPO / "samples" / "squat.mp4"


def tiny_head_model() -> ov.Model:
    """A real (tiny) OpenVINO graph named like the exported model: a convolution outside the head,
    the head's Sigmoid and an Add of its decoding."""
    from openvino import opset13 as ops

    x = ops.parameter([1, 3, 8, 8], np.float32, name="images")
    conv = ops.convolution(x, ops.constant(np.ones((4, 3, 1, 1), np.float32)), [1, 1], [0, 0], [0, 0], [1, 1])
    conv.set_friendly_name("__module.model.0.conv/aten::_convolution/Convolution")
    sigmoid = ops.sigmoid(conv)
    sigmoid.set_friendly_name("__module.model.23/aten::sigmoid/Sigmoid")
    add = ops.add(sigmoid, ops.constant(np.float32(1)))
    add.set_friendly_name("__module.model.23/aten::add/Add")
    return ov.Model([add], [x])


def test_the_float_head_is_the_scope_of_the_last_sigmoid_and_its_dfl():
    ignored = int8.float_head(tiny_head_model())
    assert ignored["types"] == ["Sigmoid"]
    names = ["__module.model.23/aten::add/Add", "__module.model.23.dfl.conv/aten::_convolution/Convolution",
             "__module.model.23.cv4.0.2/aten::_convolution/Convolution", "__module.model.2.conv/x"]
    kept_float = [n for n in names if any(re.match(p, n) for p in ignored["patterns"])]
    assert kept_float == names[:2]  # the head's convolutions are quantised, as ultralytics does


def test_the_cache_key_changes_with_the_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIONPIPE_CACHE", str(tmp_path))
    recipe = int8.recipe(tiny_head_model())
    assert recipe["calibration"]["video_sha256"] == "40cb338e0f16ac83b63e00f1b34d0fb97e7495ab44cef9b7c1384108f09b3d6e"
    folder = int8.int8_dir(WEIGHTS_SHA256, recipe)
    assert folder.parent == tmp_path / "pose-openvino-int8" and WEIGHTS_SHA256[:16] in folder.name
    assert f"nncf{int8.nncf_version()}" in folder.name and f"ov{ov.__version__.split('-')[0]}" in folder.name
    assert int8.int8_dir(WEIGHTS_SHA256, int8.recipe(tiny_head_model())) == folder  # deterministic
    changes = [("preset", "performance"), ("subset_size", 50),
               ("ignored", {"types": ["Sigmoid"], "patterns": [r"__module\.model\.23/.*"]}),
               ("calibration", dict(recipe["calibration"], video_sha256="0" * 64)),
               ("calibration", dict(recipe["calibration"], frames=[1, 200, 2]))]
    names = {int8.int8_dir(WEIGHTS_SHA256, dict(recipe, **{key: value})).name for key, value in changes}
    assert len(names) == len(changes) and folder.name not in names
    assert int8.int8_dir("f" * 64, recipe).name != folder.name


def test_nncf_is_imported_only_to_build():
    code = ("import sys; import actionpipe.pose.int8, actionpipe.pose.estimator, actionpipe.cli.main; "
            "print('nncf' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_int8_finds_fp32s_person_and_keypoints_on_real_frames():
    images = [f.image for f in read_frames(SQUAT, fps=2, max_side=640)][1:9]
    fp32, q = (PoseEstimator(imgsz=640, device="cpu", backend="openvino", precision=p).detect(images)
               for p in ("fp32", "int8"))
    errors = []
    for want, got in zip(fp32, q):
        assert len(want) == len(got) == 1  # the one man, in every frame
        assert box_iou(want[0].box, got[0].box)[0, 0] > 0.9 and abs(want[0].score - got[0].score) < 0.05
        seen = want[0].keypoints[:, 2] >= 0.5
        errors += np.linalg.norm(want[0].keypoints[seen, :2] - got[0].keypoints[seen, :2], axis=1).tolist()
    # Measured: median 3.0 px, 95th percentile 8.2 px (pixels at 640); the keypoints of the next
    # frame (a broken or mismatched model) are 14 px off in median.
    assert np.median(errors) < 6 and np.percentile(errors, 95) < 16


@pytest.mark.slow
def test_int8_is_built_once_into_the_cache_then_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ACTIONPIPE_CACHE", str(tmp_path))
    loads = []

    def load():
        loads.append(1)
        return _load_yolo(default_weights())

    folder = int8.ensure_int8(load, WEIGHTS_SHA256)
    assert "building the INT8 pose model" in capsys.readouterr().err and loads == [1]
    assert folder.parent == tmp_path / "pose-openvino-int8"
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "manifest.json", "recipe.json"])
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary folder left
    model = ov.Core().read_model(folder / "model.xml")
    assert any(op.get_type_name() == "FakeQuantize" for op in model.get_ordered_ops())
    built = (folder / "manifest.json").stat().st_mtime_ns
    assert int8.ensure_int8(load, WEIGHTS_SHA256) == folder
    assert capsys.readouterr().err == "" and loads == [1] and (folder / "manifest.json").stat().st_mtime_ns == built
