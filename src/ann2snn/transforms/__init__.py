"""Model-to-model transforms: trace, prepare, fold BN, convert."""

from ann2snn.transforms import baselines as _baselines  # noqa: F401  (registers method="srp" and "cos")
from ann2snn.transforms import steprelu as _steprelu  # noqa: F401  (registers method="steprelu")
from ann2snn.transforms.convert import convert, register_conversion_method
from ann2snn.transforms.fold_bn import fold_batchnorm
from ann2snn.transforms.prepare import prepare
from ann2snn.transforms.registry import register_function, register_layer, register_method
from ann2snn.transforms.trace import register_leaf, trace

__all__ = [
    "convert",
    "fold_batchnorm",
    "prepare",
    "register_conversion_method",
    "register_function",
    "register_layer",
    "register_leaf",
    "register_method",
    "trace",
]
