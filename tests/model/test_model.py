"""ST-GCN model: reference keys and shapes, checkpoint loading, forward shapes and invariances."""
from __future__ import annotations

import pytest
import torch

from actionpipe.core.errors import ActionpipeError
from actionpipe.skeleton.graph import Graph, bone_parents
from actionpipe.pose.layouts import get_layout
from actionpipe.model.stgcn import STGCN, GraphConv, bone_motion_features, load_reference_state_dict
from helpers import shared_path

CONFIGS = {
    "stgcn_kinetics_keys.txt": {"layout": "openpose18", "num_class": 400},
    "stgcn_ntu_keys.txt": {"layout": "ntu25", "num_class": 60},
}


def reference_keys(name: str) -> list[tuple[str, tuple[int, ...]]]:
    """``[(key, shape)]`` from a reference list: lines like ``fcn.weight (400, 256, 1, 1)``."""
    rows = []
    for line in shared_path("reference", name).read_text().splitlines():
        if line.strip():
            key, shape = line.split(" ", 1)
            rows.append((key, tuple(int(d) for d in shape.strip("()").split(",") if d.strip())))
    return rows


def reference_format_checkpoint(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the reference's keys, saved as DataParallel did, by an old torch."""
    gen = torch.Generator().manual_seed(seed)
    return {f"module.{key}": torch.rand(shape, generator=gen) + 0.5
            for key, shape in reference_keys(name) if not key.endswith("num_batches_tracked")}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_keys_and_shapes_equal_reference(name):
    expected = reference_keys(name)
    model = STGCN(**CONFIGS[name])
    got = [(key, tuple(value.shape)) for key, value in model.state_dict().items()]
    assert [k for k, _ in got] == [k for k, _ in expected]
    for (key, shape), (_, want) in zip(got, expected):
        assert shape == want, key


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_reference_checkpoint_loads_strictly(name):
    checkpoint = reference_format_checkpoint(name)
    model = STGCN(**CONFIGS[name])
    load_reference_state_dict(model, checkpoint)
    state = model.state_dict()
    for key, value in checkpoint.items():
        torch.testing.assert_close(state[key[len("module."):]], value)
    # The graph comes from the checkpoint too (the reference stores A as a buffer).
    assert "A" in dict(model.named_buffers()) and "A" not in dict(model.named_parameters())


def test_checkpoint_for_another_model_is_refused():
    kinetics = reference_format_checkpoint("stgcn_kinetics_keys.txt")
    with pytest.raises(ActionpipeError, match="wrong shape") as error:
        load_reference_state_dict(STGCN(layout="ntu25", num_class=60), kinetics, "st_gcn.kinetics.pt")
    assert error.value.path == "st_gcn.kinetics.pt"
    del kinetics["module.fcn.bias"]
    with pytest.raises(ActionpipeError, match="missing: fcn.bias"):
        load_reference_state_dict(STGCN(), kinetics)
    with pytest.raises(ActionpipeError, match="unexpected: edge_importance"):
        load_reference_state_dict(STGCN(edge_importance=False), STGCN().state_dict())


def test_own_state_dict_round_trips_and_reproduces_outputs():
    torch.manual_seed(0)
    source, target = STGCN(base_channels=16, num_class=5).eval(), STGCN(base_channels=16, num_class=5)
    with torch.no_grad():
        for p in source.edge_importance:
            p.uniform_(0.5, 1.5)
    load_reference_state_dict(target.eval(), source.state_dict())
    x = torch.randn(2, 3, 20, 18, 2)
    with torch.inference_mode():
        torch.testing.assert_close(target(x), source(x))


@pytest.fixture(scope="module")
def kinetics_model() -> STGCN:
    torch.manual_seed(0)
    return STGCN().eval()


@pytest.mark.parametrize("frames", [1, 2, 9, 300])
@pytest.mark.parametrize("people", [1, 2])
def test_forward_shapes(kinetics_model, frames, people):
    x = torch.randn(2, 3, frames, 18, people)
    with torch.inference_mode():
        logits = kinetics_model(x)
        features = kinetics_model.features(x)
        fcn = kinetics_model.fcn
        from_features = features @ fcn.weight.flatten(1).T + fcn.bias
    assert logits.shape == (2, 400) and torch.isfinite(logits).all()
    assert features.shape == (2, 256)
    torch.testing.assert_close(logits, from_features)


def test_people_are_averaged_and_batch_items_independent():
    torch.manual_seed(1)
    model = STGCN(base_channels=16).eval()
    a, b = torch.randn(1, 3, 30, 18, 1), torch.randn(1, 3, 30, 18, 1)
    with torch.inference_mode():
        one = model(a)
        twice = model(torch.cat([a, a], dim=4))
        pair = model(torch.cat([a, b], dim=4))
        swapped = model(torch.cat([b, a], dim=4))
        batch = model(torch.cat([torch.cat([a, b], 4), torch.cat([b, b], 4)], dim=0))
    torch.testing.assert_close(twice, one)
    torch.testing.assert_close(swapped, pair)
    torch.testing.assert_close(batch[:1], pair)
    assert not torch.allclose(pair, one, atol=1e-3)


def test_graph_conv_equals_the_reference_einsum():
    torch.manual_seed(2)
    A = torch.from_numpy(Graph("ntu25", "spatial", max_hop=2).A) * torch.rand(5, 25, 25)
    gcn = GraphConv(6, 8, num_subsets=5)
    x = torch.randn(3, 6, 7, 25)
    y = gcn.conv(x)
    expected = torch.einsum("nkctv,kvw->nctw", y.view(3, 5, 8, 7, 25), A)
    for layout in (torch.contiguous_format, torch.channels_last):
        torch.testing.assert_close(gcn(x.contiguous(memory_format=layout), A), expected)


def randomised(model: STGCN, seed: int = 0) -> STGCN:
    """``model`` with edge importances and batch-norm statistics far from their initial values,
    so that folding them into the weights is really exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.edge_importance if model.edge_importance is not None else []:
            p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
        for bn in model.modules():
            if isinstance(bn, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                for t, low, high in ((bn.running_mean, -1, 1), (bn.running_var, 0.5, 2),
                                     (bn.weight, 0.5, 1.5), (bn.bias, -0.5, 0.5)):
                    t.copy_(torch.rand(t.shape, generator=gen) * (high - low) + low)
    return model


def layer_by_layer(model: STGCN, x: torch.Tensor) -> torch.Tensor:
    """The model's modules one by one (the training path), in eval mode, for comparison."""
    with torch.enable_grad():
        return model(x).detach()


@pytest.mark.parametrize("kwargs,shape", [
    ({}, (1, 3, 50, 18, 2)),
    ({}, (3, 3, 1, 18, 1)),
    ({"base_channels": 16}, (2, 3, 7, 18, 3)),
    ({"layout": "ntu25", "num_class": 60, "base_channels": 16, "max_hop": 2}, (2, 3, 30, 25, 2)),
    ({"edge_importance": False, "base_channels": 8, "temporal_kernel": 3}, (4, 3, 20, 18, 1)),
    ({"layout": "coco17", "base_channels": 8, "input_features": "joint_bone_motion"}, (2, 3, 9, 17, 2)),
])
def test_inference_plan_equals_the_layers(kwargs, shape):
    torch.manual_seed(4)
    model = randomised(STGCN(**kwargs)).eval()
    x = torch.randn(shape)
    with torch.inference_mode():
        fast, features = model(x), model.features(x)
    torch.testing.assert_close(fast, layer_by_layer(model, x), rtol=1e-5, atol=1e-5)
    with torch.enable_grad():
        torch.testing.assert_close(features, model.features(x).detach(), rtol=1e-5, atol=1e-5)
    with torch.no_grad():   # no_grad takes the plan too
        torch.testing.assert_close(model(x), fast)


def test_inference_plan_follows_the_weights():
    """The folded weights are rebuilt after every change: an optimizer step (which also moves the
    batch-norm statistics), a loaded state dict, an in-place edit; never stale."""
    torch.manual_seed(5)
    model, other = STGCN(base_channels=8, num_class=3), randomised(STGCN(base_channels=8, num_class=3), 1)
    x, y = torch.randn(2, 3, 12, 18, 2), torch.tensor([0, 2])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)

    def check():
        model.eval()
        with torch.inference_mode():
            got = model(x)
        torch.testing.assert_close(got, layer_by_layer(model, x), rtol=1e-5, atol=1e-5)
        return got

    before = check()
    for _ in range(2):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        after = check()
        assert not torch.allclose(after, before, atol=1e-3)
        before = after
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(check(), other.eval()(x).detach())
    with torch.no_grad():
        model.st_gcn_networks[9].tcn[3].running_mean.add_(1.0)
    assert not torch.allclose(check(), before, atol=1e-3)


