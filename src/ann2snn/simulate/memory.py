"""Memory guard of :func:`ann2snn.simulate`: estimate the bytes a run needs before allocating them.

A spike-mode simulation keeps the per-step outputs ``[T, B, K]`` and, for parallel SNNs, runs the graph on
time-flattened tensors ``[T·b, ...]`` (``b`` samples per chunk). With ``T = 10**6`` that is tens of GB, and the
process would be killed by the kernel with no message. :func:`plan` turns the per-sample activation sizes of the
network (measured once on one sample) into an estimate, shrinks the parallel chunk until it fits the memory that
is free, and raises :class:`~ann2snn.errors.ResourceError` with the estimate and the fix when even one sample per
chunk does not fit.

The estimate is deliberately simple (closed form, :func:`spike_bytes`) and errs on the high side: every op of the
widest layer may hold :data:`LIVE_TENSORS` tensors of that layer's size at once.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from pathlib import Path

import torch

from ann2snn.errors import ResourceError

__all__ = ["LIVE_TENSORS", "MemoryPlan", "available_bytes", "plan", "spike_bytes"]

LIVE_TENSORS = 4
"""Tensors of the widest layer's size assumed alive at once in a parallel spike pass (input, output, the
neuron's cumulative currents and spikes)."""

HEADROOM = 0.8
"""Fraction of the free memory a simulation may plan to use."""

SMALL = 1 << 26
"""Estimates below this (64 MiB) are not checked against the free memory (saves reading it on every call)."""


@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    """What :func:`plan` decided: the estimate in bytes and the parallel chunk size (samples) that fits."""

    bytes_needed: int
    chunk: int


def spike_bytes(
    timesteps: int, batch: int, chunk: int, widest: int, total: int, classes: int, itemsize: int, parallel: bool
) -> int:
    """Bytes a spike-mode simulation needs (closed form).

    Args:
        timesteps: Steps simulated, ``presteps + T``.
        batch: Samples B.
        chunk: Samples per time-flattened pass (parallel execution).
        widest: Elements per sample of the widest tensor in the graph.
        total: Elements per sample of all tensors of one step (the serial working set, the rate-mode level plan).
        classes: Outputs K per sample.
        itemsize: Bytes per element.
        parallel: Parallel execution (chunks of ``[T·chunk, ...]``) or serial (one step at a time).

    Returns:
        ``3·T·B·K`` (the per-step outputs, their concatenation and one derived curve) plus, in parallel execution,
        ``LIVE_TENSORS·T·chunk·widest``, else ``B·total`` (one step's working set), times ``itemsize``.
    """
    outputs = 3 * timesteps * batch * classes
    working = LIVE_TENSORS * timesteps * min(chunk, batch) * widest if parallel else batch * total
    return (outputs + working + batch * total) * itemsize


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_free() -> int | None:
    """Free bytes under the cgroup v2 memory limit of this process, if it has one."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            folder = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            limit, used = _read_int(folder / "memory.max"), _read_int(folder / "memory.current")
            if limit is not None and used is not None:
                return max(0, limit - used)
    return None


def _address_space_free() -> int | None:
    """Address space left under ``RLIMIT_AS`` (``ulimit -v``), if one is set."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return max(0, soft - int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        return None
    return None


def _system_free() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes(device: torch.device) -> int | None:
    """Memory a new allocation on ``device`` can get: free GPU memory, or on the CPU the least of available RAM,
    the cgroup limit and the ``RLIMIT_AS`` address space. ``None`` when it cannot be told (then nothing is
    refused)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type != "cpu" or os.name != "posix":
        return None
    limits = [v for v in (_system_free(), _cgroup_free(), _address_space_free()) if v is not None]
    return min(limits) if limits else None


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def plan(
    *,
    timesteps: int,
    batch: int,
    chunk: int,
    widest: int,
    total: int,
    classes: int,
    itemsize: int,
    parallel: bool,
    device: torch.device,
    free: int | None = None,
) -> MemoryPlan:
    """The chunk size (at most ``chunk``) whose estimate fits the free memory, or ResourceError.

    Args:
        free: Free bytes (default: :func:`available_bytes` of ``device``); ``None`` there disables the guard.
    """

    def need(c: int) -> int:
        return spike_bytes(timesteps, batch, c, widest, total, classes, itemsize, parallel)

    if free is None and need(chunk) <= SMALL:
        return MemoryPlan(need(chunk), chunk)
    free = available_bytes(device) if free is None else free
    if free is None:
        return MemoryPlan(need(chunk), chunk)
    budget = int(free * HEADROOM)
    c = max(1, min(chunk, batch))
    while need(c) > budget and c > 1:
        c = max(1, c // 2)
    if need(c) <= budget:
        return MemoryPlan(need(c), c)
    fixed = 3 * timesteps * batch * classes * itemsize
    biggest = (
        f"the per-step outputs [T={timesteps}, B={batch}, K={classes}] alone take {_gb(fixed)}"
        if fixed > budget
        else f"one sample's {timesteps} time-flattened steps take {_gb(need(1) - fixed)}"
    )
    fix = "use mode='rate' (CLI: --mode rate; parallel SNNs, exact spike counts), " if parallel else ""
    raise ResourceError(
        f"a spike-mode simulation of T={timesteps} steps on a batch of {batch} needs about {_gb(need(c))} but only "
        f"{_gb(free)} of {device.type} memory is free ({biggest}); {fix}fewer time steps (--timesteps) or a "
        "smaller batch (--batch-size)"
    )
