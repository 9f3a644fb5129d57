"""Evaluation: accuracy vs T, reports."""

from ann2snn.evaluate.metrics import evaluate
from ann2snn.evaluate.report import ConversionReport

__all__ = ["ConversionReport", "evaluate"]
