"""Model registry: names, errors, model_kwargs round trip, example_inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ann2snn.errors import ConfigError
from ann2snn.models import ModelBase, create_model, list_models, register_model

ALL = ("cnn", "resnet18", "resnet20", "resnet32", "resnet34", "resnet56", "vgg11", "vgg16")


def test_list_models():
    assert list_models() == ALL


def test_unknown_name_lists_known():
    with pytest.raises(ConfigError, match="known models: " + ", ".join(ALL)):
        create_model("resnet50")


def test_unknown_option_lists_options():
    with pytest.raises(ConfigError, match="no option.*widht.*dropout, hidden, pool"):
        create_model("vgg11", widht=2)
    with pytest.raises(ConfigError, match="its options: stem, width"):
        create_model("resnet20", pool="max")


@pytest.mark.parametrize(
    "kwargs",
    [{"num_classes": 0}, {"in_channels": -1}, {"image_size": 2.0}, {"pool": "min"}, {"hidden": 0}],
)
def test_invalid_values(kwargs):
    with pytest.raises(ConfigError):
        create_model("cnn", **kwargs)


def test_invalid_vgg_dropout():
    with pytest.raises(ConfigError, match="dropout"):
        create_model("vgg11", image_size=8, dropout=1.0)


def test_cnn_too_small():
    with pytest.raises(ConfigError, match=">= 4"):
        create_model("cnn", image_size=3)


def test_duplicate_registration():
    with pytest.raises(ConfigError, match="already registered"):
        register_model("cnn")(lambda **kw: None)


def test_model_kwargs_rebuild_same_architecture():
    model = create_model("cnn", num_classes=5, in_channels=1, image_size=8, pool="max", hidden=16)
    assert model.model_kwargs == {
        "name": "cnn", "num_classes": 5, "in_channels": 1, "image_size": 8, "pool": "max", "hidden": 16,
    }  # fmt: skip
    clone = create_model(**model.model_kwargs)
    clone.load_state_dict(model.state_dict())  # same parameter names and shapes
    model.eval(), clone.eval()
    x = model.example_inputs(3)
    assert torch.equal(model(x), clone(x))
    assert isinstance(model.features[2], nn.MaxPool2d)


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_model_kwargs_other_families(name):
    model = create_model(name, num_classes=3, in_channels=2, image_size=8)
    assert model.model_kwargs["name"] == name
    assert create_model(**model.model_kwargs).model_kwargs == model.model_kwargs


def test_example_inputs_deterministic():
    model = create_model("cnn", in_channels=2, image_size=8)
    assert isinstance(model, ModelBase)
    x = model.example_inputs()
    assert x.shape == (2, 2, 8, 8) and 0.0 <= x.min() and x.max() <= 1.0
    assert torch.equal(x, model.example_inputs())
    assert model.example_inputs(5).shape == (5, 2, 8, 8)
