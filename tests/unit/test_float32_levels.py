"""Spike mode = rate mode in float32: the same levels at every neuron, the same spike counts and predictions.

A parallel neuron's level in spike mode could be computed from its summed currents ``Σ_t I(t)`` and in rate mode
from the mean current ``Ī``; both equal ``T·z`` in exact arithmetic but are different float reductions, so where a
pre-activation lies within round-off of a level boundary the two modes could fire different levels, and depth
amplifies one flip into thousands. Spike mode therefore fires the levels of a rate-mode *level plan*. These tests
build float32 ResNet-ish and VGG-ish nets with random BN statistics, calibrate them with DA, and then move one
channel's ψ so that a level boundary lies between the two reductions of one neuron (found on the platform's own
round-off): levels from the currents must flip there (the construction works), the default spike mode must not.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as nnF
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import ann2snn as a2s
from ann2snn import functional as F
from ann2snn.layers.activations import QCFS
from ann2snn.layers.neurons import ParallelIFNeuron
from ann2snn.models.resnet import ResNet
from ann2snn.simulate import SpikingModel

U32 = 2.0**-24


def randomize_bn(model: nn.Module, gen: torch.Generator) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.2)
    return model.eval()


def resnet_ish(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return randomize_bn(ResNet("resnet", (1, 1, 1), (4, 8, 16), 10, 3, 8), torch.Generator().manual_seed(seed))


def vgg_ish(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    cin = 3
    for i, cout in enumerate([8, 8, 16, 16, 32]):
        layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        if i in (1, 3):
            layers.append(nn.AvgPool2d(2))
        cin = cout
    layers += [nn.Flatten(), nn.Linear(32 * 4, 24), nn.ReLU(), nn.Linear(24, 10)]
    return randomize_bn(nn.Sequential(*layers), torch.Generator().manual_seed(seed))


def calibrated(model: nn.Module, seed: int, timesteps: int) -> SpikingModel:
    calib = [torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 100))]
    cfg = a2s.ConversionConfig(
        method="parallel",
        timesteps=timesteps,
        threshold_mode="percentile",
        per_channel=True,
        calibration="da",
        weight_refit=False,
        calibration_batches=1,
    )
    return a2s.convert(model, cfg, calibration_data=calib)


def run(snn: SpikingModel, x: Tensor, T: int, mode: str) -> tuple[a2s.SimResult, dict[str, dict[str, Tensor]]]:
    """Simulate, recording every parallel neuron's input current (summed over t in spike mode) and levels."""
    rec: dict[str, dict[str, list[Tensor]]] = {}
    neurons = {n: m for n, m in snn.neurons().items() if isinstance(m, ParallelIFNeuron)}

    def hook(name: str):
        def fn(mod: ParallelIFNeuron, args: tuple[Tensor, ...], out: Tensor) -> None:
            assert mod.mode == mode, "forward hooks must see only the calls of the requested mode"
            cur, out = args[0].detach(), out.detach()
            if mode == "spike":
                cur = cur.reshape((T, -1) + cur.shape[1:]).sum(0)
                level = (out.reshape((T, -1) + out.shape[1:]) != 0).sum(0)
            else:
                level = F.rate_level(cur, T, mod.threshold, bias=mod.bias)
            entry = rec.setdefault(name, {"current": [], "level": []})
            entry["current"].append(cur)
            entry["level"].append(level.to(torch.int32))

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in neurons.items()]
    try:
        res = a2s.simulate(snn, x, T, mode=mode)
    finally:
        for h in handles:
            h.remove()
    return res, {n: {k: torch.cat(v) for k, v in d.items()} for n, d in rec.items()}


def observable(snn: SpikingModel, name: str, like: Tensor) -> Tensor:
    """Neurons whose spikes are visible (amplitude ≠ 0; DA may zero a dead channel's amplitude)."""
    m = snn.neurons()[name]
    assert isinstance(m, ParallelIFNeuron)
    return (m.amplitude != 0).expand(like.shape[1:]).expand_as(like)


