"""End to end on the embedded digits data: prepare → train → convert → simulate → evaluate."""

import pytest
import torch

import ann2snn as a2s

LEVELS = 4


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    quant = a2s.QuantConfig(activation="qcfs", levels=LEVELS)
    ann = a2s.prepare(a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8), quant)
    train_ds, test_ds = a2s.load_dataset("digits", "train"), a2s.load_dataset("digits", "test")
    result = a2s.train(ann, train_ds, a2s.TrainConfig(epochs=10, batch_size=64, seed=0), progress=False)
    return result.model, a2s.make_loader(test_ds, 256, shuffle=False)


def test_qcfs_ann_learns_digits(trained):
    model, test = trained
    report = a2s.evaluate(model, a2s.convert(model, a2s.ConversionConfig(timesteps=LEVELS)), test, (LEVELS,))
    assert report.ann_accuracy > 95.0


def test_serial_if_at_t_equal_l_is_close_to_the_ann(trained):
    # Serial IF at T = L suffers only the unevenness error (time-varying inputs to deeper layers); on this
    # 4-layer CNN it stays within 2 pp (9 of 450 test images). Measured: +0.2 pp, so the margin is loose but
    # still fails on a broken neuron (threshold or reset errors cost tens of points).
    model, test = trained
    snn = a2s.convert(model, a2s.ConversionConfig(method="serial", timesteps=LEVELS, v_init=0.5))
    report = a2s.evaluate(model, snn, test, (1, 2, LEVELS))
    assert abs(report.gap(LEVELS)) <= 2.0
    assert report.snn_accuracy[1] < report.snn_accuracy[LEVELS]  # latency matters for the serial neuron


def test_parallel_at_t_equal_l_is_lossless(trained):
    model, test = trained
    snn = a2s.convert(model, a2s.ConversionConfig(method="parallel", timesteps=LEVELS))
    x, _ = next(iter(test))
    with torch.no_grad():
        ann_logits = model(x)
    spike = a2s.simulate(snn, x, mode="spike")
    rate = a2s.simulate(snn, x, mode="rate")
    assert torch.equal(spike.predictions(), ann_logits.argmax(-1))
    # float32 round-off of summing T spike-driven currents in another order; logits are O(10).
    assert (spike.mean_output - ann_logits).abs().max() < 1e-4
    assert (spike.mean_output - rate.mean_output).abs().max() < 1e-4
    for name, counts in spike.spike_counts.items():
        assert torch.equal(counts, rate.spike_counts[name])
    report = a2s.evaluate(model, snn, test, (LEVELS,))
    assert report.gap(LEVELS) == 0.0
