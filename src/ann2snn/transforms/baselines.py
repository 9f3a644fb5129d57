"""Conversion methods of the low-latency baselines: ``method="srp"`` and ``method="cos"``.

Both convert every activation site to an IF neuron (reset by subtraction, ``v(0) = v_init·θ``) that first
pre-simulates ``config.presteps`` steps on the same input, then applies its rule and runs the real T steps:

- SRP (Hao et al., "Reducing ANN-SNN conversion error through residual membrane potential", AAAI 2023):
  neurons with no positive residual potential after τ steps are silenced (:class:`SRPNeuron`).
- COS (Hao et al., "Bridging the gap between ANNs and SNNs by calibrating offset spikes", ICLR 2023):
  each neuron's v(0) is shifted by its offset spike measured over ρ steps (:class:`COSNeuron`).

The whole network pre-simulates at once (every layer sees the previous layer's pre-simulation spikes), so an
input is answered after ``presteps + T`` steps; :func:`ann2snn.simulate` reports that as ``total_timesteps``.
"""

from __future__ import annotations

from ann2snn.config import ConversionConfig
from ann2snn.layers.baseline_neurons import COSNeuron, SRPNeuron
from ann2snn.layers.neurons import SpikingNeuron
from ann2snn.transforms.convert import Site, register_conversion_method


@register_conversion_method("srp", "serial")
def _srp_neuron(site: Site, config: ConversionConfig) -> SpikingNeuron:
    return SRPNeuron(site.threshold, config.presteps, v_init=config.v_init)


@register_conversion_method("cos", "serial")
def _cos_neuron(site: Site, config: ConversionConfig) -> SpikingNeuron:
    return COSNeuron(site.threshold, config.presteps, v_init=config.v_init)


__all__ = ["COSNeuron", "SRPNeuron"]
