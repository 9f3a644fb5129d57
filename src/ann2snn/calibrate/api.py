"""``calibrate``: error calibration of a converted SNN chosen by ``ConversionConfig.calibration``.

``convert(model, config, calibration_data=...)`` calls :func:`calibrate` itself when ``config.calibration`` is set;
call it directly to calibrate an SNN you already have (it returns a new SNN and never mutates its inputs).

Example:
    >>> import torch, ann2snn as a2s
    >>> from torch import nn
    >>> ann = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> data = [torch.rand(32, 1, 4, 4) for _ in range(4)]
    >>> cfg = a2s.ConversionConfig(method="parallel", timesteps=4, per_channel=True, percentile=99.9)
    >>> snn = a2s.convert(ann, cfg, calibration_data=data)
    >>> snn_da = calibrate(snn, ann, data, cfg.replace(calibration="da"))
    >>> snn_da.log[-3].startswith("DA calibration (match, objective=mse_threshold, weight refit)")
    True
    >>> snn_da.log[-2].split(":")[0]  # the refit layers (plain-ReLU model: refit by default), each with its λ
    'weight refit'
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from torch import nn

from ann2snn.calibrate.da import calibrate_da, calibrate_da_
from ann2snn.calibrate.li import calibrate_li
from ann2snn.config import ConversionConfig
from ann2snn.errors import ConfigError
from ann2snn.simulate.model import SpikingModel


def calibrate(
    snn: SpikingModel,
    ann: nn.Module,
    data: Iterable[Any] | None,
    config: ConversionConfig | None = None,
    *,
    progress: bool = True,
    inplace: bool = False,
) -> SpikingModel:
    """Calibrate ``snn`` (converted from ``ann``) on ``data`` as ``config.calibration`` says.

    Args:
        snn: the converted SNN.
        ann: the ANN it came from (reference branch).
        data: calibration batches (tensors or ``(x, y)``); at most ``config.calibration_batches`` are used.
        config: which calibration (``"da"``, ``"li_bias"``, ``"li_potential"``) and its estimator; default
            ``snn.config``.
        progress: show a progress bar on a terminal.
        inplace: calibrate ``snn`` itself (used by ``convert`` on the SNN it just built).

    Returns:
        The calibrated SNN (``snn`` itself only when ``inplace``).
    """
    config = snn.config if config is None else config
    if config.calibration is None:
        raise ConfigError("calibrate: config.calibration is None; set calibration='da', 'li_bias' or 'li_potential'")
    if config.calibration == "da":
        if _lossless(snn):
            result = snn if inplace else copy.deepcopy(snn)
            result.log.append(
                f"DA calibration skipped: every site is QCFS with L = T = {snn.timesteps} and its "
                "trained threshold, so the SNN is already lossless"
            )
            return result
        fn = calibrate_da_ if inplace else calibrate_da
        return fn(
            snn,
            ann,
            data,
            estimator=config.estimator,
            ema_alpha=config.ema_alpha,
            max_batches=config.calibration_batches,
            progress=progress,
            refit=config.weight_refit,
            sites=config.calibration_sites,
        )
    mode = "bias" if config.calibration == "li_bias" else "potential"
    return calibrate_li(snn, ann, data, mode=mode, max_batches=config.calibration_batches, progress=progress)


def _lossless(snn: SpikingModel) -> bool:
    """A parallel SNN of a QCFS ANN at T = L with the trained thresholds: exact already (methods.md §3)."""
    return (
        snn.config.method == "parallel"
        and bool(snn.sites)
        and all(
            s.source == "qcfs" and s.levels == snn.timesteps and s.threshold_from == "qcfs threshold" for s in snn.sites
        )
    )
