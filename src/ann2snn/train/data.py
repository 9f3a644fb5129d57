"""Training and evaluation data: accepted input kinds, the seeded per-epoch order, top-1 accuracy."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ann2snn.errors import InputError
from ann2snn.validation import check_labels

__all__ = ["evaluate_accuracy"]


def evaluate_accuracy(model: nn.Module, loader: Any, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of an ANN in [0, 1] over ``loader`` (batches ``(x, y)``, a Dataset or ``(x, y)`` tensors).

    The model runs in eval mode without gradients; its previous mode is restored and it is not moved, so it
    must already be on ``device`` (default: the device of its first parameter).

    Raises:
        InputError: The data is empty.
    """
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    loader = _as_loader(loader, batch_size=256)
    was_training = model.training
    model.eval()
    correct, total = 0, 0
    try:
        with torch.no_grad():
            for batch in loader:
                x, y = batch[0].to(device), batch[1].to(device)
                logits = model(x)
                check_labels(y, x.shape[0], logits.shape[-1] if logits.dim() == 2 else None, "eval_data labels")
                correct += int((logits.argmax(dim=1) == y).sum().item())
                total += int(y.shape[0])
    finally:
        model.train(was_training)
    if total == 0:
        raise InputError("evaluate_accuracy got no samples; pass a non-empty loader or dataset")
    return correct / total


def _epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of ``epoch``: a permutation from a generator seeded by ``(seed, epoch)`` only."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7_919 + 17) % (2**63))
    return torch.randperm(n, generator=generator).tolist()


def _as_dataset(data: Any, name: str) -> Dataset:
    if isinstance(data, DataLoader):
        data = data.dataset
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return TensorDataset(data[0], data[1])
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise InputError(
            f"{name} must be a map-style Dataset, a DataLoader or a tuple (x, y) of tensors, got {type(data).__name__}"
        )
    return data  # type: ignore[no-any-return]


def _as_loader(data: Any, batch_size: int) -> Any:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return DataLoader(TensorDataset(data[0], data[1]), batch_size=batch_size, generator=torch.Generator())
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        return DataLoader(data, batch_size=batch_size, generator=torch.Generator())  # type: ignore[arg-type]
    return data  # any iterable of (x, y) batches
