"""Calibration: activation observers (thresholds from data) and error calibration."""

from ann2snn.calibrate.observers import ActivationObserver, iter_input_batches, record_site_inputs

__all__ = [
    "ActivationObserver",
    "CalibratedIFNeuron",
    "calibrate",
    "calibrate_da",
    "calibrate_li",
    "iter_input_batches",
    "mse_threshold",
    "record_site_inputs",
]

_LAZY = {
    "calibrate": "ann2snn.calibrate.api",
    "calibrate_da": "ann2snn.calibrate.da",
    "calibrate_li": "ann2snn.calibrate.li",
    "CalibratedIFNeuron": "ann2snn.calibrate.li",
    "mse_threshold": "ann2snn.calibrate.mse",
}


def __getattr__(name: str) -> object:  # lazy: these modules import transforms, which import this package
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ann2snn.calibrate' has no attribute {name!r}")
