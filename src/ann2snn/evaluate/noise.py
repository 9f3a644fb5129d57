"""Input corruptions and attacks as pure functions: salt-and-pepper, Gaussian noise, FGSM, PGD.

Inputs are image batches ``[B, C, H, W]`` (or ``[B, ...]``) with values in [0, 1]; every function returns a new
tensor in [0, 1] and takes an explicit ``torch.Generator`` so results are reproducible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ann2snn.errors import ConfigError, InputError

ATTACK_KINDS = ("sp", "gauss", "fgsm", "pgd")
GRADIENT_KINDS = ("fgsm", "pgd")
_ALIASES = {"salt_pepper": "sp", "saltpepper": "sp", "s&p": "sp", "gaussian": "gauss", "noise": "gauss"}


@dataclasses.dataclass(frozen=True)
class Attack:
    """One corruption: ``kind`` (``"sp"``, ``"gauss"``, ``"fgsm"``, ``"pgd"``) and its strength.

    ``strength`` is the fraction p of corrupted pixels (sp), σ (gauss) or ε in L∞ (fgsm, pgd). PGD runs
    ``steps`` steps of size ``alpha`` (default 2.5·ε/steps) from a random start.
    """

    kind: str
    strength: float
    steps: int = 10
    alpha: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ATTACK_KINDS:
            raise ConfigError(f"attack kind {self.kind!r} is not supported; choose one of {', '.join(ATTACK_KINDS)}")
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not (s >= 0):
            raise ConfigError(f"attack {self.kind}:{s!r} needs a strength >= 0")
        if self.kind == "sp" and s > 1:
            raise ConfigError(f"salt-and-pepper fraction p={s} must be in [0, 1]")
        if self.steps <= 0:
            raise ConfigError(f"pgd steps={self.steps} must be positive")

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.strength:g}"

    @property
    def needs_gradient(self) -> bool:
        return self.kind in GRADIENT_KINDS


def parse_attacks(spec: str | Attack | Sequence[str | Attack]) -> list[Attack]:
    """``"sp:0.05,gauss:0.1,fgsm:0.02,pgd:0.02"`` (or a list of such items / :class:`Attack`) → attacks.

    A bare ``"sp"`` means the paper's protocol p = 0.05.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec) if not isinstance(spec, Attack) else [spec]
    out = []
    for item in items:
        if isinstance(item, Attack):
            out.append(item)
            continue
        text = str(item).strip()
        if not text:
            continue
        kind, _, value = text.partition(":")
        kind = _ALIASES.get(kind.strip().lower(), kind.strip().lower())
        if not value and kind == "sp":
            value = "0.05"
        try:
            strength = float(value)
        except ValueError:
            raise ConfigError(
                f"attack {text!r} must read kind:strength, e.g. sp:0.05, gauss:0.1, fgsm:0.02 or pgd:0.02"
            ) from None
        out.append(Attack(kind, strength))
    if not out:
        raise ConfigError("no attack given; e.g. attacks='sp:0.05,gauss:0.1,fgsm:0.02'")
    return out


def _check_images(x: Tensor) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise InputError(f"expected a floating batch [B, ...] of images in [0, 1], got {getattr(x, 'shape', x)!r}")


def salt_and_pepper(x: Tensor, p: float = 0.05, generator: torch.Generator | None = None) -> Tensor:
    """Set a fraction ``p`` of each image's pixels to black (0) or white (1), exactly half each.

    Every image gets ``k = 2·round(p·N/2)`` corrupted pixels out of N = H·W (all channels of a pixel together):
    k/2 black and k/2 white, at positions drawn without replacement.

    Shape: ``[B, C, H, W]`` (or ``[B, N]`` for flat inputs) → same.
    """
    _check_images(x)
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"salt-and-pepper fraction p={p} must be in [0, 1]")
    B = x.shape[0]
    flat = x.reshape(B, x.shape[1], -1) if x.dim() >= 3 else x.reshape(B, 1, -1)
    n = flat.shape[-1]
    k = min(n - n % 2, 2 * round(p * n / 2))
    order = torch.rand(B, n, generator=generator, device="cpu").argsort(dim=1).to(x.device)
    value = torch.full((B, n), float("nan"), dtype=x.dtype, device=x.device)
    value.scatter_(1, order[:, : k // 2], 0.0)
    value.scatter_(1, order[:, k // 2 : k], 1.0)
    value = value.unsqueeze(1).expand_as(flat)
    out = torch.where(torch.isnan(value), flat, value)
    return out.reshape(x.shape)


def gaussian_noise(x: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """``clamp(x + σ·N(0, 1), 0, 1)`` with independent noise per pixel and channel."""
    _check_images(x)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    return torch.clamp(x + sigma * noise, 0.0, 1.0)


LogitsFn = Callable[[Tensor], Tensor]


def input_gradient(logits_fn: LogitsFn, x: Tensor, y: Tensor) -> Tensor:
    """Gradient of the mean cross-entropy of ``logits_fn(x)`` against ``y`` with respect to ``x``."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(logits_fn(x), y)
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(logits_fn: LogitsFn, x: Tensor, y: Tensor, eps: float) -> Tensor:
    """Fast gradient sign method: ``clamp(x + ε·sign(∇ₓ CE), 0, 1)`` (Goodfellow et al. 2015)."""
    _check_images(x)
    if eps == 0:
        return x.clone()
    return torch.clamp(x + eps * input_gradient(logits_fn, x, y).sign(), 0.0, 1.0).detach()


def pgd(
    logits_fn: LogitsFn,
    x: Tensor,
    y: Tensor,
    eps: float,
    steps: int = 10,
    alpha: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """L∞ projected gradient descent (Madry et al. 2018) from a uniform random start in the ε-ball."""
    _check_images(x)
    if eps == 0:
        return x.clone()
    alpha = 2.5 * eps / steps if alpha is None else alpha
    start = torch.rand(x.shape, generator=generator, dtype=x.dtype, device="cpu").to(x.device)
    adv = torch.clamp(x + eps * (2 * start - 1), 0.0, 1.0)
    for _ in range(steps):
        adv = adv + alpha * input_gradient(logits_fn, adv, y).sign()
        adv = torch.clamp(torch.minimum(torch.maximum(adv, x - eps), x + eps), 0.0, 1.0).detach()
    return adv


def corrupt(
    attack: Attack, x: Tensor, y: Tensor | None = None, logits_fn: LogitsFn | None = None, *, generator=None
) -> Tensor:
    """Apply ``attack`` to the batch; gradient attacks need labels ``y`` and ``logits_fn``."""
    if attack.kind == "sp":
        return salt_and_pepper(x, attack.strength, generator)
    if attack.kind == "gauss":
        return gaussian_noise(x, attack.strength, generator)
    if y is None or logits_fn is None:
        raise ConfigError(f"attack {attack.name} needs labels and a differentiable model to take gradients from")
    if attack.kind == "fgsm":
        return fgsm(logits_fn, x, y, attack.strength)
    return pgd(logits_fn, x, y, attack.strength, attack.steps, attack.alpha, generator)