def place_boundary_between_reductions(snn: SpikingModel, x: Tensor, T: int) -> tuple[str, int] | None:
    """Move one channel's ψ_DA so that a level boundary lies between ``Σ_t I(t)`` and ``T·Ī`` of one neuron.

    Searches, site by site, for a sample whose upstream levels agree in both modes and a neuron of it whose two
    reductions differ in float32; then tries ψ values near ``(k − 1/2)·θ/T − Ī`` until the library's own level
    rules (:func:`parallel_if_level` on the sum, :func:`rate_level` on the mean) give different levels.
    Returns ``(site, sample)``, or ``None`` when the two reductions agree everywhere (e.g. often at T = 1).
    """
    old = getattr(snn, "levels_from", "auto")
    snn.levels_from = "currents"
    try:
        _, rate = run(snn, x, T, "rate")
        _, spike = run(snn, x, T, "spike")
    finally:
        snn.levels_from = old
    neurons = snn.neurons()
    clean = torch.ones(x.shape[0], dtype=torch.bool)  # samples whose levels so far agree in both modes
    for name in rate:
        m = neurons[name]
        assert isinstance(m, ParallelIFNeuron)
        r, s = rate[name]["current"], spike[name]["current"]
        shape = r.shape[1:]
        theta = m.threshold.expand((shape[0],) + (1,) * (len(shape) - 1))
        bias = m.bias.expand_as(theta).clone()
        candidates = torch.nonzero((r * T != s) & clean.view((-1,) + (1,) * len(shape)))[:200]
        for b, c, *rest in candidates.tolist():
            idx = (b, c, *rest)
            zr, zs, th = r[idx], s[idx], theta[c].reshape(())
            k = torch.floor(zr * T / th) + 1
            ideal = (k - 0.5) * th / T - zr
            for step in range(-64, 65):
                psi = ideal + step * U32 * th
                if F.rate_level(zr, T, th, bias=psi) != F.parallel_if_level(zs, T, th, bias=psi):
                    bias[c] = psi
                    m.bias = bias
                    return name, b
        clean &= (rate[name]["level"] == spike[name]["level"]).flatten(1).all(1)
    return None


def assert_modes_agree(snn: SpikingModel, x: Tensor, T: int) -> None:
    """Same level at every neuron and sample, same spike counts per site, same predictions (head round-off)."""
    spike, s_lv = run(snn, x, T, "spike")
    rate, r_lv = run(snn, x, T, "rate")
    assert s_lv.keys() == r_lv.keys() == spike.spike_counts.keys()
    for name in s_lv:
        vis = observable(snn, name, r_lv[name]["level"])
        assert torch.equal(s_lv[name]["level"][vis], r_lv[name]["level"][vis]), name
        assert torch.equal(spike.spike_counts[name], rate.spike_counts[name]), name
    # Identical levels: the mean outputs differ only by the round-off of the head (a few ulps of its scale).
    scale = rate.mean_output.abs().max().item() + 1.0
    assert (spike.mean_output - rate.mean_output).abs().max().item() <= 1e-4 * scale
    top2 = rate.mean_output.topk(2, dim=-1).values
    decided = (top2[:, 0] - top2[:, 1]) > 1e-4 * scale
    assert torch.equal(spike.predictions()[decided], rate.predictions()[decided])


