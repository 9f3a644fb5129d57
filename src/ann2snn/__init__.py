"""ann2snn: convert trained PyTorch ANNs into spiking neural networks."""

from ann2snn.config import ConversionConfig, QuantConfig
from ann2snn.errors import Ann2SnnError

__version__ = "0.1.0"

__all__ = [
    "Ann2SnnError",
    "ConversionConfig",
    "QuantConfig",
    "__version__",
]
