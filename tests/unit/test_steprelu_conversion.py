"""method="steprelu": the SNN reproduces the StepReLU ANN at T = n (docs/steprelu.md)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
from ann2snn.errors import ConfigError, UnsupportedModelError
from ann2snn.functional import step_neuron as S
from ann2snn.layers.step_neuron import StepIFNeuron


def step_model(
    seed: int, step: float, steps: int, rounding: str = "ceil", clip: bool = False, bn: bool = False
) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4) if bn else nn.Identity(),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 8),
        nn.ReLU(),
        nn.Linear(8, 3),
    ).double()
    if bn:
        with torch.no_grad():
            m[1].running_mean.uniform_(-0.2, 0.2)
            m[1].running_var.uniform_(0.5, 2.0)
    q = a2s.QuantConfig(activation="steprelu", step=step, steps=steps, step_rounding=rounding, step_clip=clip)
    return a2s.prepare(m, q).eval()


@settings(max_examples=30, deadline=None)
@given(
    st.integers(0, 10_000),
    st.sampled_from([0.05, 0.1, 0.25]),
    st.integers(2, 10),
    st.sampled_from(["ceil", "floor"]),
    st.booleans(),
)
def test_exact_at_T_equal_n(seed: int, step: float, steps: int, rounding: str, clip: bool) -> None:
    ann = step_model(seed, step, steps, rounding, clip)
    snn = a2s.convert(ann, a2s.ConversionConfig(method="steprelu", timesteps=steps))
    x = torch.rand(16, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)) * 3
    with torch.no_grad():
        logits = ann(x)
    rate = a2s.simulate(snn, x, steps, mode="rate").mean_output
    spike = a2s.simulate(snn, x, steps, mode="spike")
    assert torch.equal(rate, logits)  # rate mode: the same float ops as the ANN
    assert torch.allclose(spike.mean_output, logits, rtol=0, atol=1e-12)  # spike mode: summation round-off only
    assert torch.equal(spike.mean_output.argmax(-1), logits.argmax(-1))


def test_exact_with_batchnorm_up_to_folding_round_off() -> None:
    ann = step_model(3, 0.05, 8, bn=True)
    snn = a2s.convert(ann, a2s.ConversionConfig(method="steprelu", timesteps=8))
    x = torch.rand(64, 1, 4, 4, dtype=torch.float64) * 3
    with torch.no_grad():
        logits = ann(x)
    for mode in ("rate", "spike"):
        assert torch.allclose(a2s.simulate(snn, x, 8, mode=mode).mean_output, logits, rtol=0, atol=1e-12)


def test_not_exact_at_other_T() -> None:
    """Sanity negative: at T ≠ n the quantum is n·θ_s/T, not θ_s."""
    ann = step_model(1, 0.1, 8)
    snn = a2s.convert(ann, a2s.ConversionConfig(method="steprelu", timesteps=8))
    x = torch.rand(32, 1, 4, 4, dtype=torch.float64) * 3
    with torch.no_grad():
        logits = ann(x)
    assert not torch.allclose(a2s.simulate(snn, x, 4, mode="rate").mean_output, logits, atol=1e-6)


def test_neuron_spikes_levels_and_overflow() -> None:
    n, step = 4, 0.25  # Θ = 1
    neuron = StepIFNeuron(step, n, n).double()
    z = torch.tensor([[-0.3, 0.25, 0.26, 0.5, 1.0, 1.0 + 2**-20, 2.5]], dtype=torch.float64)
    out = neuron(z.expand(n, -1, -1).reshape(n, -1)).reshape(n, 1, -1)
    counts = (out[:-1] > 0).sum(0)[0].tolist()
    assert counts == [0, 0, 1, 1, 3, 3, 3]  # first T−1 steps: binary spikes of amplitude Θ
    assert out[:-1].unique().tolist() == [0.0, 1.0]
    # ceil − 1 levels; identity above Θ via the graded spike at the last step
    assert out.mean(0)[0].tolist() == pytest.approx([0.0, 0.0, 0.25, 0.25, 0.75, 1.0 + 2**-20, 2.5], abs=1e-15)


def test_clip_is_pure_binary() -> None:
    neuron = StepIFNeuron(0.25, 4, 4, clip=True).double()
    z = torch.tensor([[0.3, 1.0, 7.0]], dtype=torch.float64).expand(4, -1, -1).reshape(4, -1)
    out = neuron(z)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert out.sum(0).tolist() == [1.0, 3.0, 3.0]  # clipped ceil staircase tops out at (n − 1)·θ_s


def test_level_function_matches_definition() -> None:
    mean = torch.linspace(-1, 3, 401, dtype=torch.float64)
    level = S.step_level(mean, 0.25, 8)
    assert torch.equal(level * 0.25, torch.where(mean > 2, 2.0, S.step_rate(mean, 0.25, 8)))


def test_errors() -> None:
    qcfs = a2s.prepare(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)), a2s.QuantConfig(levels=4))
    with pytest.raises(UnsupportedModelError, match="StepReLU at every site"):
        a2s.convert(qcfs, a2s.ConversionConfig(method="steprelu"))
    ann = step_model(0, 0.1, 4)
    with pytest.raises(UnsupportedModelError, match="method='steprelu'"):
        a2s.convert(ann, a2s.ConversionConfig(method="parallel"))
    with pytest.raises(ConfigError, match="neuron='lif'"):
        a2s.convert(ann, a2s.ConversionConfig(method="steprelu", leak=0.9))


def test_input_model_not_mutated_and_summary() -> None:
    ann = step_model(0, 0.1, 4)
    before = {k: v.clone() for k, v in ann.state_dict().items()}
    snn = a2s.convert(ann, a2s.ConversionConfig(method="steprelu", timesteps=4))
    assert all(torch.equal(before[k], v) for k, v in ann.state_dict().items())
    assert "StepIFNeuron" in snn.summary()
