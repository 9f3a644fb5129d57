"""ann2snn: convert trained PyTorch ANNs into spiking neural networks.

Example:
    >>> import ann2snn as a2s
    >>> qann = a2s.prepare(ann, a2s.QuantConfig(activation="qcfs", levels=8))   # doctest: +SKIP
    >>> snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=8))  # doctest: +SKIP
"""

from ann2snn.calibrate import calibrate, calibrate_da, calibrate_li
from ann2snn.check import CheckReport, check
from ann2snn.config import ConversionConfig, QuantConfig
from ann2snn.data import DatasetInfo, dataset_info, load_dataset, make_loader
from ann2snn.errors import Ann2SnnError
from ann2snn.evaluate.compare import compare
from ann2snn.evaluate.comparison import ComparisonReport
from ann2snn.evaluate.cost import CostReport, spike_cost
from ann2snn.evaluate.html import write_full_report
from ann2snn.evaluate.leak import LeakChoice, choose_leak
from ann2snn.evaluate.metrics import evaluate
from ann2snn.evaluate.noise import Attack
from ann2snn.evaluate.report import ConversionReport
from ann2snn.evaluate.robustness import RobustnessResult, evaluate_robustness
from ann2snn.export.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from ann2snn.export.nir import export_nir
from ann2snn.models import create_model, list_models
from ann2snn.simulate import SimResult, SpikingModel, simulate
from ann2snn.train import TrainConfig, TrainResult, evaluate_accuracy, train
from ann2snn.transforms import convert, fold_batchnorm, prepare, register_function, register_layer, register_method
from ann2snn.transforms.steprelu import get_leak, set_leak

__version__ = "0.1.0"

__all__ = [
    "Ann2SnnError",
    "Attack",
    "CheckReport",
    "Checkpoint",
    "ComparisonReport",
    "ConversionConfig",
    "ConversionReport",
    "CostReport",
    "DatasetInfo",
    "LeakChoice",
    "QuantConfig",
    "RobustnessResult",
    "SimResult",
    "SpikingModel",
    "TrainConfig",
    "TrainResult",
    "__version__",
    "calibrate",
    "calibrate_da",
    "calibrate_li",
    "check",
    "choose_leak",
    "compare",
    "convert",
    "create_model",
    "dataset_info",
    "evaluate",
    "evaluate_accuracy",
    "evaluate_robustness",
    "export_nir",
    "fold_batchnorm",
    "get_leak",
    "list_models",
    "load_checkpoint",
    "load_dataset",
    "make_loader",
    "prepare",
    "register_function",
    "register_layer",
    "register_method",
    "save_checkpoint",
    "set_leak",
    "simulate",
    "spike_cost",
    "train",
    "write_full_report",
]
