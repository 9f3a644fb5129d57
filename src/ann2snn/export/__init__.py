"""Saving models: checkpoints (safetensors + JSON metadata)."""

from ann2snn.export.checkpoint import (
    Checkpoint,
    checkpoint_exists,
    checkpoint_files,
    load_checkpoint,
    save_checkpoint,
)

__all__ = ["Checkpoint", "checkpoint_exists", "checkpoint_files", "load_checkpoint", "save_checkpoint"]
