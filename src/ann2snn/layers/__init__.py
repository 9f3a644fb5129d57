"""Thin nn.Module wrappers over :mod:`ann2snn.functional`."""

from ann2snn.layers.activations import QCFS, ClipReLU, StepReLU
from ann2snn.layers.neurons import IFNeuron, ParallelIFNeuron, SpikingNeuron

__all__ = ["QCFS", "ClipReLU", "IFNeuron", "ParallelIFNeuron", "SpikingNeuron", "StepReLU"]
