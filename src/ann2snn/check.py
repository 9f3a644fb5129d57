"""``check``: one up-front verdict on a model, before any training: what prepare + convert will do or refuse.

The model is traced once (naming the submodule when torch.fx fails), every node is classified with the op-support
table (:mod:`ann2snn.transforms.analysis`), and a model that converts is prepared and converted on a copy so the
verdict carries convert's own notes (folded and unfolded BatchNorms, max-pool exactness). Given an example input,
the trial SNN is also run in spike and rate mode at T = L in float64 and compared with the prepared ANN.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import dataclasses
import io

import torch
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from ann2snn.config import ConversionConfig, QuantConfig
from ann2snn.errors import Ann2SnnError, ConfigError, UnsupportedModelError
from ann2snn.transforms.analysis import Analysis, Finding, analyze, group_lines
from ann2snn.transforms.trace import trace, untraceable_submodule

MAX_LINES = 15


@dataclasses.dataclass
class CheckReport:
    """The verdict of :func:`check`: ``converts``, and at most ~15 lines saying what happens to every node.

    Attributes:
        model: The model's class name.
        converts: Whether prepare + convert accept the model.
        lines: The verdict, grouped by kind, with counts and a few node names each.
        analysis: The per-node classification (sites, supported ops, refusals).
    """

    model: str
    converts: bool
    lines: list[str]
    analysis: Analysis

    def __str__(self) -> str:
        return "\n".join(self.lines)


def _trace_all(model: nn.Module) -> tuple[fx.GraphModule, dict[str, str]]:
    """Trace ``model``; each submodule class torch.fx cannot trace becomes an opaque leaf, with the reason why."""
    leaves: list[type[nn.Module]] = []
    failures: dict[str, str] = {}
    for _ in range(8):
        try:
            return trace(model, tuple(leaves)), failures
        except UnsupportedModelError as exc:
            found = untraceable_submodule(model)
            if found is None or type(found[1]) in leaves:
                raise exc from None
            _, sub, sub_exc = found
            leaves.append(type(sub))
            cause = " ".join(f"{type(sub_exc).__name__}: {sub_exc}".split())[:120]
            failures[type(sub).__name__] = f"torch.fx cannot trace it ({cause}); " + str(exc).rsplit("; ", 1)[-1]
    raise UnsupportedModelError(f"check: torch.fx could not trace {type(model).__name__} (too many failing blocks)")


def _counts(findings: list[Finding], limit: int = 8) -> str:
    counts = collections.Counter(f.kind for f in findings)
    text = ", ".join(f"{n}× {k}" for k, n in counts.most_common(limit))
    return text + (f", ... ({len(counts) - limit} more kinds)" if len(counts) > limit else "")


def check(
    model: nn.Module,
    example_input: Tensor | None = None,
    *,
    quant: QuantConfig | None = None,
) -> CheckReport:
    """Report, before any training, everything :func:`prepare` + :func:`convert` would do to ``model`` or refuse.

    Args:
        model: Any ``nn.Module`` (plain ReLU, already prepared, or not convertible); it is not modified.
        example_input: An input batch ``[B, ...]`` (optional). With it, shapes sharpen the checks (views, max-pool
            windows), and the trial SNN is run at T = L in float64, spike and rate mode, against the ANN.
        quant: The activation of the trial ``prepare`` (default ``QuantConfig(levels=4)``).

    Returns:
        A :class:`CheckReport`; ``str(report)`` is the verdict in at most ~15 lines.

    Raises:
        UnsupportedModelError: ``model`` is not an ``nn.Module``.
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"check expects a torch.nn.Module, got {type(model).__name__}")
    name = type(model).__name__
    gm, failures = _trace_all(copy.deepcopy(model).eval())
    problems: list[str] = []
    if example_input is not None:
        try:
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints tracebacks
                ShapeProp(gm).propagate(example_input)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's model on the input is reported
            cause = exc.__cause__ or exc
            text = " ".join(str(cause).split())[:160]
            problems.append(f"the model fails on the example input: {type(cause).__name__}: {text}")
    analysis = analyze(gm)
    analysis.refused = [
        dataclasses.replace(f, reason=failures[f.kind]) if f.kind in failures else f for f in analysis.refused
    ]
    converts = analysis.ok and bool(analysis.sites) and not problems
    lines = [
        f"{name}: " + ("converts" if converts else "does NOT convert")
        + f" ({len(analysis.sites)} activation site(s), {len(analysis.supported)} op(s) run on spikes, "
        f"{len(analysis.refused)} refused)"
    ]  # fmt: skip
    if analysis.sites:
        lines.append("activation sites: " + _counts(analysis.sites))
    if analysis.supported:
        lines.append("ops on spikes: " + _counts(analysis.supported, 6))
    lines += problems
    if not analysis.sites and analysis.ok:
        lines.append("no activation site (ReLU, clamp(x, 0, b), QCFS, ClipReLU, StepReLU): nothing becomes a neuron")
    lines += ["refused: " + line for line in group_lines(analysis.refused, with_reason=True)]
    if converts:
        lines += _trial(model, example_input, quant or QuantConfig(levels=4))
    return CheckReport(name, converts, lines[:MAX_LINES], analysis)


