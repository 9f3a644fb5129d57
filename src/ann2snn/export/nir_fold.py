"""Fold spike amplitudes into the next weights of a NIR graph, so that no ``Scale`` node is needed.

ann2snn's neurons emit spikes of height a (θ, or θ + φ for DA-calibrated parallel neurons); a NIR neuron emits 0/1.
Between a neuron and the next ``Conv2d``/``Affine``/``Linear`` there may be ops that are linear and act per channel
and per sample (``AvgPool2d``, ``SumPool2d``, ``Flatten``): they commute with a per-channel factor, so
``W·op(a·z) = (W·diag(a'))·op(z)`` where ``a'`` is ``a`` carried through ``op``. The fold is exact up to float
round-off of the products (``w·a`` rounded once instead of inside the layer). Where the spikes reach anything else
(a neuron's input, the output, a pool whose window mixes different amplitudes), a ``Scale`` node keeps them exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fold_amplitudes"]


def _through(node: Any, amp: np.ndarray, out_shape: tuple[int, ...]) -> np.ndarray | None:
    """The amplitude after a pass-through node, or None where the node is not one or mixes amplitudes."""
    import nir

    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        per_c = amp.reshape(amp.shape[0], -1)
        if amp.ndim != 3 or not bool((per_c == per_c[:, :1]).all()):
            return None
        return np.broadcast_to(per_c[:, :1, None], out_shape).copy()
    if isinstance(node, nir.Flatten):
        return amp.reshape(out_shape)
    return None


def _scaled(node: Any, amp: np.ndarray) -> np.ndarray | None:
    """The weight of a Conv2d/Affine/Linear node with its input multiplied by ``amp``, or None if impossible."""
    import nir

    if isinstance(node, nir.Conv2d) and int(node.groups) == 1 and amp.ndim == 3:
        per_c = amp.reshape(amp.shape[0], -1)
        if bool((per_c == per_c[:, :1]).all()):
            return node.weight * per_c[:, 0].reshape(1, -1, 1, 1)
    if isinstance(node, (nir.Affine, nir.Linear)) and amp.ndim == 1:
        return node.weight * amp.reshape(1, -1)
    return None


def fold_amplitudes(
    nodes: dict[str, Any],
    edges: list[tuple[str, str]],
    amplitude: dict[str, np.ndarray],
    shapes: dict[str, tuple[int, ...]],
    feedback: set[str],
    *,
    fold: bool = True,
) -> list[tuple[str, str]]:
    """Fold each spiking node's amplitude into the layers it reaches; insert a ``Scale`` where that fails.

    ``nodes`` is changed in place (scaled weights, new ``<name>_amplitude`` Scale nodes); returns the new edges.
    Reset-feedback nodes (``feedback``) read the 0/1 spikes and are left alone. ``fold=False`` writes every
    amplitude as a Scale node.
    """
    import nir

    for name, amp in amplitude.items():
        if bool((amp == 1).all()):
            continue
        plan: dict[str, np.ndarray] = {}
        todo = [(name, amp)]
        ok = fold
        while todo and ok:
            src, a = todo.pop()
            for dst in [d for s, d in edges if s == src and d not in feedback]:
                single = sum(1 for _, d in edges if d == dst) == 1
                weight = _scaled(nodes[dst], a) if single else None
                after = _through(nodes[dst], a, shapes[dst]) if single and dst in shapes else None
                if weight is not None and dst not in plan:
                    plan[dst] = weight
                elif after is not None:
                    todo.append((dst, after))
                else:
                    ok = False
        if ok:
            for dst, weight in plan.items():
                nodes[dst].weight = weight
            continue
        scale = f"{name}_amplitude"
        nodes[scale] = nir.Scale(scale=amp)
        edges = [(scale if s == name and d not in feedback else s, d) for s, d in edges] + [(name, scale)]
    return edges
