"""ST-GCN (Yan, Xiong and Lin, AAAI 2018) with the reference implementation's exact parameter names.

``STGCN().state_dict()`` has the keys and shapes of the authors' model, so the published
``st_gcn.kinetics.pt`` (openpose18, 400 classes) and ``st_gcn.ntu-xsub.pt`` (ntu25, 60 classes) load
strictly with :func:`load_reference_state_dict`.

Input ``x``: float ``(N, C, T, V, M)`` - batch, channels (x, y, confidence), frames, joints, people.
Any ``T >= 1`` and ``M >= 1`` work: the stride-2 blocks pad, so one frame stays one frame.
``input_features="joint_bone_motion"`` adds bone and motion channels computed inside the model
(early fusion), so every stage before it still hands over plain joints.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from actionpipe.core.errors import ActionpipeError
from actionpipe.skeleton.graph import Graph, bone_parents
from actionpipe.pose.layouts import SkeletonLayout

# (width as a multiple of base_channels, temporal stride) of the ten published blocks.
BLOCK_PLAN = ((1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1), (4, 2), (4, 1), (4, 1))

# What the first layer sees: the joints as given (the published model), or the joints plus each
# joint's bone (its x, y minus its parent's) and motion (its x, y one frame later minus now).
INPUT_FEATURES = ("joint", "joint_bone_motion")


def bone_motion_features(x: torch.Tensor, parents: list[int]) -> torch.Tensor:
    """``(N, 3, T, V, M)`` (x, y, confidence) → ``(N, 7, T, V, M)``: those, the bone and the motion;
    each is 0 where a joint it needs has confidence 0, as missing joints are everywhere else."""
    xy, seen = x[:, :2], (x[:, 2:3] > 0).to(x.dtype)
    bone = (xy - xy[:, :, :, parents]) * (seen * seen[:, :, :, parents])
    step = (xy[:, :, 1:] - xy[:, :, :-1]) * (seen[:, :, 1:] * seen[:, :, :-1])
    motion = F.pad(step, (0, 0, 0, 0, 0, 1))   # the last frame has no next one
    return torch.cat([x, bone, motion], dim=1)


class GraphConv(nn.Module):
    """Spatial graph convolution: a 1×1 conv to ``K·C_out`` channels, then one contraction over
    the K subsets and the joints, ``y[n,c,t,w] = sum_k sum_v x_k[n,c,t,v] A[k,v,w]``.
    """

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int):
        super().__init__()
        self.num_subsets = num_subsets
        self.conv = nn.Conv2d(in_channels, out_channels * num_subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        n, kc, t, v = x.shape
        k = self.num_subsets
        # Channels-last activations are (n, t, v, k·c) in memory, so (v, k) is one contiguous axis
        # and the contraction is a single batched matmul with no copy (measured 1.3-1.5× faster on
        # CPU than the reference's einsum on NCHW, which permutes a copy of x first).
        x = x.permute(0, 2, 3, 1).reshape(n * t, v * k, kc // k)
        y = torch.matmul(A.permute(2, 1, 0).reshape(v, v * k), x)
        return y.view(n, t, v, kc // k).permute(0, 3, 1, 2)


class STGCNBlock(nn.Module):
    """Graph conv -> BN, ReLU, temporal conv (stride), BN, dropout -> + residual -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, num_subsets: int, temporal_kernel: int,
                 stride: int = 1, dropout: float = 0.0, residual: bool = True):
        super().__init__()
        self.gcn = GraphConv(in_channels, out_channels, num_subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1),
                      ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
        )
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        y = self.tcn(self.gcn(x, A))
        if self.residual is not None:
            y = y + self.residual(x)
        return torch.relu_(y)


