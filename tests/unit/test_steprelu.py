"""StepReLU against its closed form at and around step boundaries (methods.md §1)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ann2snn import functional as F
from ann2snn.layers.activations import StepReLU


def reference(z: float, step: float, steps: int, rounding: str = "ceil", clip: bool = False) -> float:
    """The definition, one scalar at a time (dyadic steps: z/step is exact)."""
    top = steps * step
    if z <= 0:
        return 0.0
    if z > top:
        if not clip:
            return z
        return (steps - 1) * step if rounding == "ceil" else top
    k = math.ceil(z / step) - 1 if rounding == "ceil" else math.floor(z / step)
    return max(k, 0) * step


STEPS = [0.25, 0.5, 0.125, 1.0]


@pytest.mark.parametrize("rounding", ["ceil", "floor"])
@pytest.mark.parametrize("clip", [False, True])
def test_boundaries_and_neighbours(rounding: str, clip: bool) -> None:
    step, steps = 0.25, 4
    eps = 2.0**-20
    zs = [k * step + d for k in range(-1, steps + 3) for d in (-eps, 0.0, eps)]
    z = torch.tensor(zs, dtype=torch.float64)
    out = F.step_relu(z, step, steps, rounding, clip)
    expected = torch.tensor([reference(v, step, steps, rounding, clip) for v in zs], dtype=torch.float64)
    assert torch.equal(out, expected)


def test_authors_ceil_minus_one_values() -> None:
    z = torch.tensor([0.0, 0.25, 0.25 + 2**-20, 0.5, 0.75, 1.0, 1.0 + 2**-20, 3.0], dtype=torch.float64)
    # ceil − 1: a boundary belongs to the lower step; identity just above the top n·step = 1.
    assert F.step_relu(z, 0.25, 4).tolist() == [0.0, 0.0, 0.25, 0.25, 0.5, 0.75, 1.0 + 2**-20, 3.0]
    # floor: a boundary belongs to the upper step.
    assert F.step_relu(z, 0.25, 4, "floor").tolist() == [0.0, 0.25, 0.25, 0.5, 0.75, 1.0, 1.0 + 2**-20, 3.0]
    # clip-top: the top of the staircase above n·step.
    assert F.step_relu(z, 0.25, 4, "ceil", True)[-1].item() == 0.75
    assert F.step_relu(z, 0.25, 4, "floor", True)[-1].item() == 1.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-3, 6, allow_nan=False), min_size=1, max_size=30),
    st.sampled_from(STEPS),
    st.integers(1, 12),
    st.sampled_from(["ceil", "floor"]),
    st.booleans(),
)
def test_matches_definition(zs: list[float], step: float, steps: int, rounding: str, clip: bool) -> None:
    z = torch.tensor(zs, dtype=torch.float64)
    out = F.step_relu(z, step, steps, rounding, clip)
    assert out.tolist() == [reference(v, step, steps, rounding, clip) for v in zs]


@pytest.mark.parametrize("clip", [False, True])
def test_relu_gradient(clip: bool) -> None:
    z = torch.tensor([-1.0, 0.0, 0.1, 0.25, 0.6, 1.0, 5.0], requires_grad=True)
    F.step_relu(z, 0.25, 4, clip=clip).sum().backward()
    assert z.grad.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]


def test_module_and_negative_sanity() -> None:
    m = StepReLU(0.25, 4)
    z = torch.tensor([0.25, 0.3])
    assert torch.equal(m(z), F.step_relu(z, 0.25, 4))
    # ceil and floor differ exactly at boundaries (so the boundary tests can fail).
    assert F.step_relu(torch.tensor([0.5]), 0.25, 4).item() != F.step_relu(torch.tensor([0.5]), 0.25, 4, "floor").item()
