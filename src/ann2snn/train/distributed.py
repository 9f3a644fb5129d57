"""torchrun / DistributedDataParallel support: device choice, joining the process group, sharding, reductions."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import torch
from torch import nn

from ann2snn.errors import ConfigError, InputError
from ann2snn.train.data import evaluate_accuracy

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; other names are checked for availability."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ConfigError(
            f"device={str(device)!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N' (N a GPU index)"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={str(device)!r} but CUDA is not available; use device='cpu' or 'auto'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={str(device)!r} but this machine has {torch.cuda.device_count()} CUDA device(s) "
                f"(cuda:0..cuda:{torch.cuda.device_count() - 1}); pick one of them"
            )
    elif dev.type not in ("cpu", "meta") and not _backend_available(dev):
        raise ConfigError(f"device={str(device)!r} is not available on this machine; use device='cpu' or 'auto'")
    return dev


def _backend_available(dev: torch.device) -> bool:
    """Whether a non-CUDA accelerator (``mps``, ``xpu``, ...) is present."""
    backend = getattr(torch, dev.type, None) or getattr(torch.backends, dev.type, None)
    available = getattr(backend, "is_available", None)
    return bool(available()) if callable(available) else False


@dataclasses.dataclass
class _Dist:
    """Process-group facts; the single-process default does nothing."""

    rank: int = 0
    world_size: int = 1
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: list[int]) -> list[int]:
        """This rank's part of an epoch's order, padded (DistributedSampler-style) so every rank has as many."""
        if self.world_size == 1:
            return indices
        total = math.ceil(len(indices) / self.world_size) * self.world_size
        padded = (indices * math.ceil(total / len(indices)))[:total]
        return padded[self.rank :: self.world_size]

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def all_gather(self, tensor: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        """``tensor`` of every rank, in rank order, on the CPU."""
        if self.world_size == 1:
            return [tensor]
        import torch.distributed as dist

        local = tensor.to(device)
        gathered = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(gathered, local)
        return [t.cpu() for t in gathered]

    def evaluate(self, model: nn.Module, loader: Any, device: torch.device) -> float:
        """Accuracy over ``loader`` with batches sharded round-robin across ranks and counts all-reduced."""
        if self.world_size == 1:
            return evaluate_accuracy(model, loader, device)
        import torch.distributed as dist

        counts = torch.zeros(2, dtype=torch.float64, device=device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for i, batch in enumerate(loader):
                    if i % self.world_size == self.rank:
                        x, y = batch[0].to(device), batch[1].to(device)
                        counts[0] += (model(x).argmax(dim=1) == y).sum()
                        counts[1] += y.shape[0]
        finally:
            model.train(was_training)
        dist.all_reduce(counts)
        if counts[1] == 0:
            raise InputError("evaluation got no samples; pass a non-empty eval_data")
        return float(counts[0] / counts[1])

    def sum(self, running: dict[str, Any], device: torch.device) -> tuple[float, int, int]:
        """``(loss_sum, correct, count)`` over all ranks."""
        values = torch.stack(
            [
                running["loss_sum"],
                running["correct"].double(),
                torch.tensor(float(running["count"]), dtype=torch.float64, device=device),
            ]
        )
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(values)
        loss_sum, correct, count = values.tolist()
        return float(loss_sum), int(correct), int(count)

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def _init_distributed(device_name: str) -> tuple[_Dist, torch.device]:
    """Join the torchrun process group when ``WORLD_SIZE > 1`` (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return _Dist(), device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), owns_group=owns), device
