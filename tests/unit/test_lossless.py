"""The lossless theorem of parallel conversion (methods.md §3), tested exactly on random QCFS networks.

Statement: for a QCFS network with L levels converted with ``method="parallel", timesteps=L`` (ψ = θ/2, direct
encoding), every neuron fires exactly the QCFS level ``n`` of its ANN activation, so every layer's time-mean
output equals the ANN activation and the mean logits equal the ANN logits.

What is exact and what is round-off (float64 models):

* **levels**: integers, asserted equal at every site. Only a pre-activation within ~1e-15 of a level boundary
  could flip (BN folding and summing over t change the float rounding); random continuous weights never hit one.
* **rate mode** runs the BN-folded graph with the very expression of QCFS, so it is *bit-identical* to
  ``fold_batchnorm(qann)`` (asserted with ``torch.equal``).
* **logits**: with identical levels the last layer ``y = W·a + b`` (``a = n·θ/L``) differs only by summation
  order: the ANN rounds ``a`` (2u) and the dot product (γ_{k+1}); the SNN computes ``W·s_t + b`` at each step
  (γ_{k+1}) and averages T of them (γ_T + u). With ``γ_n = n·u/(1 − n·u)``, u = 2⁻⁵³, per logit
  ``|Δ| ≤ (2γ_{k+1} + γ_T + 4u)·(|W|·|a| + |b|)``; we assert twice that bound (second-order terms), which for
  these nets is ≈ 1e-13 of the logit scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
from ann2snn.layers.activations import QCFS
from ann2snn.layers.neurons import ParallelIFNeuron

U = 2.0**-53


def gamma(n: int) -> float:
    return n * U / (1 - n * U)


class Act(nn.Module):
    """A ReLU in one of three spellings (prepare/convert must find all of them)."""

    def __init__(self, kind: int) -> None:
        super().__init__()
        self.kind = kind
        self.relu = nn.ReLU() if kind == 0 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == 0:
            return self.relu(x)
        return nnF.relu(x) if self.kind == 1 else torch.relu(x)


class Block(nn.Module):
    """conv-BN-act, or a residual block ``act(bn(conv(act(bn(conv(x))))) + shortcut(x))``."""

    def __init__(self, cin: int, cout: int, residual: bool, kinds: tuple[int, int], stride: int = 1) -> None:
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = Act(kinds[0])
        if residual:
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(cout)
            self.short = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
                if cin != cout or stride != 1
                else nn.Identity()
            )
            self.act2 = Act(kinds[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        if not self.residual:
            return out
        return self.act2(self.bn2(self.conv2(out)) + self.short(x))


class RandomNet(nn.Module):
    """Stem block, then blocks and pools as ``plan`` says, global or no pooling, flatten, linear-act-linear."""

    def __init__(self, plan: list[str], cin: int, size: int, width: int, classes: int, kinds: list[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [Block(cin, width, False, (kinds[0], 0))]
        k = 1
        after_neuron = True
        for step in plan:
            if step in ("conv", "res", "res2"):
                cout = width * 2 if step == "res2" else width
                layers.append(
                    Block(
                        width,
                        cout,
                        step != "conv",
                        (kinds[k % 3], kinds[(k + 1) % 3]),
                        stride=2 if step == "res2" and size >= 4 else 1,
                    )
                )
                if step == "res2" and size >= 4:
                    size = (size + 1) // 2
                width, k = cout, k + 2
                after_neuron = True
            elif step in ("avg", "max") and size >= 2:
                # max-pool only right after a neuron layer (every block ends with one, and a max-pool keeps the
                # train sorted) — the lemma's premise; after an avg-pool the max of means is not the mean of maxima.
                if step == "max" and not after_neuron:
                    continue
                layers.append(nn.AvgPool2d(2) if step == "avg" else nn.MaxPool2d(2, ceil_mode=size % 2 == 1))
                size = size // 2 if step == "avg" else (size + 1) // 2
                after_neuron = step == "max"
        self.features = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1) if size > 2 else nn.Identity()
        flat = width * (1 if size > 2 else size * size)
        self.fc1 = nn.Linear(flat, 16)
        self.act = Act(kinds[-1])
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.gap(self.features(x)), 1)
        return self.head(self.act(self.fc1(x)))


PLAN_STEPS = ["conv", "res", "res2", "avg", "max"]


def build_qann(seed: int, plan: list[str], levels: int, size: int = 6) -> nn.Module:
    """A random QCFS network in float64: random weights, BN running stats and per-layer thresholds."""
    gen = torch.Generator().manual_seed(seed)
    kinds = torch.randint(0, 3, (16,), generator=gen).tolist()
    torch.manual_seed(seed)
    net = RandomNet(plan, cin=2, size=size, width=4, classes=5, kinds=kinds)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):  # gain 2: activity neither dies out nor saturates
            fan_in = m.weight[0].numel()
            m.weight.data.copy_(torch.randn(m.weight.shape, generator=gen) * 2 / fan_in**0.5)
            if m.bias is not None:
                m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.2)
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.3)
    qann = a2s.prepare(net, a2s.QuantConfig(activation="qcfs", levels=levels)).double().eval()
    for m in qann.modules():
        if isinstance(m, QCFS):
            m.threshold.data = (torch.rand(1, generator=gen, dtype=torch.float64) * 1.5 + 0.5).reshape(())
    return qann


def fix_channel_thresholds(qann: nn.Module, x: torch.Tensor) -> None:
    """Give per-channel QCFS sites a ``[C, 1, 1]`` (conv) or ``[C]`` (linear) threshold, from one probe run."""
    shapes: dict[QCFS, torch.Size] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o: shapes.__setitem__(mod, o.shape))
        for m in qann.modules()
        if isinstance(m, QCFS)
    ]
    with torch.no_grad():
        qann(x)
    for h in hooks:
        h.remove()
    gen = torch.Generator().manual_seed(1)
    for m, shape in shapes.items():
        c = shape[1]
        view = (c, 1, 1) if len(shape) == 4 else (c,)
        m.threshold.data = (torch.rand(c, generator=gen, dtype=torch.float64) * 1.5 + 0.5).reshape(view)


def site_levels(
    model: nn.Module, x: torch.Tensor, kind: type[nn.Module], fn
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Integer levels at every activation/neuron module of ``model`` on ``x``, in call order."""
    out: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda mod, i, o: out.append(fn(mod, i[0], o)))
        for m in model.modules()
        if isinstance(m, kind)
    ]
    try:
        with torch.no_grad():
            result = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out, result