class STGCN(nn.Module):
    """The published ST-GCN: data BN, ten ST-GCN blocks, global pooling, mean over people, 1×1 conv.

    ``base_channels`` scales every block's width (64 = published); ``temporal_kernel`` must be odd
    (9 = published). ``edge_importance``: learnable per-block masks multiplied onto ``A``.
    ``input_features``: one of :data:`INPUT_FEATURES` (``joint`` = published).
    """

    def __init__(self, in_channels: int = 3, num_class: int = 400,
                 layout: str | SkeletonLayout = "openpose18", strategy: str = "spatial",
                 max_hop: int = 1, dilation: int = 1, edge_importance: bool = True,
                 base_channels: int = 64, dropout: float = 0.5, temporal_kernel: int = 9,
                 input_features: str = "joint"):
        super().__init__()
        if temporal_kernel < 1 or temporal_kernel % 2 == 0:
            raise ActionpipeError(None, f"temporal_kernel must be odd and >= 1 (got {temporal_kernel})")
        if input_features not in INPUT_FEATURES or (input_features != "joint" and in_channels != 3):
            raise ActionpipeError(None, f"input_features {input_features!r} not understood (expected one of "
                                        f"{', '.join(INPUT_FEATURES)}; bones and motion need x, y, confidence)")
        self.graph = Graph(layout, strategy, max_hop, dilation)
        self.layout = self.graph.layout
        self.in_channels, self.num_class = in_channels, num_class
        self.parents = None if input_features == "joint" else bone_parents(self.layout)
        self.register_buffer("A", torch.from_numpy(self.graph.A.copy()))
        num_subsets, num_joints = self.A.shape[0], self.A.shape[1]
        channels = in_channels if self.parents is None else in_channels + 4
        self.data_bn = nn.BatchNorm1d(channels * num_joints)
        blocks = []
        for i, (width, stride) in enumerate(BLOCK_PLAN):
            out = width * base_channels
            # As in the reference: the first block has neither residual nor dropout.
            blocks.append(STGCNBlock(channels, out, num_subsets, temporal_kernel, stride,
                                     dropout=0.0 if i == 0 else dropout, residual=i > 0))
            channels = out
        self.st_gcn_networks = nn.ModuleList(blocks)
        self.feature_channels = channels
        if edge_importance:
            self.edge_importance = nn.ParameterList(
                nn.Parameter(torch.ones_like(self.A)) for _ in self.st_gcn_networks)
        else:
            self.edge_importance = None
        self.fcn = nn.Conv2d(channels, num_class, kernel_size=1)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or x.shape[1] != self.in_channels or x.shape[3] != self.layout.num_joints \
                or 0 in x.shape:
            raise ActionpipeError(None, f"model input of shape {tuple(x.shape)} does not fit the model "
                                        f"(expects N, C={self.in_channels}, T>=1, "
                                        f"V={self.layout.num_joints} ({self.layout.name}), M>=1)")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, C_last)``: mean over frames and joints, then over people.

        In eval mode without autograd (``torch.inference_mode()``/``no_grad``) this runs
        :class:`InferencePlan`, the same function with the batch norms folded into the weights;
        otherwise (training, or gradients wanted) the layers as they are."""
        self._check_input(x)
        if self.parents is not None:
            x = bone_motion_features(x, self.parents)
        if not self.training and not torch.is_grad_enabled():
            return self._inference_plan().features(x)
        n, c, t, v, m = x.shape
        # data_bn normalises each (joint, channel) pair, shared by all people: (N·M, V·C, T).
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
        x = self.data_bn(x)
        # (N·M, C, T, V) in channels-last memory, the layout every block below works in.
        x = x.view(n, m, v, c, t).permute(0, 1, 4, 2, 3).reshape(n * m, t, v, c).permute(0, 3, 1, 2)
        for i, block in enumerate(self.st_gcn_networks):
            A = self.A if self.edge_importance is None else self.A * self.edge_importance[i]
            x = block(x, A)
        return x.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_class)`` (no softmax)."""
        features = self.features(x)
        return self.fcn(features[:, :, None, None]).flatten(1)

    def _inference_plan(self) -> "InferencePlan":
        # Rebuilt whenever any parameter or buffer changed: a new tensor (load_state_dict with
        # assign, .to()) has a new address; an in-place change (optimizer step, load_state_dict's
        # copy_, running statistics) bumps the tensor's version counter.
        key = tuple((t.data_ptr(), -1 if t.is_inference() else t._version)
                    for t in chain(self.parameters(), self.buffers()))
        cached = self.__dict__.get("_plan_cache")
        if cached is None or cached[0] != key:
            with torch.no_grad():
                cached = (key, InferencePlan.build(self))
            self.__dict__["_plan_cache"] = cached  # not a submodule, not in the state dict
        return cached[1]


