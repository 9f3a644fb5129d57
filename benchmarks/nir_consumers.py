"""Run a NIR file in one NIR consumer, inside that consumer's own virtualenv (no ann2snn import).

Called by ``benchmarks/nir_interop.py``::

    <venv>/bin/python benchmarks/nir_consumers.py CONSUMER JOBS.json

Each job names a NIR file, an input array, T, dt, dtype and a mode.
``MODE`` is ``stock`` (the consumer's importer as shipped) or ``mapped`` (its importer's node map plus
:data:`EXTRA`, the mappings of ``nir.I``, ``nir.LI`` and ``nir.Threshold`` that no importer ships; Norse and Sinabs
also lack ``nir.AvgPool2d``). The input (``[B, ...]`` float32) is fed at every step (direct encoding); the consumer's
own graph module is stepped T times. Writes ``<out>.npy`` (outputs ``[T, B, ...]``) and ``<out>.json``
(imported, ran, error, versions, what was passed). snnTorch and Norse get one sample at a time without a batch
dimension in stock mode (see :data:`UNBATCHED`).
"""

from __future__ import annotations

import argparse
import json
import traceback
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import torch
from torch import nn


# --------------------------------------------------------------------- the mappings no NIR importer ships
class Integrator(nn.Module):
    """NIR ``I`` (dv/dt = R·I) or ``LI`` (τ dv/dt = v_leak − v + R·I), forward Euler with step dt; outputs v."""

    def __init__(self, node: Any, dt: float) -> None:
        super().__init__()
        self.dt = dt
        self.register_buffer("r", torch.as_tensor(np.asarray(node.r)))
        leaky = hasattr(node, "tau")
        self.register_buffer("tau", torch.as_tensor(np.asarray(node.tau)) if leaky else None)
        self.register_buffer("v_leak", torch.as_tensor(np.asarray(node.v_leak)) if leaky else None)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        v = torch.zeros_like(x) if state is None else state
        if self.tau is None:
            v = v + self.dt * self.r * x
        else:
            v = v + self.dt / self.tau * ((self.v_leak - v) + self.r * x)
        return v, v


class Threshold(nn.Module):
    """NIR ``Threshold``: z = [v > threshold]."""

    def __init__(self, node: Any) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.as_tensor(np.asarray(node.threshold)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > self.threshold).to(x.dtype)


def batch_flatten(node: Any) -> nn.Flatten:
    """NIR ``Flatten`` dims count from the first non-batch dimension (snnTorch and Norse map them unshifted)."""
    start, end = int(node.start_dim), int(node.end_dim)
    return nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)


def extra_map(dt: float, avgpool: bool = False, flatten: bool = False) -> dict[Any, Any]:
    """``EXTRA``: node map entries for the soft-reset form (and AvgPool2d / Flatten where the importer lacks them
    or maps them for unbatched input only)."""
    import nir

    out: dict[Any, Any] = {
        nir.I: lambda n: Integrator(n, dt),
        nir.LI: lambda n: Integrator(n, dt),
        nir.Threshold: Threshold,
    }
    if avgpool:
        out[nir.AvgPool2d] = lambda n: nn.AvgPool2d(tuple(n.kernel_size), tuple(n.stride), tuple(n.padding))
    if flatten:
        out[nir.Flatten] = batch_flatten
    return out


# --------------------------------------------------------------------------------------- the consumers
def _old_api(fallback: Any, dt: float, flatten: bool = False) -> Any:
    """A ``nirtorch.load`` model map: the extra mappings first, then the consumer's own."""
    extra = extra_map(dt, avgpool=True, flatten=flatten)

    def model_map(node: Any) -> Any:
        make = extra.get(type(node))
        return make(node) if make is not None else fallback(node)

    return model_map


