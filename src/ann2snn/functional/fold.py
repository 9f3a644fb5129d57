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
    Computed in float64 and rounded once to ``weight``'s dtype: for float32 (and half) layers every folded
    weight and bias is the correctly rounded value of the exact formula (error ≤ ½ ulp, barring double rounding
    with probability ~2⁻²⁹ per value) instead of a few ulps from rounding ``rsqrt``, the products and the sum
    separately, the smallest change BN folding can make to the pre-activations. (MPS has no float64; there it
    folds in the layer's dtype.)
    """
    out = weight.dtype
    narrow = weight.is_floating_point() and weight.element_size() < 8
    wide = torch.float64 if narrow and weight.device.type != "mps" else out  # MPS has no float64

    def widen(t: Tensor) -> Tensor:
        return t.to(wide)

    scale = torch.rsqrt(widen(running_var) + eps)
    if bn_weight is not None:
        scale = scale * widen(bn_weight)
    new_bias = -widen(running_mean) * scale if bias is None else (widen(bias) - widen(running_mean)) * scale
    if bn_bias is not None:
        new_bias = new_bias + widen(bn_bias)
    new_weight = widen(weight) * scale.view((-1,) + (1,) * (weight.dim() - 1))
    return new_weight.to(out), new_bias.to(out)
