"""Hypothesis fuzz of configs and input shapes: only ann2snn errors (or success) may come out.

Random field values of random types go through the config constructors, ``from_dict`` and
:func:`ann2snn.validation.load_config`; random tensors (shape, dtype, NaN/Inf) go through ``simulate``,
``convert`` (as calibration data) and ``evaluate``. Any other exception type is an unhandled bad input.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

import ann2snn as a2s
import ann2snn.config as cfg
from ann2snn.config import ConversionConfig, QuantConfig
from ann2snn.errors import Ann2SnnError
from ann2snn.train import TrainConfig
from ann2snn.validation import load_config

torch.set_num_threads(1)
FUZZ = settings(
    max_examples=int(os.environ.get("ANN2SNN_FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CONFIGS = (QuantConfig, ConversionConfig, TrainConfig)
VALID_WORDS = (
    "qcfs",
    "clip",
    "steprelu",
    "ceil",
    "floor",
    "serial",
    "parallel",
    "if",
    "lif",
    "subtract",
    "zero",
    "exponential",
    "linear",
    "auto",
    "max",
    "percentile",
    "front",
    "back",
    "cpu",
    "cuda",
    "cuda:0",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(VALID_WORDS),
)
values = st.one_of(scalars, st.lists(scalars, max_size=2), st.dictionaries(st.text(max_size=3), scalars, max_size=2))


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@st.composite
def config_dicts(draw: st.DrawFn) -> tuple[type, dict[Any, Any]]:
    cls = draw(st.sampled_from(CONFIGS))
    keys = draw(st.lists(st.sampled_from(_field_names(cls)), unique=True, max_size=5))
    data: dict[Any, Any] = {k: draw(values) for k in keys}
    extra = draw(st.sampled_from(["none", "unknown", "kind", "version", "intkey"]))
    if extra == "unknown":
        data[draw(st.text(min_size=1, max_size=5))] = draw(values)
    elif extra == "kind":
        data["kind"] = draw(st.one_of(st.sampled_from([c.__name__ for c in CONFIGS]), values))
    elif extra == "version":
        data["version"] = draw(values)
    elif extra == "intkey":
        data[draw(st.integers())] = 1
    return cls, data


def _expect_ann2snn_error_or_success(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Ann2SnnError:
        return None


@FUZZ
@given(config_dicts())
def test_from_dict_raises_only_config_errors(case: tuple[type, dict[Any, Any]]) -> None:
    cls, data = case
    config = _expect_ann2snn_error_or_success(cls.from_dict, data)
    if config is not None:  # valid: the JSON round trip is exact
        assert cls.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@FUZZ
@given(config_dicts())
def test_constructor_raises_only_config_errors(case: tuple[type, dict[Any, Any]]) -> None:
    cls, data = case
    kwargs = {k: v for k, v in data.items() if k in _field_names(cls)}
    _expect_ann2snn_error_or_success(cls, **kwargs)
    _expect_ann2snn_error_or_success(load_config, kwargs, cls)


@FUZZ
@given(st.one_of(st.text(max_size=30), st.binary(max_size=30).map(lambda b: b.decode("latin-1"))))
def test_load_config_from_random_text(text: str) -> None:
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.json"
        path.write_text(text, encoding="utf-8")
        for cls in CONFIGS:
            _expect_ann2snn_error_or_success(load_config, path, cls)


# ------------------------------------------------------------------------------------------ input shapes
def _tiny_relu_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(8, 3))


QANN = a2s.prepare(_tiny_relu_model(), QuantConfig(levels=2)).eval()
SNNS = {m: a2s.convert(QANN, ConversionConfig(method=m, timesteps=2)) for m in ("serial", "parallel")}
DTYPES = (torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool)


@st.composite
def tensors(draw: st.DrawFn) -> torch.Tensor:
    if draw(st.booleans()):  # mostly near the right shape [B, 1, 4, 4]
        shape = [draw(st.integers(0, 3)), draw(st.integers(0, 2)), draw(st.integers(0, 6)), draw(st.integers(0, 6))]
        shape = shape[: draw(st.integers(1, 4))] + [draw(st.integers(1, 2))] * draw(st.integers(0, 1))
    else:
        shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=5))
    dtype = draw(st.sampled_from(DTYPES))
    x = (torch.rand(shape) * 4 - 1).to(dtype) if dtype.is_floating_point else torch.randint(0, 2, shape).to(dtype)
    if dtype.is_floating_point and x.numel() and draw(st.booleans()):
        x.view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e30]))
    return x


@FUZZ
@given(
    tensors(),
    st.sampled_from(["serial", "parallel"]),
    st.sampled_from(["spike", "rate", "other"]),
    st.one_of(st.none(), st.integers(-2, 5), st.floats(0, 4), st.just(True)),
)
def test_simulate_any_input(x: torch.Tensor, method: str, mode: str, timesteps: Any) -> None:
    res = _expect_ann2snn_error_or_success(a2s.simulate, SNNS[method], x, timesteps, mode=mode)
    if res is not None:
        assert res.mean_output.shape == (x.shape[0], 3)


@st.composite
def conversion_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Valid-looking ConversionConfig fields over every method, neuron, threshold mode and calibration."""
    return {
        "method": draw(st.sampled_from(cfg.METHODS)),
        "neuron": draw(st.sampled_from(cfg.NEURONS)),
        "threshold_mode": draw(st.sampled_from(cfg.THRESHOLD_MODES)),
        "calibration": draw(st.sampled_from((None, *cfg.CALIBRATIONS))),
        "per_channel": draw(st.booleans()),
        "presteps": draw(st.integers(0, 2)),
        "timesteps": 2,
    }


@FUZZ
@given(st.lists(tensors(), min_size=0, max_size=2), conversion_configs(), st.booleans())
def test_convert_any_calibration_data(batches: list[torch.Tensor], fields: dict[str, Any], relu: bool) -> None:
    config = _expect_ann2snn_error_or_success(ConversionConfig, **fields)
    if config is not None:
        model = _tiny_relu_model() if relu else QANN
        snn = _expect_ann2snn_error_or_success(a2s.convert, model, config, calibration_data=batches)
        if snn is not None:
            _expect_ann2snn_error_or_success(a2s.simulate, snn, torch.rand(2, 1, 4, 4))


@FUZZ
@given(tensors(), st.lists(st.integers(-1, 4), min_size=0, max_size=4), st.sampled_from([torch.int64, torch.float32]))
def test_evaluate_any_batch(x: torch.Tensor, labels: list[int], label_dtype: torch.dtype) -> None:
    y = torch.tensor(labels, dtype=label_dtype)
    _expect_ann2snn_error_or_success(a2s.evaluate, QANN, SNNS["parallel"], [(x, y)], (1, 2))


def test_fuzz_harness_can_fail() -> None:
    """Sanity negative: a non-ann2snn exception is not swallowed by the harness."""
    with pytest.raises(ZeroDivisionError):
        _expect_ann2snn_error_or_success(lambda: 1 / 0)
