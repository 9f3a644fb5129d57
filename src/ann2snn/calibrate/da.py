"""Distribution-aware (DA) error calibration of parallel SNNs (Hao et al., ICML 2025; methods.md §3).

Every parallel neuron gets a per-channel pre-activation bias ψ_DA and amplitude correction φ_DA so that, on the
calibration data, its output matches the reference ANN (QCFS at its own L, or ``ClipReLU(θ)`` for a ReLU model).
The calibrated branch is the SNN in rate mode, which yields the exact spike counts of spike mode, so calibrating
in rate mode calibrates the SNN. Conv and linear sites are calibrated alike (channel = dim 1). No gradients.

Estimators (``estimator=``):

- ``"ema"``: the paper's rule, one pass, layer by layer at every batch: ``ψ ← αψ + (1−α)·mean(z_ref − z_cal)``,
  then ``φ ← αφ + (1−α)·mean(a_ref − a_cal)`` with ``a_cal`` the output at amplitude θ (before φ).
- ``"mean"``: the same pass with running means instead of the EMA (no start-up bias from 0).
- ``"match"``: site by site, each over all batches: φ makes the channel's output mean on the calibration set equal
  the reference's, and ψ is the shift whose mean-matched output has the least squared error to the paired
  reference activations (:func:`~ann2snn.calibrate.estimators.match_output_mse`); by default the per-channel
  threshold is searched jointly with ψ (``objective="mse_threshold"``: the SNN's level spacing θ/T can then
  follow the data instead of the trained or percentile θ). One pass per site, each stopping at its site (about
  S/2 forward passes of both branches for S sites).

With ``refit`` (default: :func:`auto_refit`) every Conv2d/Linear layer fed by spikes is refit in closed form
between the sites (:mod:`ann2snn.calibrate.refit`), so each site is calibrated on the refit layer in front of it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ann2snn.calibrate.estimators import ema_update, match_output_mean, match_output_mse, mean_update
from ann2snn.calibrate.observers import check_batches_fit, iter_input_batches
from ann2snn.calibrate.reference import Lockstep, SiteFn, channel_mean, channel_rows, channel_shape, reference_graph
from ann2snn.calibrate.refit import GramPair, apply_refit, refit_support
from ann2snn.config import ESTIMATORS
from ann2snn.errors import CalibrationError, ConfigError
from ann2snn.evaluate.progress import progress_bar
from ann2snn.layers.neurons import RATE_MODE, ParallelIFNeuron
from ann2snn.simulate.model import SpikingModel

MATCH_SAMPLES = 1 << 15  # pre-activations kept per channel and site for output-mean matching
MATCH_OBJECTIVES = ("mse", "mean", "mse_threshold")
THRESHOLD_SCALES = (1.0, 0.8, 0.64, 0.5, 0.4, 0.32, 0.25, 0.2)  # threshold candidates of "mse_threshold"


def calibrate_da(
    snn: SpikingModel,
    ann: nn.Module,
    data: Iterable[Any] | None,
    *,
    estimator: str = "match",
    ema_alpha: float = 0.99,
    max_batches: int | None = 16,
    progress: bool = True,
    objective: str = "mse_threshold",
    refit: bool | None = None,
) -> SpikingModel:
    """A copy of the parallel ``snn`` with DA-calibrated ψ_DA / φ_DA; ``snn`` and ``ann`` are not modified.

    Args:
        snn: a parallel SNN from :func:`ann2snn.convert`.
        ann: the ANN it was converted from (the reference branch).
        data: calibration batches (tensors or ``(x, y)`` pairs); at most ``max_batches`` are used.
        estimator: ``"match"``, ``"ema"`` or ``"mean"`` (see the module docstring).
        ema_alpha: α of the EMA.
        max_batches: cap on the batches read from ``data``.
        progress: show a progress bar (only on a terminal).
        objective: how ``"match"`` chooses among the mean-matching corrections: ``"mse_threshold"`` (the default:
            the per-channel threshold θ' = s·θ, s in :data:`THRESHOLD_SCALES`, and ψ of least squared error to the
            reference activations), ``"mse"`` (ψ only, θ kept) or ``"mean"`` (ψ where the output mean at amplitude
            θ crosses the reference mean). The last two are ablations.
        refit: also refit the weights of every Conv2d/Linear layer fed by spikes, in graph order, by ridge
            regression onto the ANN's pre-activations (:mod:`ann2snn.calibrate.refit`); ``"match"`` only.
            ``None`` (default): :func:`auto_refit`, where it pays (measured in docs/calibration.md).

    Returns:
        The calibrated SNN; its ``log`` says what was calibrated, with which estimator, in how long.

    Raises:
        CalibrationError: no batches, or ``ann`` is not the model ``snn`` came from.
    """
    result = copy.deepcopy(snn)
    calibrate_da_(
        result,
        ann,
        data,
        estimator=estimator,
        ema_alpha=ema_alpha,
        max_batches=max_batches,
        progress=progress,
        objective=objective,
        refit=refit,
    )
    return result


def calibrate_da_(
    snn: SpikingModel,
    ann: nn.Module,
    data: Iterable[Any] | None,
    *,
    estimator: str = "match",
    ema_alpha: float = 0.99,
    max_batches: int | None = 16,
    progress: bool = True,
    objective: str = "mse_threshold",
    refit: bool | None = None,
) -> SpikingModel:
    """In-place form of :func:`calibrate_da` (for an SNN the caller owns, e.g. inside ``convert``)."""
    if not isinstance(snn, SpikingModel) or snn.execution != "parallel" or snn.config.method != "parallel":
        raise ConfigError("DA calibration needs a parallel SNN: convert with ConversionConfig(method='parallel')")
    if estimator not in ESTIMATORS:
        raise ConfigError(f"estimator={estimator!r} is not supported; choose one of {', '.join(ESTIMATORS)}")
    if objective not in MATCH_OBJECTIVES:
        raise ConfigError(f"objective={objective!r} is not supported; choose one of {', '.join(MATCH_OBJECTIVES)}")
    if refit is None:
        refit = auto_refit(snn, estimator)
    if refit and estimator != "match":
        raise ConfigError(f"weight refit runs with estimator='match' (layer by layer), not {estimator!r}")
    neurons = {n: m for n, m in snn.neurons().items() if isinstance(m, ParallelIFNeuron)}
    sites = [s.name for s in snn.sites if s.name in neurons]
    reference = reference_graph(ann, snn)
    param = next(snn.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    batches = [x.to(device=device, dtype=dtype) for x in iter_input_batches(data, max_batches)]
    check_batches_fit(reference, batches)
    T = snn.timesteps
    snn.reset()
    snn._set_parallel(RATE_MODE, T)
    for m in neurons.values():  # start uncalibrated
        theta = _tensor(m.threshold)
        m.bias = torch.zeros((), dtype=theta.dtype, device=theta.device)
        m.amplitude_correction = torch.zeros((), dtype=theta.dtype, device=theta.device)
    lockstep = Lockstep(reference, snn.net, sites)
    start = time.perf_counter()
    refit_log: list[str] = []
    if estimator == "match":
        stages = _stages(snn, sites, refit)
        _match(lockstep, reference, neurons, stages, batches, T, progress, objective, refit_log)
    else:
        _one_pass(lockstep, reference, neurons, batches, estimator, ema_alpha, progress)
    seconds = time.perf_counter() - start
    snn.reset()
    snn.log.append(
        f"DA calibration ({estimator}{f', alpha={ema_alpha:g}' if estimator == 'ema' else ''}"
        f"{f', objective={objective}' if estimator == 'match' else ''}{', weight refit' if refit else ''}) of "
        f"{len(sites)} site(s) at T={T} on {len(batches)} batch(es) in {seconds:.2f} s; per-channel ψ_DA and φ_DA"
    )
    if refit:
        snn.log.append("weight refit: " + ("; ".join(refit_log) or "no Conv2d/Linear layer is fed by spikes"))
    snn.log.append(_analog_note(snn))
    snn.calibration_seconds = seconds  # type: ignore[assignment]
    return snn


def auto_refit(snn: SpikingModel, estimator: str) -> bool:
    """The default of weight refit: with ``"match"``, at T = 1 or when a site is a plain ReLU (training-free).

    Measured on four calibration sets (docs/calibration.md): at T = 1 the refit cut the gap of every model; for a
    plain-ReLU model it helped at every T (most at T = 2); for a QCFS model at T ≥ 2 it changed nothing on average
    and costs 3–5× the calibration time.
    """
    return estimator == "match" and (snn.timesteps == 1 or any(s.source in ("relu", "clamp") for s in snn.sites))


def _analog_note(snn: SpikingModel) -> str:
    """What stays analog in a parallel SNN: the layers fed by the input, and the readout."""
    nodes = list(snn.net.graph.nodes)
    first = sorted({u.name for n in nodes if n.op == "placeholder" for u in n.users})
    out = [str(a) for n in nodes if n.op == "output" for a in n.args]
    return (
        f"analog: {', '.join(first)} take the analog input (direct encoding, the same current every step); "
        f"the readout {', '.join(out)} is the time mean; every other layer acts on spikes"
    )


def _one_pass(
    lockstep: Lockstep,
    reference: nn.Module,
    neurons: dict[str, ParallelIFNeuron],
    batches: list[Tensor],
    estimator: str,
    alpha: float,
    progress: bool,
) -> None:
    """EMA / running-mean estimators: one pass over the batches, every site updated in graph order."""
    count = 0

    def site_fn(name: str, z_ref: Tensor, z_cal: Tensor) -> tuple[Tensor, Tensor]:
        neuron = neurons[name]
        a_ref = reference.get_submodule(name)(z_ref)
        shape = channel_shape(z_cal)
        dtype = _tensor(neuron.threshold).dtype
        gap_z = channel_mean(z_ref - z_cal).to(dtype)
        bias = _tensor(neuron.bias)
        psi = bias.reshape(-1) if bias.dim() else torch.zeros_like(gap_z)
        psi = ema_update(psi, gap_z, alpha) if estimator == "ema" else mean_update(psi, gap_z, count)
        neuron.set_bias(psi.reshape(shape))  # per batch: no device sync to test it for zero
        phi_old = _tensor(neuron.amplitude_correction)
        neuron.amplitude_correction = torch.zeros_like(phi_old)
        gap_a = channel_mean(a_ref - neuron(z_cal)).to(dtype)  # output gap at amplitude θ
        phi = phi_old.reshape(-1) if phi_old.dim() else torch.zeros_like(gap_a)
        phi = ema_update(phi, gap_a, alpha) if estimator == "ema" else mean_update(phi, gap_a, count)
        neuron.amplitude_correction = phi.reshape(shape)
        return a_ref, neuron(z_cal)

    for x in progress_bar(batches, f"DA calibration ({estimator})", enabled=progress, total=len(batches)):
        count += 1
        lockstep.run(x, site_fn)


class _SiteStats:
    """Statistics of one site over the calibration batches: reference output mean, gap, paired samples."""

    def __init__(self, per_batch: int, seed: int = 0) -> None:
        self.ref_sum: Tensor | float = 0.0
        self.gap_sum: Tensor | float = 0.0
        self.count = 0
        self.z: list[Tensor] = []
        self.a: list[Tensor] = []
        self.shape: tuple[int, ...] = ()
        self.per_batch = per_batch
        self.seed = seed
        self.gen: torch.Generator | None = None  # on the data's device, made at the first draw

    def _generator(self, device: torch.device) -> torch.Generator:
        """The seeded generator of the random sample positions, on ``device`` (indices never cross devices)."""
        if self.gen is None:
            self.gen = torch.Generator(device=device).manual_seed(self.seed)
        return self.gen

    def add(self, z_ref: Tensor, z_cal: Tensor, a_ref: Tensor) -> None:
        n = z_cal.numel() // z_cal.shape[1]
        self.ref_sum = self.ref_sum + channel_mean(a_ref) * n
        self.gap_sum = self.gap_sum + channel_mean(z_ref - z_cal) * n
        self.count += n
        rows, ref_rows = channel_rows(z_cal.detach()), channel_rows(a_ref.detach())
        if rows.shape[1] > self.per_batch:  # the same random positions for both
            gen = self._generator(rows.device)
            keep = torch.randperm(rows.shape[1], generator=gen, device=rows.device)[: self.per_batch]
            rows, ref_rows = rows[:, keep], ref_rows[:, keep]
        self.z.append(rows)
        self.a.append(ref_rows)
        self.shape = channel_shape(z_cal)


def _stages(snn: SpikingModel, sites: list[str], refit: bool) -> list[tuple[str, str]]:
    """``("site", name)`` for every calibrated site and, with ``refit``, ``("layer", name)`` for every Conv2d /
    Linear module, in graph order (a module called more than once is not refit)."""
    calls = [str(n.target) for n in snn.net.graph.nodes if n.op == "call_module"]
    stages: list[tuple[str, str]] = []
    for name in dict.fromkeys(calls):
        if name in sites:
            stages.append(("site", name))
        elif refit and isinstance(snn.net.get_submodule(name), (nn.Conv2d, nn.Linear)) and calls.count(name) == 1:
            stages.append(("layer", name))
    return stages


def _match(
    lockstep: Lockstep,
    reference: nn.Module,
    neurons: dict[str, ParallelIFNeuron],
    stages: list[tuple[str, str]],
    batches: list[Tensor],
    T: int,
    progress: bool,
    objective: str,
    refit_log: list[str],
) -> None:
    """Exact output-mean matching site by site, and weight refits, in graph order (earlier stages already done)."""
    per_batch = max(1, MATCH_SAMPLES // len(batches))

    def pass_through(name: str, z_ref: Tensor, z_cal: Tensor) -> tuple[Tensor, Tensor]:
        return reference.get_submodule(name)(z_ref), neurons[name](z_cal)

    for kind, target in progress_bar(stages, "DA calibration (match)", enabled=progress, total=len(stages)):
        if kind == "layer":
            _refit_layer(lockstep, target, batches, pass_through, refit_log)
            continue
        stats = _SiteStats(per_batch)

        def site_fn(name: str, z_ref: Tensor, z_cal: Tensor, target: str = target, stats: _SiteStats = stats) -> Any:
            a_ref, a_cal = pass_through(name, z_ref, z_cal)
            if name == target:
                stats.add(z_ref, z_cal, a_ref)
            return a_ref, a_cal

        for x in batches:
            lockstep.run(x, site_fn, stop_at=target)
        if not stats.z:
            raise CalibrationError(f"DA calibration: site '{target}' was never reached by the calibration data")
        _set_site(neurons[target], stats, T, objective)


def _set_site(neuron: ParallelIFNeuron, stats: _SiteStats, T: int, objective: str) -> None:
    """θ (objective ``mse_threshold``), ψ_DA and φ_DA of one site from its statistics."""
    theta = _tensor(neuron.threshold)
    samples = torch.cat(stats.z, dim=1)
    th = torch.broadcast_to(theta.reshape(-1), (samples.shape[0],))
    ref_mean = _tensor(stats.ref_sum) / stats.count
    if objective == "mean":
        psi, phi = match_output_mean(samples, ref_mean, th, T, prior=_tensor(stats.gap_sum) / stats.count)
    else:
        scales = THRESHOLD_SCALES if objective == "mse_threshold" else (1.0,)
        new_th, psi, phi = match_output_mse(samples, torch.cat(stats.a, dim=1), ref_mean, th, T, scales=scales)
        if objective == "mse_threshold":
            neuron.threshold = new_th.reshape(stats.shape).to(theta.dtype)
    neuron.bias = psi.reshape(stats.shape).to(theta.dtype)
    neuron.amplitude_correction = phi.reshape(stats.shape).to(theta.dtype)


def _refit_layer(lockstep: Lockstep, name: str, batches: list[Tensor], pass_through: SiteFn, log: list[str]) -> None:
    """Refit one Conv2d/Linear layer of the SNN on its inputs in both branches (refit.py); log the outcome."""
    module = lockstep.cal.get_submodule(name)
    why_not = refit_support(module)
    if why_not is not None:
        log.append(f"{name} kept ({why_not})")
        return
    assert isinstance(module, (nn.Conv2d, nn.Linear))
    grams = GramPair(module)
    for x in batches:
        lockstep.run(x, pass_through, tap=(name, grams.add))
    if not grams.differs:
        return  # fed by the analog input (or by nothing spiking): the SNN already computes the ANN's layer
    new, lam = grams.solve()
    if new is None:
        log.append(f"{name} kept (no λ lowers the held-out error)")
        return
    apply_refit(module, new)
    log.append(f"{name} refit (λ={lam:g})")


def _tensor(value: object) -> Tensor:
    """A module buffer (typed ``Tensor | Module`` by nn.Module) or accumulated statistic, as a Tensor."""
    if not isinstance(value, Tensor):
        raise CalibrationError(f"DA calibration: expected a tensor, got {type(value).__name__}")
    return value
