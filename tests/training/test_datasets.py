"""Dataset readers: Penn Action (real annotations), Kinetics-skeleton directories, labelled pose files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import make_pose, shared_path

from actionpipe.skeleton.convert import write_kinetics_json
from actionpipe.training.datasets import (OCCLUDED_CONFIDENCE, PENN_ACTION_CLASSES, Clip, class_names,
                                 load_kinetics_skeleton, load_labeled_poses, load_penn_action,
                                 load_penn_clip)
from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import COCO17


@pytest.fixture(scope="module")
def penn_labels():
    return shared_path("datasets", "penn_action", "labels")


def _front_view_clip(labels, action: str) -> str:
    from scipy.io import loadmat
    for path in sorted(labels.glob("*.mat")):
        mat = loadmat(str(path), variable_names=["action", "pose"])
        if str(mat["action"][0]) == action and str(mat["pose"][0]) == "front":
            return path
    pytest.fail(f"no front-view {action} clip in {labels}")


def test_penn_front_view_left_is_the_persons_left(penn_labels):
    """A person facing the camera has their left shoulder, elbow and hip on the image right."""
    clip = load_penn_clip(_front_view_clip(penn_labels, "jumping_jacks"))
    kp = clip.keypoints[0]
    for joint in ("shoulder", "hip"):
        left, right = kp[:, COCO17.index(f"left_{joint}")], kp[:, COCO17.index(f"right_{joint}")]
        both = (left[:, 2] == 1) & (right[:, 2] == 1)
        assert both.sum() > 5
        assert np.mean(left[both, 0] > right[both, 0]) > 0.9, joint


def test_penn_clip_fields(penn_labels):
    clip = load_penn_clip(penn_labels / "0001.mat")
    assert (clip.name, clip.label, clip.layout, clip.fps) == ("0001", "baseball_pitch", "coco17", 30.0)
    assert (clip.width, clip.height, clip.split) == (480, 360, "test")  # dimensions are H, W, T
    assert clip.keypoints.shape == (1, 151, 17, 3) and clip.keypoints.dtype == np.float32
    eyes_ears = [COCO17.index(n) for n in ("left_eye", "right_eye", "left_ear", "right_ear")]
    assert not clip.keypoints[0, :, eyes_ears].any()
    body = np.delete(clip.keypoints[0], eyes_ears, axis=1)
    assert set(np.unique(body[..., 2])) <= {1.0, OCCLUDED_CONFIDENCE}
    # Occluded joints keep their guessed position; the raw flag is there.
    occluded = clip.visibility[0] == 0
    occluded[:, eyes_ears] = False
    assert occluded.any() and (clip.keypoints[0][occluded][:, :2] > 0).all()
    assert ((clip.keypoints[0, ..., 2] == 1.0) == (clip.visibility[0] == 1)).all()


def test_penn_integer_coordinates_are_read_as_float(penn_labels):
    """Some files store x, y as uint8/uint16: midpoints must not wrap around."""
    from scipy.io import loadmat

    from actionpipe.pose.layouts import convert_keypoints
    for path in sorted(penn_labels.glob("*.mat")):
        mat = loadmat(str(path), variable_names=["x", "y"])
        if mat["x"].dtype == np.uint8:
            break
    else:
        pytest.skip("no uint8-stored clip")
    kp = load_penn_clip(path).keypoints[0]
    x = mat["x"].astype(np.float64)
    np.testing.assert_array_equal(kp[:, COCO17.index("left_shoulder"), 0], x[:, 2])  # Penn "R_shoulder"
    neck = convert_keypoints(kp, "coco17", "openpose18")[:, 1, 0]
    np.testing.assert_allclose(neck, (x[:, 1] + x[:, 2]) / 2)


def test_penn_unannotated_joints_are_missing(penn_labels):
    """Joints stored as occluded at x or y = 0 were never annotated: missing, not outliers at (0, 0)."""
    from scipy.io import loadmat

    path = penn_labels / "0052.mat"  # 63 such joints
    mat = loadmat(str(path), variable_names=["x", "y", "visibility"])
    unannotated = (mat["visibility"] == 0) & ((mat["x"] <= 1) | (mat["y"] <= 1))
    assert unannotated.sum() > 0
    kp = load_penn_clip(path).keypoints[0]
    columns = [2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11]  # left_shoulder … right_ankle <- Penn columns
    for j, column in zip(range(5, 17), columns):
        assert not kp[unannotated[:, column], j].any()
        occluded_but_placed = (mat["visibility"][:, column] == 0) & ~unannotated[:, column]
        assert np.all(kp[occluded_but_placed, j, 2] == 0.5)


def test_penn_whole_dataset_and_splits(penn_labels):
    clips = load_penn_action(penn_labels.parent)
    assert len(clips) == 2326
    assert class_names(clips) == list(PENN_ACTION_CLASSES) == sorted(PENN_ACTION_CLASSES)
    assert sum(c.split == "train" for c in clips) == 1258
    assert sum(c.label == "squat" for c in clips) == 231
    test = load_penn_action(penn_labels, split="test")
    assert len(test) == 1068 and {c.split for c in test} == {"test"}
    assert all(c.num_frames >= 18 for c in test)


def test_penn_groups_are_runs_of_consecutive_clips_of_one_split_and_action(penn_labels):
    clips = load_penn_action(penn_labels)
    groups: dict[str, list] = {}
    for c in clips:
        groups.setdefault(c.group, []).append(c)
    assert 300 < len(groups) < len(clips) / 2          # several clips per source video
    for members in groups.values():
        assert len({(c.split, c.label) for c in members}) == 1
        numbers = [int(c.name) for c in members]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))


def test_penn_errors(tmp_path):
    (tmp_path / "labels").mkdir()
    with pytest.raises(ActionpipeError, match="no Penn Action"):
        load_penn_action(tmp_path)
    (tmp_path / "labels" / "0001.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(ActionpipeError, match="0001.mat: not a readable Penn Action annotation"):
        load_penn_action(tmp_path)
    with pytest.raises(ActionpipeError, match="unknown split 'dev'"):
        load_penn_action(tmp_path, split="dev")


def _kinetics_clip(path, label, index, slots):
    data = [{"frame_index": t + 1, "skeleton": [{"pose": [0.25 * (s + 1), 0.5] * 18, "score": [0.9 - 0.1 * s] * 18}
                                                for s in range(slots)]} for t in range(4)]
    path.write_text(json.dumps({"data": data, "label": label, "label_index": index}))


def test_kinetics_skeleton_dir_with_label_file(tmp_path):
    data = tmp_path / "kinetics_val"
    data.mkdir()
    _kinetics_clip(data / "aaa.json", "zumba", 399, 2)
    _kinetics_clip(data / "bbb.json", "abseiling", 0, 1)
    _kinetics_clip(data / "ccc.json", "abseiling", 0, 0)
    (tmp_path / "kinetics_val_label.json").write_text(json.dumps({
        "aaa": {"has_skeleton": True, "label": "zumba", "label_index": 399},
        "bbb": {"has_skeleton": True, "label": "abseiling", "label_index": 0},
        "ccc": {"has_skeleton": False, "label": "abseiling", "label_index": 0}}))
    clips = load_kinetics_skeleton(data)
    assert [c.name for c in clips] == ["aaa", "bbb"]  # no-skeleton clip skipped
    a = clips[0]
    assert (a.label, a.label_index, a.split, a.layout) == ("zumba", 399, "test", "openpose18")
    assert a.keypoints.shape == (2, 4, 18, 3) and a.track_ids.tolist() == [1, 2]
    assert a.keypoints[0, 0, 0] == pytest.approx((85, 128, 0.9))   # 0.25 * 340, 0.5 * 256
    assert a.keypoints[1, 0, 0] == pytest.approx((170, 128, 0.8))
    assert class_names(clips) == ["abseiling", "zumba"]  # by label_index
    two = load_kinetics_skeleton(data, width=680, height=512, max_people=1)
    assert two[0].keypoints.shape == (1, 4, 18, 3) and two[0].keypoints[0, 0, 0, 0] == pytest.approx(170)


def test_kinetics_skeleton_errors(tmp_path):
    data = tmp_path / "kinetics_train"
    data.mkdir()
    _kinetics_clip(data / "aaa.json", "zumba", 399, 1)
    (tmp_path / "labels.json").write_text(json.dumps({"aaa": {"label": "zumba"}, "zzz": {"label": "x"}}))
    with pytest.raises(ActionpipeError, match="clip 'zzz' is listed but"):
        load_kinetics_skeleton(data, tmp_path / "labels.json")
    clips = load_kinetics_skeleton(data)  # no label file: each clip's own label
    assert clips[0].split == "train" and clips[0].label == "zumba"
    (data / "aaa.json").write_text("{\"data\": [{\"frame_index\": 1, \"skeleton\": [{}]}]}")
    with pytest.raises(ActionpipeError, match="aaa.json: data\\[0\\].skeleton\\[0\\]: no \"score\" list"):
        load_kinetics_skeleton(data)


def test_labeled_pose_files(tmp_path):
    (tmp_path / "poses").mkdir()
    make_pose().save(tmp_path / "poses" / "a.json")
    write_kinetics_json(make_pose(), tmp_path / "poses" / "b.json")
    (tmp_path / "labels.csv").write_text("file,label,split,group\nposes/a.json,wave,train,day1\nposes/b.json,clap,test,\n")
    clips = load_labeled_poses(tmp_path / "labels.csv", max_people=1)
    assert [(c.name, c.label, c.split, c.layout, c.group) for c in clips] == [
        ("poses/a.json", "wave", "train", "coco17", "day1"), ("poses/b.json", "clap", "test", "openpose18", None)]
    a = clips[0]
    assert isinstance(a, Clip) and a.keypoints.shape == (1, 6, 17, 3) and (a.width, a.fps) == (1768, 25.0)
    # Track 1 is in 5 frames, track 2 in 4: ranked by summed confidence, track 1 is kept.
    assert a.track_ids.tolist() == [1]
    np.testing.assert_allclose(a.keypoints[0, 0], make_pose().frames[0].people[0].keypoints, atol=1e-5)
    assert not a.keypoints[0, 3].any()  # nobody in frame 3
    both = load_labeled_poses(tmp_path / "labels.csv", max_people=3, split="test")
    assert len(both) == 1 and both[0].track_ids.tolist() == [1, 2, -1]
    assert class_names(clips) == ["clap", "wave"]


@pytest.mark.parametrize("csv,problem", [
    ("path,class\nx.json,wave\n", "needs a header with columns file,label"),
    ("file,label\nmissing.json,wave\n", "labels.csv:2: .*missing.json not found"),
    ("file,label,split\na.json,wave,validation\n", "labels.csv:2: split 'validation'"),
    ("file,label\na.json,\n", "labels.csv:2: empty file or label"),
])
def test_labeled_pose_files_errors(tmp_path, csv, problem):
    make_pose().save(tmp_path / "a.json")
    (tmp_path / "labels.csv").write_text(csv)
    with pytest.raises(ActionpipeError, match=problem):
        load_labeled_poses(tmp_path / "labels.csv")


def test_class_names_conflicting_label_index():
    clip = Clip("a", "run", np.zeros((1, 1, 18, 3), np.float32), "openpose18", 1, 1, 30.0, label_index=3)
    other = Clip("b", "run", clip.keypoints, "openpose18", 1, 1, 30.0, label_index=4)
    with pytest.raises(ActionpipeError, match="label_index 4 here and 3 elsewhere"):
        class_names([clip, other])
