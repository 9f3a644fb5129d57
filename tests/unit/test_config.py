"""Config validation and JSON round trip."""

import json

import pytest

from ann2snn import ConversionConfig, QuantConfig
from ann2snn.errors import ConfigError


@pytest.mark.parametrize("cls", [QuantConfig, ConversionConfig])
def test_round_trip(cls):
    cfg = cls()
    assert cls.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"timesteps": 0}, "timesteps"),
        ({"timesteps": -3}, "timesteps"),
        ({"timesteps": 2.5}, "timesteps"),
        ({"method": "magic"}, "method"),
        ({"leak": 0.0}, "leak"),
        ({"leak": 1.5}, "leak"),
        ({"v_init": float("nan")}, "v_init"),
        ({"order": "middle"}, "order"),
    ],
)
def test_conversion_config_rejects(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        ConversionConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"levels": 0}, "levels"),
        ({"activation": "gelu"}, "activation"),
        ({"threshold": -1.0}, "threshold"),
        ({"steps": 0}, "steps"),
    ],
)
def test_quant_config_rejects(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        QuantConfig(**kwargs)


def test_from_dict_rejects_unknown_fields_and_wrong_kind():
    with pytest.raises(ConfigError, match="bogus"):
        QuantConfig.from_dict({"bogus": 1})
    with pytest.raises(ConfigError, match="kind"):
        QuantConfig.from_dict(ConversionConfig().to_dict())
