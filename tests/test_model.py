"""ST-GCN model: reference keys and shapes, checkpoint loading, forward shapes and invariances."""
from __future__ import annotations

import pytest
import torch

from actionpipe.errors import ActionpipeError
from actionpipe.graph import Graph
from actionpipe.model import STGCN, GraphConv, load_reference_state_dict
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