@pytest.mark.parametrize("build", [resnet_ish, vgg_ish], ids=["resnet", "vgg"])
def test_spike_and_rate_fire_the_same_levels_after_da_with_a_boundary_between_the_reductions(build):
    T = 4
    snn = calibrated(build(0), 0, T)
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    placed = place_boundary_between_reductions(snn, x, T)
    assert placed is not None, "no neuron with differing float reductions was found"
    site, sample = placed
    # The construction works: the levels of the summed currents flip at the chosen site.
    snn.levels_from = "currents"
    spike = a2s.simulate(snn, x, T, mode="spike")
    rate = a2s.simulate(snn, x, T, mode="rate")
    assert spike.spike_counts[site][sample] != rate.spike_counts[site][sample]
    # The default (level plan) fires rate mode's levels exactly, everywhere.
    snn.levels_from = "auto"
    assert_modes_agree(snn, x, T)


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**16), T=st.sampled_from([1, 2, 3, 4, 8]), resnet=st.booleans(), chunk=st.booleans())
def test_modes_agree_on_random_float32_nets_and_inputs(seed, T, resnet, chunk):
    torch.manual_seed(seed)
    model = resnet_ish(seed) if resnet else vgg_ish(seed)
    calib = torch.rand(8, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
    snn = a2s.convert(
        model,
        a2s.ConversionConfig(method="parallel", timesteps=T, threshold_mode="percentile", per_channel=True),
        calibration_data=[calib],
    )
    gen = torch.Generator().manual_seed(seed + 1)
    for m in snn.neurons().values():  # random ψ_DA / φ_DA, as calibration would set them
        assert isinstance(m, ParallelIFNeuron)
        m.bias = (torch.rand(m.threshold.shape, generator=gen) - 0.5) * m.threshold
        m.amplitude_correction = (torch.rand(m.threshold.shape, generator=gen) - 0.5) * m.threshold
    if chunk:
        snn.max_rows = 2 * T  # two samples per spike-mode chunk
    x = torch.rand(6, 3, 8, 8, generator=gen) * 2
    place_boundary_between_reductions(snn, x, T)
    assert_modes_agree(snn, x, T)


def test_spike_levels_are_what_the_currents_give_except_at_round_off_ties():
    """The spike pass is a real spiking run: each neuron's summed currents give its fired level, except within
    float round-off of a level boundary (the fired level is then the rate-mode side of the tie)."""
    T = 4
    snn = calibrated(resnet_ish(3), 3, T)
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    assert place_boundary_between_reductions(snn, x, T) is not None
    _, spike = run(snn, x, T, "spike")
    ties = 0
    for name, rec in spike.items():
        m = snn.neurons()[name]
        assert isinstance(m, ParallelIFNeuron)
        own = F.parallel_if_level(rec["current"], T, m.threshold, bias=m.bias).to(torch.int32)
        vis = observable(snn, name, own)
        differ = (own != rec["level"]) & vis
        arg = (rec["current"].double() + T * m.bias.double()) / m.threshold.double() + 0.5
        assert bool(((own - rec["level"]).abs()[differ] == 1).all())
        assert bool(((arg - arg.round()).abs()[differ] <= 1e-4).all()), name
        ties += int(differ.sum())
    assert ties >= 1  # the placed boundary is one


def test_time_varying_input_fires_the_levels_of_its_time_mean():
    T = 4
    snn = calibrated(vgg_ish(5), 5, T)
    gen = torch.Generator().manual_seed(6)
    x_seq = torch.rand(T, 5, 3, 8, 8, generator=gen)
    snn.set_record(True)
    with torch.no_grad():
        snn(x_seq)
        spike = {n: m.spike_count for n, m in snn.neurons().items()}
        snn.forward_rate(x_seq[0] + (x_seq - x_seq[0]).mean(0), T)
        rate = {n: m.spike_count for n, m in snn.neurons().items()}
    snn.set_record(False)
    for name in spike:
        assert spike[name] is not None and torch.equal(spike[name], rate[name]), name


def test_plan_is_internal_hooks_see_one_spike_call_and_nothing_is_left_behind():
    T = 3
    snn = calibrated(resnet_ish(7), 7, T)
    x = torch.rand(4, 3, 8, 8)
    calls: list[tuple[str, tuple[int, ...]]] = []
    neuron = next(iter(snn.neurons().values()))
    handle = neuron.register_forward_hook(lambda mod, i, o: calls.append((mod.mode, tuple(o.shape))))
    pre = neuron.register_forward_pre_hook(lambda mod, i: None)
    a2s.simulate(snn, x, T, mode="spike")
    assert calls == [("spike", (T * 4, 4, 8, 8))]
    assert len(neuron._forward_hooks) == 1 and len(neuron._forward_pre_hooks) == 1  # restored
    handle.remove()
    pre.remove()
    assert all(getattr(m, "_plan", None) is None and not getattr(m, "_planning", False) for m in snn.neurons().values())


def test_maxpool_after_avgpool_uses_the_currents_and_levels_from_is_checked():
    from ann2snn.errors import ConfigError

    torch.manual_seed(0)
    ann = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.MaxPool2d(2), nn.Flatten())
    ann.append(nn.Linear(16, 3))
    calib = [torch.rand(4, 1, 8, 8)]
    snn = a2s.convert(ann, a2s.ConversionConfig(method="parallel", timesteps=2), calibration_data=calib)
    x = torch.rand(5, 1, 8, 8)
    auto = a2s.simulate(snn, x, 2).outputs
    snn.levels_from = "currents"  # the max of time means is not the time mean of maxima: no plan there
    assert torch.equal(auto, a2s.simulate(snn, x, 2).outputs)
    snn.levels_from = "sum"
    with pytest.raises(ConfigError, match="levels_from"):
        a2s.simulate(snn, x, 2)