def test_small_width_model_trains():
    torch.manual_seed(3)
    model = STGCN(num_class=4, layout="coco17", base_channels=32, dropout=0.1)
    assert model.fcn.weight.shape == (4, 128, 1, 1)
    assert model.st_gcn_networks[4].residual[0].weight.shape == (64, 32, 1, 1)
    x, y = torch.randn(4, 3, 8, 17, 2), torch.tensor([0, 1, 2, 3])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert model.edge_importance[0].grad.abs().sum() > 0
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("shape", [(1, 3, 10, 17, 1), (1, 2, 10, 18, 1), (1, 3, 0, 18, 1), (3, 10, 18, 1)])
def test_input_that_does_not_fit_raises(kinetics_model, shape):
    with pytest.raises(ActionpipeError, match="does not fit"):
        kinetics_model(torch.zeros(shape))


@pytest.mark.parametrize("layout", ["coco17", "openpose18", "ntu25"])
def test_bone_parents_point_one_hop_towards_the_centre(layout):
    lay = get_layout(layout)
    parents = bone_parents(lay)
    bones = {frozenset(b) for b in lay.bones}
    assert parents[lay.center] == lay.center
    for v, p in enumerate(parents):
        if v == lay.center:
            continue
        assert frozenset((v, p)) in bones, f"{lay.joints[v]} -> {lay.joints[p]} is not a bone"
        hops, w = 0, v
        while w != lay.center:   # following parents reaches the centre, so there is no cycle
            w, hops = parents[w], hops + 1
            assert hops < lay.num_joints
    coco = get_layout("coco17")
    assert coco.joints[bone_parents(coco)[coco.index("left_wrist")]] == "left_elbow"


