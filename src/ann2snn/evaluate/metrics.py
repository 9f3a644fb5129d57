"""Accuracy of an ANN and its SNN at every number of time steps, on a data loader."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ann2snn.errors import ConfigError, InputError
from ann2snn.evaluate.progress import progress_bar
from ann2snn.evaluate.report import ConversionReport
from ann2snn.limits import check_int, check_timesteps
from ann2snn.simulate.model import SpikingModel
from ann2snn.simulate.runner import check_input, simulate
from ann2snn.validation import call_checked, check_labels


def _batches(loader: Iterable[Any]) -> Iterable[tuple[Tensor, Tensor]]:
    for i, batch in enumerate(loader):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise InputError(f"evaluation batch {i} must be an (inputs, labels) pair, got {type(batch).__name__}")
        yield batch[0], batch[1]


def _check_outputs(out: Tensor, y: Tensor, what: str, batch: int) -> int:
    """The number of classes K of ``what``'s outputs ``[B, K]``; InputError if a label of ``y`` is not below K."""
    if out.dim() != 2 or out.shape[0] != y.shape[0]:
        raise InputError(
            f"{what} returned outputs of shape {tuple(out.shape)} for batch {batch} of {y.shape[0]} samples; "
            "evaluate needs class scores [B, K]"
        )
    classes = int(out.shape[-1])
    if y.numel() and int(y.max()) >= classes:
        raise InputError(
            f"batch {batch} labels contain class index {int(y.max())} but {what} has only {classes} outputs "
            f"(classes 0..{classes - 1}); evaluate on the dataset the model was trained for"
        )
    return classes


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def evaluate(
    ann: nn.Module | None,
    snn: SpikingModel,
    loader: Iterable[Any],
    timesteps: Sequence[int] = (1, 2, 4, 8),
    *,
    mode: str = "auto",
    max_batches: int | None = None,
    progress: bool = False,
) -> ConversionReport:
    """Top-1 accuracy of ``ann`` and of ``snn`` at every T in ``timesteps``, plus per-layer firing rates.

    Serial SNNs are simulated once for max(T) steps and read at every prefix t ≤ max(T) (serial neurons are
    causal, so the prefix *is* the t-step run). Parallel SNNs are run once per T (their level depends on T), in
    rate mode by default (``mode="auto"``: exact spike counts at ~1 ANN forward) or spike mode (``mode="spike"``).
    """
    if not isinstance(snn, SpikingModel):
        raise ConfigError(f"evaluate expects the SpikingModel returned by ann2snn.convert, got {type(snn).__name__}")
    ts = check_timesteps(timesteps)
    check_int("max_batches", max_batches, none_ok=True)
    if mode not in ("auto", "spike", "rate"):
        raise ConfigError(f"mode={mode!r} is not supported; choose 'auto', 'spike' or 'rate'")
    serial = snn.execution == "serial"
    if serial and mode == "rate":
        raise ConfigError("rate mode needs a parallel SNN; use mode='spike' or 'auto' for serial SNNs")
    sim_mode = "spike" if serial or mode == "spike" else "rate"
    t_max = ts[-1]
    curve_len = t_max if serial else len(ts)
    correct_snn = torch.zeros(curve_len, dtype=torch.long)
    correct_ann = 0
    total = 0
    spikes: dict[str, float] = {}
    neurons: dict[str, int] = {}
    device = _device_of(snn)
    start = time.perf_counter()
    was_training = ann.training if ann is not None else False
    if ann is not None:
        ann.eval()
    try:
        for i, (x, y) in enumerate(progress_bar(_batches(loader), "evaluate", enabled=progress)):
            if max_batches is not None and i >= max_batches:
                break
            x = check_input(x, f"batch {i} inputs").to(device)
            y = check_labels(y, x.shape[0], None, f"batch {i} labels").to(device)
            total += y.numel()
            ann_classes = None
            if ann is not None:
                with torch.no_grad():
                    logits = call_checked(ann, x.to(_device_of(ann)), "the ANN", f"batch {i} inputs")
                    ann_classes = _check_outputs(logits, y, "the ANN", i)
                    correct_ann += int((logits.argmax(-1).to(device) == y).sum())
            runs = [(t_max, None)] if serial else [(t, k) for k, t in enumerate(ts)]
            for t, k in runs:
                res = simulate(snn, x, t, mode=sim_mode)
                snn_classes = _check_outputs(res.mean_output, y, "the SNN", i)
                if ann_classes is not None and snn_classes != ann_classes:
                    raise ConfigError(
                        f"the ANN has {ann_classes} outputs but the SNN has {snn_classes}: evaluate an SNN together "
                        "with the ANN it was converted from (or pass ann=None)"
                    )
                if serial:
                    assert res.outputs is not None
                    prefix_mean = res.outputs.cumsum(0) / torch.arange(
                        1, t + 1, device=device, dtype=res.outputs.dtype
                    ).view(-1, *([1] * (res.outputs.dim() - 1)))
                    correct_snn += (prefix_mean.argmax(-1) == y.unsqueeze(0)).sum(1).cpu()
                else:
                    correct_snn[k] += int((res.mean_output.argmax(-1) == y).sum())
                if t == t_max:
                    for name, c in res.spike_counts.items():
                        spikes[name] = spikes.get(name, 0.0) + float(c.sum())
                    neurons.update(res.neuron_counts)
    finally:
        if ann is not None:
            ann.train(was_training)
    if total == 0:
        raise InputError("the evaluation loader yielded no samples")
    acc = (correct_snn.double() / total * 100).tolist()
    curve = {t + 1: a for t, a in enumerate(acc)} if serial else dict(zip(ts, acc, strict=True))
    steps = snn.presteps + t_max  # pre-simulation spikes are counted, so are their steps
    rates = {n: spikes[n] / (total * max(1, neurons[n]) * steps) for n in spikes}
    return ConversionReport(
        method=snn.config.method,
        mode=sim_mode,
        timesteps=ts,
        ann_accuracy=None if ann is None else correct_ann / total * 100,
        snn_accuracy={t: curve[t] for t in ts},
        snn_curve=curve,
        firing_rates=rates,
        spikes_per_sample={n: spikes[n] / total for n in spikes},
        neurons_per_layer=neurons,
        num_samples=total,
        seconds=time.perf_counter() - start,
        config=snn.config.to_dict(),
        presteps=snn.presteps,
    )