def ann_level(mod: QCFS, inp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.round(out * mod.levels / mod.threshold)


def make_snn_level(T: int, order: str, sorted_ok: list[bool]):
    def fn(mod: ParallelIFNeuron, inp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        seq = out.reshape((T, -1) + out.shape[1:])
        amp = mod.amplitude
        spikes = seq / amp
        binary = bool(((spikes == 0) | (spikes == 1)).all())
        diff = spikes[1:] - spikes[:-1]
        mono = bool((diff <= 0).all()) if order == "front" else bool((diff >= 0).all())
        sorted_ok.append(binary and mono)
        return spikes.sum(0)

    return fn


def logit_bound(qann: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
    """Per-logit bound ``2·(2γ_{k+1} + γ_T + 4u)·(|W|·|a| + |b|)`` on the head of :class:`RandomNet`."""
    captured: list[torch.Tensor] = []
    head = qann.get_submodule("head")
    h = head.register_forward_hook(lambda mod, i, o: captured.append(i[0]))
    with torch.no_grad():
        qann(x)
    h.remove()
    a = captured[0]
    scale = a.abs() @ head.weight.abs().T + head.bias.abs()
    k = head.in_features
    return 2 * (2 * gamma(k + 1) + gamma(T) + 4 * U) * scale


plans = st.lists(st.sampled_from(PLAN_STEPS), min_size=0, max_size=4)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    plan=plans,
    levels=st.sampled_from([1, 2, 3, 4, 8]),
    batch=st.integers(1, 4),
    size=st.integers(3, 8),
    per_channel=st.booleans(),
    order=st.sampled_from(["front", "back"]),
)
def test_lossless_theorem(seed, plan, levels, batch, size, per_channel, order):
    qann = build_qann(seed, plan, levels, size)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.rand(batch, 2, size, size, generator=gen, dtype=torch.float64)
    if per_channel:
        fix_channel_thresholds(qann, x)
    snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=levels, order=order))
    T = levels

    # 1. Every neuron fires exactly the ANN's QCFS level, and every spike train is sorted and binary.
    ann_lv, ann_logits = site_levels(qann, x, QCFS, ann_level)
    sorted_ok: list[bool] = []
    x_seq = x.unsqueeze(0).expand((T,) + x.shape)
    snn_lv, _ = site_levels(snn, x_seq, ParallelIFNeuron, make_snn_level(T, order, sorted_ok))
    assert len(ann_lv) == len(snn_lv) == len(snn.sites) >= 2
    for i, (a, s) in enumerate(zip(ann_lv, snn_lv, strict=True)):
        assert torch.equal(a, s), f"site {i}: levels differ at {(a != s).sum().item()} neuron(s)"
    assert all(sorted_ok)

    # 2. Mean logits equal the ANN logits within the derived round-off bound; predictions are identical.
    spike = a2s.simulate(snn, x, T, mode="spike")
    bound = logit_bound(qann, x, T)
    err = (spike.mean_output - ann_logits).abs()
    assert bool((err <= bound).all()), f"max error {err.max().item():.3g} > bound {bound.max().item():.3g}"
    assert torch.equal(spike.predictions(), ann_logits.argmax(-1))

    # 3. Rate mode is bit-identical to the QCFS ANN after BN folding.
    rate = a2s.simulate(snn, x, T, mode="rate")
    with torch.no_grad():
        folded = a2s.fold_batchnorm(qann)(x)
    assert torch.equal(rate.mean_output, folded)
    assert bool(((rate.mean_output - ann_logits).abs() <= bound + 1e-12 * ann_logits.abs().max()).all())

    # 4. Spike mode equals rate mode: same spike counts exactly, same mean output up to the bound.
    assert spike.spike_counts.keys() == rate.spike_counts.keys()
    for name in spike.spike_counts:
        assert torch.equal(spike.spike_counts[name], rate.spike_counts[name]), name
    assert bool(((spike.mean_output - rate.mean_output).abs() <= 2 * bound).all())


