"""Model registry: ``@register_model(name)``, :func:`create_model`, :func:`list_models`, and the model base.

Every registered model derives from :class:`ModelBase`: it records its constructor arguments in
``self.model_kwargs`` (so ``create_model(**model.model_kwargs)`` rebuilds the same architecture from a
checkpoint) and offers ``example_inputs(batch_size)`` for tracing and smoke tests.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from ann2snn.errors import ConfigError
from ann2snn.limits import INT_RANGES, check_int

_MODELS: dict[str, Callable[..., ModelBase]] = {}
F = TypeVar("F", bound=Callable[..., "ModelBase"])
POOLS = ("avg", "max")


def check_positive(name: str, value: Any) -> int:
    """Raise ConfigError unless ``value`` is a positive int (in its range if :data:`ann2snn.limits.INT_RANGES` has
    one: ``num_classes`` 1..1000000, ``in_channels`` 1..65536, ``image_size`` 1..16384)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer")
    if name in INT_RANGES:
        check_int(name, value)
    return value


def make_pool(pool: str) -> nn.Module:
    """A 2x2, stride-2 pooling layer: ``"avg"`` (converts exactly to spikes) or ``"max"``."""
    if pool not in POOLS:
        raise ConfigError(f"pool={pool!r} is not supported; choose one of {', '.join(map(repr, POOLS))}")
    return nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)


class ModelBase(nn.Module):
    """Base class of the registered models.

    Args:
        name: Registry name, stored in ``model_kwargs["name"]``.
        num_classes: Outputs K.
        in_channels: Input channels C.
        image_size: Side S of the square input.
        **extras: Further constructor options, recorded in ``model_kwargs``.
    """

    def __init__(self, name: str, num_classes: int, in_channels: int, image_size: int, **extras: Any) -> None:
        super().__init__()
        check_positive("num_classes", num_classes)
        check_positive("in_channels", in_channels)
        check_positive("image_size", image_size)
        self.model_kwargs: dict[str, Any] = {
            "name": name,
            "num_classes": num_classes,
            "in_channels": in_channels,
            "image_size": image_size,
            **extras,
        }

    def example_inputs(self, batch_size: int = 2) -> torch.Tensor:
        """Deterministic random images ``[batch_size, C, S, S]`` in ``[0, 1]`` on the model's device."""
        check_positive("batch_size", batch_size)
        kw = self.model_kwargs
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(batch_size, kw["in_channels"], kw["image_size"], kw["image_size"], generator=generator)
        param = next(self.parameters(), None)
        return x if param is None else x.to(param.device)


def register_model(name: str) -> Callable[[F], F]:
    """Decorator registering a model factory (a ModelBase subclass or a function returning one) under ``name``.

    The factory is called as ``factory(num_classes=..., in_channels=..., image_size=..., **kwargs)``.
    """

    def decorator(factory: F) -> F:
        if name in _MODELS:
            raise ConfigError(f"model {name!r} is already registered")
        _MODELS[name] = factory
        return factory

    return decorator


def list_models() -> tuple[str, ...]:
    """Names of the registered models, sorted."""
    return tuple(sorted(_MODELS))


def create_model(
    name: str, num_classes: int = 10, in_channels: int = 3, image_size: int = 32, *, seed: int | None = 0, **kwargs: Any
) -> nn.Module:
    """Build a registered model, its initial weights drawn from ``seed``.

    The same name, options and seed give bit-identical weights in every process on one machine (the global RNG
    is neither read nor changed); ``seed=None`` draws from torch's global RNG instead.

    Args:
        name: One of :func:`list_models`.
        num_classes: Outputs K.
        in_channels: Input channels C (1 for digits/Fashion-MNIST, 3 for CIFAR).
        image_size: Side S of the square input.
        seed: Seed of the weight initialisation (a non-negative integer below 2**63), or ``None``.
        **kwargs: Model-specific options (e.g. ``pool="max"`` for cnn/vgg).

    Shape:
        The model maps ``[B, C, S, S]`` to logits ``[B, K]``.

    Raises:
        ConfigError: Unknown name or option, or an invalid value.
    """
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    factory = _MODELS[name]
    params = inspect.signature(factory).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    fixed = {"name", "num_classes", "in_channels", "image_size", "self"}
    known = sorted(p for p in params if p not in fixed and params[p].kind is not inspect.Parameter.VAR_KEYWORD)
    unknown = sorted(set(kwargs) - set(known))
    if unknown and not accepts_any:
        raise ConfigError(
            f"model {name!r} has no option(s) {', '.join(unknown)}; its options: {', '.join(known) or 'none'}"
        )
    if seed is None:
        return factory(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed={seed!r} must be None or an integer in [0, 2**63)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory(num_classes=num_classes, in_channels=in_channels, image_size=image_size, **kwargs)


__all__ = ["POOLS", "ModelBase", "check_positive", "create_model", "list_models", "make_pool", "register_model"]
