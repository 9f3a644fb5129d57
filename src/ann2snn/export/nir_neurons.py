"""NIR forms of ann2snn's serial neurons (the algebra is in docs/ecosystem.md, "How a neuron becomes NIR").

ann2snn's serial neuron, per step ``t`` (``c = v_init·θ``, ``λ`` the leak, ``δ`` the linear leak)::

    u[t] = λ·v[t−1] + x[t] − δθ,   z[t] = [u[t] ≥ θ],   v[t] = u[t] − θ·z[t]  (subtract)  or  u[t]·(1 − z[t])  (zero)

with ``v[0] = c``. Standard NIR writes it as follows, with no ann2snn metadata:

* reset to zero, ``v(0) = 0``: ``IF`` (λ = 1, δ = 0) or ``LIF`` (``v_leak = −δθ/(1−λ)``), ``v_reset = 0``.
* reset by subtraction, any ``v(0)``: an integrator ``I`` (λ = 1) or ``LI`` (λ < 1) holding ``w = u − c``, a
  ``Threshold`` at ``θ − c`` that emits the 0/1 spikes, and a feedback edge Threshold → ``−λθ`` → integrator. A
  feedback edge delivers the previous step's spikes, so the integrator computes
  ``w[t] = λ·w[t−1] + x[t] − λθ·z[t−1] − (1−λ)c − δθ`` (``LI``'s ``v_leak = −c − δθ/(1−λ)`` supplies the constant),
  which is ``u[t] − c`` exactly; ``w[t] ≥ θ − c`` is ``u[t] ≥ θ``. The feedback is a 1×1 ``Conv2d`` (feature maps)
  or an ``Affine`` (vectors) with diagonal weights and zero bias, which every NIR importer maps; a ``Scale`` only
  for thresholds that vary within a channel.

NIR fires on ``v > threshold``; ann2snn on ``≥``: the exported threshold is moved down one float step of the
exported dtype, which makes the two tests identical for values of that dtype. The time step ``dt`` of the consumer
enters only through ``r`` and ``τ`` (forward Euler with step ``dt`` gives back the discrete update above).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ann2snn.errors import ExportError

__all__ = ["NeuronSpec", "NIRRefusal", "neuron_nodes"]


class NIRRefusal(ExportError):
    """An ExportError whose advice exists in two forms: Python API (the message) and CLI flags (``cli_message``)."""

    def __init__(self, what: str, api_advice: str, cli_advice: str) -> None:
        super().__init__(f"{what}. {api_advice}")
        self.what = what
        self.cli_message = f"{what}. {cli_advice}"


@dataclass
class NeuronSpec:
    """One serial neuron layer in NIR terms: arrays of the per-sample shape, in the exported dtype."""

    name: str  # fx target, for messages
    theta: np.ndarray
    v_init: float  # fraction of θ
    leak: float
    leak_delta: float  # fraction of θ
    reset: str  # "subtract" or "zero"


def _below(a: np.ndarray) -> np.ndarray:
    """The largest value of a's dtype below a: ``v > _below(a)`` is ``v ≥ a`` for values of that dtype."""
    return np.nextafter(a, np.array(-np.inf, dtype=a.dtype))


def _feedback(theta_fb: np.ndarray) -> Any:
    """The reset edge: multiply the 0/1 spikes by ``theta_fb`` (negative), as a node every NIR importer maps."""
    import nir

    if theta_fb.ndim == 1:  # Affine (zero bias), not Linear: Sinabs maps no Linear, Norse maps it transposed
        return nir.Affine(weight=np.diag(theta_fb), bias=np.zeros_like(theta_fb))
    per_c = theta_fb.reshape(theta_fb.shape[0], -1)
    if theta_fb.ndim == 3 and bool((per_c == per_c[:, :1]).all()):
        c = theta_fb.shape[0]
        weight = np.zeros((c, c, 1, 1), dtype=theta_fb.dtype)
        weight[np.arange(c), np.arange(c), 0, 0] = per_c[:, 0]
        return nir.Conv2d(
            input_shape=theta_fb.shape[1:],  # type: ignore[arg-type]
            weight=weight,
            stride=np.array([1, 1]),
            padding=np.array([0, 0]),
            dilation=np.array([1, 1]),
            groups=1,
            bias=np.zeros(c, dtype=theta_fb.dtype),
        )
    return nir.Scale(scale=theta_fb)


