"""Small look-alikes of the architectures people bring (written for these tests, not copied): each reproduces the
pattern that matters for conversion — residual add, dense concatenation, inception branches, fire modules,
channel shuffle, inverted residual with ReLU6, re-parameterised VGG, a timm-style block with shape asserts,
functional batch norm, zero padding and functional adaptive pooling — at a few channels, so a test runs in
milliseconds. :func:`lively` gives them random weights and BN statistics that keep every layer active.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ann2snn.layers.activations import QCFS, ClipReLU


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout))


class ResidualNet(nn.Module):
    """ResNet basic blocks: relu(bn(conv(relu(bn(conv x)))) + shortcut(x)), a strided one with a 1×1 shortcut."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 4), nn.ReLU(inplace=True))
        self.a1, self.a2 = conv_bn(4, 4), conv_bn(4, 4)
        self.b1, self.b2, self.short = conv_bn(4, 8, stride=2), conv_bn(8, 8), conv_bn(4, 8, 1, 2)
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(8, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = self.relu(self.a2(self.relu(self.a1(x))) + x)
        x = self.relu(self.b2(self.relu(self.b1(x))) + self.short(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class DenseNet(nn.Module):
    """DenseNet: BN-ReLU-conv layers whose outputs are concatenated to their input (BN before conv: unfoldable)."""

    def __init__(self, growth: int = 3) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.pool0 = nn.MaxPool2d(3, 2, 1)
        self.layers = nn.ModuleList()
        c = 4
        for _ in range(3):
            self.layers.append(
                nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, growth, 3, padding=1))
            )
            c += growth
        self.transition = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 6, 1), nn.AvgPool2d(2))
        self.norm = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool0(self.stem(x))
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        x = F.relu(self.norm(self.transition(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, (1, 1)), 1))


class InceptionNet(nn.Module):
    """Inception blocks: 1×1 / 3×3 / double-3×3 / pool branches concatenated, then a max-pool on the concat."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 6), nn.ReLU())
        self.b1 = nn.Sequential(conv_bn(6, 2, 1), nn.ReLU())
        self.b2 = nn.Sequential(conv_bn(6, 2, 1), nn.ReLU(), conv_bn(2, 3), nn.ReLU())
        self.b3 = nn.Sequential(conv_bn(6, 2, 1), nn.ReLU(), conv_bn(2, 2), nn.ReLU(), conv_bn(2, 2), nn.ReLU())
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(6, 2, 1), nn.ReLU())
        self.pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.fc = nn.Linear(9, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)
        x = self.pool(x)
        return self.fc(F.dropout(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1), 0.2, self.training))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.e1, self.e3 = nn.Conv2d(squeeze, expand, 1), nn.Conv2d(squeeze, expand, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.squeeze(x))
        return torch.cat([self.act(self.e1(x)), self.act(self.e3(x))], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet: fire modules (squeeze, two expand branches concatenated), max-pools with ceil_mode."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
            Fire(6, 2, 3), Fire(6, 2, 3), nn.MaxPool2d(3, 2, ceil_mode=True), Fire(6, 3, 4),
        )  # fmt: skip
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(8, 5, 1), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.classifier(self.features(x)), (1, 1)), 1)


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    batch, channels, height, width = x.size()
    x = x.view(batch, groups, channels // groups, height, width)
    return torch.transpose(x, 1, 2).contiguous().view(batch, -1, height, width)


class ShuffleUnit(nn.Module):
    def __init__(self, c: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = c // 2
        cin = c if stride > 1 else half
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn(c, c, 3, 2, c), conv_bn(c, half, 1), nn.ReLU(inplace=True))
        self.branch2 = nn.Sequential(
            conv_bn(cin, half, 1), nn.ReLU(inplace=True), conv_bn(half, half, 3, stride, half),
            conv_bn(half, half, 1), nn.ReLU(inplace=True),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class ShuffleNet(nn.Module):
    """ShuffleNet-V2 units: chunk, two branches, concat, channel shuffle via sizes (view-transpose-view)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 4), nn.ReLU(inplace=True))
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.units = nn.Sequential(ShuffleUnit(4, 2), ShuffleUnit(4, 1), ShuffleUnit(4, 1))
        self.fc = nn.Linear(4, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.units(self.pool(self.stem(x)))
        return self.fc(x.mean([2, 3]))


class InvertedResidual(nn.Module):
    """MobileNet-V2 block: 1×1 expand-BN-ReLU6, depthwise 3×3-BN-ReLU6, 1×1 project-BN, residual add."""

    def __init__(self, c: int, expand: int, act: str = "module") -> None:
        super().__init__()
        hidden = c * expand
        self.expand, self.project = conv_bn(c, hidden, 1), conv_bn(hidden, c, 1)
        self.dw = conv_bn(hidden, hidden, 3, 1, hidden)
        self.act_kind = act
        self.relu6 = nn.ReLU6(inplace=True)
        self.hardtanh = nn.Hardtanh(0.0, 4.0)

    def act(self, x: Tensor, second: bool) -> Tensor:
        if self.act_kind == "module":
            return self.relu6(x)
        if self.act_kind == "functional":  # every functional spelling of clamp(x, 0, b)
            return F.relu6(x) if second else torch.clamp(x, 0, 6)
        return self.hardtanh(x) if second else F.hardtanh(x, 0.0, 3.0)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.project(self.act(self.dw(self.act(self.expand(x), False)), True))


class MobileNetV2(nn.Module):
    """MobileNet-V2 with stock ReLU6 (or functional relu6/clamp/hardtanh, ``act=``) and a dropout-linear head."""

    def __init__(self, act: str = "module") -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(3, 4, stride=2), nn.ReLU6(inplace=True))
        self.blocks = nn.Sequential(InvertedResidual(4, 2, act), InvertedResidual(4, 3, act))
        self.head = nn.Sequential(conv_bn(4, 8, 1), nn.ReLU6(inplace=True))
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(8, 5))

    def forward(self, x: Tensor) -> Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(x, (1, 1)), 1))


