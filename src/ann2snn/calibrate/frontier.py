"""Resumable two-branch runs: layer-by-layer calibration at a cost linear in depth.

Layer-by-layer calibration (DA ``match``, weight refit) needs, at every stage, the stage's input in both branches
on every calibration batch, computed with all earlier stages already calibrated. Rerunning both graphs from the
input for every stage costs O(S²) node runs for S stages. :class:`Frontiers` instead keeps, per batch, the values
of both branches that later nodes still need (the *frontier*: a node's value is dropped after its last use in the
fx graph) and the position reached; :meth:`Frontiers.advance` moves every batch's frontier to just before the
stage's node and hands over its input. The stage's node itself runs on the next advance, so it runs with the
parameters the stage has just set. Every node then runs once per batch and branch.

Memory: the frontier of a batch is the set of live activations of both branches at one point of the graph (for a
residual network: the block input and the current activation). Frontiers are kept on the model's device while
their total stays within ``budget`` bytes; the batches beyond it are streamed: moved to host memory when the
model is on an accelerator, or written to a temporary directory when it is already on the CPU, and read back
when their turn comes (exact copies: the results do not depend on the budget).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ann2snn.calibrate.reference import Lockstep, SiteFn
from ann2snn.errors import CalibrationError

FRONTIER_BUDGET = 1 << 30  # bytes of frontier values kept on the model's device (the rest is streamed)


class _Batch:
    """One calibration batch: its input, both branches' live values, the next node to run, where it is kept."""

    def __init__(self, x: Tensor) -> None:
        self.x = x
        self.env_ref: dict[str, Any] = {}
        self.env_cal: dict[str, Any] = {}
        self.position = 0
        self.file: Path | None = None  # set while streamed to disk
        self.resident = True  # its values are on the model's device


class Frontiers:
    """Every calibration batch's run of both branches, paused before a node and resumed stage by stage.

    Args:
        lockstep: the two graphs (:class:`~ann2snn.calibrate.reference.Lockstep`).
        batches: calibration inputs, on the model's device.
        site_fn: applied at every activation site (as in :meth:`Lockstep.run`).
        budget: bytes of frontier values kept on the model's device; the rest is streamed (module docstring).
    """

    def __init__(self, lockstep: Lockstep, batches: list[Tensor], site_fn: SiteFn, budget: int = FRONTIER_BUDGET):
        self.lockstep = lockstep
        self.site_fn = site_fn
        self.budget = budget
        self.nodes = list(lockstep.nodes)
        self.first_call: dict[str, int] = {}
        last_use: dict[str, int] = {}
        for i, node in enumerate(self.nodes):
            if node.op == "call_module":
                self.first_call.setdefault(str(node.target), i)
            for source in node.all_input_nodes:
                last_use[source.name] = i
        self.free_after: list[list[str]] = [[] for _ in self.nodes]  # values dead once node i has run
        for i, node in enumerate(self.nodes):
            self.free_after[last_use.get(node.name, i)].append(node.name)
        self.batches = [_Batch(x) for x in batches]
        self.resident = 0  # bytes of frontier values on the device, over the batches not streamed
        self.peak = 0  # the largest total frontier size seen (bytes, all batches)
        self._sizes = [0] * len(batches)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def advance(self, module: str) -> Iterator[tuple[Any, Any]]:
        """Per batch, run both branches up to the first call of ``module``; yield that call's first input in both.

        Stages must come in graph order: a module whose first call lies behind the frontier is an error.
        """
        stop = self.first_call.get(module)
        if stop is None:
            raise CalibrationError(f"calibration: module '{module}' is never called by the graph")
        for k, batch in enumerate(self.batches):
            if batch.position > stop:
                raise CalibrationError(f"calibration: stage '{module}' comes after a later stage (graph order)")
            self._load(k, batch)
            while batch.position < stop:
                node = self.nodes[batch.position]
                if node.op == "output":
                    raise CalibrationError("calibration: a stage lies behind the graph's output")
                self.lockstep.step(node, batch.x, batch.env_ref, batch.env_cal, self.site_fn)
                for name in self.free_after[batch.position]:
                    batch.env_ref.pop(name, None)
                    batch.env_cal.pop(name, None)
                batch.position += 1
            yield self.lockstep.args(self.nodes[stop], batch.env_ref, batch.env_cal)
            self._store(k, batch)

    def close(self) -> None:
        """Drop every frontier (and the temporary directory, if batches were streamed to disk)."""
        self.batches = []
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _load(self, k: int, batch: _Batch) -> None:
        if batch.resident:
            self.resident -= self._sizes[k]
            return
        device = batch.x.device
        if batch.file is not None:
            batch.env_ref, batch.env_cal = torch.load(batch.file, map_location=device, weights_only=True)
            batch.file.unlink()
            batch.file = None
        else:
            batch.env_ref, batch.env_cal = _to(batch.env_ref, device), _to(batch.env_cal, device)

    def _store(self, k: int, batch: _Batch) -> None:
        size = _nbytes(batch.env_ref, batch.env_cal)
        self._sizes[k] = size
        self.peak = max(self.peak, sum(self._sizes))
        batch.resident = self.resident + size <= self.budget
        if batch.resident:
            self.resident += size
        elif batch.x.device.type != "cpu":  # stream to host memory
            cpu = torch.device("cpu")
            batch.env_ref, batch.env_cal = _to(batch.env_ref, cpu), _to(batch.env_cal, cpu)
        else:  # stream to disk
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="ann2snn-frontier-")
            batch.file = Path(self._tmp.name) / f"batch{k}.pt"
            torch.save((batch.env_ref, batch.env_cal), batch.file)
            batch.env_ref, batch.env_cal = {}, {}


def _to(value: Any, device: torch.device) -> Any:
    """``value`` (a tensor, or a dict / tuple / list holding tensors) with every tensor on ``device``."""
    if isinstance(value, Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, (tuple, list)) and not isinstance(value, torch.Size):
        items = [_to(v, device) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _tensors(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)


def _nbytes(*envs: dict[str, Any]) -> int:
    """Bytes of the distinct tensor storages in ``envs`` (the branches share values, e.g. the input)."""
    seen = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for env in envs for t in _tensors(env)}
    return sum(seen.values())
