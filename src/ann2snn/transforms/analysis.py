"""One pass over a traced model: every node is an activation site, an op of the support table, or a refusal.

``prepare``, ``convert``, calibration and :func:`ann2snn.check` all use :func:`analyze`, so ``prepare`` refuses up
front exactly what ``convert`` would refuse later. Refusals are grouped by kind and reason, with counts and a few
node names each, so a message stays a dozen lines however many nodes a model has.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from ann2snn.errors import UnsupportedModelError
from ann2snn.layers.activations import QCFS, ClipReLU, StepReLU
from ann2snn.transforms.registry import clamp_bound, clip_bounds, is_activation_site, kind, op_rule, where

MAX_GROUPS = 10  # groups listed in a message; the rest are summarised on one line
MAX_NAMES = 3  # node names listed per group


@dataclasses.dataclass(frozen=True)
class Family:
    """Nonlinearities that stay out of reach of conversion, with one line saying why."""

    name: str
    why: str
    modules: tuple[type[nn.Module], ...] = ()
    functions: tuple[Any, ...] = ()
    methods: tuple[str, ...] = ()


_NORMS = tuple(
    getattr(nn, n) for n in ("LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
                             "LocalResponseNorm", "RMSNorm") if hasattr(nn, n)
)  # fmt: skip
FAMILIES: tuple[Family, ...] = (
    Family(
        "SiLU/GELU/Mish/hard-swish",
        "self-gated activations x·g(x): no spiking neuron equals them; replace with ReLU or ReLU6 and fine-tune",
        (nn.SiLU, nn.GELU, nn.Mish, nn.Hardswish),
        (F.silu, F.gelu, F.mish, F.hardswish),
    ),
    Family(
        "sigmoid/tanh/hard-sigmoid",
        "smooth or signed curves, not a clipped ReLU (as a gate they multiply two signals, e.g. squeeze-excitation)",
        (nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.Softsign, nn.Tanhshrink, nn.LogSigmoid),
        (torch.sigmoid, F.sigmoid, torch.tanh, F.tanh, F.hardsigmoid, F.logsigmoid),
        ("sigmoid", "sigmoid_", "tanh", "tanh_"),
    ),
    Family(
        "negative-slope activations",
        "LeakyReLU/PReLU/ELU/SELU/CELU/Softplus pass negative or smooth values; ann2snn's neurons fire for "
        "positive input only",
        (nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.Softplus, nn.RReLU),
        (F.leaky_relu, F.elu, F.selu, F.celu, F.softplus, F.prelu, F.rrelu),
    ),
    Family(
        "squeeze-excitation / gating",
        "x * sigmoid(...) and other products of two signals: spike trains carry sums, not products",
        (nn.GLU,),
        (F.glu,),
    ),
    Family(
        "attention / softmax",
        "attention multiplies two signals and softmax exponentiates and divides: neither is a rate code",
        (nn.MultiheadAttention, nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d),
        (
            F.softmax,
            torch.softmax,
            F.log_softmax,
            torch.log_softmax,
            F.scaled_dot_product_attention,
            torch.matmul,
            operator.matmul,
            torch.bmm,
            torch.einsum,
            F.multi_head_attention_forward,
        ),  # fmt: skip
        ("softmax", "log_softmax", "matmul", "bmm"),
    ),
    Family(
        "LayerNorm/GroupNorm",
        "normalises each sample by its own standard deviation, computed from the signal: not affine",
        _NORMS,
        (
            F.layer_norm,
            F.group_norm,
            F.instance_norm,
            F.local_response_norm,
            *([F.rms_norm] if hasattr(F, "rms_norm") else []),
        ),  # fmt: skip
    ),
)
_CLAMP = Family(
    "clamp with other bounds",
    "clamp/hard-tanh with a non-zero (or no) lower bound is not a ReLU; only clamp(x, 0, b), b > 0, converts",
)
_GATING = FAMILIES[3]


def family_of(node: fx.Node, modules: dict[str, nn.Module]) -> Family | None:
    """The out-of-reach family of ``node``, or ``None``."""
    for fam in FAMILIES:
        if (
            (node.op == "call_module" and isinstance(modules[str(node.target)], fam.modules))
            or (node.op == "call_function" and node.target in fam.functions)
            or (node.op == "call_method" and node.target in fam.methods)
        ):
            return fam
    if clip_bounds(node, modules) is not None and not is_activation_site(node, modules):
        return _CLAMP
    return None


@dataclasses.dataclass(frozen=True)
class Finding:
    """One node: its group key (``kind``), the reason (refusals) or the why-text (supported), and its name."""

    kind: str
    reason: str
    node: str
    op: str = ""  # the node's own op kind where ``kind`` is a family (``GELU`` in "SiLU/GELU/...")


@dataclasses.dataclass
class Analysis:
    """What conversion does with every node of a traced model."""

    sites: list[Finding]
    supported: list[Finding]
    refused: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.refused

    def refusal_lines(self) -> list[str]:
        """Refusals grouped by kind and reason: at most :data:`MAX_GROUPS` + 1 lines."""
        return group_lines(self.refused, with_reason=True)


def site_kind(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    """``ReLU``, ``clamp(0, 6)`` (ReLU6, hard-tanh, clamp), ``QCFS``, ``ClipReLU`` or ``StepReLU``."""
    if node.op == "call_module":
        mod = modules[str(node.target)]
        if isinstance(mod, (QCFS, ClipReLU, StepReLU)):
            return type(mod).__name__
    bound = clamp_bound(node, modules)
    return "ReLU" if bound is None else f"clamp(0, {bound:g})"


def analyze(gm: fx.GraphModule) -> Analysis:
    """Classify every node of ``gm``: activation site, supported op (with why) or refusal (with reason)."""
    modules = dict(gm.named_modules())
    result = Analysis([], [], [])
    for node in gm.graph.nodes:
        if is_activation_site(node, modules):
            result.sites.append(Finding(site_kind(node, modules), "activation site", where(node)))
            continue
        fam = family_of(node, modules)
        if fam is not None:
            result.refused.append(Finding(fam.name, fam.why, where(node), kind(node, modules)))
            continue
        rule = op_rule(node, modules)
        if rule is None:
            result.refused.append(Finding(kind(node, modules), "not in the op table", where(node)))
            continue
        module = modules.get(str(node.target)) if node.op == "call_module" else None
        reason = rule.check(node, module) if rule.check is not None else None
        if reason is None:
            if node.op not in ("placeholder", "output", "get_attr"):
                result.supported.append(Finding(kind(node, modules), rule.why, where(node)))
        elif "multiplies two signals" in reason:
            result.refused.append(Finding(_GATING.name, _GATING.why, where(node), kind(node, modules)))
        else:
            result.refused.append(Finding(kind(node, modules), reason, where(node)))
    return result


def group_lines(findings: list[Finding], *, with_reason: bool, max_groups: int = MAX_GROUPS) -> list[str]:
    """``12× GELU: 'a', 'b', 'c', ...: reason`` lines, largest groups first, bounded in number and length."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        name = f"'{f.node}'" + (f" ({f.op})" if f.op else "")
        groups.setdefault((f.kind, f.reason if with_reason else ""), []).append(name)
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    lines = []
    for (k, reason), names in ordered[:max_groups]:
        shown = ", ".join(names[:MAX_NAMES]) + (", ..." if len(names) > MAX_NAMES else "")
        lines.append(f"{len(names)}× {k}: {shown}" + (f": {reason}" if reason else ""))
    if len(ordered) > max_groups:
        rest = ordered[max_groups:]
        lines.append(f"... and {sum(len(n) for _, n in rest)} more in {len(rest)} other group(s)")
    return lines


HINT = (
    "Declare an op that is exact on spikes (per sample and per time step, affine or value-moving) with "
    "ann2snn.register_layer / register_function / register_method; ann2snn.check(model, x) shows the full verdict"
)


def refuse(analysis: Analysis, what: str, model_name: str) -> None:
    """Raise one :class:`UnsupportedModelError` listing the grouped refusals of ``analysis`` (if any)."""
    if analysis.ok:
        return
    lines = "\n  ".join(analysis.refusal_lines())
    raise UnsupportedModelError(
        f"{what}: {model_name} has {len(analysis.refused)} node(s) that cannot run on spikes:\n  {lines}\n{HINT}"
    )
