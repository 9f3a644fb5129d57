"""Spike statistics and operation costs: synaptic operations (SOPs), MACs and an energy estimate.

* **Fan-out** of a neuron = the number of synapses its spike drives: the weight connections from it into the first
  weighted layers (conv/linear) downstream, through pooling, flatten and residual adds. Computed exactly from the
  fx graph by back-propagating ones through a structural copy (every weight 1, average pools as sums), so padded
  borders, strides and groups are counted as they are.
* **SOPs** = Σ over neurons of spikes × fan-out (per sample, at T steps), one accumulate (AC) each.
* **MACs**: layers fed by the analog input (direct encoding) multiply-accumulate at every step: T × their MACs.
  The ANN costs its conv/linear MACs once.
* **Energy** (45 nm CMOS, Horowitz 2014, as used throughout the SNN literature): 0.9 pJ per AC, 4.6 pJ per MAC.
  Neuron updates, pooling and memory traffic are not counted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from ann2snn.errors import InputError
from ann2snn.layers.neurons import SpikingNeuron
from ann2snn.limits import as_int
from ann2snn.simulate.model import SpikingModel
from ann2snn.simulate.runner import check_input, simulate

__all__ = ["E_AC_PJ", "E_MAC_PJ", "CostReport", "add_cost", "ann_macs", "fanout_maps", "spike_cost"]

E_AC_PJ = 0.9  # energy of one accumulate, pJ (45 nm)
E_MAC_PJ = 4.6  # energy of one multiply-accumulate, pJ (45 nm)
_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_AVG = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)


def _layer_macs(mod: nn.Module, out: Tensor) -> int:
    """MACs per sample of a conv/linear layer: outputs × weights per output."""
    per_output = int(mod.weight[0].numel())  # type: ignore[index]
    return int(out[0].numel()) * per_output


class _Structural(fx.Interpreter):
    """Runs the SNN graph with unit weights, sum pools and probes in place of the neurons."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.probes: dict[str, Tensor] = {}
        self.weighted: list[Tensor] = []
        self.analog_macs: dict[str, int] = {}
        self.spiking: set[fx.Node] = set()
        self._node: fx.Node | None = None

    def run_node(self, n: fx.Node) -> Any:
        self._node = n
        if any(a in self.spiking for a in n.all_input_nodes):
            self.spiking.add(n)
        return super().run_node(n)

    def call_module(self, target: Any, args: Any, kwargs: Any) -> Any:
        mod: Any = self.fetch_attr(target)
        x = args[0]
        if isinstance(mod, SpikingNeuron):
            probe = torch.zeros_like(x, requires_grad=True)
            self.probes[str(target)] = probe
            assert self._node is not None
            self.spiking.add(self._node)
            return probe
        if isinstance(mod, _WEIGHTED):
            ones = torch.ones_like(mod.weight)
            if isinstance(mod, nn.Linear):
                y = x @ ones.T
            else:
                conv = {nn.Conv1d: F.conv1d, nn.Conv2d: F.conv2d, nn.Conv3d: F.conv3d}[type(mod)]
                y = conv(x, ones, None, mod.stride, mod.padding, mod.dilation, mod.groups)
            if self._node not in self.spiking:
                self.analog_macs[str(target)] = _layer_macs(mod, y)
            self.weighted.append(y)
            return y.detach()
        y = super().call_module(target, args, kwargs)
        if isinstance(mod, _ADAPTIVE):
            y = y * (x[0, 0].numel() / y[0, 0].numel())
        elif isinstance(mod, tuple(_AVG)):
            y = y * _window(mod)  # type: ignore[arg-type]
        return y

    def call_function(self, target: Any, args: Any, kwargs: Any) -> Any:
        y = super().call_function(target, args, kwargs)
        if target in (F.avg_pool1d, F.avg_pool2d):
            k = args[1] if len(args) > 1 else kwargs["kernel_size"]
            y = y * (torch.tensor(k).prod().item() if isinstance(k, (tuple, list)) else k ** (args[0].dim() - 2))
        elif target in (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d):
            y = y * (args[0][0, 0].numel() / y[0, 0].numel())
        return y


def _window(mod: nn.Module) -> float:
    k: Any = mod.kernel_size
    dims = _AVG[type(mod)]
    return float(torch.tensor(k).prod()) if isinstance(k, (tuple, list)) else float(k**dims)


def fanout_maps(snn: SpikingModel, input_shape: tuple[int, ...]) -> tuple[dict[str, Tensor], dict[str, int]]:
    """Exact fan-out of every neuron, and the per-step MACs of the layers fed by the analog input.

    Returns:
        ``({neuron layer: fan-out tensor of its per-sample shape}, {analog layer: MACs per sample per step})``.
    """
    interp = _Structural(snn.net)
    param = next(snn.net.parameters(), None)
    x = torch.zeros(
        (1, *input_shape),
        dtype=param.dtype if param is not None else torch.float32,
        device=param.device if param is not None else None,
    )
    with torch.enable_grad():
        interp.run(x)
        total = sum((y.sum() for y in interp.weighted), torch.zeros((), dtype=x.dtype, device=x.device))
        probes = list(interp.probes.values())
        grads = torch.autograd.grad(total, probes, allow_unused=True) if total.requires_grad else [None] * len(probes)
    maps = {
        n: (g[0] if g is not None else torch.zeros_like(p[0])).detach().round()
        for (n, p), g in zip(interp.probes.items(), grads, strict=True)
    }
    return maps, interp.analog_macs


