"""Timeline: window scores merged into segments, whole-video aggregates, the current window."""
from __future__ import annotations

import numpy as np
import pytest

from actionpipe.model.aggregates import combine_windows
from actionpipe.outputs.timeline import Segment, Timeline, format_segment, merge_segments, window_at

CLASSES = ["wave", "squat", "jump"]


def scores(*rows):
    return np.array(rows, dtype=np.float64)


def test_same_top_class_windows_merge_and_boundaries_sit_mid_overlap():
    # 2 s windows every 1 s: squat, squat, squat, jump, jump (overlapping windows).
    starts = [0, 1, 2, 3, 4]
    ends = [2, 3, 4, 5, 6]
    p = scores([.1, .8, .1], [.2, .7, .1], [.1, .6, .3], [.1, .2, .7], [0, .1, .9])
    segs = merge_segments(starts, ends, p, CLASSES)
    assert [(s.label, s.windows) for s in segs] == [("squat", 3), ("jump", 2)]
    # Window 2 ends at 4, window 3 starts at 3: they meet in the middle of the overlap.
    assert (segs[0].start_s, segs[0].end_s) == (0, 3.5)
    assert (segs[1].start_s, segs[1].end_s) == (3.5, 6)
    assert segs[0].probability == pytest.approx((.8 + .7 + .6) / 3)
    assert segs[1].probability == pytest.approx(.8)
    assert str(segs[0]) == "0.0–3.5 s squat 0.70"


def test_alternating_classes_and_adjacent_windows():
    starts, ends = [0, 2, 4, 6], [2, 4, 6, 8]  # no overlap: boundaries at the shared edges
    p = scores([.9, .05, .05], [.1, .1, .8], [.9, 0, .1], [.6, .3, .1])
    segs = merge_segments(starts, ends, p, CLASSES)
    assert [(s.start_s, s.end_s, s.label) for s in segs] == [(0, 2, "wave"), (2, 4, "jump"), (4, 8, "wave")]
    # Segments tile the video: each ends where the next begins.
    assert all(a.end_s == b.start_s for a, b in zip(segs, segs[1:]))


def test_single_window_ties_and_empty():
    assert merge_segments([0], [1.5], scores([.5, .5, 0]), CLASSES) == [Segment(0, 1.5, "wave", .5, 1)]
    assert merge_segments([], [], np.zeros((0, 3)), CLASSES) == []
    with pytest.raises(ValueError, match="ordered"):
        merge_segments([2, 0], [4, 2], scores([1, 0, 0], [1, 0, 0]), CLASSES)
    with pytest.raises(ValueError, match="differ"):
        merge_segments([0, 1], [2], scores([1, 0, 0], [1, 0, 0]), CLASSES)


def test_aggregate_mean_and_max():
    p = scores([.9, .1, 0], [.1, .1, .8], [.2, .7, .1])
    assert np.allclose(combine_windows(p, method="mean"), [.4, .3, .3])
    assert combine_windows(p, method="mean").sum() == pytest.approx(1)
    # max: a short jump in a long wave video still scores high.
    assert np.allclose(combine_windows(p, method="max"), [.9, .7, .8])
    with pytest.raises(ValueError, match="unknown aggregate"):
        combine_windows(p, method="median")
    with pytest.raises(ValueError, match="W>=1"):
        combine_windows(np.zeros((0, 3)))


def test_window_at_prefers_the_window_centred_nearest():
    starts, ends = [0, 1, 2], [2, 3, 4]
    assert window_at(starts, ends, 0.2) == 0
    assert window_at(starts, ends, 1.6) == 1      # in windows 0 and 1; window 1's centre (2.0) is nearer
    assert window_at(starts, ends, 3.9) == 2
    assert window_at(starts, ends, 4.0) is None   # ends are exclusive
    assert window_at(starts, ends, -0.1) is None


def test_timeline_json_carries_settings_windows_and_segments():
    tl = Timeline(np.array([0.0, 1.0]), np.array([2.0, 3.0]), scores([.1, .8, .1], [.7, .2, .1]), CLASSES,
                  {"window_s": 2.0, "stride_s": 1.0, "aggregate": "mean"})
    d = tl.to_dict(k=2)
    assert d["window_s"] == 2.0 and d["aggregate"] == "mean"
    assert [w["label"] for w in d["windows"]] == ["squat", "wave"]
    assert [t["class"] for t in d["windows"][1]["top"]] == ["wave", "squat"]
    assert d["segments"] == [{"start_s": 0.0, "end_s": 1.5, "label": "squat", "probability": 0.8, "windows": 1},
                             {"start_s": 1.5, "end_s": 3.0, "label": "wave", "probability": 0.7, "windows": 1}]
    assert format_segment(0, 4.25, "squat", 0.934) == "0.0–4.2 s squat 0.93"
