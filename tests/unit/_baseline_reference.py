"""An independent, loop-by-loop reference of SRP and COS on a small MLP (the authors' algorithms, in θ units)."""

from __future__ import annotations

import torch
from torch import nn


def reference_run(model: nn.Sequential, x: torch.Tensor, method: str, presteps: int, timesteps: int) -> torch.Tensor:
    """Mean output over the T real steps of an MLP ``Linear, QCFS, Linear, QCFS, ..., Linear``.

    Every QCFS site becomes an IF neuron (threshold θ = the site's threshold, v(0) = θ/2, soft reset); the whole
    network runs ``presteps`` steps, then SRP silences neurons with v ≤ 1e-3·θ and COS shifts v(0); then T steps.
    """
    torch.set_grad_enabled(False)
    try:
        return _run(model, x, method, presteps, timesteps)
    finally:
        torch.set_grad_enabled(True)


def _run(model: nn.Sequential, x: torch.Tensor, method: str, presteps: int, timesteps: int) -> torch.Tensor:
    linears = [m for m in model if isinstance(m, nn.Linear)]
    thetas = [float(m.threshold.detach()) for m in model if hasattr(m, "threshold")]
    n_sites = len(thetas)
    v = [None] * n_sites
    count = [None] * n_sites
    fire_min = [None] * n_sites
    rest_max = [None] * n_sites
    keep = [None] * n_sites
    outs = []
    for t in range(presteps + timesteps):
        h = x
        for k in range(n_sites):
            cur = linears[k](h) / thetas[k]  # work in units of θ, as the authors' code does
            if v[k] is None:
                v[k] = torch.full_like(cur, 0.5)
                count[k] = torch.zeros_like(cur)
                fire_min[k] = torch.full_like(cur, 1000.0)
                rest_max[k] = torch.full_like(cur, -1000.0)
                keep[k] = torch.ones_like(cur)
            if t == presteps and presteps > 0:
                if method == "srp":
                    keep[k] = (v[k] > 1e-3).to(cur.dtype)
                    v[k] = torch.full_like(cur, 0.5)
                else:
                    lower = (v[k] < 0) & (count[k] > 0)
                    higher = v[k] >= 1
                    val = torch.where(fire_min[k] - 0.999 > 1, fire_min[k] - 0.999, torch.ones_like(cur))
                    val2 = torch.where(1.001 - rest_max[k] > 1, 1.001 - rest_max[k], torch.ones_like(cur))
                    init = 0.5 - lower.to(cur.dtype) * val
                    v[k] = torch.where(higher, 0.5 + val2, init)
            pre = v[k] + cur
            s = (pre >= 1).to(cur.dtype)
            v[k] = pre - s
            if t < presteps:
                count[k] = count[k] + s
                fire_min[k] = torch.where(s > 0, torch.minimum(fire_min[k], pre), fire_min[k])
                rest_max[k] = torch.where(s > 0, rest_max[k], torch.maximum(rest_max[k], pre))
            else:
                s = s * keep[k]
            h = s * thetas[k]
        if t >= presteps:
            outs.append(linears[-1](h))
    return torch.stack(outs).mean(0)  # the same reduction as ann2snn.simulate


def random_mlp(seed: int, widths: tuple[int, ...] = (6, 12, 10, 3), levels: int = 4) -> nn.Sequential:
    """A float64 MLP with QCFS sites of random thresholds."""
    import ann2snn as a2s

    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1]).double()
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g, dtype=torch.float64) * 0.6)
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=g, dtype=torch.float64) * 0.2)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    model = a2s.prepare(nn.Sequential(*layers), a2s.QuantConfig(levels=levels, threshold=1.0)).double()
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "threshold") and isinstance(m.threshold, torch.Tensor):
                # powers of two: dividing by θ (the reference) and not (ann2snn) round identically
                m.threshold.fill_(float(2.0 ** torch.randint(-1, 2, (), generator=g)))
    return model.eval()
