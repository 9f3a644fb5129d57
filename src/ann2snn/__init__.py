"""ann2snn: convert trained PyTorch ANNs into spiking neural networks.

Example:
    >>> import ann2snn as a2s
    >>> qann = a2s.prepare(ann, a2s.QuantConfig(activation="qcfs", levels=8))   # doctest: +SKIP
    >>> snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=8))  # doctest: +SKIP
"""

from ann2snn.config import ConversionConfig, QuantConfig
from ann2snn.data import DatasetInfo, dataset_info, load_dataset, make_loader
from ann2snn.errors import Ann2SnnError
from ann2snn.evaluate import ConversionReport, evaluate
from ann2snn.export.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ann2snn.models import create_model, list_models
from ann2snn.simulate import SimResult, SpikingModel, simulate
from ann2snn.train import TrainConfig, TrainResult, evaluate_accuracy, train
from ann2snn.transforms import convert, fold_batchnorm, prepare

__version__ = "0.1.0"

__all__ = [
    "Ann2SnnError",
    "Checkpoint",
    "ConversionConfig",
    "ConversionReport",
    "DatasetInfo",
    "QuantConfig",
    "SimResult",
    "SpikingModel",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "convert",
    "create_model",
    "dataset_info",
    "evaluate",
    "evaluate_accuracy",
    "fold_batchnorm",
    "list_models",
    "load_checkpoint",
    "load_dataset",
    "make_loader",
    "prepare",
    "save_checkpoint",
    "simulate",
    "train",
]