class RepBlock(nn.Module):
    """RepVGG training-time block: relu(bn(conv3×3 x) + bn(conv1×1 x) + bn(x)); the identity BN cannot fold."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.k3, self.k1, self.identity = conv_bn(c, c, 3), conv_bn(c, c, 1), nn.BatchNorm2d(c)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.k3(x) + self.k1(x) + self.identity(x))


class RepVGG(nn.Module):
    """Re-parameterised VGG: a strided conv-BN stem (plus 1×1 branch) and RepVGG blocks, global pool, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.stem3, self.stem1 = conv_bn(3, 4, 3, 2), conv_bn(3, 4, 1, 2)
        self.blocks = nn.Sequential(RepBlock(4), RepBlock(4))
        self.fc = nn.Linear(4, 5)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(F.relu(self.stem3(x) + self.stem1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


class BatchNormAct(nn.BatchNorm2d):
    """timm-style BatchNormAct2d: asserts on the input's rank, functional ``F.batch_norm``, then the activation."""

    def __init__(self, c: int) -> None:
        super().__init__(c)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        torch._assert(x.ndim == 4, f"expected 4D input (got {x.ndim}D input)")
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return self.act(x)


class PadSameConv(nn.Conv2d):
    """TF 'same' padding from the input size (integer shape arithmetic on sizes), zero ``F.pad``, then conv."""

    def forward(self, x: Tensor) -> Tensor:
        ih, iw = x.size()[-2:]
        kh, kw = self.weight.shape[-2:]
        pad_h = (-(-ih // self.stride[0]) - 1) * self.stride[0] + kh - ih  # >= 0 here: no data-dependent max()
        pad_w = (-(-iw // self.stride[1]) - 1) * self.stride[1] + kw - iw
        x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class DynamicPadConv(nn.Conv2d):
    """timm's Conv2dSame pattern: ``if pad > 0`` on traced sizes, which torch.fx cannot trace."""

    def forward(self, x: Tensor) -> Tensor:
        pad = self.weight.shape[-1] - 1 - (x.size(-1) - 1) % self.stride[0]
        if pad > 0:
            x = F.pad(x, [pad // 2, pad - pad // 2, pad // 2, pad - pad // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride)


class TimmStyleNet(nn.Module):
    """A timm-style CNN: shape asserts, F.batch_norm, pad-same convs, functional adaptive pool, reshape by size."""

    def __init__(self, img: int = 9) -> None:
        super().__init__()
        self.img = img
        self.conv1, self.bn1 = PadSameConv(3, 4, 3, 2, bias=False), BatchNormAct(4)
        self.conv2, self.bn2 = PadSameConv(4, 4, 3, 1, bias=False), BatchNormAct(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: Tensor) -> Tensor:
        B, C, H, W = x.shape
        torch._assert(H == self.img, f"input height {H} != {self.img}")
        torch._assert(C == 3, "three input channels")
        x = self.bn1(self.conv1(x))
        x = x + self.bn2(self.conv2(x))
        x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.reshape(x.size(0), -1))


LOSSLESS = {
    "residual": (ResidualNet, {}, 8),
    "dense concat": (DenseNet, {}, 8),
    "inception branches": (InceptionNet, {}, 9),
    "fire modules": (SqueezeNet, {}, 17),
    "channel shuffle": (ShuffleNet, {}, 8),
    "inverted residual, ReLU6": (MobileNetV2, {}, 8),
    "inverted residual, F.relu6/clamp": (MobileNetV2, {"act": "functional"}, 8),
    "inverted residual, hard-tanh(0, b)": (MobileNetV2, {"act": "hardtanh"}, 8),
    "re-parameterised VGG": (RepVGG, {}, 8),
    "timm style": (TimmStyleNet, {}, 9),
}


def lively(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random float64 weights (gain 1.5) and BN statistics, in eval mode; returns ``model``."""
    gen = torch.Generator().manual_seed(seed)
    model = model.double().eval()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            fan_in = m.weight[0].numel()
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=gen, dtype=torch.float64) * 1.5 / fan_in**0.5)
            if m.bias is not None:
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen, dtype=torch.float64) * 0.1)
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen, dtype=torch.float64) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=gen, dtype=torch.float64) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen, dtype=torch.float64) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen, dtype=torch.float64) * 0.2)
    return model


def fit_thresholds(qann: nn.Module, x: Tensor) -> None:
    """Set every QCFS/ClipReLU θ to 0.8 × the max of its input on ``x`` (never above its current θ)."""

    def fit(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        top = float(inputs[0].detach().max())
        if top > 0:
            module.threshold.data.fill_(min(0.8 * top, float(module.threshold.max())))

    hooks = [m.register_forward_pre_hook(fit) for m in qann.modules() if isinstance(m, (QCFS, ClipReLU))]
    with torch.no_grad():
        qann(x)
    for h in hooks:
        h.remove()
