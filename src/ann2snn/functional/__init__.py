"""Pure tensor math: quantizers, neuron update rules, BatchNorm folding. No modules, no state."""

from ann2snn.functional.fold import fold_bn_into_weights
from ann2snn.functional.neuron import (
    if_step,
    parallel_if_level,
    rate_from_level,
    rate_level,
    spikes_from_level,
)
from ann2snn.functional.quant import clip_relu, floor_ste, qcfs, qcfs_level, step_relu

__all__ = [
    "clip_relu",
    "floor_ste",
    "fold_bn_into_weights",
    "if_step",
    "parallel_if_level",
    "qcfs",
    "qcfs_level",
    "rate_from_level",
    "rate_level",
    "spikes_from_level",
    "step_relu",
]
