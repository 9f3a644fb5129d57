"""Test helpers for NIR export: a reference NIR interpreter (with ann2snn's metadata extension) and small models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import ann2snn as a2s

nir = pytest.importorskip("nir")


# ------------------------------------------------------------------------------ reference NIR interpreter
def _meta(node, key, default=None):
    value = node.metadata.get(key, default) if node.metadata else default
    return value.decode() if isinstance(value, bytes) else value


def _order(graph):
    """Depth-first order from the input; an edge into a node still being visited is a feedback (back) edge."""
    order, back, state = [], set(), {}

    def visit(n):
        state[n] = "open"
        for s, d in graph.edges:
            if s == n:
                if state.get(d) == "open":
                    back.add((s, d))
                elif d not in state:
                    visit(d)
        state[n] = "done"
        order.append(n)

    visit("input")
    assert len(order) == len(graph.nodes), "nodes not reachable from the input"
    return order[::-1], back


def run_nir(graph, x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Discrete-time interpreter of a NIR graph (forward Euler with step ``dt``), with ann2snn's metadata extension.

    Direct encoding (x every step); returns the output node per step ``[T, B, ...]``. A feedback edge (one that
    closes a cycle) delivers its source's value of the previous step (0 at the first step), as nirtorch does.
    Neurons: NIR's ``v > v_threshold`` spike test and reset to ``v_reset``, or, with ``ann2snn_reset =
    "subtract"``, subtraction of ``ann2snn_reset_amount``; ``v(0) = ann2snn_v_init`` (else 0).
    """
    t = lambda a: torch.as_tensor(np.asarray(a), dtype=x.dtype)  # noqa: E731
    dt = float(np.asarray(graph.metadata.get("ann2snn_dt", 1.0)))
    order, back = _order(graph)
    state: dict[str, torch.Tensor] = {}
    prev: dict[str, torch.Tensor] = {}
    outs = []
    for _ in range(timesteps):
        val: dict[str, torch.Tensor] = {}
        for name in order:
            node = graph.nodes[name]
            srcs = [(prev.get(s, 0.0) if (s, name) in back else val[s]) for s, d in graph.edges if d == name]
            inp = sum(srcs[1:], srcs[0]) if srcs else None
            if isinstance(node, nir.Input):
                y = x
            elif isinstance(node, nir.Output):
                y = inp
            elif isinstance(node, nir.Conv2d):
                pad = node.padding if isinstance(node.padding, str) else tuple(int(p) for p in node.padding)
                y = torch.nn.functional.conv2d(
                    inp,
                    t(node.weight),
                    t(node.bias),
                    tuple(int(s) for s in node.stride),
                    pad,
                    tuple(int(d) for d in node.dilation),
                    int(node.groups),
                )
            elif isinstance(node, nir.Affine):
                y = inp @ t(node.weight).T + t(node.bias)
            elif isinstance(node, nir.Linear):
                y = inp @ t(node.weight).T
            elif isinstance(node, nir.Scale):
                y = inp * t(node.scale)
            elif isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
                k, s, p = (tuple(int(v) for v in a) for a in (node.kernel_size, node.stride, node.padding))
                y = torch.nn.functional.avg_pool2d(
                    inp, k, s, p, divisor_override=1 if isinstance(node, nir.SumPool2d) else None
                )
            elif isinstance(node, nir.Flatten):
                end = int(node.end_dim)
                y = inp.flatten(int(node.start_dim) + 1, end + 1 if end >= 0 else end)
            elif isinstance(node, nir.Threshold):
                y = (inp > t(node.threshold)).to(x.dtype)
            elif isinstance(node, (nir.I, nir.LI)):
                v = state.get(name, torch.zeros_like(inp))
                if isinstance(node, nir.I):  # dv/dt = R I
                    v = v + dt * t(node.r) * inp
                else:  # tau dv/dt = (v_leak - v) + R I
                    v = v + dt / t(node.tau) * ((t(node.v_leak) - v) + t(node.r) * inp)
                state[name] = y = v
            elif isinstance(node, (nir.IF, nir.LIF)):
                v = state.get(name)
                if v is None:
                    v0 = _meta(node, "ann2snn_v_init")
                    v = torch.zeros_like(inp) + (t(v0) if v0 is not None else 0)
                if isinstance(node, nir.IF):
                    v = v + dt * t(node.r) * inp
                else:
                    v = v + dt / t(node.tau) * ((t(node.v_leak) - v) + t(node.r) * inp)
                delta = _meta(node, "ann2snn_leak_delta")
                if delta is not None:
                    v = v - t(delta)
                z = (v > t(node.v_threshold)).to(x.dtype)
                if _meta(node, "ann2snn_reset") == "subtract":
                    v = v - z * t(_meta(node, "ann2snn_reset_amount"))
                else:
                    v = torch.where(z > 0, t(node.v_reset).expand_as(v), v)
                state[name] = v
                y = z
            else:
                raise AssertionError(f"reference interpreter does not know {type(node).__name__}")
            val[name] = y
        prev = val
        outs.append(val["output"])
    return torch.stack(outs)


# ------------------------------------------------------------------------------------------------ models
class SmallCNN(nn.Module):
    def __init__(self, pool: str = "avg") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.act1 = nn.ReLU()
        self.pool = nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.act2 = nn.ReLU()
        self.flat = nn.Flatten()
        self.fc1 = nn.Linear(6 * 2 * 2, 12)
        self.act3 = nn.ReLU()
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        x = self.pool(self.act1(self.bn1(self.conv1(x))))
        x = self.flat(self.act2(self.conv2(x)))
        return self.fc2(self.act3(self.fc1(x)))


class ResBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.a = nn.ReLU()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        x = self.a(self.stem(x))
        x = self.b(self.conv(x) + x)
        return self.fc(torch.flatten(self.pool(x), 1))


class GroupedCNN(nn.Module):
    """A grouped conv between neurons, then a depthwise one (groups = channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, groups=2)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(6, 6, 3, padding=1, groups=6)
        self.act3 = nn.ReLU()
        self.fc = nn.Linear(6 * 6 * 6, 3)

    def forward(self, x):
        x = self.act2(self.conv2(self.act1(self.conv1(x))))
        return self.fc(torch.flatten(self.act3(self.conv3(x)), 1))


def qann(model, seed, levels=4):
    torch.manual_seed(seed)
    q = a2s.prepare(model, a2s.QuantConfig(levels=levels, threshold=1.0))
    for m in q.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
        if hasattr(m, "threshold"):
            m.threshold.data.uniform_(0.5, 2.0)
    return q.double().eval()
