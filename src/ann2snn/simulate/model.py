"""The converted network: an fx graph whose activation sites are spiking neurons, and how to run it."""

from __future__ import annotations

import contextlib
import dataclasses
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, fx, nn

from ann2snn.config import ConversionConfig
from ann2snn.errors import ConfigError
from ann2snn.layers.neurons import RATE_MODE, SPIKE_MODE, ParallelIFNeuron, SpikingNeuron


def _lookup(root: nn.Module, name: str) -> nn.Module | None:
    """``root.get_submodule(name)`` through the ``_modules`` dicts (``get_submodule`` is ~20x slower)."""
    mod: nn.Module | None = root
    for part in name.split("."):
        mod = mod._modules.get(part) if mod is not None else None
    return mod


@contextlib.contextmanager
def _hooks_hidden(net: nn.Module) -> Iterator[None]:
    """Detach the forward (pre-)hooks of every module of ``net`` for the duration, then restore them."""
    saved = []
    for m in net.modules():
        if m._forward_hooks or m._forward_pre_hooks:
            saved.append((m, m._forward_hooks, m._forward_pre_hooks))
            m._forward_hooks, m._forward_pre_hooks = OrderedDict(), OrderedDict()
    try:
        yield
    finally:
        for m, hooks, pre_hooks in saved:
            m._forward_hooks, m._forward_pre_hooks = hooks, pre_hooks


def _maxpools_commute(net: fx.GraphModule) -> bool:
    """Whether every max-pool of ``net`` sees a neuron's sorted spike trains (then its time mean is exact)."""
    from ann2snn.transforms.maxpool import is_exact  # lazy: transforms import this module
    from ann2snn.transforms.registry import is_maxpool

    modules = dict(net.named_modules())
    return all(is_exact(n, modules) for n in net.graph.nodes if is_maxpool(n, modules))


@dataclasses.dataclass(frozen=True)
class SiteInfo:
    """One converted activation site: its module name, what it was in the ANN, and its neuron."""

    name: str
    source: str  # "qcfs" | "clip" | "relu" | "steprelu"
    levels: int | None
    threshold_from: str  # "activation" | "max" | "percentile" | ...
    neuron: str


