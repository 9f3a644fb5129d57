"""``choose_leak``: pick the leak of a converted SNN on held-out noisy data.

The StepReLU paper adds a leak to the converted SNN for robustness but does not say how it chose λ; this helper
makes the choice reproducible: every candidate is scored on held-out data (a validation split, never the test
set), optionally corrupted on the fly, and the best one wins (ties go to the weakest leak). An optional clean-data
budget rejects leaks that cost more than ``max_clean_drop`` points of clean accuracy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from torch import nn

from ann2snn.config import _finite
from ann2snn.errors import ConfigError, InputError
from ann2snn.evaluate.noise import Attack, corrupt, parse_attacks
from ann2snn.evaluate.robustness import noise_generator
from ann2snn.limits import check_int
from ann2snn.simulate.model import SpikingModel
from ann2snn.simulate.runner import simulate
from ann2snn.transforms.steprelu import set_leak

LEAK_MODES = ("exponential", "linear")


@dataclasses.dataclass
class LeakChoice:
    """The chosen leak and the scores behind it.

    Attributes:
        leak: the chosen λ (``leak_mode="exponential"``) or δ (``"linear"``).
        leak_mode: ``"exponential"`` or ``"linear"``.
        timesteps: T at which candidates were scored.
        noisy_accuracy: accuracy (%) on the held-out noisy data per candidate.
        clean_accuracy: accuracy (%) on held-out clean data per candidate (when ``clean_loader`` was given).
        ann_noisy_accuracy: the ANN's accuracy on the same noisy data (reference), if an ANN was given.
        snn: the SNN with the chosen leak.
    """

    leak: float
    leak_mode: str
    timesteps: int
    noisy_accuracy: dict[float, float]
    clean_accuracy: dict[float, float] | None
    ann_noisy_accuracy: float | None
    snn: SpikingModel

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("snn")
        return d


def _accuracy(model: nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], T: int | None) -> float:
    correct = total = 0
    for x, y in batches:
        if isinstance(model, SpikingModel):
            mode = "rate" if model.execution == "parallel" else "spike"
            pred = simulate(model, x, T, mode=mode, record=False).mean_output.argmax(-1)
        else:
            with torch.no_grad():
                pred = model(x).argmax(-1)
        correct += int((pred == y).sum())
        total += y.numel()
    if total == 0:
        raise InputError("choose_leak: the held-out loader yielded no samples")
    return 100.0 * correct / total


def _materialize(loader: Iterable[Any], noise: Attack | None, seed: int, max_batches: int | None) -> list[Any]:
    out = []
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = batch[0], batch[1]
        if noise is not None:
            x = corrupt(noise, x, generator=noise_generator(seed, i, 1))
        out.append((x, y))
    return out


def choose_leak(
    ann: nn.Module | None,
    snn_factory_or_snn: SpikingModel | Callable[[float], SpikingModel],
    noisy_loader: Iterable[Any],
    candidates: Sequence[float] = (1.0, 0.95, 0.9, 0.85, 0.8, 0.7),
    *,
    timesteps: int | None = None,
    leak_mode: str = "exponential",
    noise: str | Attack | None = None,
    clean_loader: Iterable[Any] | None = None,
    max_clean_drop: float | None = None,
    seed: int = 0,
    max_batches: int | None = None,
) -> LeakChoice:
    """Score every candidate leak on held-out noisy data and return the best (ties: the weakest leak).

    Args:
        ann: The source ANN (scored on the same data as a reference), or None.
        snn_factory_or_snn: A converted SNN (the leak is applied to every neuron with :func:`set_leak`) or a
            function ``leak -> SpikingModel``.
        noisy_loader: Held-out batches ``(x, y)``, already noisy, or clean with ``noise`` given.
        candidates: λ values in (0, 1] (``leak_mode="exponential"``) or δ values >= 0 (``"linear"``).
        timesteps: T to score at (default: the SNN's).
        leak_mode: Which leak the candidates are.
        noise: Corrupt ``noisy_loader``'s batches with this attack (e.g. ``"sp:0.05"``), seeded by ``seed``.
        clean_loader: Held-out clean batches, scored when ``max_clean_drop`` is set or for the record.
        max_clean_drop: Reject candidates whose clean accuracy is more than this many points below the
            leak-free candidate's (needs ``clean_loader``).
        seed: Noise seed.
        max_batches: Use at most this many batches of each loader.
    """
    if leak_mode not in LEAK_MODES:
        raise ConfigError(f"leak_mode={leak_mode!r} is not supported; choose 'exponential' or 'linear'")
    cands = [float(c) for c in candidates]
    if not cands:
        raise ConfigError("choose_leak needs at least one candidate leak")
    for c in cands:
        if leak_mode == "exponential":
            _finite("candidate leak", c, 0.0, 1.0, low_open=True)
        else:
            _finite("candidate leak_delta", c, 0.0)
    if max_clean_drop is not None and clean_loader is None:
        raise ConfigError("max_clean_drop needs clean_loader= (held-out clean batches)")
    check_int("seed", seed)
    check_int("max_batches", max_batches, none_ok=True)
    check_int("timesteps", timesteps, none_ok=True)
    neutral = 1.0 if leak_mode == "exponential" else 0.0

    def build(c: float) -> SpikingModel:
        if isinstance(snn_factory_or_snn, SpikingModel):
            return set_leak(snn_factory_or_snn, c if leak_mode == "exponential" else (1.0, c))
        if not callable(snn_factory_or_snn):
            raise ConfigError(f"choose_leak needs a SpikingModel or a factory, got {type(snn_factory_or_snn).__name__}")
        return snn_factory_or_snn(c)

    attack = parse_attacks(noise)[0] if noise is not None else None
    noisy = _materialize(noisy_loader, attack, seed, max_batches)
    clean = _materialize(clean_loader, None, seed, max_batches) if clean_loader is not None else None
    models = {c: build(c) for c in cands}
    T = timesteps or next(iter(models.values())).timesteps
    noisy_acc = {c: _accuracy(m, noisy, T) for c, m in models.items()}
    clean_acc = {c: _accuracy(m, clean, T) for c, m in models.items()} if clean is not None else None
    allowed = cands
    if max_clean_drop is not None and clean_acc is not None:
        base = clean_acc[neutral] if neutral in clean_acc else _accuracy(build(neutral), clean, T)  # type: ignore[arg-type]
        allowed = [c for c in cands if clean_acc[c] >= base - max_clean_drop] or [neutral]
        if neutral not in models:
            models[neutral] = build(neutral)
            noisy_acc.setdefault(neutral, _accuracy(models[neutral], noisy, T))
    best = max(allowed, key=lambda c: (noisy_acc[c], -abs(c - neutral)))
    ann_acc = _accuracy(ann, noisy, None) if ann is not None else None
    return LeakChoice(best, leak_mode, T, noisy_acc, clean_acc, ann_acc, models[best])
