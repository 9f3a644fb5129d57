"""Model zoo: a small CNN, CIFAR-style VGG-11/16 and ResNet-18/20/34, behind a name registry.

Every model uses a separate ``nn.ReLU`` module per activation site (so ``prepare`` can swap each one), traces
with torch.fx, records its constructor arguments in ``model.model_kwargs`` and offers
``model.example_inputs(batch_size)``.

Example:
    >>> from ann2snn.models import create_model
    >>> model = create_model("cnn", num_classes=10, in_channels=1, image_size=8)
    >>> tuple(model(model.example_inputs(4)).shape)
    (4, 10)
"""

from __future__ import annotations

from ann2snn.models import cnn, resnet, vgg  # noqa: F401  (registers the models)
from ann2snn.models.cnn import CNN
from ann2snn.models.registry import ModelBase, create_model, list_models, register_model
from ann2snn.models.resnet import BasicBlock, ResNet
from ann2snn.models.vgg import VGG

__all__ = ["CNN", "VGG", "BasicBlock", "ModelBase", "ResNet", "create_model", "list_models", "register_model"]
