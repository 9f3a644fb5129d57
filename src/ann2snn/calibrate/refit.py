"""Least-squares weight refit of the synaptic layers of a calibrated SNN (closed form, no gradients).

At T = 1–2 a spiking layer's output is a coarse copy of the ANN's activation and its errors are correlated across
channels; per-channel ψ_DA / φ_DA cannot undo that, the next layer's weights can. For a ``Conv2d`` / ``Linear``
layer fed by spikes, with ``x_s`` its input in the SNN and ``x_a`` its input in the ANN on the same images, the refit
is ridge regression toward the ANN's own weights:

    ``[W', b'] = argmin Σ ‖W'·x_s + b' − (W·x_a + b)‖² + λ·‖[W', b'] − [W, b]‖²``

solved from two Gram matrices ``Σ x̃_s x̃_sᵀ`` and ``Σ x̃_a x̃_sᵀ`` (``x̃ = [x; 1]``; conv inputs as im2col patches).
λ is relative to the mean diagonal of the Gram matrix and chosen per layer on held-out images from
:data:`LAMBDAS`, with "keep the ANN's weights" as a candidate, so a layer changes only where that lowers the held-out
error of its output. In the spirit of the weight calibration of Li et al. (2021), which solves the same layer-wise
reconstruction by gradient descent.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LAMBDAS = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)  # held-out candidates (relative ridge strength)
DEFAULT_LAMBDA = 0.1  # used when no image is held out (batches of fewer than HOLDOUT_EVERY images)
HOLDOUT_EVERY = 8  # image i of every batch is held out when i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
MAX_FEATURES = 8192  # wider layers (input features + 1) are not refit: their Gram matrices get too large
MAX_ROWS = 8192  # rows (images × output positions) kept per batch and part, at random
CHUNK_ELEMENTS = 1 << 24  # im2col elements built at once


def refit_support(module: nn.Module) -> str | None:
    """``None`` if ``module`` can be refit, else why not (a short phrase for the log)."""
    if isinstance(module, nn.Linear):
        width = module.in_features
    elif type(module) is nn.Conv2d:
        if module.groups != 1 or module.padding_mode != "zeros" or isinstance(module.padding, str):
            return "grouped, non-zero-padded or string-padded convolution"
        width = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
    else:
        return f"{type(module).__name__} layers are not refit"
    if width + 1 > MAX_FEATURES:
        return f"{width} input features (the limit is {MAX_FEATURES - 1})"
    return None


def _patches(module: nn.Module, x: Tensor) -> Tensor:
    """``[B, d, P]``: what the layer's output is linear in (conv: im2col; linear: ``[N, d, 1]``, a view)."""
    if isinstance(module, nn.Linear):
        return x.reshape(-1, x.shape[-1]).unsqueeze(2)
    assert isinstance(module, nn.Conv2d) and not isinstance(module.padding, str)
    return F.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)


def layer_rows(module: nn.Module, x: Tensor) -> Tensor:
    """Rows ``x`` the layer's output is linear in, ``[N, d]`` (conv: one im2col patch per output position)."""
    cols = _patches(module, x)
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _positions(module: nn.Module, x: Tensor) -> int:
    """Rows of :func:`layer_rows` per image (conv: output positions; linear: rows of the flattened leading dims)."""
    if isinstance(module, nn.Linear):
        return x[0].numel() // x.shape[-1] if x.dim() > 2 else 1
    assert isinstance(module, nn.Conv2d) and not isinstance(module.padding, str)
    return math.prod(_out_size(module, x))


def _out_size(module: nn.Conv2d, x: Tensor) -> tuple[int, int]:
    assert not isinstance(module.padding, str)
    return tuple(  # type: ignore[return-value]
        (x.shape[2 + i] + 2 * module.padding[i] - module.dilation[i] * (module.kernel_size[i] - 1) - 1)
        // module.stride[i]
        + 1
        for i in range(2)
    )