class SpikingModel(nn.Module):
    """A converted SNN. ``forward`` takes a time-first input ``[T, B, ...]`` and returns ``[T, B, K]``.

    ``execution="serial"`` steps the graph T times with stateful neurons; ``"parallel"`` runs the graph once on the
    time-flattened tensor ``[T·B, ...]`` (spike mode) or on the time-mean input (rate mode, :meth:`forward_rate`).
    Use :func:`ann2snn.simulate` for analog inputs, spike counts and per-step outputs.

    Attributes:
        max_rows: parallel spike mode runs the batch in chunks of ``max_rows // T`` samples (at least one), so
            each time-flattened tensor has about ``max_rows`` rows: on CPU this is ~2x faster than one giant
            ``[T·B, ...]`` pass and bounds peak memory. ``None`` (default): 64 on CPU, no chunking on GPUs.
            Chunking is exact per sample (the levels come from the level plan, which is not chunked).
        levels_from: where parallel spike mode takes each neuron's level. ``"rate"``: from a level plan, one
            rate-mode pass over the time-mean input (about one ANN forward) whose levels every neuron then fires,
            so spike and rate mode give bit-identical levels and spike counts in any precision and on any backend
            (the per-step currents, spike trains and outputs are still computed step by step from those spikes).
            ``"currents"``: each neuron from its own summed currents ``Σ_t I(t)``, which can differ from rate mode
            by one level where float round-off straddles a level boundary. ``"auto"`` (default): ``"rate"``
            unless the graph has a max-pool that is not fed by a neuron (its time mean is not the mean's max, so
            only the currents give the spiking result there).
    """

    max_rows: int | None = None
    levels_from: str = "auto"

    def __init__(
        self,
        net: fx.GraphModule,
        config: ConversionConfig,
        sites: list[SiteInfo],
        log: list[str],
        execution: str,
    ) -> None:
        super().__init__()
        self.net = net
        self.config = config
        self.sites = sites
        self.log = log
        self.execution = execution

    @property
    def timesteps(self) -> int:
        return self.config.timesteps

    @property
    def presteps(self) -> int:
        """Pre-simulation steps before the T read steps (SRP/COS); ``forward`` inputs include them."""
        return int(getattr(self.config, "presteps", 0))

    def neurons(self) -> dict[str, SpikingNeuron]:
        """Spiking neurons by module name, in graph order.

        Cached (a module walk costs ~0.1 ms, several per ``simulate`` call, comparable to a batch-1 forward); the
        cache is checked against the live modules on every call, so swapped neurons are seen.
        """
        cache: dict[str, SpikingNeuron] | None = self.__dict__.get("_neuron_cache")
        if cache is not None and all(_lookup(self.net, n) is m for n, m in cache.items()):
            return dict(cache)
        cache = {n: m for n, m in self.net.named_modules() if isinstance(m, SpikingNeuron)}
        self.__dict__["_neuron_cache"] = cache
        return dict(cache)

    def reset(self) -> None:
        for m in self.neurons().values():
            m.reset()

    def set_record(self, record: bool) -> None:
        for m in self.neurons().values():
            if m.record != record:  # nn.Module.__setattr__ is slow; skip no-op writes
                m.record = record

    def _set_parallel(self, mode: str, timesteps: int) -> None:
        for m in self.neurons().values():
            if isinstance(m, ParallelIFNeuron) and (m.mode != mode or m.timesteps != timesteps):
                m.mode = mode
                m.timesteps = timesteps

    def forward(self, x_seq: Tensor) -> Tensor:
        """Spike-mode run. Shape: ``[T, B, ...]`` → ``[T, B, K]``. Resets neuron state first.

        For SRP/COS SNNs the first :attr:`presteps` steps of ``x_seq`` are the pre-simulation.
        """
        self.reset()
        T, B = x_seq.shape[0], x_seq.shape[1]
        if self.execution != "parallel":
            return torch.stack([self.net(x_seq[t]) for t in range(T)])
        planned = self._plan_levels(x_seq) if self._levels_from_rate() else []
        try:
            self._set_parallel(SPIKE_MODE, T)
            step = self.default_chunk(T, x_seq.device)
            cap = self.__dict__.get("_chunk_cap")  # set by simulate's memory guard
            step = min(step, cap) if cap else step
            if B > step:
                return self._forward_chunks(x_seq, step)
            out = self.net(x_seq.reshape((T * B,) + x_seq.shape[2:]))
            return out.reshape((T, B) + out.shape[1:])
        finally:
            for m in planned:
                m.end_plan(keep=False)

    def default_chunk(self, timesteps: int, device: torch.device) -> int:
        """Samples per time-flattened pass of parallel spike mode (see :attr:`max_rows`)."""
        rows = self.max_rows if self.max_rows is not None else (64 if device.type == "cpu" else 1 << 30)
        return max(1, rows // timesteps)

    def sample_sizes(self, sample: Tensor) -> tuple[int, int, int]:
        """``(widest, total, outputs)``: elements of the largest tensor, of all tensors, and of the output that the
        graph computes for the one sample ``sample`` ``[1, ...]`` in one step (rate mode for parallel SNNs).
        Neuron state is reset after."""
        sizes: list[int] = []

        class _Sizes(fx.Interpreter):
            def run_node(self, n: fx.Node) -> Any:
                out = super().run_node(n)
                if isinstance(out, Tensor):
                    sizes.append(out.numel())
                return out

        self.reset()
        if self.execution == "parallel":
            self._set_parallel(RATE_MODE, max(1, self.timesteps))
        try:
            with torch.no_grad(), _hooks_hidden(self.net):
                out = _Sizes(self.net).run(sample)
        finally:
            self.reset()
        outputs = out.numel() if isinstance(out, Tensor) else 1
        return (max(sizes), sum(sizes), outputs) if sizes else (1, 1, outputs)

    def _levels_from_rate(self) -> bool:
        """Whether parallel spike mode fires a level plan (see :attr:`levels_from`)."""
        if self.levels_from not in ("auto", "rate", "currents"):
            raise ConfigError(f"levels_from={self.levels_from!r} is not supported; choose 'auto', 'rate' or 'currents'")
        if self.levels_from != "auto":
            return self.levels_from == "rate"
        cached = self.__dict__.get("_commutes")
        if cached is None or cached[0] is not self.net.graph:
            cached = (self.net.graph, _maxpools_commute(self.net))
            self.__dict__["_commutes"] = cached
        return cached[1]

    def _plan_levels(self, x_seq: Tensor) -> list[ParallelIFNeuron]:
        """Run rate mode on the time-mean input with every parallel neuron storing its levels; returns them.

        The mean is ``x_0 + mean_t(x_t − x_0)``, exactly ``x`` when the input is ``x`` at every step (direct
        encoding, as :func:`~ann2snn.simulate` feeds it), so the plan is the very computation of rate mode on ``x``.
        """
        neurons = [m for m in self.neurons().values() if isinstance(m, ParallelIFNeuron)]
        first = x_seq[0]
        constant = x_seq.shape[0] == 1 or x_seq.stride(0) == 0  # expanded over time: the mean is x_0 itself
        mean = first if constant else first + (x_seq - first).mean(0)
        self._set_parallel(RATE_MODE, x_seq.shape[0])
        for m in neurons:
            m.begin_plan()
        kept = False
        try:
            with torch.no_grad(), _hooks_hidden(self.net):  # internal: hooks see only the spike-mode calls
                self.net(mean)
            kept = True
        finally:
            for m in neurons:
                m.end_plan(keep=kept)
                m.reset()  # the spike pass counts the spikes again
        return neurons

    def _forward_chunks(self, x_seq: Tensor, step: int) -> Tensor:
        """Parallel spike mode over batch chunks of ``step`` samples (exact: every op acts per sample).

        Keeps the time-flattened tensors near ``max_rows`` rows, the size an ANN batch would have, so they stay in
        cache and reuse allocator memory; spike counts are concatenated over the chunks.
        """
        neurons = self.neurons()
        outs: list[Tensor] = []
        counts: dict[str, list[Tensor]] = {n: [] for n in neurons}
        for xb in x_seq.split(step, dim=1):
            T, b = xb.shape[0], xb.shape[1]
            for m in neurons.values():
                m.reset()
            out = self.net(xb.reshape((T * b,) + xb.shape[2:]))
            outs.append(out.reshape((T, b) + out.shape[1:]))
            for n, m in neurons.items():
                if m.spike_count is not None:
                    counts[n].append(m.spike_count)
        for n, m in neurons.items():
            m.spike_count = torch.cat(counts[n]) if counts[n] else None
        return torch.cat(outs, dim=1)

    def forward_rate(self, x: Tensor, timesteps: int | None = None) -> Tensor:
        """Rate-mode run of a parallel SNN on the time-mean input ``[B, ...]`` → time-mean output ``[B, K]``."""
        if self.execution != "parallel":
            raise ConfigError(f"rate mode needs a parallel SNN; this one is {self.config.method!r} (use mode='spike')")
        self.reset()
        self._set_parallel(RATE_MODE, timesteps or self.timesteps)
        return self.net(x)

    def summary(self) -> str:
        """What conversion did to every site and layer, one line each."""
        lines = [
            f"{type(self).__name__}: method={self.config.method}, T={self.timesteps}, "
            + (f"presteps={self.presteps} (latency presteps + T), " if self.presteps else "")
            + f"{len(self.sites)} neuron layer(s)"
        ]
        lines += [
            f"  {s.name}: {s.source}"
            + (f" (L={s.levels})" if s.levels else "")
            + f" -> {s.neuron}, threshold from {s.threshold_from}"
            for s in self.sites
        ]
        lines += [f"  note: {m}" for m in self.log]
        return "\n".join(lines)

    def extra_state_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "sites": [dataclasses.asdict(s) for s in self.sites]}
