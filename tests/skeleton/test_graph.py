"""ST-GCN graphs: shapes, normalisation, partition membership, against the reference algorithm."""
from __future__ import annotations

import numpy as np
import pytest

from actionpipe.core.errors import ActionpipeError
from actionpipe.skeleton.graph import Graph, hop_distance
from actionpipe.pose.layouts import LAYOUTS, OPENPOSE18

STRATEGY_SUBSETS = {"uniform": 1, "distance": 2, "spatial": 3}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("strategy", sorted(STRATEGY_SUBSETS))
def test_shapes_and_column_normalisation(layout, strategy):
    g = Graph(layout, strategy)
    v = LAYOUTS[layout].num_joints
    assert g.A.dtype == np.float32
    assert g.A.shape == (STRATEGY_SUBSETS[strategy], v, v)
    # A·D⁻¹: every joint has a self link, so over all subsets each column sums to exactly 1;
    # within a subset a column holds 1/degree per member, so it sums to a value in [0, 1].
    np.testing.assert_allclose(g.A.sum(axis=(0, 1)), np.ones(v), rtol=1e-6)
    assert np.all(g.A.sum(axis=1) <= 1 + 1e-6)
    # Subsets partition the neighbourhood: no (sender, receiver) pair is in two subsets.
    assert np.all((g.A > 0).sum(axis=0) <= 1)
    # Non-zero entries are exactly the bones plus self links, each weighted 1/degree(receiver).
    bones = np.eye(v, dtype=bool)
    for i, j in LAYOUTS[layout].bones:
        bones[i, j] = bones[j, i] = True
    np.testing.assert_array_equal(g.A.sum(axis=0) > 0, bones)
    np.testing.assert_allclose(g.A.sum(axis=0), bones / bones.sum(axis=0, keepdims=True), rtol=1e-6)


def test_openpose18_spatial_membership_as_reference():
    A = Graph("openpose18", "spatial").A
    assert A.shape == (3, 18, 18)
    # Subset 0 (root) is the self links only: 1/degree on the diagonal.
    degree = np.array([4, 4, 4, 3, 2, 4, 3, 2, 3, 3, 2, 3, 3, 2, 3, 3, 2, 2])  # bones + self
    np.testing.assert_allclose(A[0], np.diag(1.0 / degree), rtol=1e-6)
    neck, r_shoulder, r_elbow, r_wrist, nose = 1, 2, 3, 4, 0
    # A[k, sender, receiver]. Into the elbow, the shoulder (closer to the neck) is the centripetal
    # neighbour: subset 2. Into the shoulder, the elbow (farther) is centrifugal: subset 1.
    assert A[2, r_shoulder, r_elbow] == pytest.approx(1 / 3)
    assert A[1, r_elbow, r_shoulder] == pytest.approx(1 / 4)
    assert A[1, neck, r_shoulder] == 0 and A[2, neck, r_shoulder] == pytest.approx(1 / 4)
    assert A[1, r_shoulder, neck] == pytest.approx(1 / 4) and A[2, r_shoulder, neck] == 0
    assert A[1, nose, neck] == pytest.approx(1 / 4)
    # The reference's quirk: elbow and wrist are both beyond max_hop from the neck, so "equally
    # far", and the edge lands in subset 1 in both directions.
    assert A[1, r_wrist, r_elbow] == pytest.approx(1 / 3)
    assert A[1, r_elbow, r_wrist] == pytest.approx(1 / 2)
    assert A[2, r_elbow, r_wrist] == 0


def test_full_center_distance_gives_the_papers_partition():
    A = Graph("openpose18", "spatial", full_center_distance=True).A
    r_shoulder, r_elbow, r_wrist = 2, 3, 4
    assert A[2, r_shoulder, r_elbow] == pytest.approx(1 / 3)  # centripetal into the elbow
    assert A[1, r_wrist, r_elbow] == pytest.approx(1 / 3)  # centrifugal into the elbow
    assert A[2, r_elbow, r_wrist] == pytest.approx(1 / 2)  # centripetal into the wrist
    assert A[1, r_elbow, r_wrist] == 0
    np.testing.assert_array_equal(A[0], Graph("openpose18").A[0])


def test_ntu25_spatial_centre_and_membership():
    A = Graph("ntu25", "spatial").A
    assert A.shape == (3, 25, 25)
    spine_shoulder, neck, spine_mid, head = 20, 2, 1, 3
    # Into the neck, the spine-shoulder centre is centripetal; into the centre, everything is farther.
    assert A[2, spine_shoulder, neck] > 0 and A[1, neck, spine_shoulder] > 0
    assert A[2, :, spine_shoulder].sum() == 0
    assert A[2, spine_shoulder, spine_mid] > 0
    assert A[1, head, neck] > 0 and A[2, head, neck] == 0
    left_elbow, left_wrist = 5, 6  # both beyond max_hop of the centre: the reference's quirk
    assert A[1, left_elbow, left_wrist] > 0 and A[1, left_wrist, left_elbow] > 0


def test_distance_strategy_splits_by_hop_and_dilation():
    A = Graph("coco17", "distance").A
    np.testing.assert_array_equal(A[0] > 0, np.eye(17, dtype=bool))
    assert A[1, 5, 7] > 0 and A[1, 7, 5] > 0  # left shoulder - left elbow, one hop
    # max_hop 2, dilation 2: subsets for hops 0 and 2, bones themselves are skipped.
    g = Graph(OPENPOSE18, "distance", max_hop=2, dilation=2)
    assert g.A.shape == (2, 18, 18)
    assert g.A[1, 2, 3] == 0 and g.A[1, 2, 4] > 0  # shoulder-wrist is two hops
    np.testing.assert_allclose(g.A.sum(axis=(0, 1)), 1, rtol=1e-6)


def test_spatial_with_two_hops_has_five_subsets():
    g = Graph("body25", "spatial", max_hop=2)
    assert g.A.shape == (5, 25, 25)
    np.testing.assert_allclose(g.A.sum(axis=(0, 1)), 1, rtol=1e-6)


def test_hop_distance_is_inf_beyond_max_hop():
    edges = [(i, i) for i in range(18)] + list(OPENPOSE18.bones)
    d = hop_distance(18, edges, max_hop=1)
    assert d[1, 1] == 0 and d[1, 2] == 1 and np.isinf(d[1, 3])
    assert hop_distance(18, edges, max_hop=3)[1, 4] == 3


@pytest.mark.parametrize("kwargs", [{"strategy": "star"}, {"max_hop": 0}, {"layout": "mpii16"}])
def test_bad_arguments_raise_actionpipe_error(kwargs):
    with pytest.raises(ActionpipeError):
        Graph(**{"layout": "openpose18", **kwargs})