def _trial(model: nn.Module, x: Tensor | None, quant: QuantConfig) -> list[str]:
    """Prepare + convert a copy; convert's notes, grouped, and (with ``x``) the float64 spike/rate/ANN comparison."""
    from ann2snn.transforms import convert, prepare

    try:
        qann = prepare(model, quant).eval()
        if x is not None:
            _fit_thresholds(qann, x)
    except ConfigError:  # already prepared: convert it as it is
        qann = copy.deepcopy(model).eval()
    levels = quant.levels
    try:
        snn = convert(
            qann, ConversionConfig(method="parallel", timesteps=levels), calibration_data=[x] if x is not None else None
        )
    except Ann2SnnError as exc:
        return [f"trial conversion failed: {' '.join(str(exc).split())[:200]}"]
    folded = [n for n in snn.log if n.startswith("folded BatchNorm")]
    exact = [n for n in snn.log if n.startswith("max-pool") and ": exact" in n]
    summary = f"convert: {len(snn.sites)} parallel neuron layer(s)"
    summary += f", {len(folded)} BatchNorm(s) folded" if folded else ""
    lines = [summary + (f", {len(exact)} max-pool(s) exact" if exact else "")]
    lines += [n[:240] for n in snn.log if "unfolded" in n or "NOT exact" in n][:3]
    if x is not None:
        lines.append(_verify(qann, snn, x, levels))
    return lines


def _fit_thresholds(qann: nn.Module, x: Tensor) -> None:
    """Give every fresh QCFS/ClipReLU site θ = the max of its input on ``x`` (never above a clamp's b = its θ).

    Only for the trial: any θ is lossless at T = L, but with random weights the default θ can silence the net.
    """
    from ann2snn.layers.activations import QCFS, ClipReLU

    def fit(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
        top = float(inputs[0].detach().max())
        if top > 0:
            theta: Tensor = module.threshold  # type: ignore[assignment]
            theta.data.fill_(min(top, float(theta.max())))

    hooks = [m.register_forward_pre_hook(fit) for m in qann.modules() if isinstance(m, (QCFS, ClipReLU))]
    try:
        with torch.no_grad():
            qann(x)
    finally:
        for h in hooks:
            h.remove()


def _verify(qann: nn.Module, snn: nn.Module, x: Tensor, T: int) -> str:
    """One line comparing spike mode, rate mode and the ANN at T = L in float64 on ``x``."""
    from ann2snn.simulate import simulate

    ann64, snn64, x64 = copy.deepcopy(qann).double(), copy.deepcopy(snn).double(), x.double()
    with torch.no_grad():
        ref = ann64(x64)
        spike = simulate(snn64, x64, T, mode="spike")  # type: ignore[arg-type]
        rate = simulate(snn64, x64, T, mode="rate")  # type: ignore[arg-type]
    scale = float(ref.abs().max()) or 1.0
    d_spike = float((spike.mean_output - ref).abs().max()) / scale
    d_rate = float((rate.mean_output - ref).abs().max()) / scale
    spikes = int(sum(float(c.sum()) for c in spike.spike_counts.values()))
    verdict = "lossless" if max(d_spike, d_rate) <= 1e-12 else "NOT lossless"
    return (
        f"trial at T = L = {T} (float64, example input): {verdict}: max |spike − ANN| = {d_spike:.1e}, "
        f"|rate − ANN| = {d_rate:.1e} of the logit scale ({spikes} spikes)"
    )
