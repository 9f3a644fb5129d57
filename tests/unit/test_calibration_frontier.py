"""Layer-by-layer calibration on resumable frontiers (calibrate/frontier.py, da.py): same result as rerunning the
network from the input for every stage, every node run once per batch and branch, warnings on too little data."""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_float32_levels import randomize_bn
from torch import Tensor, fx, nn

import ann2snn as a2s
from ann2snn.calibrate import calibrate_da, da
from ann2snn.calibrate.frontier import Frontiers
from ann2snn.calibrate.reference import Lockstep, _call
from ann2snn.calibrate.refit import GramPair, apply_refit, layer_rows, refit_support
from ann2snn.config import ConversionConfig
from ann2snn.errors import CalibrationError, CalibrationWarning


class _Branchy(nn.Module):
    """Residual adds, a channel concatenation and a linear head: stages whose inputs outlive several sites."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.a = nn.Conv2d(4, 3, 3, padding=1)
        self.b = nn.Conv2d(4, 3, 1)
        self.mix = nn.Conv2d(6, 4, 3, padding=1)
        self.head = nn.Linear(4 * 4 * 4, 5)
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(5))
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        h = self.relus[0](self.stem(x))
        u, v = self.relus[1](self.a(h)), self.relus[2](self.b(h))
        m = self.relus[3](self.mix(torch.cat([u, v], dim=1)) + h)
        m = self.relus[4](m + h)
        return self.head(torch.flatten(self.pool(m), 1))


def _model(name: str, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    if name == "branchy":
        torch.manual_seed(seed)
        return _Branchy().eval()
    if name == "resnet20":
        model = a2s.create_model("resnet20", num_classes=4, in_channels=1, image_size=8, seed=seed, width=2)
    else:
        model = a2s.create_model("cnn", num_classes=4, in_channels=1, image_size=8, seed=seed, hidden=16)
    return randomize_bn(model, gen)


def _legacy_match(lockstep: Lockstep, reference, neurons, stages, batches, T, progress, objective, notes) -> None:
    """The former algorithm: for every stage, both branches rerun from the input up to the stage (O(S²) nodes)."""

    def pass_through(name: str, z_ref: Tensor, z_cal: Tensor) -> tuple[Tensor, Tensor]:
        return reference.get_submodule(name)(z_ref), neurons[name](z_cal)

    def run_to(x: Tensor, module: str) -> tuple[Any, Any]:
        env_ref: dict[str, Any] = {}
        env_cal: dict[str, Any] = {}
        with torch.no_grad():
            for node in lockstep.nodes:
                args_r = fx.node.map_arg(node.args, lambda n: env_ref[n.name])
                args_c = fx.node.map_arg(node.args, lambda n: env_cal[n.name])
                if node.op == "call_module" and str(node.target) == module:
                    return args_r[0], args_c[0]
                if node.op == "placeholder":
                    env_ref[node.name] = env_cal[node.name] = x
                elif node.op == "call_module" and str(node.target) in lockstep.sites:
                    env_ref[node.name], env_cal[node.name] = pass_through(str(node.target), args_r[0], args_c[0])
                else:
                    kw_r = fx.node.map_arg(node.kwargs, lambda n: env_ref[n.name])
                    kw_c = fx.node.map_arg(node.kwargs, lambda n: env_cal[n.name])
                    env_ref[node.name] = _call(lockstep.ref, node, args_r, kw_r)
                    env_cal[node.name] = _call(lockstep.cal, node, args_c, kw_c)
        raise AssertionError(f"{module} not reached")

    per_batch = max(1, da.MATCH_SAMPLES // len(batches))
    for kind, target in stages:
        if kind == "layer":
            module = lockstep.cal.get_submodule(target)
            if refit_support(module) is not None:
                continue
            grams = GramPair(module)
            for x in batches:
                grams.add(*run_to(x, target))
            new = grams.solve()[0] if grams.differs else None
            if new is not None:
                apply_refit(module, new)
            continue
        stats = da._SiteStats(per_batch)
        for x in batches:
            z_ref, z_cal = run_to(x, target)
            with torch.no_grad():
                stats.add(z_ref, z_cal, reference.get_submodule(target)(z_ref))
        da._set_site(neurons[target], stats, T, objective)


@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from(["cnn", "resnet20", "branchy"]),
    st.sampled_from([1, 2, 4]),
    st.booleans(),
    st.sampled_from(["mse_threshold", "mean"]),
    st.integers(0, 2**16),
)
def test_frontier_calibration_is_bit_identical_to_rerunning_from_the_input(
    name: str, T: int, refit: bool, objective: str, seed: int
) -> None:
    ann = _model(name, seed)
    g = torch.Generator().manual_seed(seed + 1)
    data = [torch.rand(24, 1, 8, 8, generator=g) for _ in range(3)]
    cfg = ConversionConfig(method="parallel", timesteps=T, per_channel=True, percentile=99.0)
    snn = a2s.convert(ann, cfg, calibration_data=data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # few samples per channel: not what is tested here
        new = calibrate_da(snn, ann, data, refit=refit, objective=objective, progress=False)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(da, "_match", _legacy_match)
            old = calibrate_da(snn, ann, data, refit=refit, objective=objective, progress=False)
    state_new, state_old = new.state_dict(), old.state_dict()
    assert state_new.keys() == state_old.keys()
    for key, value in state_old.items():
        assert torch.equal(state_new[key], value), key
    if refit:  # the comparison covers refit weights: some layer really changed
        changed = [k for k, v in snn.state_dict().items() if k.endswith("weight") and not torch.equal(state_new[k], v)]
        assert changed or "refit (λ=" not in new.log[-2]


def _counting_hooks(gm: nn.Module, counts: Counter[str], branch: str) -> None:
    for name, module in gm.named_modules():
        if name and not list(module.children()):
            module.register_forward_hook(lambda m, i, o, key=f"{branch}:{name}": counts.update([key]))


@pytest.mark.parametrize("refit", [False, True])
def test_every_module_runs_once_per_batch_and_branch(refit: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    ann = _model("resnet20", 3)
    data = [torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    snn = a2s.convert(ann, ConversionConfig(method="parallel", timesteps=2, per_channel=True), calibration_data=data)
    counts: Counter[str] = Counter()
    make_reference = da.reference_graph

    def hooked_reference(model: nn.Module, spiking: a2s.SpikingModel) -> fx.GraphModule:
        gm = make_reference(model, spiking)
        _counting_hooks(gm, counts, "ref")
        return gm

    def checked(model: nn.Module, batches: list[Tensor]) -> None:
        check_fit(model, batches)
        counts.clear()  # the input check runs the reference on one sample per batch: not calibration

    check_fit = da.check_batches_fit
    monkeypatch.setattr(da, "reference_graph", hooked_reference)
    monkeypatch.setattr(da, "check_batches_fit", checked)
    _counting_hooks(snn.net, counts, "cal")  # the hooks travel into calibrate_da's copy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        calibrate_da(snn, ann, data, refit=refit, progress=False)
    sites = {s.name for s in snn.sites}
    conv = [k for k in counts if k.endswith(("conv1", "conv2"))]
    assert len(conv) >= 2 * 18  # both branches of every block's convs ran
    for key, n in counts.items():
        branch, module = key.split(":", 1)
        # a site's reference activation is computed for its statistics and again when the run passes it
        expected = 2 * len(data) if branch == "ref" and module in sites else len(data)
        assert n <= expected, (key, n)
    last = [s.name for s in snn.sites][-1]  # modules behind the last stage need not run at all
    assert all(counts[f"cal:{s}"] == len(data) for s in sites if s != last)


def test_frontiers_stream_to_disk_beyond_the_budget_with_the_same_values() -> None:
    ann = _model("branchy", 0)
    data = [torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    snn = a2s.convert(ann, ConversionConfig(method="parallel", timesteps=2, per_channel=True), calibration_data=data)
    lockstep = Lockstep(da.reference_graph(ann, snn), snn.net, [s.name for s in snn.sites])

    def site_fn(name: str, z_ref: Tensor, z_cal: Tensor) -> tuple[Tensor, Tensor]:
        return torch.relu(z_ref), torch.relu(z_cal)

    kept, streamed = Frontiers(lockstep, data, site_fn), Frontiers(lockstep, data, site_fn, budget=0)
    for stage in ("mix", "head"):
        for (r1, c1), (r2, c2) in zip(kept.advance(stage), streamed.advance(stage), strict=True):
            assert torch.equal(r1, r2) and torch.equal(c1, c2)
        assert streamed._tmp is not None
        assert all(b.file is not None for b in streamed.batches)  # nothing of it stayed in memory
        assert all(not b.env_ref for b in streamed.batches)
    with pytest.raises(CalibrationError, match="graph order"):
        list(kept.advance("mix"))
    assert kept.peak > 0
    kept.close()
    streamed.close()


def test_a_refit_layer_with_fewer_rows_than_parameters_is_still_fit_toward_the_ann() -> None:
    """Rows < parameters per output channel: the ridge pull toward the ANN's weights and the held-out λ decide (a
    hard skip cost 0.6 pp at T = 1 on the README's training-free CNN); only ``match``'s small-data warning fires."""
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    data = [torch.rand(8, 4, generator=torch.Generator().manual_seed(k)) for k in range(2)]  # 14 fitted rows
    snn = a2s.convert(ann, ConversionConfig(method="parallel", timesteps=1, per_channel=True), calibration_data=data)
    with pytest.warns(CalibrationWarning) as record:
        cal = calibrate_da(snn, ann, data, refit=True, progress=False)
    assert not any("weight refit" in str(w.message) for w in record)
    assert any("fewer than 1000 samples per channel" in str(w.message) for w in record)
    assert "2 refit (λ=0.1, 14 rows < 65 parameters)" in cal.log[-2]  # the held-out images chose a refit
    assert not torch.equal(cal.net.get_submodule("2").weight, snn.net.get_submodule("2").weight)
    # enough data: no warning about the refit, and the layer is refit
    many = [torch.rand(64, 4, generator=torch.Generator().manual_seed(k)) for k in range(18)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        cal = calibrate_da(snn, ann, many, refit=True, progress=False, max_batches=None)
    assert "2 refit (λ=" in cal.log[-2] or "2 kept (no λ" in cal.log[-2]
    assert not any(line.startswith("warning:") for line in cal.log)


def test_the_ema_warns_when_it_has_too_few_batches_to_leave_zero() -> None:
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    data = [torch.rand(16, 4, generator=torch.Generator().manual_seed(k)) for k in range(4)]
    snn = a2s.convert(ann, ConversionConfig(method="parallel", timesteps=2, per_channel=True), calibration_data=data)
    with pytest.warns(CalibrationWarning, match=r"after 4 batch\(es\) holds only 34% .* needs about 10\)"):
        cal = calibrate_da(snn, ann, data, estimator="ema", ema_alpha=0.9, progress=False)
    assert any(line.startswith("warning: DA calibration: the EMA") for line in cal.log)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CalibrationWarning)
        calibrate_da(snn, ann, data * 3, estimator="ema", ema_alpha=0.9, progress=False, max_batches=None)
        calibrate_da(snn, ann, data, estimator="mean", progress=False)


def _direct_match_mse(z, ref, target, theta, T, scales, grid=32):
    """match_output_mse written out sample-wise (every candidate evaluated on every sample)."""

    def evaluate(th, psi):
        level = torch.clamp(torch.floor((z + psi[:, None]) * T / th[:, None] + 0.5), 0, T)
        mean_level = level.mean(1)
        exact = torch.where(mean_level > 0, target * T / mean_level.clamp_min(1e-300), th)
        amp = torch.minimum(torch.maximum(exact, 0 * th), 2 * th)
        err = (level * (amp / T)[:, None] - ref).pow(2).mean(1)
        ok = (amp == exact) & ((mean_level > 0) | (target == 0))
        return torch.where(ok, err, torch.full_like(err, float("inf"))), amp

    best = (torch.full_like(theta, float("inf")), theta.clone(), torch.zeros_like(theta))
    for s in scales:
        for f in torch.linspace(-0.5, 0.5, grid + 1, dtype=z.dtype):
            err, _ = evaluate(theta * s, theta * s * f)
            better = err < best[0]
            best = tuple(
                torch.where(better, new, old) for new, old in zip((err, theta * s, theta * s * f), best, strict=True)
            )
    for f in torch.linspace(-1, 1, 17, dtype=z.dtype):
        psi = best[2] + f * (best[1] / grid)
        err, _ = evaluate(best[1], psi)
        better = err < best[0]
        best = (torch.where(better, err, best[0]), best[1], torch.where(better, psi, best[2]))
    return best[1], best[2], evaluate(best[1], best[2])[1] - best[1], evaluate


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.integers(1, 5), st.integers(1, 400), st.integers(0, 2**31 - 1))
def test_match_output_mse_by_binary_search_is_the_sample_wise_search(T: int, channels: int, n: int, seed: int) -> None:
    from ann2snn.calibrate.da import THRESHOLD_SCALES
    from ann2snn.calibrate.estimators import match_output_mse

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(channels, n, generator=g, dtype=torch.float64) * 0.7 + 0.1
    z[:, : n // 4] = z[:, :1]  # repeated values: flat stretches and ties
    ref = torch.relu(z + 0.1 * torch.randn(channels, n, generator=g, dtype=torch.float64)).clamp(max=1.0)
    theta = torch.rand(channels, generator=g, dtype=torch.float64) + 0.3
    target = ref.mean(1)
    got = match_output_mse(z, ref, target, theta, T, scales=THRESHOLD_SCALES)
    *want, evaluate = _direct_match_mse(z, ref, target, theta, T, THRESHOLD_SCALES)
    for c in range(channels):
        if all(bool(g_[c] == w[c]) for g_, w in zip(got, want, strict=True)):
            continue
        # only a near-tie may go either way (the errors are summed differently): both choices are equally good
        err_got = float(evaluate(got[0][c : c + 1].expand(channels), got[1][c : c + 1].expand(channels))[0][c])
        err_want = float(evaluate(want[0][c : c + 1].expand(channels), want[1][c : c + 1].expand(channels))[0][c])
        assert err_got == pytest.approx(err_want, rel=1e-9, abs=1e-15), (c, got, want)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3),
    st.sampled_from([(1, 1), (3, 3), (2, 3)]),
    st.sampled_from([(1, 1), (2, 1)]),
    st.sampled_from([(0, 0), (1, 1), (1, 2)]),
    st.sampled_from([(1, 1), (2, 1)]),
    st.integers(1, 40),
    st.integers(0, 2**31 - 1),
)
def test_sampled_refit_rows_are_the_im2col_rows_at_the_sampled_positions(
    channels: int, kernel: tuple, stride: tuple, padding: tuple, dilation: tuple, n_keep: int, seed: int
) -> None:
    conv = nn.Conv2d(channels, 2, kernel, stride=stride, padding=padding, dilation=dilation)
    g = torch.Generator().manual_seed(seed)
    x_cal, x_ref = torch.randn(3, channels, 7, 6, generator=g), torch.randn(3, channels, 7, 6, generator=g)
    full_cal, full_ref = layer_rows(conv, x_cal), layer_rows(conv, x_ref)
    rows_cal, rows_ref = GramPair(conv, seed=seed)._sample(x_cal, x_ref, n_keep)
    if len(full_cal) <= n_keep:
        picks = torch.arange(len(full_cal))
    else:
        picks = torch.randperm(len(full_cal), generator=torch.Generator().manual_seed(seed))[:n_keep]
    assert torch.equal(rows_cal, full_cal[picks]) and torch.equal(rows_ref, full_ref[picks])
    lin = nn.Linear(6, 2)
    rows, _ = GramPair(lin, seed=seed)._sample(x_cal[:, 0], x_ref[:, 0], n_keep)  # [3, 7, 6]: 21 rows
    picks = torch.randperm(21, generator=torch.Generator().manual_seed(seed))[:n_keep] if n_keep < 21 else slice(None)
    assert torch.equal(rows, layer_rows(lin, x_cal[:, 0])[picks])