def test_lossless_on_the_registered_models():
    """The same theorem on the library's cnn (max-pool) and resnet20, with trained-like random BN stats."""
    for name, kw, shape in [
        ("cnn", {"pool": "max", "in_channels": 1, "image_size": 12}, (3, 1, 12, 12)),
        ("resnet20", {"in_channels": 3, "image_size": 8}, (2, 3, 8, 8)),
    ]:
        torch.manual_seed(0)
        model = a2s.create_model(name, num_classes=10, **kw)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        qann = a2s.prepare(model, a2s.QuantConfig(levels=4, threshold=1.0)).double().eval()
        x = torch.rand(shape, dtype=torch.float64)
        snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=4))
        with torch.no_grad():
            ann = qann(x)
        spike = a2s.simulate(snn, x, 4, mode="spike").mean_output
        rate = a2s.simulate(snn, x, 4, mode="rate").mean_output
        scale = ann.abs().max().item() + 1
        assert (spike - ann).abs().max().item() <= 1e-12 * scale, name
        assert (rate - ann).abs().max().item() <= 1e-12 * scale, name
        assert torch.equal(spike.argmax(-1), ann.argmax(-1))


SANITY_SEEDS = [0, 1, 2, 3, 4, 5]


def test_serial_if_is_not_lossless_on_the_same_networks():
    """Sanity negative: the serial IF neuron (v(0) = θ/2) on the same nets and inputs does not match."""
    worst = 0.0
    disagreements = 0
    for seed in SANITY_SEEDS:
        qann = build_qann(seed, ["res", "max", "conv"], levels=4, size=8)
        x = torch.rand(16, 2, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        with torch.no_grad():
            ann = qann(x)
        parallel = a2s.simulate(a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=4)), x)
        serial = a2s.simulate(a2s.convert(qann, a2s.ConversionConfig(method="serial", timesteps=4)), x)
        scale = ann.abs().max().item()
        assert (parallel.mean_output - ann).abs().max().item() <= 1e-12 * (scale + 1)
        worst = max(worst, (serial.mean_output - ann).abs().max().item() / scale)
        disagreements += int((serial.predictions() != ann.argmax(-1)).sum())
    assert worst > 0.1, f"serial IF matched the QCFS ANN to {worst:.3g} of the logit scale: the test cannot fail"
    assert disagreements > 0


def test_chunked_spike_mode_is_identical_to_one_pass():
    """``SpikingModel.max_rows`` only changes how the batch is split, never the result or the spike counts."""
    qann = build_qann(7, ["res", "max", "conv"], levels=4, size=6)
    x = torch.rand(9, 2, 6, 6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=4))
    snn.max_rows = 1 << 30
    whole = a2s.simulate(snn, x, 4)
    for rows in (1, 8, 20):  # 1 and 4 samples per chunk, and 5 (uneven last chunk)
        snn.max_rows = rows
        part = a2s.simulate(snn, x, 4)
        assert torch.equal(part.outputs, whole.outputs)
        for name, count in whole.spike_counts.items():
            assert torch.equal(part.spike_counts[name], count), name