def test_step_neuron_fires_the_rate_mode_plan():
    """StepReLU conversions (StepIFNeuron, graded overflow spike) follow the same level plan."""
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1), nn.ReLU())
    ann.append(nn.Flatten())
    ann.append(nn.Linear(6 * 36, 4))
    qann = a2s.prepare(ann, a2s.QuantConfig(activation="steprelu", step=0.1, steps=4)).eval()
    snn = a2s.convert(qann, a2s.ConversionConfig(method="steprelu", timesteps=4))
    x = torch.rand(8, 1, 6, 6)
    spike = a2s.simulate(snn, x, 4, mode="spike")
    rate = a2s.simulate(snn, x, 4, mode="rate")
    for name in spike.spike_counts:
        assert torch.equal(spike.spike_counts[name], rate.spike_counts[name]), name
    torch.testing.assert_close(spike.mean_output, rate.mean_output, rtol=0, atol=1e-5)


def _qcfs_vgg(seed: int, levels: int, x: Tensor) -> nn.Module:
    """vgg_ish as a float32 QCFS net with random per-channel thresholds."""
    qann = a2s.prepare(vgg_ish(seed), a2s.QuantConfig(activation="qcfs", levels=levels)).eval()
    gen = torch.Generator().manual_seed(seed + 2)
    for m in qann.modules():
        if isinstance(m, QCFS):
            m.threshold.data = torch.tensor(1.0)
    shapes = {}
    hooks = [m.register_forward_hook(lambda mod, i, o: shapes.__setitem__(mod, o.shape)) for m in qann.modules()]
    with torch.no_grad():
        qann(x)
    for h in hooks:
        h.remove()
    for m, shape in shapes.items():
        if isinstance(m, QCFS):
            view = (shape[1], 1, 1) if len(shape) == 4 else (shape[1],)
            m.threshold.data = torch.rand(view, generator=gen) + 0.5
    return qann


def _site_inputs(model: nn.Module, x: Tensor, kinds: tuple[type[nn.Module], ...]) -> dict[str, Tensor]:
    got: dict[str, Tensor] = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=n: got.__setitem__(n, i[0].detach()))
        for n, m in model.named_modules()
        if isinstance(m, kinds)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return got


