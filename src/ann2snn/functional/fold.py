"""BatchNorm folding as a pure function."""

from __future__ import annotations

import torch
from torch import Tensor


def fold_bn_into_weights(
    weight: Tensor,
    bias: Tensor | None,
    running_mean: Tensor,
    running_var: Tensor,
    bn_weight: Tensor | None,
    bn_bias: Tensor | None,
    eps: float,
) -> tuple[Tensor, Tensor]:
    """Weights and bias of ``BN(layer(x))`` (eval mode) as one layer; ``weight`` is ``[C_out, ...]``.

    ``BN(y) = γ (y − μ)/√(σ² + ε) + β`` so ``W' = W·s`` and ``b' = (b − μ)·s + β`` with ``s = γ/√(σ² + ε)``.
    """
    scale = torch.rsqrt(running_var + eps)
    if bn_weight is not None:
        scale = scale * bn_weight
    if bias is None:
        bias = torch.zeros_like(running_mean)
    new_bias = (bias - running_mean) * scale
    if bn_bias is not None:
        new_bias = new_bias + bn_bias
    new_weight = weight * scale.view((-1,) + (1,) * (weight.dim() - 1))
    return new_weight, new_bias
