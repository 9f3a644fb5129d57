"""ResNets of BasicBlocks: ResNet-18/34 (4 stages, 64-512 channels) and ResNet-20/32/56 (3 stages, 16-64).

By default every model uses the CIFAR stem (3x3 stride-1 conv, no max-pool); ``stem="imagenet"`` gives the
torchvision stem (7x7 stride-2 conv, BN, ReLU, 3x3 stride-2 max-pool). ``width`` sets the first stage's channels
(later stages double it). BasicBlocks put their second ReLU after the residual add, use a 1x1 conv + BN shortcut
wherever the shape changes, and end in a global average pool, so any input size >= 1 works.
"""

from __future__ import annotations

import torch
from torch import nn

from ann2snn.errors import ConfigError
from ann2snn.models.registry import ModelBase, check_positive, register_model

STEMS = ("cifar", "imagenet")


class BasicBlock(nn.Module):
    """``relu2(bn2(conv2(relu1(bn1(conv1(x))))) + shortcut(x))`` with two separate ReLU modules.

    Shape:
        ``[B, C_in, H, W]`` -> ``[B, C_out, ceil(H / stride), ceil(W / stride)]``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNet(ModelBase):
    """ResNet of BasicBlocks (``1 + 2 * sum(blocks)`` ReLU sites).

    Args:
        name: Registry name stored in ``model_kwargs``.
        blocks: Blocks per stage, e.g. ``(2, 2, 2, 2)``.
        widths: Channels per stage, e.g. ``(64, 128, 256, 512)``; stage i > 0 halves the resolution.
        num_classes: Outputs K.
        in_channels: Input channels C.
        image_size: Side S of the square input.
        stem: ``"cifar"`` (3x3 stride-1 conv) or ``"imagenet"`` (7x7 stride-2 conv and 3x3 stride-2 max-pool,
            as torchvision; the max-pool follows a ReLU, so it is exact on parallel spike trains).

    Shape:
        ``[B, C, S, S]`` -> ``[B, K]``.
    """

    def __init__(
        self,
        name: str,
        blocks: tuple[int, ...],
        widths: tuple[int, ...],
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        stem: str = "cifar",
    ) -> None:
        super().__init__(name, num_classes, in_channels, image_size, stem=stem, width=widths[0])
        if stem not in STEMS:
            raise ConfigError(f"stem={stem!r} is not supported; choose one of {', '.join(map(repr, STEMS))}")
        if stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
        self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1) if stem == "imagenet" else nn.Identity()
        channels = widths[0]
        for i, (count, width) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            layers = []
            for j in range(count):
                layers.append(BasicBlock(channels, width, stride if j == 0 else 1))
                channels = width
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))
        self.num_stages = len(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):  # fixed at construction, so fx unrolls it
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def _widths(width: int, stages: int) -> tuple[int, ...]:
    check_positive("width", width)
    return tuple(width * 2**i for i in range(stages))


@register_model("resnet18")
def resnet18(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, stem: str = "cifar", width: int = 64
) -> ResNet:
    """ResNet-18: stages (2, 2, 2, 2) x (w, 2w, 4w, 8w) channels (w = ``width``, 64 as published), 17 ReLU sites."""
    return ResNet("resnet18", (2, 2, 2, 2), _widths(width, 4), num_classes, in_channels, image_size, stem)


@register_model("resnet34")
def resnet34(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, stem: str = "cifar", width: int = 64
) -> ResNet:
    """ResNet-34: stages (3, 4, 6, 3) x (w, 2w, 4w, 8w) channels (w = ``width``, 64 as published), 33 ReLU sites."""
    return ResNet("resnet34", (3, 4, 6, 3), _widths(width, 4), num_classes, in_channels, image_size, stem)


def _cifar_resnet(
    name: str, n: int, num_classes: int, in_channels: int, image_size: int, stem: str, width: int
) -> ResNet:
    return ResNet(name, (n, n, n), _widths(width, 3), num_classes, in_channels, image_size, stem)


@register_model("resnet20")
def resnet20(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, stem: str = "cifar", width: int = 16
) -> ResNet:
    """ResNet-20 (He et al. 2016): stages (3, 3, 3) x (16, 32, 64) channels, 19 ReLU sites."""
    return _cifar_resnet("resnet20", 3, num_classes, in_channels, image_size, stem, width)


@register_model("resnet32")
def resnet32(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, stem: str = "cifar", width: int = 16
) -> ResNet:
    """ResNet-32: stages (5, 5, 5) x (16, 32, 64) channels, 31 ReLU sites."""
    return _cifar_resnet("resnet32", 5, num_classes, in_channels, image_size, stem, width)


@register_model("resnet56")
def resnet56(
    num_classes: int = 10, in_channels: int = 3, image_size: int = 32, stem: str = "cifar", width: int = 16
) -> ResNet:
    """ResNet-56: stages (9, 9, 9) x (16, 32, 64) channels, 55 ReLU sites."""
    return _cifar_resnet("resnet56", 9, num_classes, in_channels, image_size, stem, width)