def _fold_bound(qann: nn.Module, conv_in: dict[str, Tensor], z: Tensor, conv: str, bn: str, theta: Tensor) -> Tensor:
    """Bound on |z_ANN − z_SNN| + the level expression's rounding for ``QCFS(BN(conv(a)))`` vs the folded conv.

    ``(2γ_{k+2} + 6u)·(|s|·(|W|*|a|) + |s·μ| + |β| + |b'|) + 4u·(|z| + θ)`` with ``s = γ/√(σ² + ε)``, u = 2⁻²⁴.
    """
    c, b = qann.get_submodule(conv), qann.get_submodule(bn)
    assert isinstance(c, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)
    k = c.weight[0].numel()
    s = (b.weight.double() / torch.sqrt(b.running_var.double() + b.eps)).view(-1, 1, 1)
    mag = nnF.conv2d(conv_in[conv].double().abs(), c.weight.double().abs(), padding=c.padding)
    folded_bias = (b.bias.double().view(-1, 1, 1) - b.running_mean.double().view(-1, 1, 1) * s).abs()
    rest = (s * b.running_mean.double().view(-1, 1, 1)).abs() + b.bias.double().abs().view(-1, 1, 1) + folded_bias
    g = (k + 2) * U32 / (1 - (k + 2) * U32)
    return (2 * g + 6 * U32) * (s.abs() * mag + rest) + 4 * U32 * (z.double().abs() + theta.double())


def test_bn_folding_moves_a_qcfs_level_only_within_the_round_off_bound():
    """Unfolded float32 QCFS ANN vs the (BN-folded) SNN in rate mode at T = L: where a level differs, at each
    sample's first differing site, the ANN pre-activation lies within the derived round-off bound of a level
    boundary. One channel's θ is moved so that a boundary lies between the ANN's and the SNN's pre-activation of
    one neuron, so the comparison is not vacuous."""
    L = 4
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(12))
    qann = _qcfs_vgg(11, L, x)
    sites = [n for n, m in qann.named_modules() if isinstance(m, QCFS)][:5]  # the conv-BN-QCFS sites
    convs = {s: (f"{int(s) - 2}", f"{int(s) - 1}") for s in sites}
    snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=L))
    z_ann, z_snn = _site_inputs(qann, x, (QCFS,)), _site_inputs(snn.net, x, (ParallelIFNeuron,))
    # Place a boundary between the two pre-activations of one neuron of the first site (same inputs there).
    site = sites[0]
    qcfs = qann.get_submodule(site)
    theta = qcfs.threshold.data.clone()
    candidates = torch.nonzero((z_ann[site] != z_snn[site]) & (z_ann[site] > 0.1 * theta))[:200].tolist()
    for b, c, i, j in candidates:
        za, zs = z_ann[site][b, c, i, j], z_snn[site][b, c, i, j]
        ideal = (za + zs) / 2 * L / (torch.floor(za * L / theta[c, 0, 0]) + 0.5)
        tries = [ideal * (1 + step * U32) for step in range(-64, 65)]
        found = [t for t in tries if F.qcfs_level(za, t, L) != F.rate_level(zs, L, t)]
        if found:
            theta[c] = found[0]
            break
    else:
        raise AssertionError("no threshold separates the two pre-activations")
    qcfs.threshold.data = theta
    snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=L))
    z_ann = _site_inputs(qann, x, (QCFS,))
    conv_in = _site_inputs(qann, x, (nn.Conv2d,))
    _, rate = run(snn, x, L, "rate")
    clean = torch.ones(x.shape[0], dtype=torch.bool)
    flips = 0
    for s in sites:
        m = qann.get_submodule(s)
        ann_level = F.qcfs_level(z_ann[s], m.threshold, L).to(torch.int32)
        differ = (ann_level != rate[s]["level"]) & clean.view(-1, 1, 1, 1)
        arg = z_ann[s].double() * L / m.threshold.double() + 0.5
        dist = (arg - arg.round()).abs() * m.threshold.double() / L
        bound = _fold_bound(qann, conv_in, z_ann[s], *convs[s], m.threshold)
        assert bool((dist <= bound)[differ].all()), s
        flips += int(differ.sum())
        clean &= ~(ann_level != rate[s]["level"]).flatten(1).any(1)
    assert flips >= 1
