"""``evaluate_robustness``: accuracy of an ANN and/or its SNN under noise and adversarial attacks, at every T.

Noise is drawn from a generator seeded by ``(seed, batch index, attack index)`` only, so the ANN and the SNN (and
two runs) see the very same corrupted images. Gradient attacks (FGSM, PGD) take their gradients from the source
ANN (``gradient="ann"``, a transfer attack on the SNN) or from the SNN's rate mode (``gradient="snn"``, parallel SNNs
only: the forward pass is the exact SNN output, the backward pass replaces each neuron's staircase by its
straight-through surrogate, i.e. BPDA). The result names the source of every gradient.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ann2snn.errors import ConfigError, InputError
from ann2snn.evaluate.noise import Attack, LogitsFn, corrupt, parse_attacks
from ann2snn.evaluate.progress import progress_bar
from ann2snn.functional import clip_relu
from ann2snn.io import atomic_write_text
from ann2snn.layers.neurons import ParallelIFNeuron
from ann2snn.layers.step_neuron import StepIFNeuron
from ann2snn.limits import check_int, check_timesteps
from ann2snn.simulate.model import SpikingModel
from ann2snn.simulate.runner import check_input, simulate
from ann2snn.validation import check_labels

GRADIENTS = ("auto", "ann", "snn")
CLEAN = Attack("gauss", 0.0)  # the identity corruption, reported as "clean"


@dataclasses.dataclass
class RobustnessResult:
    """Accuracies (%) under every corruption.

    Attributes:
        rows: one dict per (model, T, attack): ``model`` ("ann" or "snn"), ``timesteps`` (None for the ANN),
            ``attack`` ("clean", "sp:0.05", ...), ``gradient`` (source of the attack's gradients, or None),
            ``accuracy``.
        num_samples: evaluated test samples.
        seed: the noise seed.
        seconds: wall time.
        meta: free-form facts (SNN method, simulation mode, ...).
    """

    rows: list[dict[str, Any]]
    num_samples: int
    seed: int
    seconds: float
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def accuracy(self, model: str, attack: str = "clean", timesteps: int | None = None) -> float:
        for r in self.rows:
            if r["model"] == model and r["attack"] == attack and r["timesteps"] == timesteps:
                return float(r["accuracy"])
        raise KeyError(f"no result for model={model!r}, attack={attack!r}, timesteps={timesteps!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        """JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, default=str) + "\n"
        if path is not None:
            atomic_write_text(Path(path), text)
        return text

    def to_markdown(self) -> str:
        """One line per model and T, one column per corruption (accuracy %)."""
        attacks = list(dict.fromkeys(r["attack"] for r in self.rows))
        grads = {r["attack"]: r["gradient"].split(" T=")[0] for r in self.rows if r["gradient"]}
        head = [a + (f" ({grads[a]} grad)" if a in grads else "") for a in attacks]
        keys = list(dict.fromkeys((r["model"], r["timesteps"]) for r in self.rows))
        lines = ["| model | T | " + " | ".join(head) + " |", "|---|---:|" + "---:|" * len(attacks)]
        for model, t in keys:
            cells = [f"{self.accuracy(model, a, t):.2f}" for a in attacks]
            lines.append(f"| {model} | {'—' if t is None else t} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + f"\n\n{self.num_samples} samples, seed {self.seed}.\n"


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _surrogate_hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> Tensor:
    """Exact forward value, straight-through backward (ReLU for StepReLU, clip for QCFS neurons)."""
    current = inputs[0]
    if isinstance(module, StepIFNeuron):
        sur = torch.relu(current)
    else:
        assert isinstance(module, ParallelIFNeuron)
        theta, bias = module.threshold, module.bias
        assert isinstance(theta, Tensor) and isinstance(bias, Tensor)
        sur = clip_relu(current + bias, theta) * (module.amplitude / theta)
    return sur + (output - sur).detach()


@contextlib.contextmanager
def rate_gradients(snn: SpikingModel) -> Iterator[LogitsFn]:
    """A differentiable view of a parallel SNN's rate mode: yields ``f(x, T) -> mean logits`` (BPDA)."""
    if snn.execution != "parallel":
        raise ConfigError(
            f"gradients from the SNN need its rate mode, which only parallel SNNs have (this one is "
            f"{snn.config.method!r}); use gradient='ann' to attack with the source ANN's gradients"
        )
    handles = [m.register_forward_hook(_surrogate_hook) for m in snn.neurons().values()]
    try:
        yield lambda x, T: snn.forward_rate(x, T)  # type: ignore[misc]
    finally:
        for h in handles:
            h.remove()


def _call_at(fn: Any, t: int, x: Tensor) -> Tensor:
    return fn(x, t)


def _snn_correct(snn: SpikingModel, x: Tensor, y: Tensor, ts: list[int], sim_mode: str) -> list[int]:
    """Correct predictions at every T; serial SNNs run once for max(T) and are read at each prefix."""
    if snn.execution == "serial":
        res = simulate(snn, x, ts[-1], mode="spike", record=False)
        assert res.outputs is not None
        csum = res.outputs.cumsum(0)
        return [int((csum[t - 1].argmax(-1) == y).sum()) for t in ts]
    return [int((simulate(snn, x, t, mode=sim_mode, record=False).mean_output.argmax(-1) == y).sum()) for t in ts]


def _num_classes(ann: nn.Module | None, snn: SpikingModel | None, x: Tensor) -> int:
    """Outputs K of the evaluated models on one sample of ``x``; ConfigError if the ANN and the SNN differ."""
    counts = []
    if ann is not None:
        with torch.no_grad():
            counts.append(int(ann(x[:1].to(_device_of(ann))).shape[-1]))
    if snn is not None:
        counts.append(snn.sample_sizes(x[:1].to(_device_of(snn)))[2])
    if len(set(counts)) > 1:
        raise ConfigError(
            f"the ANN has {counts[0]} outputs but the SNN has {counts[1]}: pass the ANN the SNN was converted from"
        )
    return counts[0]


def _batches(loader: Iterable[Any]) -> Iterator[tuple[Tensor, Tensor]]:
    for i, batch in enumerate(loader):
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise InputError(f"batch {i} must be an (inputs, labels) pair, got {type(batch).__name__}")
        yield batch[0], batch[1]


def noise_generator(seed: int, batch: int, attack: int) -> torch.Generator:
    """The generator of one (batch, attack): independent of which models are evaluated."""
    return torch.Generator().manual_seed((int(seed) * 1_000_003 + batch * 1_009 + attack) % 2**63)


def evaluate_robustness(
    model_or_snn: nn.Module,
    loader: Iterable[Any],
    attacks: str | Sequence[str | Attack] = ("sp:0.05",),
    timesteps: Sequence[int] = (1, 2, 4, 8),
    *,
    ann: nn.Module | None = None,
    seed: int = 0,
    gradient: str = "auto",
    mode: str = "auto",
    max_batches: int | None = None,
    progress: bool = True,
) -> RobustnessResult:
    """Clean and corrupted accuracy of an ANN, or of an SNN (and its source ``ann``) at every T.

    Args:
        model_or_snn: An ANN (evaluated alone) or a :class:`~ann2snn.simulate.SpikingModel`.
        loader: Batches ``(x, y)`` of images in [0, 1].
        attacks: ``"sp:0.05,gauss:0.1,fgsm:0.02,pgd:0.02"`` or a list of such items / :class:`Attack`.
        timesteps: T values for the SNN.
        ann: The source ANN of an SNN: evaluated alongside it, and the default source of attack gradients.
        seed: Seed of every random draw (noise, PGD start), in 0..2**63-1.
        gradient: ``"ann"``, ``"snn"`` (parallel SNNs, rate mode with straight-through gradients) or ``"auto"``
            (the ANN when there is one, else the SNN). ANN rows are always attacked with the ANN's own gradients.
        mode: SNN simulation: ``"auto"`` (rate for parallel SNNs, exact and cheap), ``"spike"`` or ``"rate"``.
        max_batches: Stop after this many batches.
        progress: Show a progress bar (interactive terminals only).

    Returns:
        A :class:`RobustnessResult` with ``to_json()`` / ``to_markdown()``.
    """
    attack_list = [CLEAN, *parse_attacks(attacks)]
    snn = model_or_snn if isinstance(model_or_snn, SpikingModel) else None
    ann = ann if snn is not None else model_or_snn
    if ann is not None and not isinstance(ann, nn.Module):
        raise ConfigError(f"ann must be a torch.nn.Module, got {type(ann).__name__}")
    if gradient not in GRADIENTS:
        raise ConfigError(f"gradient={gradient!r} is not supported; choose one of {', '.join(GRADIENTS)}")
    if mode not in ("auto", "spike", "rate"):
        raise ConfigError(f"mode={mode!r} is not supported; choose 'auto', 'spike' or 'rate'")
    ts = check_timesteps(timesteps) if snn is not None else []
    check_int("seed", seed)
    check_int("max_batches", max_batches, none_ok=True)
    needs_grad = any(a.needs_gradient for a in attack_list)
    source = gradient if gradient != "auto" else ("ann" if ann is not None else "snn")
    if needs_grad and source == "ann" and ann is None:
        raise ConfigError("gradient='ann' needs the source ANN: pass ann=")
    if needs_grad and source == "snn" and snn is None:
        raise ConfigError("gradient='snn' needs an SNN; this model is an ANN")
    if snn is not None and snn.execution == "serial" and mode == "rate":
        raise ConfigError("rate mode needs a parallel SNN; use mode='spike' or 'auto' for serial SNNs")
    sim_mode = "spike" if snn is not None and (snn.execution == "serial" or mode == "spike") else "rate"

    correct: dict[tuple[str, int | None, str], int] = {}
    grad_name: dict[tuple[str, int | None, str], str | None] = {}
    total = 0
    start = time.perf_counter()
    was_training = [(m, m.training) for m in (ann, snn) if m is not None]
    for m, _ in was_training:
        m.eval()
    ctx = rate_gradients(snn) if (needs_grad and source == "snn" and snn is not None) else contextlib.nullcontext()
    classes: int | None = None
    try:
        with ctx as snn_grad:
            for i, (x, y) in enumerate(progress_bar(_batches(loader), "robustness", enabled=progress)):
                if max_batches is not None and i >= max_batches:
                    break
                x = check_input(x, f"batch {i} inputs")
                if classes is None:  # the model's outputs K, once: labels must be below it
                    classes = _num_classes(ann, snn, x)
                y = check_labels(y, x.shape[0], classes, f"batch {i} labels")
                total += y.numel()
                for j, attack in enumerate(attack_list):
                    name = "clean" if attack is CLEAN else attack.name

                    def corrupted(
                        fn: LogitsFn | None, xb: Tensor = x, yb: Tensor = y, a: Attack = attack, b: int = i, k: int = j
                    ) -> Tensor:
                        return corrupt(a, xb, yb, fn, generator=noise_generator(seed, b, k))

                    if ann is not None:
                        dev = _device_of(ann)
                        xa = corrupted(ann, x.to(dev), y.to(dev)) if attack.needs_gradient else corrupted(None)
                        with torch.no_grad():
                            hit = int((ann(xa.to(dev)).argmax(-1) == y.to(dev)).sum())
                        key: tuple[str, int | None, str] = ("ann", None, name)
                        correct[key] = correct.get(key, 0) + hit
                        grad_name[key] = "ann" if attack.needs_gradient else None
                    if snn is None:
                        continue
                    dev = _device_of(snn)
                    xd, yd = x.to(dev), y.to(dev)
                    if attack.needs_gradient and source == "snn":
                        assert snn_grad is not None
                        hits = []
                        for t in ts:
                            xa = corrupted(functools.partial(_call_at, snn_grad, t), xd, yd)
                            hits.append(_snn_correct(snn, xa, yd, [t], sim_mode)[0])
                        grads: list[str | None] = [f"snn rate T={t}" for t in ts]
                    else:
                        if attack.needs_gradient:
                            adev = _device_of(ann)  # type: ignore[arg-type]
                            xa = corrupted(ann, x.to(adev), y.to(adev)).to(dev)
                        else:
                            xa = corrupted(None, xd, yd)
                        hits = _snn_correct(snn, xa, yd, ts, sim_mode)
                        grads = ["ann" if attack.needs_gradient else None] * len(ts)
                    for t, hit, g in zip(ts, hits, grads, strict=True):
                        skey: tuple[str, int | None, str] = ("snn", t, name)
                        correct[skey] = correct.get(skey, 0) + hit
                        grad_name[skey] = g
    finally:
        for m, training in was_training:
            m.train(training)
    if total == 0:
        raise InputError("the evaluation loader yielded no samples")
    rows = [
        {"model": k[0], "timesteps": k[1], "attack": k[2], "gradient": grad_name[k], "accuracy": 100.0 * c / total}
        for k, c in correct.items()
    ]
    rows.sort(key=lambda r: (r["model"] != "ann", r["timesteps"] or 0))
    meta: dict[str, Any] = {"attacks": [dataclasses.asdict(a) for a in attack_list[1:]], "gradient": source}
    if snn is not None:
        meta.update(method=snn.config.method, execution=snn.execution, mode=sim_mode, config=snn.config.to_dict())
    return RobustnessResult(rows, total, seed, time.perf_counter() - start, meta)
