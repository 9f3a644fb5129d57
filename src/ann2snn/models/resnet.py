"""CIFAR-style ResNets: ResNet-18/34 (64-512 channels, 4 stages) and ResNet-20 (16/32/64 channels, 3 stages).

All use a 3x3 stride-1 stem without max-pool, BasicBlocks whose second ReLU comes after the residual add, a
1x1 conv + BN shortcut wherever the shape changes, and a global average pool, so any input size >= 1 works.
"""

from __future__ import annotations

import torch
from torch import nn

from ann2snn.models.registry import ModelBase, register_model


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
    ) -> None:
        super().__init__(name, num_classes, in_channels, image_size)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU()
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
        x = self.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):  # fixed at construction, so fx unrolls it
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.pool(x), 1))


@register_model("resnet18")
def resnet18(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> ResNet:
    """CIFAR ResNet-18: stages (2, 2, 2, 2) x (64, 128, 256, 512) channels, 17 ReLU sites."""
    return ResNet("resnet18", (2, 2, 2, 2), (64, 128, 256, 512), num_classes, in_channels, image_size)


@register_model("resnet34")
def resnet34(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> ResNet:
    """CIFAR ResNet-34: stages (3, 4, 6, 3) x (64, 128, 256, 512) channels, 33 ReLU sites."""
    return ResNet("resnet34", (3, 4, 6, 3), (64, 128, 256, 512), num_classes, in_channels, image_size)


@register_model("resnet20")
def resnet20(num_classes: int = 10, in_channels: int = 3, image_size: int = 32) -> ResNet:
    """CIFAR ResNet-20 (He et al. 2016): stages (3, 3, 3) x (16, 32, 64) channels, 19 ReLU sites."""
    return ResNet("resnet20", (3, 3, 3), (16, 32, 64), num_classes, in_channels, image_size)
