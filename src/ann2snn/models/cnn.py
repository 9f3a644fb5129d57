"""A small CNN for 8x8 (digits) and 28x28 (Fashion-MNIST) images; about 0.1-0.43 M parameters.

Layout: conv(32)-BN-ReLU, conv(32)-BN-ReLU, pool, conv(64)-BN-ReLU, [pool], flatten, linear(128)-ReLU,
linear(K). The second pool is applied only when the image is at least 16 pixels wide, so 8x8 inputs keep a
4x4 map.
"""

from __future__ import annotations

import torch
from torch import nn

from ann2snn.errors import ConfigError
from ann2snn.models.registry import ModelBase, check_positive, make_pool, register_model


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


@register_model("cnn")
class CNN(ModelBase):
    """Small CNN classifier (4 ReLU sites).

    Args:
        num_classes: Outputs K.
        in_channels: Input channels C.
        image_size: Side S of the square input (>= 4).
        pool: ``"avg"`` (default, exact under conversion) or ``"max"``.
        hidden: Width of the hidden linear layer.

    Shape:
        ``[B, C, S, S]`` -> ``[B, K]``.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        image_size: int = 28,
        pool: str = "avg",
        hidden: int = 128,
    ) -> None:
        super().__init__("cnn", num_classes, in_channels, image_size, pool=pool, hidden=hidden)
        check_positive("hidden", hidden)
        if image_size < 4:
            raise ConfigError(f"image_size={image_size} is too small for the cnn model (needs >= 4)")
        second_pool = image_size >= 16
        side = image_size // 2 // 2 if second_pool else image_size // 2
        self.features = nn.Sequential(
            _conv_bn_relu(in_channels, 32),
            _conv_bn_relu(32, 32),
            make_pool(pool),
            _conv_bn_relu(32, 64),
            make_pool(pool) if second_pool else nn.Identity(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64 * side * side, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