def _folded_batch_norm(bn: nn.BatchNorm1d | nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` with ``bn(x) == x * scale + shift`` per channel, in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


@dataclass
class _InferenceBlock:
    graph: torch.Tensor            # (V·K, V): rows (receiving joint w, subset k), columns sending joint v
    gcn_weight: torch.Tensor       # (K·C_in, C_out), the first batch norm's scale folded in
    gcn_bias: torch.Tensor         # (V, C_out): conv bias through the graph, plus the batch norm's shift
    tcn_weight: torch.Tensor       # (C_out, C_out, kernel, 1) channels-last, second batch norm folded in
    tcn_bias: torch.Tensor         # (C_out,), plus the residual branch's bias when it has a conv
    stride: int
    padding: int
    residual: str | torch.Tensor | None  # None, "identity", or the (C_in, C_out) folded 1×1 conv


class InferencePlan:
    """An eval-mode :class:`STGCN` as a few matrix products on channels-last activations.

    Per block: ``BN(conv1x1(x) ⊛ A)`` is computed graph first, ``((A_k x) for k) @ W`` — one batched
    product with the shared (V·K, V) adjacency, then one matrix product with inner size K·C_in —
    with the batch norm folded into W and a per-(joint, channel) bias; then ReLU, the temporal
    convolution with its batch norm folded, and the residual (its 1×1 conv and batch norm folded)
    added inside one ``addmm``. Dropout is the identity. Outputs equal the layers' to float
    rounding; built from the model's current weights by :meth:`STGCN._inference_plan`.
    """

    def __init__(self, data_scale: torch.Tensor, data_shift: torch.Tensor, blocks: list[_InferenceBlock]):
        self.data_scale, self.data_shift, self.blocks = data_scale, data_shift, blocks

    @classmethod
    def build(cls, model: STGCN) -> "InferencePlan":
        blocks = []
        for i, block in enumerate(model.st_gcn_networks):
            A = model.A if model.edge_importance is None else model.A * model.edge_importance[i]
            k, v, _ = A.shape
            conv = block.gcn.conv
            c_out = conv.out_channels // k
            scale, shift = _folded_batch_norm(block.tcn[0])
            weight = conv.weight.flatten(1).view(k, c_out, -1) * scale[None, :, None]
            # A column w of subset k sums the bias of every joint sending into w.
            gcn_bias = (A.sum(dim=1).T @ conv.bias.view(k, c_out)) * scale + shift
            tcn = block.tcn[2]
            tcn_scale, tcn_shift = _folded_batch_norm(block.tcn[3])
            tcn_bias = tcn.bias * tcn_scale + tcn_shift
            residual = None if block.residual is None else "identity"
            if isinstance(block.residual, nn.Sequential):
                res_scale, res_shift = _folded_batch_norm(block.residual[1])
                residual = (block.residual[0].weight.flatten(1) * res_scale[:, None]).T.contiguous()
                tcn_bias = tcn_bias + block.residual[0].bias * res_scale + res_shift
            blocks.append(_InferenceBlock(
                graph=A.permute(2, 0, 1).reshape(v * k, v).contiguous(),
                gcn_weight=weight.permute(0, 2, 1).reshape(-1, c_out).contiguous(),
                gcn_bias=gcn_bias.contiguous(),
                tcn_weight=(tcn.weight * tcn_scale[:, None, None, None]).contiguous(memory_format=torch.channels_last),
                tcn_bias=tcn_bias, stride=tcn.stride[0], padding=tcn.padding[0], residual=residual))
        return cls(*_folded_batch_norm(model.data_bn), blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`STGCN.features` of ``x`` ``(N, C, T, V, M)`` (already checked)."""
        n, c, t, v, m = x.shape
        # data_bn per (joint, channel), written straight into (N·M, T, V, C) order.
        h = torch.addcmul(self.data_shift.view(v, c), x.permute(0, 4, 2, 3, 1), self.data_scale.view(v, c),
                          out=x.new_empty(n, m, t, v, c)).view(n * m, t, v, c)
        for b in self.blocks:
            rows, t, v, c_in = h.shape
            c_out = b.gcn_bias.shape[1]
            per_subset = torch.matmul(b.graph, h.view(rows * t, v, c_in))   # (rows·T, V·K, C_in)
            y = torch.mm(per_subset.view(rows * t * v, -1), b.gcn_weight)
            y = y.view(rows, t, v, c_out).add_(b.gcn_bias).relu_()
            z = F.conv2d(y.permute(0, 3, 1, 2), b.tcn_weight, b.tcn_bias, (b.stride, 1), (b.padding, 0))
            z = z.permute(0, 2, 3, 1)   # (rows, T', V, C_out); a view when the conv kept channels-last
            if isinstance(b.residual, torch.Tensor):
                shortcut = h[:, ::b.stride].reshape(-1, c_in)
                z = z.reshape(-1, c_out).addmm_(shortcut, b.residual).view(z.shape)
            elif b.residual is not None:
                z = z.add_(h)
            h = z.relu_()
        return h.mean(dim=(1, 2)).view(n, m, -1).mean(dim=1)


def load_reference_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                              source: str | Path | None = None) -> None:
    """Load a reference-format checkpoint strictly.

    Tolerated: a ``module.`` prefix (DataParallel) and missing ``num_batches_tracked`` (old torch).
    Anything else missing, unexpected or of the wrong shape raises :class:`ActionpipeError`
    naming ``source`` (the checkpoint's path, for the message).
    """
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state_dict.items()}
    own = model.state_dict()
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value.clone()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {tuple(getattr(state[k], 'shape', ()))} (model: {tuple(own[k].shape)})"
             for k in own if k in state and (not isinstance(state[k], torch.Tensor)
                                             or tuple(state[k].shape) != tuple(own[k].shape))]
    problems = [f"{label}: {', '.join(items[:5])}{' …' if len(items) > 5 else ''}"
                for label, items in (("missing", missing), ("unexpected", unexpected),
                                     ("wrong shape", wrong)) if items]
    if problems:
        raise ActionpipeError(source, "checkpoint does not fit the model - " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
