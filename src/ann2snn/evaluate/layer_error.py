"""Per-layer ANN-vs-SNN activation error: where along the network the conversion loses accuracy.

For every activation site, the ANN's activation (QCFS/ClipReLU/ReLU output) is compared with the SNN neuron's
time-mean output at T steps on the same inputs: ``mean |a_ANN − mean_t out_SNN(t)|``. For a parallel SNN at
T = L every entry is 0 up to float round-off (the lossless theorem); serial SNNs show the unevenness error
growing with depth.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from ann2snn.simulate.model import SpikingModel
from ann2snn.simulate.runner import check_input, simulate
from ann2snn.transforms.sites import modularize_sites
from ann2snn.transforms.trace import trace

__all__ = ["layer_errors"]


def _ann_activations(ann: nn.Module, x: Tensor) -> dict[str, Tensor]:
    """Outputs of every activation site of ``ann``, named as :func:`ann2snn.convert` names the sites."""
    gm = trace(copy.deepcopy(ann).eval())
    names = modularize_sites(gm)
    acts: dict[str, Tensor] = {}
    hooks = [
        gm.get_submodule(n).register_forward_hook(lambda _m, _i, out, n=n: acts.__setitem__(n, out.detach()))
        for n in names
    ]
    try:
        with torch.no_grad():
            gm(x)
    finally:
        for h in hooks:
            h.remove()
    return acts


def _snn_means(snn: SpikingModel, x: Tensor, timesteps: int) -> dict[str, Tensor]:
    """Time-mean output of every neuron layer ``[B, ...]`` at ``timesteps`` steps."""
    B = x.shape[0]
    sums: dict[str, Tensor] = {}
    calls: dict[str, int] = {}

    def hook(name: str, out: Tensor) -> None:
        out = out.detach()
        if out.shape[0] == timesteps * B and timesteps > 1:  # parallel spike mode: [T*B, ...]
            out = out.reshape((timesteps, B) + out.shape[1:]).mean(0)
        sums[name] = sums[name] + out if name in sums else out
        calls[name] = calls.get(name, 0) + 1

    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: hook(n, out)) for n, m in snn.neurons().items()]
    mode = "rate" if snn.execution == "parallel" else "spike"
    try:
        simulate(snn, x, timesteps, mode=mode, record=False)
    finally:
        for h in hooks:
            h.remove()
    return {n: s / calls[n] for n, s in sums.items()}


def layer_errors(ann: nn.Module, snn: SpikingModel, x: Tensor, timesteps: int | None = None) -> dict[str, Any]:
    """Mean absolute ANN-vs-SNN activation error per site on the batch ``x``.

    Returns:
        ``{site: {"mean_abs_error", "mean_abs_ann", "relative_error", "max_abs_error"}}`` in graph order.

    Shape: ``x`` ``[B, ...]``.
    """
    x = check_input(x)
    T = snn.timesteps if timesteps is None else int(timesteps)
    param = next(ann.parameters(), None)
    was_training = ann.training
    try:
        acts = _ann_activations(ann, x.to(param.device if param is not None else x.device))
    finally:
        ann.train(was_training)
    means = _snn_means(snn, x, T)
    out: dict[str, Any] = {}
    for name, snn_mean in means.items():
        if name not in acts:
            continue
        a = acts[name].to(snn_mean.device, snn_mean.dtype)
        err = (a - snn_mean).abs()
        scale = float(a.abs().mean())
        out[name] = {
            "mean_abs_error": float(err.mean()),
            "max_abs_error": float(err.max()),
            "mean_abs_ann": scale,
            "relative_error": float(err.mean()) / scale if scale > 0 else 0.0,
        }
    return out


def layer_error_table(errors: dict[str, Any], timesteps: int) -> str:
    """Markdown table of :func:`layer_errors`."""
    rows = [
        f"Mean |ANN activation − SNN time-mean output| per site at T = {timesteps}.",
        "",
        "| site | mean abs error | max abs error | mean abs ANN activation | relative |",
        "|---|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {n} | {e['mean_abs_error']:.4g} | {e['max_abs_error']:.4g} | {e['mean_abs_ann']:.4g} | "
        f"{e['relative_error']:.3f} |"
        for n, e in errors.items()
    ]
    return "\n".join(rows)
