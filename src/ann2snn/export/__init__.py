"""Saving models: checkpoints (safetensors + JSON metadata) and converted SNNs (a folder with both)."""

from ann2snn.export.checkpoint import (
    Checkpoint,
    checkpoint_exists,
    checkpoint_files,
    load_checkpoint,
    save_checkpoint,
)
from ann2snn.export.snn_file import SavedSNN, is_saved_snn, load_snn, save_snn

__all__ = [
    "Checkpoint",
    "SavedSNN",
    "checkpoint_exists",
    "checkpoint_files",
    "is_saved_snn",
    "load_checkpoint",
    "load_snn",
    "save_checkpoint",
    "save_snn",
]
