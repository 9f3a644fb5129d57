"""ANN-side activations for quantization-aware training (methods.md §1).

All functions are pure and differentiable with straight-through estimators where the forward is a step function.
``qcfs_level`` is the single definition of the clip-floor-shift level; the parallel neuron uses the same
expression, which is what makes rate-mode simulation bit-identical to the QCFS ANN at T = L.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ann2snn.config import QCFS_GRADIENTS
from ann2snn.errors import ConfigError


class _FloorSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.floor(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


class _CeilSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return torch.ceil(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


def floor_ste(x: Tensor) -> Tensor:
    """``floor(x)`` in the forward pass, identity gradient in the backward pass."""
    return _FloorSTE.apply(x)


def ceil_ste(x: Tensor) -> Tensor:
    """``ceil(x)`` in the forward pass, identity gradient in the backward pass."""
    return _CeilSTE.apply(x)


def qcfs_level(z: Tensor, threshold: Tensor | float, levels: int, shift: float = 0.5) -> Tensor:
    """Integer level ``n = clamp(floor(z·L/θ + shift), 0, L)`` (float tensor holding integers).

    Differentiable through a straight-through floor applied after the clamp (same values as clamping after the
    floor, since 0 and L are integers), so the gradient wrt z is 1 exactly where ``z·L/θ + shift`` is in [0, L].
    """
    return floor_ste(torch.clamp(z * levels / threshold + shift, 0, levels))


class _QCFSReference(torch.autograd.Function):
    """QCFS whose backward is the straight-through rule of the QCFS authors' code (floor passes gradient 1,
    then the clamp of ``floor(·)/L`` to [0, 1] gates it, then the product with θ)."""

    @staticmethod
    def forward(ctx, z: Tensor, threshold: Tensor, levels: int, shift: float) -> Tensor:  # type: ignore[override]
        raw = torch.floor(z * levels / threshold + shift)  # the unclamped level k
        level = raw.clamp(0, levels)
        ctx.save_for_backward(z, threshold, raw, level)
        ctx.levels = levels
        return level / levels * threshold

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, None, None]:  # type: ignore[override]
        z, threshold, raw, level = ctx.saved_tensors
        inside = ((raw >= 0) & (raw <= ctx.levels)).to(grad.dtype)  # z in [−θ/2L, θ + θ/2L) at shift 1/2
        grad_z = grad * inside if ctx.needs_input_grad[0] else None
        grad_t = None
        if ctx.needs_input_grad[1]:
            local = level / ctx.levels - inside * z / threshold  # d(θ·clamp(floor(zL/θ + s)/L, 0, 1))/dθ
            grad_t = (grad * local).sum_to_size(threshold.shape)
        return grad_z, grad_t, None, None


def qcfs(
    z: Tensor, threshold: Tensor | float, levels: int, shift: float = 0.5, *, gradient: str = "reference"
) -> Tensor:
    """Clip-floor-shift activation ``clamp(floor(z·L/θ + 1/2), 0, L) / L · θ`` (Bu et al., ICLR 2022).

    Shape: any; ``threshold`` broadcasts (scalar, or per channel ``[C, 1, 1]``).

    The forward value is the same for both ``gradient`` rules (bit for bit; the parallel neuron uses the same
    expression). Backward, with ``k = floor(z·L/θ + shift)``:

    - ``"reference"`` (default, QCFS's released code): ``dy/dz = [0 ≤ k ≤ L]`` (z in [−θ/2L, θ + θ/2L) at
      shift 1/2) and ``dy/dθ = clamp(k, 0, L)/L − [0 ≤ k ≤ L]·z/θ``.
    - ``"clamped"`` (ann2snn ≤ 0.1): a straight-through floor after clamping ``z·L/θ + shift`` to [0, L]:
      ``dy/dz = 1`` on [−θ/2L, θ − θ/2L] and its own ``dy/dθ``.
    """
    if gradient not in QCFS_GRADIENTS:
        raise ConfigError(f"gradient={gradient!r} is not supported; choose one of {', '.join(QCFS_GRADIENTS)}")
    learns_theta = isinstance(threshold, Tensor) and threshold.requires_grad
    if gradient == "reference" and torch.is_grad_enabled() and (z.requires_grad or learns_theta):
        theta = threshold if isinstance(threshold, Tensor) else torch.as_tensor(threshold, dtype=z.dtype)
        return _QCFSReference.apply(z, theta.to(z.device), levels, shift)
    return qcfs_level(z, threshold, levels, shift) / levels * threshold


def clip_relu(z: Tensor, threshold: Tensor | float) -> Tensor:
    """``clamp(z, 0, θ)``; ``threshold`` broadcasts."""
    if isinstance(threshold, Tensor):
        return torch.minimum(torch.relu(z), threshold)
    return torch.clamp(z, 0.0, threshold)


def step_relu(z: Tensor, step: float, steps: int, rounding: str = "ceil", clip: bool = False) -> Tensor:
    """StepReLU (Wang et al., IJCAI 2023), the authors' released form by default.

    ``rounding="ceil"``: 0 for z ≤ 0; ``step·(ceil(z/step) − 1)`` for 0 < z ≤ steps·step; z above (no clip).
    ``rounding="floor"``: ``step·floor(z/step)`` on the staircase instead.
    ``clip=True``: inputs above ``steps·step`` give the top of the staircase instead of passing unchanged.
    Backward: the plain ReLU gradient (1 where z > 0).
    """
    top = steps * step
    scaled = z / step
    stair = (ceil_ste(scaled) - 1.0) if rounding == "ceil" else floor_ste(scaled)
    stair = torch.clamp(stair, min=0.0) * step
    # Straight-through: forward value of the staircase, gradient 1 where z > 0.
    stair = z + (stair - z).detach()
    above = z
    if clip:
        top_value = (steps - 1) * step if rounding == "ceil" else top
        above = z + (torch.full_like(z, top_value) - z).detach()
    out = torch.where(z > top, above, stair)
    return torch.where(z > 0, out, torch.zeros_like(z))
