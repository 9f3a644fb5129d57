"""Calibration: activation observers (thresholds from data) and error calibration."""

from ann2snn.calibrate.observers import ActivationObserver, iter_input_batches, record_site_inputs

__all__ = ["ActivationObserver", "iter_input_batches", "record_site_inputs"]