def _advice(spec: NeuronSpec, needs: list[str]) -> NIRRefusal:
    what = (
        f"NIR export: neuron '{spec.name}' uses {', '.join(needs)}, which standard NIR cannot express "
        f"(reset to zero with v(0) ≠ 0, or a linear leak without an exponential one)"
    )
    return NIRRefusal(
        what,
        "Convert with ConversionConfig(reset='subtract') (exported exactly), or ConversionConfig(reset='zero', "
        "v_init=0.0, leak_delta=0.0); or pass extensions=True to write them as ann2snn_* node metadata that other "
        "NIR tools ignore",
        "Use --reset subtract (exported exactly) or --reset zero --v-init 0; or pass --allow-extensions to write "
        "them as ann2snn_* node metadata that other NIR tools ignore",
    )


def neuron_nodes(spec: NeuronSpec, dt: float, extensions: bool) -> tuple[dict[str, Any], list[tuple[str, str]], str]:
    """NIR nodes of one neuron layer, keyed ``"out"`` (emits the 0/1 spikes) and, for the reset-by-subtraction
    form, ``"v"`` (integrator) and ``"reset"`` (feedback).

    Returns ``(nodes, edges, entry)``: the internal edges between those keys, and the key that receives the layer's
    input. Refuses (:class:`NIRRefusal`) what standard NIR cannot express unless ``extensions``; then returns the
    documented ``ann2snn_*`` metadata form.
    """
    import nir

    th = spec.theta
    dtype = th.dtype
    lam = spec.leak
    delta = th * dtype.type(spec.leak_delta)
    c = dtype.type(spec.v_init) * th  # as ann2snn computes v(0) = v_init·θ
    r_if = np.full_like(th, 1.0 / dt)
    zeros = np.zeros_like(th)
    if spec.reset == "subtract" and (lam < 1.0 or spec.leak_delta == 0):
        if lam == 1.0:
            integ = nir.I(r=r_if)
        else:
            tau = np.full_like(th, dt / (1.0 - lam))
            v_leak = -c - delta / dtype.type(1.0 - lam)
            integ = nir.LI(tau=tau, r=np.full_like(th, 1.0 / (1.0 - lam)), v_leak=v_leak)
        nodes = {
            "v": integ,
            "reset": _feedback(-(dtype.type(lam) * th)),
            "out": nir.Threshold(threshold=_below(th - c)),
        }
        return nodes, [("v", "out"), ("out", "reset"), ("reset", "v")], "v"
    needs = []
    if spec.reset == "subtract":
        needs.append("reset by subtraction with a linear leak")
    if spec.v_init != 0 and spec.reset == "zero":
        needs.append(f"initial potential v(0)={spec.v_init:g}·θ with reset to zero")
    if spec.leak_delta != 0 and lam == 1.0:
        needs.append(f"linear leak {spec.leak_delta:g}·θ per step")
    meta: dict[str, Any] = {}
    if needs:
        if not extensions:
            raise _advice(spec, needs)
        meta = {"ann2snn_threshold": th, "ann2snn_spike_condition": "v >= ann2snn_threshold"}
        if spec.reset == "subtract":
            meta.update(ann2snn_reset="subtract", ann2snn_reset_amount=th)
        if spec.v_init != 0:
            meta["ann2snn_v_init"] = c
        if spec.leak_delta != 0:
            meta["ann2snn_leak_delta"] = delta
    if lam == 1.0:
        return {"out": nir.IF(r=r_if, v_threshold=_below(th), v_reset=zeros, metadata=meta)}, [], "out"
    tau = np.full_like(th, dt / (1.0 - lam))
    v_leak = zeros if meta else -delta / dtype.type(1.0 - lam)
    lif = nir.LIF(
        tau=tau, r=np.full_like(th, 1.0 / (1.0 - lam)), v_leak=v_leak, v_threshold=_below(th), v_reset=zeros.copy()
    )
    lif.metadata = meta
    return {"out": lif}, [], "out"