def _rows_at(module: nn.Module, xs: tuple[Tensor, ...], image: Tensor, position: Tensor) -> list[Tensor]:
    """Rows ``image·positions + position`` of :func:`layer_rows` of each of ``xs`` (same shape), one patch each."""
    x = xs[0]
    if isinstance(module, nn.Linear):
        index = image * _positions(module, x) + position
        return [t.reshape(-1, t.shape[-1])[index] for t in xs]
    assert isinstance(module, nn.Conv2d) and not isinstance(module.padding, str)
    (ph, pw), (kh, kw) = module.padding, module.kernel_size
    width = _out_size(module, x)[1]
    c, h, w = x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw  # the zero-padded input
    dev = x.device
    corner = image * (c * h * w) + (position // width) * (module.stride[0] * w) + (position % width) * module.stride[1]
    rows = torch.arange(kh, device=dev) * (module.dilation[0] * w)
    cols = torch.arange(kw, device=dev) * module.dilation[1]
    patch = (torch.arange(c, device=dev)[:, None, None] * (h * w) + rows[:, None] + cols).reshape(-1)  # unfold's order
    index = (corner.unsqueeze(1) + patch).reshape(-1)
    return [F.pad(t, (pw, pw, ph, ph)).reshape(-1).index_select(0, index).reshape(len(image), -1) for t in xs]


def layer_features(module: nn.Module, x: Tensor) -> Tensor:
    """:func:`layer_rows` with a ones column, ``[N, d + 1]`` float64: ``features @ [W, b]ᵀ`` is the layer's output."""
    return _with_ones(layer_rows(module, x))


def _with_ones(rows: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    rows = rows.to(dtype)
    return torch.cat([rows, torch.ones(len(rows), 1, dtype=rows.dtype, device=rows.device)], dim=1)


def augmented_weight(module: nn.Linear | nn.Conv2d) -> Tensor:
    """``[W, b]`` as ``[out, d + 1]`` float64 (b = 0 for a layer without bias)."""
    w = module.weight.detach().reshape(module.weight.shape[0], -1).to(torch.float64)
    b = torch.zeros(len(w), dtype=w.dtype, device=w.device) if module.bias is None else module.bias.detach()
    return torch.cat([w, b.to(w).unsqueeze(1)], dim=1)


def ridge_refit(weight: Tensor, gram_ss: Tensor, gram_as: Tensor, lam: float, *, w_gas: Tensor | None = None) -> Tensor:
    """The minimiser ``W' = W·(G_as + μI)·(G_ss + μI)⁻¹`` with ``μ = λ·trace(G_ss)/d``.

    ``w_gas``: ``W·G_as`` if already computed (it does not depend on λ).

    Shape: ``weight`` ``[out, d]``; ``gram_ss = Σ x_s x_sᵀ`` and ``gram_as = Σ x_a x_sᵀ`` ``[d, d]``.
    """
    mu = lam * torch.trace(gram_ss) / gram_ss.shape[0]
    rhs = ((weight @ gram_as if w_gas is None else w_gas) + mu * weight).T
    system = gram_ss.clone()
    system.diagonal().add_(mu)
    factor, info = torch.linalg.cholesky_ex(system)  # symmetric positive definite for μ > 0
    if int(info) == 0:
        return torch.cholesky_solve(rhs, factor).T
    return torch.linalg.solve(system, rhs).T


def relative_error(
    new: Tensor, weight: Tensor, gram_ss: Tensor, gram_as: Tensor, *, w_gas: Tensor | None = None
) -> float:
    """``Σ ‖W'x_s − W x_a‖²`` up to the constant ``Σ ‖W x_a‖²`` (enough to compare candidates)."""
    return float(torch.sum((new @ gram_ss) * new) - 2 * torch.sum((weight @ gram_as if w_gas is None else w_gas) * new))


class DeviceGenerator:
    """A seeded generator made on the data's device at its first use, so sample indices never cross devices."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.gen: torch.Generator | None = None

    def on(self, device: torch.device) -> torch.Generator:
        if self.gen is None:
            self.gen = torch.Generator(device=device).manual_seed(self.seed)
        return self.gen


class GramPair:
    """Running ``Σ x̃_s x̃_sᵀ`` and ``Σ x̃_a x̃_sᵀ`` of one layer, for fitted and held-out images."""

    def __init__(self, module: nn.Linear | nn.Conv2d, seed: int = 0) -> None:
        self.module = module
        self.fit: dict[str, Tensor] = {}
        self.held: dict[str, Tensor] = {}
        self._differs: Tensor | None = None  # on the device; read once, after the last batch
        self.gen = DeviceGenerator(seed)  # the random sample positions

    def add(self, x_ref: Tensor, x_cal: Tensor) -> None:
        """Add one batch: ``x_ref`` the layer's input in the ANN, ``x_cal`` in the SNN (same images)."""
        differs = (x_ref != x_cal).any()
        self._differs = differs if self._differs is None else self._differs | differs
        n, device = len(x_cal), x_cal.device  # held-out rows by index (a boolean mask would sync to size it)
        held = torch.arange(HOLDOUT_EVERY - 1, max(n, HOLDOUT_EVERY - 1), HOLDOUT_EVERY, device=device)
        kept = torch.arange(n - n // HOLDOUT_EVERY, device=device)
        fit = kept + kept // (HOLDOUT_EVERY - 1)  # the k-th image not held out
        for part, rows in ((self.fit, fit), (self.held, held)):
            if len(rows):
                self._accumulate(part, x_ref[rows], x_cal[rows])

    @property
    def differs(self) -> bool:
        """Whether the SNN's input to the layer differed from the ANN's in any batch added so far."""
        return self._differs is not None and bool(self._differs)

    def _accumulate(self, part: dict[str, Tensor], x_ref: Tensor, x_cal: Tensor) -> None:
        kernel = self.module.kernel_size if isinstance(self.module, nn.Conv2d) else (1, 1)
        per_image = max(1, x_cal[0].numel() * kernel[0] * kernel[1])  # im2col grows an image by the kernel area
        chunk = max(1, CHUNK_ELEMENTS // per_image)  # images per im2col chunk (bounded memory)
        keep_per_image = MAX_ROWS / len(x_cal)
        for i in range(0, len(x_cal), chunk):
            n_keep = max(1, int(keep_per_image * len(x_cal[i : i + chunk])))
            rs, ra = self._sample(x_cal[i : i + chunk], x_ref[i : i + chunk], n_keep)
            fs, fa = _with_ones(rs, rs.dtype), _with_ones(ra, rs.dtype)
            for key, value in (("ss", fs.T @ fs), ("as", fa.T @ fs)):  # in the model's dtype, summed in float64
                value = value.to(torch.float64)
                part[key] = part[key] + value if key in part else value

    def _sample(self, x_cal: Tensor, x_ref: Tensor, n_keep: int) -> tuple[Tensor, Tensor]:
        """The same ≤ ``n_keep`` random rows of :func:`layer_rows` of both inputs, without building all rows."""
        positions = _positions(self.module, x_cal)
        n_rows = len(x_cal) * positions
        if n_rows <= n_keep:
            return layer_rows(self.module, x_cal), layer_rows(self.module, x_ref)
        picks = torch.randperm(n_rows, generator=self.gen.on(x_cal.device), device=x_cal.device)[:n_keep]
        image, position = picks // positions, picks % positions
        rows_cal, rows_ref = _rows_at(self.module, (x_cal, x_ref), image, position)
        return rows_cal, rows_ref

    @property
    def rows(self) -> int:
        """Rows (images × output positions) in the fitted part so far."""
        return int(self.fit["ss"][-1, -1]) if "ss" in self.fit else 0  # Σ 1·1 over the ones column

    @property
    def parameters(self) -> int:
        """Parameters per output channel: the input features and the bias."""
        return int(augmented_weight(self.module).shape[1])

    def solve(self) -> tuple[Tensor | None, float | None]:
        """The refit ``[W', b']`` and its λ, or ``(None, None)`` where keeping the ANN's weights is best."""
        if not self.differs or "ss" not in self.fit:
            return None, None
        weight = augmented_weight(self.module)
        if "ss" not in self.held:  # nothing held out: a fixed λ on everything
            return ridge_refit(weight, self.fit["ss"], self.fit["as"], DEFAULT_LAMBDA), DEFAULT_LAMBDA
        fit_gas, held_gas = weight @ self.fit["as"], weight @ self.held["as"]
        best_err, best_lam = relative_error(weight, weight, self.held["ss"], self.held["as"], w_gas=held_gas), None
        for lam in LAMBDAS:
            candidate = ridge_refit(weight, self.fit["ss"], self.fit["as"], lam, w_gas=fit_gas)
            err = relative_error(candidate, weight, self.held["ss"], self.held["as"], w_gas=held_gas)
            if err < best_err:
                best_err, best_lam = err, lam
        if best_lam is None:
            return None, None
        total_ss, total_as = self.fit["ss"] + self.held["ss"], self.fit["as"] + self.held["as"]
        return ridge_refit(weight, total_ss, total_as, best_lam), best_lam


def apply_refit(module: nn.Linear | nn.Conv2d, new: Tensor) -> None:
    """Write ``[W', b']`` into ``module`` (adds a bias to a layer that had none)."""
    weight = new[:, :-1].reshape(module.weight.shape).to(module.weight)
    bias = new[:, -1].to(module.weight)
    with torch.no_grad():
        module.weight.copy_(weight)
        if module.bias is None:
            module.bias = nn.Parameter(bias, requires_grad=module.weight.requires_grad)
        else:
            module.bias.copy_(bias)
