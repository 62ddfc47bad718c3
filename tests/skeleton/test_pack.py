"""pack: the right tracks in stable slots, time resampling, normalisations, sample file round trip."""
from __future__ import annotations

import numpy as np
import pytest

from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17, OPENPOSE18
from actionpipe.skeleton.pack import (PackSpec, Sample, fit_length, normalize, pack_people, resample_time,
                             select_people)
from helpers import person, pose_file



def test_select_people_ranks_and_keeps_slots_fixed():
    # Track 1: small, confident, every frame. Track 2: big, less confident, half the frames.
    # Track 3: tiny, seen once.
    frames = [[person(1, 100, 200, 20, conf=0.95)] + ([person(2, 400, 250, 80, conf=0.6)] if t % 2 else [])
              + ([person(3, 600, 100, 5, conf=0.99)] if t == 3 else []) for t in range(10)]
    pose = pose_file(frames)
    by_conf = select_people(pose, 2, "confidence")
    assert by_conf.track_ids.tolist() == [1, 2]
    by_area = select_people(pose, 2, "area")
    assert by_area.track_ids.tolist() == [2, 1]
    # Slot 0 of the area ranking is track 2 in every frame it appears, zeros elsewhere.
    present = by_area.keypoints[0, :, :, 2].sum(-1) > 0
    assert present.tolist() == [bool(t % 2) for t in range(10)]
    assert np.allclose(by_area.keypoints[1, :, COCO17.index("nose"), 0], 100)
    one = select_people(pose, 1, "prominence")
    assert one.track_ids.tolist() == [2]


def test_select_people_pads_missing_slots():
    sel = select_people(pose_file([[person(7, 100, 100, 10)]] * 3), 2)
    assert sel.track_ids.tolist() == [7, -1]
    assert sel.keypoints.shape == (2, 3, 17, 3) and not sel.keypoints[1].any()


def test_resample_time_picks_nearest_frames():
    times = np.arange(30) / 30.0
    assert resample_time(times, 10.0).tolist() == list(range(0, 30, 3))
    assert resample_time(times, 60.0).tolist() == list(range(30))  # never duplicated


def test_frame_normalization_is_the_references():
    kp = np.array([[[[320, 240, 0.5], [0, 480, 1.0], [100, 100, 0.0]]]], dtype=np.float32)
    out = normalize(kp, "coco17", "frame", 640, 480)
    assert np.allclose(out[0, 0, 0], [0, 0, 0.5])
    assert np.allclose(out[0, 0, 1], [-0.5, 0.5, 1.0])
    assert np.allclose(out[0, 0, 2], [0, 0, 0])  # x, y zeroed where conf is 0


def test_body_normalization_is_invariant_to_position_and_scale():
    near = select_people(pose_file([[person(1, 500, 300, 120)]] * 4), 1).keypoints
    far = select_people(pose_file([[person(1, 80, 60, 15)]] * 4), 1).keypoints
    a, b = normalize(near, "coco17", "body", 640, 480), normalize(far, "coco17", "body", 640, 480)
    assert np.allclose(a, b, atol=1e-5)
    # Torso centre at the origin, torso length 1.
    ls, rs, lh, rh = (COCO17.index(j) for j in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    centre = (a[0, 0, [ls, rs, lh, rh], :2]).mean(0)
    assert np.allclose(centre, 0, atol=1e-5)
    torso = np.linalg.norm(a[0, 0, [ls, rs], :2].mean(0) - a[0, 0, [lh, rh], :2].mean(0))
    assert torso == pytest.approx(1.0, abs=1e-5)


def test_fit_length_crops_centre_and_pads():
    x = np.arange(10)
    assert fit_length(x, 4, axis=0).tolist() == [3, 4, 5, 6]
    assert fit_length(x[:3], 7, "loop", axis=0).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert fit_length(x[:3], 5, "zero", axis=0).tolist() == [0, 1, 2, 0, 0]


def test_pack_people_converts_layout_and_round_trips(tmp_path):
    pose = pose_file([[person(1, 320, 240, 50), person(2, 100, 240, 30)] for _ in range(12)], fps=30)
    spec = PackSpec(layout="openpose18", normalization="frame", fps=15, max_people=2, frames=8)
    sample = pack_people(pose, spec)
    assert sample.data.shape == (1, 3, 8, 18, 2) and sample.data.dtype == np.float32
    # The neck is the midpoint of the shoulders, in the right slot.
    neck = sample.data[0, :2, 0, OPENPOSE18.index("neck"), 0]
    ls = sample.data[0, :2, 0, OPENPOSE18.index("left_shoulder"), 0]
    rs = sample.data[0, :2, 0, OPENPOSE18.index("right_shoulder"), 0]
    assert np.allclose(neck, (ls + rs) / 2)
    assert sample.data[0, 0, 0, OPENPOSE18.index("left_shoulder"), 0] > sample.data[0, 0, 0, OPENPOSE18.index("right_shoulder"), 0]
    assert sample.frame_indices.tolist()[:6] == [0, 2, 4, 6, 8, 10]  # 15 fps from 30, then looped
    path = tmp_path / "s.npz"
    sample.save(path)
    back = Sample.load(path)
    assert np.array_equal(back.data, sample.data) and back.meta["layout"] == "openpose18"
    assert back.track_ids.tolist() == [1, 2]


def test_joint_mask_and_confidence_floor():
    p = person(1, 320, 240, 50)
    p.keypoints[COCO17.index("left_wrist"), 2] = 0.1
    spec = PackSpec(layout="coco17", normalization="body", max_people=1,
                    joint_mask=["left_eye", "right_eye"], min_confidence=0.3)
    data = pack_people(pose_file([[p]] * 3), spec).data
    for joint in ("left_eye", "right_eye", "left_wrist"):
        assert not data[0, :, :, COCO17.index(joint)].any()
    assert data[0, 2, :, COCO17.index("nose")].min() > 0


def test_bad_specs_and_files(tmp_path):
    with pytest.raises(ActionpipeError, match="normalization"):
        PackSpec(normalization="zscore")
    with pytest.raises(ActionpipeError, match="no frames"):
        pack_people(pose_file([]), PackSpec())
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ActionpipeError, match="bad.npz"):
        Sample.load(bad)


def test_outputs_get_normal_file_permissions(tmp_path):
    import os
    import stat

    path = tmp_path / "s.npz"
    pack_people(pose_file([[person(1, 100, 100, 10)]] * 2), PackSpec()).save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