def load(consumer: str, mode: str, path: str, dt: float, dtype: torch.dtype) -> tuple[Any, str, str]:
    """Returns ``(module, kind, passed)``; kind: how to step it (``fx``: nirtorch.nir_to_torch, ``old``: load)."""
    import nir
    import nirtorch

    graph = nir.read(path)
    if consumer == "snntorch":
        from snntorch import import_nir

        if mode == "stock":
            return import_nir.import_from_nir(graph).to(dtype), "fx", "import_from_nir(graph)"
        node_map = {t: partial(import_nir._nir_to_snntorch_module, init_hidden=True) for t in _SNNTORCH_TYPES()}
        node_map.update(extra_map(dt, flatten=True))
        net = nirtorch.nir_to_torch(graph, node_map, dtype=dtype)
        return net, "fx", "nirtorch.nir_to_torch(graph, snnTorch's node map + EXTRA + batch Flatten)"
    if consumer == "spikingjelly":
        from spikingjelly.activation_based.nir_exchange import from_nir

        if mode == "stock":
            net = from_nir.import_from_nir(graph, dt=dt, dtype=dtype, step_mode="s")
            return net, "fx", f"import_from_nir(graph, dt={dt:g}, step_mode='s')"
        node_map = {**from_nir._NodeMapper(dt=dt).map_dict, **extra_map(dt)}
        net = nirtorch.nir_to_torch(graph, node_map, dtype=dtype)
        return net, "fx", f"nirtorch.nir_to_torch(graph, SpikingJelly's _NodeMapper(dt={dt:g}).map_dict + EXTRA)"
    if consumer == "norse":
        from norse.torch.utils import import_nir as norse_nir

        if mode == "stock":
            return norse_nir.from_nir(graph, dt=dt).to(dtype), "old", f"norse.torch.from_nir(graph, dt={dt:g})"
        fallback = partial(norse_nir._import_norse_module, dt=dt)
        net = nirtorch.load(graph, _old_api(fallback, dt, flatten=True)).to(dtype)
        return net, "old", f"nirtorch.load(graph, EXTRA + AvgPool2d + batch Flatten, else Norse's mapping, dt={dt:g})"
    if consumer == "sinabs":
        from sinabs import nir as sinabs_nir

        if mode == "stock":
            net = sinabs_nir.from_nir(graph, batch_size=BATCH).to(dtype)
            return net, "old", f"sinabs.from_nir(graph, batch_size={BATCH})"
        fallback = partial(sinabs_nir._import_sinabs_module, batch_size=BATCH, num_timesteps=None)
        net = nirtorch.load(graph, _old_api(fallback, dt)).to(dtype)
        return net, "old", "nirtorch.load(graph, EXTRA + AvgPool2d, else Sinabs' _import_sinabs_module)"
    if consumer == "rockpool":
        from rockpool.nn.modules.torch.nir import from_nir as rockpool_from_nir

        return rockpool_from_nir(graph).to(dtype), "old", "rockpool.nn.modules.torch.nir.from_nir(graph)"
    raise SystemExit(f"unknown consumer {consumer}")


BATCH = 100
# snnTorch and Norse map nir.Flatten(start_dim=0) to torch.nn.Flatten(0), which flattens the batch dimension too:
# as shipped (stock) they are fed one sample at a time without a batch dimension (NIR's own shapes); mapped, the
# Flatten mapping is replaced by batch_flatten and they run batched.
UNBATCHED = {"snntorch", "norse"}


def _SNNTORCH_TYPES() -> list[Any]:  # noqa: N802
    import nir

    return [nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.AvgPool2d, nir.IF, nir.LIF, nir.CubaLIF]


def reset_hidden(net: nn.Module) -> None:
    """snnTorch neurons with init_hidden keep their state in the module; start each batch from rest."""
    for m in net.modules():
        for reset in ("reset_mem", "reset_states"):  # snnTorch, Sinabs
            if callable(getattr(m, reset, None)):
                getattr(m, reset)()


def run(net: nn.Module, kind: str, x: torch.Tensor, timesteps: int) -> torch.Tensor:
    reset_hidden(net)
    state: Any = None
    outs = []
    with torch.no_grad():
        for _ in range(timesteps):
            y, state = net(x, state)
            outs.append(y)
    return torch.stack(outs)


def run_job(consumer: str, job: dict[str, Any]) -> None:
    """Load ``job["file"]`` the ``job["mode"]`` way, step it, write ``job["out"]`` + ``.npy`` / ``.json``."""
    dtype = getattr(torch, job["dtype"])
    info: dict[str, Any] = {"consumer": consumer, "mode": job["mode"], "imported": False, "ran": False}
    for pkg in (consumer, "nir", "nirtorch", "torch"):
        try:
            info[f"{pkg}_version"] = version(pkg)
        except PackageNotFoundError:
            info[f"{pkg}_version"] = None
    try:
        net, kind, info["passed"] = load(consumer, job["mode"], job["file"], job["dt"], dtype)
        info["imported"] = True
        x = torch.from_numpy(np.load(job["inputs"])).to(dtype)
        T = job["timesteps"]
        if consumer in UNBATCHED and job["mode"] == "stock":
            out = torch.stack([run(net, kind, xb, T) for xb in x], dim=1)
        else:
            out = torch.cat([run(net, kind, xb, T) for xb in x.split(BATCH)], dim=1)
        np.save(job["out"] + ".npy", out.detach().cpu().numpy().astype(np.float64))
        info["ran"] = True
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party importer is a result to report
        info["error"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        info["traceback"] = traceback.format_exc()[-2000:]
    with open(job["out"] + ".json", "w") as f:
        json.dump(info, f, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("consumer")
    parser.add_argument("jobs", help="JSON list of {mode, file, inputs, out, timesteps, dt, dtype}")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with open(args.jobs) as f:
        for job in json.load(f):
            run_job(args.consumer, job)


if __name__ == "__main__":
    main()
