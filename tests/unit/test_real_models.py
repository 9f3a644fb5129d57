"""The real torchvision / timm model definitions (random weights), when those packages can be imported.

They are not dependencies of ann2snn, so this module skips cleanly without them. The only torchvision wheel
matching torch 2.13.0 is a CUDA build whose compiled ops fail to load beside the CPU torch; declaring the two op
schemas its import registers fake kernels for lets the pure-Python model definitions load (nothing here calls
those ops). Each family either converts with no user code change and is lossless at T = L in float64 (rate and
spike mode), or is refused naming why; ``ann2snn.check`` gives every family a complete verdict in at most 15
lines. The families whose float64 copies need gigabytes (VGG, AlexNet, ResNeXt, Inception, the transformers) are
marked ``slow``: ``make test`` runs them, ``make test-fast`` does not.
"""

from __future__ import annotations

import importlib
import re
import sys

import _lookalikes as looks
import pytest
import torch

import ann2snn as a2s
from ann2snn.check import MAX_LINES
from ann2snn.errors import UnsupportedModelError


def _import_torchvision():
    try:
        return importlib.import_module("torchvision.models")
    except ImportError:
        return None
    except RuntimeError as exc:  # "operator torchvision::nms does not exist": declare the schemas, retry
        if "torchvision::" not in str(exc):
            raise
    for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        del sys.modules[name]
    lib = torch.library.Library("torchvision", "DEF")
    for schema in ("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
                   "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"):  # fmt: skip
        lib.define(schema)
    _import_torchvision.lib = lib  # type: ignore[attr-defined]  # the schemas live as long as the library object
    return importlib.import_module("torchvision.models")


tv = _import_torchvision()
timm = pytest.importorskip("timm") if tv is not None and importlib.util.find_spec("timm") else None

CONVERTS = {  # name: input side
    "resnet18": 32, "vgg11_bn": 32, "alexnet": 64, "squeezenet1_1": 64, "densenet121": 32, "googlenet": 32,
    "inception_v3": 75, "mobilenet_v2": 32, "shufflenet_v2_x0_5": 32, "mnasnet0_5": 32, "regnet_x_400mf": 32,
    "resnext50_32x4d": 32,
}  # fmt: skip
REFUSED = {  # name: (input side, families named in the refusal)
    "mobilenet_v3_small": (32, ("hard-swish", "sigmoid/tanh/hard-sigmoid", "squeeze-excitation")),
    "efficientnet_b0": (32, ("SiLU", "squeeze-excitation")),
    "regnet_y_400mf": (32, ("squeeze-excitation",)),
    "convnext_tiny": (32, ("LayerNorm", "GELU")),
    "vit_b_32": (224, ("attention", "LayerNorm", "GELU")),
    "swin_t": (224, ("LayerNorm", "GELU")),
    "maxvit_t": (224, ("attention", "LayerNorm", "SiLU")),
}
# ≥ 25 M parameters (1–4 GB of float64 copies in a lossless check) or many seconds of CPU: `slow`
HEAVY = {"vgg11_bn", "alexnet", "resnext50_32x4d", "inception_v3", "googlenet", "resnet18", "vit_b_32", "maxvit_t"}
TIMM_CONVERTS = {"mobilenetv2_100": 32, "regnetx_002": 32}  # shape asserts, F.batch_norm, ReLU6 / ReLU
TIMM_HEAVY = {"mobilenetv2_100"}


def _params(names, heavy):
    return [pytest.param(n, marks=pytest.mark.slow) if n in heavy else n for n in sorted(names)]


def _lossless(model: torch.nn.Module, size: int) -> None:
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    qann = a2s.prepare(looks.lively(model), a2s.QuantConfig(levels=4)).double().eval()
    del model  # prepare copied it: free the float64 original before converting (peak memory)
    looks.fit_thresholds(qann, x)
    with torch.no_grad():
        ann = qann(x)
    snn = a2s.convert(qann, a2s.ConversionConfig(method="parallel", timesteps=4))
    del qann
    scale = ann.abs().max().item()
    assert scale > 0
    for mode in ("spike", "rate"):
        out = a2s.simulate(snn, x, 4, mode=mode).mean_output
        assert (out - ann).abs().max().item() <= 1e-12 * scale, mode


needs_tv = pytest.mark.skipif(tv is None, reason="torchvision is not installed")
needs_timm = pytest.mark.skipif(timm is None, reason="timm is not installed")


@needs_tv
@pytest.mark.parametrize("name", _params(CONVERTS, HEAVY))
def test_torchvision_family_converts_losslessly(name):
    _lossless(tv.get_model(name, weights=None, num_classes=10), CONVERTS[name])


@needs_tv
@pytest.mark.parametrize("name", _params(REFUSED, HEAVY))
def test_torchvision_family_is_refused_naming_why(name):
    families = REFUSED[name][1]
    with pytest.raises(UnsupportedModelError) as info:
        a2s.prepare(tv.get_model(name, weights=None, num_classes=10))
    for family in families:
        assert family in str(info.value), family


@needs_tv
@pytest.mark.parametrize("name", _params(CONVERTS.keys() | REFUSED.keys(), HEAVY))
def test_check_verdict_on_torchvision_family_is_short_and_complete(name):
    """The verdict fits in MAX_LINES lines and is not cut: a converting family ends with its float64 trial
    (lossless; without an example input for the heavy ones, whose float64 trial copies need gigabytes: the
    lossless test above covers them), a refused one names every unsupported op family."""
    model = tv.get_model(name, weights=None, num_classes=10).eval()
    trial = name in CONVERTS and name not in HEAVY
    side = CONVERTS.get(name, 0)
    x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)) if trial else None
    report = a2s.check(model, x)
    lines = str(report).splitlines()
    assert 2 <= len(lines) <= MAX_LINES, lines
    assert report.converts == (name in CONVERTS), lines
    if report.converts:
        assert lines[0].startswith(f"{type(model).__name__}: converts"), lines
        if trial:
            assert lines[-1].startswith("trial at T = L = 4 (float64, example input): lossless:"), lines
        else:
            assert any(line.startswith("convert: ") for line in lines[-4:]), lines
    else:
        assert "does NOT convert" in lines[0], lines
        for family in REFUSED[name][1]:
            assert family in str(report), family


@needs_tv
def test_every_torchvision_classification_family_is_covered():
    """A torchvision release that adds a classification family fails here until the tables above name it."""
    families = {re.match(r"[a-z]+", n).group(0) for n in tv.list_models(module=tv)}  # type: ignore[union-attr]
    covered = {re.match(r"[a-z]+", n).group(0) for n in CONVERTS.keys() | REFUSED.keys()}  # type: ignore[union-attr]
    assert families - covered <= {"wide"}, families - covered  # Wide-ResNet is a wider ResNet (same blocks)


@needs_timm
@pytest.mark.parametrize("name", _params(TIMM_CONVERTS, TIMM_HEAVY))
def test_timm_model_with_shape_asserts_converts_losslessly(name):
    _lossless(timm.create_model(name, pretrained=False, num_classes=10), TIMM_CONVERTS[name])
