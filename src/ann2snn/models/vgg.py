"""CIFAR-style VGG-11 and VGG-16: 3x3 conv-BN-ReLU stacks, 2x2 pools, and a dropout MLP classifier.

Pools are dropped once the feature map is 1x1, so small inputs (e.g. 8x8) work; larger inputs (e.g. 64x64)
keep an ``S/32 x S/32`` map that the classifier flattens.
"""

from __future__ import annotations

import torch
from torch import nn

from ann2snn.errors import ConfigError
from ann2snn.models.registry import ModelBase, check_positive, make_pool, register_model

CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


class VGG(ModelBase):
    """VGG with batch norm (one ReLU per conv plus two in the classifier).

    Args:
        name: ``"vgg11"`` or ``"vgg16"``.
        num_classes: Outputs K.
        in_channels: Input channels C.
        image_size: Side S of the square input.
        pool: ``"avg"`` (default, exact under conversion) or ``"max"``.
        hidden: Width of the two hidden classifier layers.
        dropout: Dropout probability in the classifier.
        width: Channels of the first conv stage (64 as published); every stage scales by ``width / 64``.

    Shape:
        ``[B, C, S, S]`` -> ``[B, K]``.
    """

    def __init__(
        self,
        name: str,
        num_classes: int = 10,
        in_channels: int = 3,
        image_size: int = 32,
        pool: str = "avg",
        hidden: int = 512,
        dropout: float = 0.5,
        width: int = 64,
    ) -> None:
        if name not in CONFIGS:
            raise ConfigError(f"unknown VGG variant {name!r}; known: {', '.join(CONFIGS)}")
        super().__init__(
            name, num_classes, in_channels, image_size, pool=pool, hidden=hidden, dropout=dropout, width=width
        )
        check_positive("hidden", hidden)
        check_positive("width", width)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout={dropout!r} must be a number in [0, 1)")
        layers: list[nn.Module] = []
        channels, side = in_channels, image_size
        for item in CONFIGS[name]:
            if item == "M":
                if side >= 2:
                    layers.append(make_pool(pool))
                    side //= 2
                continue
            assert isinstance(item, int)
            item = max(1, item * width // 64)
            layers += [
                nn.Conv2d(channels, item, 3, padding=1, bias=False),
                nn.BatchNorm2d(item),
                nn.ReLU(),
            ]
            channels = item
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("vgg11")
def vgg11(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    pool: str = "avg",
    hidden: int = 512,
    dropout: float = 0.5,
    width: int = 64,
) -> VGG:
    """VGG-11 (10 ReLU sites); options as :class:`VGG`."""
    return VGG("vgg11", num_classes, in_channels, image_size, pool=pool, hidden=hidden, dropout=dropout, width=width)


@register_model("vgg16")
def vgg16(
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    pool: str = "avg",
    hidden: int = 512,
    dropout: float = 0.5,
    width: int = 64,
) -> VGG:
    """VGG-16 (15 ReLU sites); options as :class:`VGG`."""
    return VGG("vgg16", num_classes, in_channels, image_size, pool=pool, hidden=hidden, dropout=dropout, width=width)
