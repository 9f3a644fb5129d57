"""Every model: output shapes, torch.fx tracing, one distinct nn.ReLU per activation site."""

from __future__ import annotations

import pytest
import torch
from torch import fx, nn

from ann2snn.models import create_model

RELU_COUNT = {"cnn": 4, "vgg11": 10, "vgg16": 15, "resnet18": 17, "resnet20": 19, "resnet34": 33}
# (num_classes, in_channels, image_size): small inputs keep the big models fast.
CASES = {
    "cnn": [(10, 1, 8), (7, 1, 28), (3, 3, 32)],
    "vgg11": [(10, 3, 32), (100, 1, 8), (4, 3, 64)],
    "vgg16": [(10, 3, 16), (5, 1, 8)],
    "resnet18": [(10, 3, 16), (100, 1, 8)],
    "resnet20": [(10, 3, 32), (100, 1, 8), (2, 3, 28)],
    "resnet34": [(10, 3, 8)],
}
PARAMS = [(name, *case) for name, cases in CASES.items() for case in cases]


@pytest.mark.parametrize(("name", "num_classes", "in_channels", "image_size"), PARAMS)
def test_shapes_and_trace(name, num_classes, in_channels, image_size):
    torch.manual_seed(0)
    model = create_model(name, num_classes=num_classes, in_channels=in_channels, image_size=image_size).eval()
    x = model.example_inputs(2)
    assert x.shape == (2, in_channels, image_size, image_size)
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, num_classes) and torch.isfinite(y).all()
        graph = fx.symbolic_trace(model)
        assert torch.equal(graph(x), y)


@pytest.mark.parametrize("name", list(RELU_COUNT))
def test_relu_modules_are_distinct_and_used_once(name):
    model = create_model(name, image_size=8)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]  # modules() yields each instance once
    named = [n for n, m in model.named_modules(remove_duplicate=False) if isinstance(m, nn.ReLU)]
    assert len(relus) == len(named) == RELU_COUNT[name]
    assert not any(m.inplace for m in relus)
    graph = fx.symbolic_trace(model).graph
    calls = [
        n.target for n in graph.nodes if n.op == "call_module" and isinstance(model.get_submodule(n.target), nn.ReLU)
    ]
    assert len(calls) == len(set(calls)) == RELU_COUNT[name]  # each site called exactly once
    assert not [n for n in graph.nodes if n.op == "call_function" and "relu" in str(n.target)]


def test_resnet_blocks_have_relu1_relu2_and_shortcuts():
    model = create_model("resnet20")
    blocks = [m for m in model.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 9
    assert all(isinstance(b.relu1, nn.ReLU) and isinstance(b.relu2, nn.ReLU) for b in blocks)
    projections = [b for b in blocks if isinstance(b.shortcut, nn.Sequential)]
    assert len(projections) == 2  # entry blocks of stages 2 and 3
    conv, bn = projections[0].shortcut
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.stride == (2, 2)
    assert isinstance(bn, nn.BatchNorm2d)
    assert sum(p.numel() for p in model.parameters()) < 300_000


def test_resnet_add_precedes_relu2():
    model = create_model("resnet20")
    graph = fx.symbolic_trace(model).graph
    node = next(n for n in graph.nodes if n.target == "layer1.0.relu2")
    assert node.args[0].op == "call_function" and "add" in str(node.args[0].target)


@pytest.mark.parametrize("pool", ["avg", "max"])
def test_pool_option(pool):
    kind = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
    for name in ("cnn", "vgg11"):
        model = create_model(name, image_size=32, pool=pool)
        pools = [m for m in model.modules() if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))]
        assert pools and all(isinstance(m, kind) for m in pools)


def test_vgg_adapts_pools_to_image_size():
    def count(size):
        model = create_model("vgg11", image_size=size)
        return sum(isinstance(m, nn.AvgPool2d) for m in model.modules()), model.classifier[1].in_features

    assert count(32) == (5, 512)
    assert count(8) == (3, 512)
    assert count(64) == (5, 512 * 4)


def test_cnn_is_small():
    for size in (8, 28):
        model = create_model("cnn", in_channels=1, image_size=size)
        assert sum(p.numel() for p in model.parameters()) < 500_000


def test_vgg_dropout_only_in_training():
    model = create_model("vgg11", image_size=8)
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 2
    model.eval()
    x = model.example_inputs()
    assert torch.equal(model(x), model(x))
