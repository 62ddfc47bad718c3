"""Skeleton graphs for ST-GCN: hop distances, normalised adjacency and the paper's partition strategies.

Reproduces the reference implementation of Yan, Xiong and Lin (AAAI 2018) number for number, so a
model built on :class:`Graph` matches the published checkpoints.

Orientation: ``A[k, v, w]`` weighs the message *from* joint ``v`` *into* joint ``w`` (the model
computes ``y[..., w] = sum_k sum_v x_k[..., v] A[k, v, w]``). Columns are normalised
(``A·D⁻¹``): summed over all subsets, every column sums to 1.

Spatial strategy, subsets for ``max_hop=1``:

* 0 - root: the self link;
* 1 - messages from a neighbour *farther* from the centre than the receiving joint (and from
  neighbours equally far), i.e. the receiver's centrifugal neighbours in the paper's terms;
* 2 - messages from a neighbour *closer* to the centre: the receiver's centripetal neighbours.

A quirk of the reference kept on purpose (the published weights were trained with it): distances to
the centre are taken from the hop matrix, which stops at ``max_hop``. Every joint farther than
``max_hop`` hops from the centre is "infinitely" far, so edges between two such joints (e.g. elbow
to wrist) count as equally far and land in subset 1 in both directions. ``full_center_distance=True``
measures the true graph distance instead, the partition the paper describes.
"""
from __future__ import annotations

import numpy as np

from actionpipe.core.errors import ActionpipeError
from actionpipe.pose.layouts import SkeletonLayout, get_layout

STRATEGIES = ("uniform", "distance", "spatial")


def hop_distance(num_node: int, edges, max_hop: int = 1) -> np.ndarray:
    """Hop distance between every pair of joints, ``inf`` beyond ``max_hop`` (as the reference)."""
    adjacency = np.zeros((num_node, num_node))
    for i, j in edges:
        adjacency[i, j] = adjacency[j, i] = 1
    dist = np.full((num_node, num_node), np.inf)
    reach = np.stack([np.linalg.matrix_power(adjacency, d) > 0 for d in range(max_hop + 1)])
    for d in range(max_hop, -1, -1):
        dist[reach[d]] = d
    return dist


def bone_parents(layout: SkeletonLayout) -> list[int]:
    """Each joint's bone neighbour one hop nearer the layout's centre joint (the centre is its own)."""
    to_centre = hop_distance(layout.num_joints, layout.bones, layout.num_joints)[:, layout.center]
    parents = list(range(layout.num_joints))
    for a, b in layout.bones:
        for child, parent in ((a, b), (b, a)):
            if parents[child] == child and to_centre[parent] == to_centre[child] - 1:
                parents[child] = parent
    return parents


def normalize_digraph(adjacency: np.ndarray) -> np.ndarray:
    """``A·D⁻¹`` with ``D`` the column degrees; all-zero columns stay zero."""
    degree = adjacency.sum(axis=0)
    inverse = np.divide(1.0, degree, out=np.zeros_like(degree, dtype=float), where=degree > 0)
    return adjacency * inverse[None, :]


class Graph:
    """ST-GCN graph of a skeleton layout: ``A`` is float32 ``(K, V, V)``, K subsets of the strategy.

    ``layout``: a :class:`SkeletonLayout` or its name; edges are its bones plus self links, the
    centre is ``layout.center``. ``max_hop``/``dilation``: neighbours are joints at hop distances
    ``0, dilation, 2·dilation, … ≤ max_hop``.
    """

    def __init__(self, layout: str | SkeletonLayout = "openpose18", strategy: str = "spatial",
                 max_hop: int = 1, dilation: int = 1, *, full_center_distance: bool = False):
        self.layout = layout if isinstance(layout, SkeletonLayout) else get_layout(layout)
        if strategy not in STRATEGIES:
            raise ActionpipeError(None, f"unknown graph strategy {strategy!r} "
                                        f"(known: {', '.join(STRATEGIES)})")
        if max_hop < 1 or dilation < 1:
            raise ActionpipeError(None, f"max_hop and dilation must be >= 1 (got {max_hop}, {dilation})")
        self.strategy, self.max_hop, self.dilation = strategy, max_hop, dilation
        self.num_node = self.layout.num_joints
        self.center = self.layout.center
        self.edges = [(i, i) for i in range(self.num_node)] + list(self.layout.bones)
        self.hop_dis = hop_distance(self.num_node, self.edges, max_hop)
        center_hops = (hop_distance(self.num_node, self.edges, self.num_node)
                       if full_center_distance else self.hop_dis)[:, self.center]
        self.A = self._adjacency(center_hops).astype(np.float32)

    def _adjacency(self, center_hops: np.ndarray) -> np.ndarray:
        valid_hops = range(0, self.max_hop + 1, self.dilation)
        normalized = normalize_digraph(np.isin(self.hop_dis, valid_hops).astype(float))
        if self.strategy == "uniform":
            return normalized[None]
        hop_masks = [self.hop_dis == hop for hop in valid_hops]
        if self.strategy == "distance":
            return np.stack([normalized * mask for mask in hop_masks])
        # spatial: compare the sender's (row) and the receiver's (column) distance to the centre.
        sender_farther = center_hops[:, None] > center_hops[None, :]
        sender_equal = center_hops[:, None] == center_hops[None, :]
        subsets = [normalized * hop_masks[0] * sender_equal]
        for mask in hop_masks[1:]:
            subsets.append(normalized * mask * (sender_equal | sender_farther))
            subsets.append(normalized * mask * ~(sender_equal | sender_farther))
        return np.stack(subsets)

    def __repr__(self) -> str:
        return (f"Graph({self.layout.name!r}, strategy={self.strategy!r}, max_hop={self.max_hop}, "
                f"dilation={self.dilation}, A={tuple(self.A.shape)})")