def ann_macs(ann: nn.Module, x: Tensor) -> dict[str, int]:
    """MACs per sample of every conv/linear layer of ``ann`` (by module name), from one forward of ``x``."""
    macs: dict[str, int] = {}
    hooks = [
        m.register_forward_hook(lambda mod, _i, out, name=name: macs.__setitem__(name, _layer_macs(mod, out)))
        for name, m in ann.named_modules()
        if isinstance(m, _WEIGHTED)
    ]
    try:
        with torch.no_grad():
            ann.eval()(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return macs


@dataclasses.dataclass
class CostReport:
    """Per-sample operation counts and energy of an SNN at T steps, and of its ANN. Energies in pJ."""

    timesteps: int
    num_samples: int
    layers: list[dict[str, Any]]  # one row per neuron layer: neurons, spikes, firing rate, mean fan-out, SOPs
    analog_layers: dict[str, int]  # MACs per step of the layers that see the analog input
    sops: float
    snn_macs: float
    ann_macs: int | None
    snn_energy_pj: float
    ann_energy_pj: float | None
    e_ac_pj: float = E_AC_PJ
    e_mac_pj: float = E_MAC_PJ

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_markdown(self) -> str:
        rows = [
            "| layer | neurons | spikes/sample | firing rate | mean fan-out | SOPs/sample |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        rows += [
            f"| {r['layer']} | {r['neurons']} | {r['spikes']:.1f} | {r['firing_rate']:.4f} | "
            f"{r['mean_fanout']:.1f} | {r['sops']:.3g} |"
            for r in self.layers
        ]
        ratio = "—" if not self.ann_energy_pj else f"{self.snn_energy_pj / self.ann_energy_pj:.3f}"
        ann_e = "—" if self.ann_energy_pj is None else f"{self.ann_energy_pj / 1e6:.4g}"
        ann_m = "—" if self.ann_macs is None else f"{self.ann_macs:.4g}"
        return "\n".join(
            rows
            + [
                "",
                f"Per sample at T = {self.timesteps} ({self.num_samples} samples): {self.sops:.4g} SOPs (ACs) + "
                f"{self.snn_macs:.4g} MACs in the analog-input layer(s) ({', '.join(self.analog_layers) or 'none'}, "
                f"T × {sum(self.analog_layers.values()):.4g}); ANN: {ann_m} MACs.",
                f"Energy estimate (45 nm: {self.e_ac_pj} pJ/AC, {self.e_mac_pj} pJ/MAC; neuron updates and memory not "
                f"counted): SNN {self.snn_energy_pj / 1e6:.4g} µJ, ANN {ann_e} µJ, SNN/ANN = {ratio}.",
            ]
        )


def _spike_counts(snn: SpikingModel, x: Tensor, timesteps: int) -> dict[str, Tensor]:
    """Spikes per neuron summed over batch and time (spike mode), by neuron layer."""
    counts: dict[str, Tensor] = {}

    def hook(mod: nn.Module, _inp: Any, out: Tensor, name: str) -> None:
        c = (out != 0).sum(0).to(torch.float64)
        counts[name] = counts[name] + c if name in counts else c

    hooks = [m.register_forward_hook(lambda mod, i, o, name=n: hook(mod, i, o, name)) for n, m in snn.neurons().items()]
    try:
        simulate(snn, x, timesteps, mode="spike", record=False)
    finally:
        for h in hooks:
            h.remove()
    return counts


def spike_cost(
    snn: SpikingModel,
    x: Tensor,
    timesteps: int | None = None,
    ann: nn.Module | None = None,
    *,
    e_ac_pj: float = E_AC_PJ,
    e_mac_pj: float = E_MAC_PJ,
) -> CostReport:
    """Exact SOPs, MACs and energy per sample of ``snn`` on the batch ``x`` ``[B, ...]`` at T steps.

    Shape: ``x`` ``[B, ...]`` analog inputs (direct encoding).
    """
    x = check_input(x)
    if x.shape[0] == 0:
        raise InputError("spike_cost needs at least one sample")
    T = snn.timesteps if timesteps is None else as_int("timesteps", timesteps)
    maps, analog = fanout_maps(snn, tuple(x.shape[1:]))
    counts = _spike_counts(snn, x, T)
    B = x.shape[0]
    layers: list[dict[str, Any]] = []
    for name, fan in maps.items():
        c = counts.get(name, torch.zeros_like(fan, dtype=torch.float64))
        spikes = float(c.sum()) / B
        sops = float((c.cpu() * fan.double().cpu()).sum()) / B
        layers.append(
            {
                "layer": name,
                "neurons": int(fan.numel()),
                "spikes": spikes,
                "firing_rate": spikes / max(1, fan.numel() * T),
                "mean_fanout": float(fan.double().mean()),
                "sops": sops,
            }
        )
    total_sops = float(sum(float(r["sops"]) for r in layers))
    snn_macs = float(T * sum(analog.values()))
    a_macs = None if ann is None else sum(ann_macs(ann, x.to(next(ann.parameters()).device)).values())
    return CostReport(
        T,
        B,
        layers,
        analog,
        total_sops,
        snn_macs,
        a_macs,
        total_sops * e_ac_pj + snn_macs * e_mac_pj,
        None if a_macs is None else a_macs * e_mac_pj,
        e_ac_pj,
        e_mac_pj,
    )


def add_cost(
    report: Any, ann: nn.Module | None, snn: SpikingModel, x_example: Tensor, timesteps: int | None = None
) -> CostReport:
    """Compute :func:`spike_cost` at max(report.timesteps) and add it to ``report.extra`` (JSON + Markdown)."""
    T = timesteps or max(report.timesteps)
    cost = spike_cost(snn, x_example, T, ann)
    report.extra["cost"] = cost.to_dict()
    report.extra[f"Synaptic operations and energy at T = {T}"] = cost.to_markdown()
    return cost
