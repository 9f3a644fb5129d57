"""ann2snn: convert trained PyTorch ANNs into spiking neural networks."""

from ann2snn.config import ConversionConfig, QuantConfig
from ann2snn.errors import Ann2SnnError
from ann2snn.simulate import SimResult, SpikingModel, simulate
from ann2snn.transforms import convert, fold_batchnorm, prepare

__version__ = "0.1.0"

__all__ = [
    "Ann2SnnError",
    "ConversionConfig",
    "QuantConfig",
    "SimResult",
    "SpikingModel",
    "__version__",
    "convert",
    "fold_batchnorm",
    "prepare",
    "simulate",
]
