"""``ConversionConfig(fold_batchnorm=False)``: the SNN keeps the ANN's BatchNorms and so its float expression.

At T = L the parallel SNN in rate mode then equals the unfolded float32 QCFS ANN bit for bit, on deep random
networks with random BN statistics (folding is exact only in real arithmetic).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ann2snn as a2s

FOLD = False


def _randomise_bn(model: nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(c, generator=gen) * 2 + 0.2)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.2)


@pytest.mark.parametrize(("name", "kwargs"), [("resnet20", {"width": 8}), ("vgg16", {"width": 8, "hidden": 32})])
@pytest.mark.parametrize("seed", [0, 1])
def test_unfolded_snn_equals_the_unfolded_qcfs_ann_bit_for_bit(name, kwargs, seed):
    ann = a2s.create_model(name, num_classes=10, in_channels=1, image_size=32, seed=seed, **kwargs)
    _randomise_bn(ann, seed)
    qann = a2s.prepare(ann, a2s.QuantConfig(activation="qcfs", levels=4, threshold=1.0)).eval()
    snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=4, fold_batchnorm=FOLD))
    x = torch.randn(16, 1, 32, 32, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ref = qann(x)
    rate = a2s.simulate(snn, x, 4, mode="rate", record=False).mean_output
    assert torch.equal(rate, ref)
    spike = a2s.simulate(snn, x, 4, mode="spike", record=False)
    assert torch.equal(spike.predictions(), ref.argmax(-1))
    assert any("fold_batchnorm=False" in line for line in snn.log)


def test_default_folds_and_the_option_is_validated():
    ann = a2s.prepare(a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8, seed=0), a2s.QuantConfig())
    snn = a2s.convert(ann, a2s.ConversionConfig(timesteps=4))
    assert any("folded BatchNorm" in line for line in snn.log)
    with pytest.raises(a2s.errors.ConfigError, match="fold_batchnorm"):
        a2s.ConversionConfig(fold_batchnorm="no")
