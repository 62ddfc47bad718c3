"""tracking: ids stay with people through crossings, occlusions and duplicate detections."""
from __future__ import annotations

import random

import numpy as np
import pytest

from actionpipe.pose.tracking import Detection, Tracker, assignment, box_iou, keypoint_distance, suppress_duplicates

# A standing person's 17 COCO keypoints in a 1 x 2 box (x right, y down), frontal.
TEMPLATE = np.array([
    [0.50, 0.10], [0.55, 0.07], [0.45, 0.07], [0.60, 0.09], [0.40, 0.09],   # nose, eyes, ears
    [0.75, 0.30], [0.25, 0.30], [0.85, 0.55], [0.15, 0.55], [0.90, 0.80],   # shoulders, elbows, wrist
    [0.10, 0.80], [0.65, 1.00], [0.35, 1.00], [0.65, 1.45], [0.35, 1.45],   # wrist, hips, knees
    [0.65, 1.90], [0.35, 1.90]])                                             # ankles


def person(cx: float, cy: float = 300.0, width: float = 100.0, score: float = 0.9) -> Detection:
    x1, y1 = cx - width / 2, cy - width
    kps = np.column_stack([TEMPLATE * width + [x1, y1], np.full(17, 0.9)])
    return Detection(np.array([x1, y1, x1 + width, y1 + 2 * width]), score, kps)


def run(tracker: Tracker, frames: list[list[tuple[str, Detection]]], shuffle: bool = True) -> dict[str, set[int]]:
    """Feed labelled detections frame by frame (in random order); the ids each label received."""
    rng = random.Random(0)
    ids: dict[str, set[int]] = {}
    for frame in frames:
        frame = list(frame)
        if shuffle:
            rng.shuffle(frame)
        for (label, _), track_id in zip(frame, tracker.update([d for _, d in frame])):
            ids.setdefault(label, set()).add(track_id)
    return ids


def test_box_iou_and_keypoint_distance():
    assert box_iou([0, 0, 10, 10], [[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])[0] == \
        pytest.approx([1.0, 1 / 3, 0.0])
    a, b = person(100), person(130)
    assert keypoint_distance(a.keypoints, a.box, b.keypoints, b.box) == pytest.approx(30 / np.sqrt(100 * 200))
    b.keypoints[:, 2] = 0.0  # no confident joints in common: box centres stand in
    assert keypoint_distance(a.keypoints, a.box, b.keypoints, b.box) == pytest.approx(30 / np.sqrt(100 * 200))


def test_two_people_crossing_keep_their_ids():
    # A walks right, B walks left at the same height and size: at the crossing their boxes
    # coincide and, for 3 frames, the one behind is not detected at all.
    frames = []
    for t in range(40):
        a, b = 100 + 10 * t, 490 - 10 * t
        hidden = abs(a - b) < 40
        frames.append([("A", person(a))] + ([] if hidden else [("B", person(b))]))
    assert sum(len(f) == 1 for f in frames) >= 3
    ids = run(Tracker(), frames)
    assert len(ids["A"]) == 1 and len(ids["B"]) == 1 and ids["A"] != ids["B"]


def test_person_hidden_for_a_while_comes_back_with_same_id():
    # B walks behind an obstacle for 12 frames and comes out where it was heading.
    frames = [[("A", person(100))] + ([] if 10 <= t < 22 else [("B", person(300 + 8 * t))])
              for t in range(30)]
    ids = run(Tracker(), frames)
    assert ids == {"A": {1}, "B": {2}}


def test_track_expires_after_max_gap():
    frames = [[("A", person(100))]] * 5 + [[]] * 11 + [[("late", person(100))]]
    assert run(Tracker(max_gap=10), frames)["late"] == {2}
    frames = [[("A", person(100))]] * 5 + [[]] * 9 + [[("late", person(100))]]
    assert run(Tracker(max_gap=10), frames)["late"] == {1}


def test_a_far_away_newcomer_gets_a_new_id():
    frames = [[("A", person(100))], [("A", person(102)), ("new", person(900))], [("A", person(104))]]
    ids = run(Tracker(), frames)
    assert ids["A"] == {1} and ids["new"] == {2}


def test_reach_grows_with_the_time_a_track_is_unseen():
    # Someone disappears and reappears 3 person-sizes away: too far right after, fine after 1.5 s.
    def clip(gap):
        return [[("A", person(100))]] * 3 + [[]] * gap + [[("A", person(100 + 3 * 141))]]
    assert len(run(Tracker.for_fps(30), clip(1))["A"]) == 2
    assert run(Tracker.for_fps(30), clip(45))["A"] == {1}


def test_suppress_duplicates_keeps_the_best_of_one_person():
    best = person(200, score=0.9)
    wide = Detection(best.box + [-40, 0, 40, 0], 0.5, best.keypoints + 2)  # arms-out box, same joints
    other = person(330, score=0.4)
    kept = suppress_duplicates([wide, other, best])
    assert kept == [best, other]


def test_assignment_matches_scipys_for_one_and_many():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    for shape in [(1, 1), (1, 4), (4, 1), (3, 3), (2, 5), (5, 2)]:
        cost = rng.random(shape)
        mine, theirs = assignment(cost), linear_sum_assignment(cost)
        assert cost[mine].sum() == pytest.approx(cost[theirs].sum()) and len(mine[0]) == len(theirs[0]) == min(shape)