def test_bone_and_motion_features_and_their_masking():
    lay = get_layout("coco17")
    parents = bone_parents(lay)
    x = torch.zeros(1, 3, 3, 17, 1)
    elbow, wrist = lay.index("left_elbow"), lay.index("left_wrist")
    x[0, :, :, elbow, 0] = torch.tensor([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])
    x[0, :, :, wrist, 0] = torch.tensor([[1.5, 2.5, 9.0], [3.0, 3.0, 9.0], [1.0, 1.0, 0.0]])
    f = bone_motion_features(x, parents)
    assert f.shape == (1, 7, 3, 17, 1)
    torch.testing.assert_close(f[0, :3], x[0])
    # bone: wrist minus elbow, 0 in the frame where the wrist is missing
    torch.testing.assert_close(f[0, 3:5, :, wrist, 0], torch.tensor([[0.5, 1.5, 0.0], [1.0, 1.0, 0.0]]))
    # motion: next frame minus this one; 0 into a missing frame and in the last frame
    torch.testing.assert_close(f[0, 5:7, :, wrist, 0], torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(f[0, 3:5, :, elbow, 0], torch.zeros(2, 3))   # its shoulder is missing
    assert f[0, 3:, :, lay.index("nose")].abs().sum() == 0


def test_unknown_input_features_are_refused():
    with pytest.raises(ActionpipeError, match="input_features"):
        STGCN(layout="coco17", input_features="bones")
