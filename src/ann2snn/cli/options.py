"""Options several commands share, and loading what ``--checkpoint`` names (an ANN checkpoint or a saved SNN).

Help texts are generated from the choice lists the library validates against (:mod:`ann2snn.config`), so the
help cannot list fewer or other choices than the code accepts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import typer

from ann2snn.config import CALIBRATION_SITES, CALIBRATIONS, ESTIMATORS, METHODS, NEURONS, RESETS, THRESHOLD_MODES
from ann2snn.errors import ConfigError

SIM_MODES = ("auto", "spike", "rate")  # ann2snn.evaluate's mode argument


def choices(values: Iterable[str]) -> str:
    """``"a, b or c"``."""
    items = list(values)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


CHECKPOINT_HELP = "ANN checkpoint stem (e.g. runs/x/final) or a saved SNN folder (from convert --out)."


def checkpoint_option() -> Any:
    return typer.Option(..., "--checkpoint", "-c", help=CHECKPOINT_HELP)


def method_option(default: str | None = "parallel", help_suffix: str = "") -> Any:
    return typer.Option(default, "--method", help=f"Conversion method: {choices(METHODS)}.{help_suffix}")


def neuron_option() -> Any:
    return typer.Option("if", "--neuron", help=f"Serial neuron: {choices(NEURONS)}.")


def threshold_mode_option() -> Any:
    return typer.Option(
        "auto", "--threshold-mode", help=f"Thresholds: {choices(THRESHOLD_MODES)} (auto: trained, else data)."
    )


def per_channel_option() -> Any:
    return typer.Option(False, "--per-channel/--no-per-channel", help="Data thresholds per channel (or per layer).")


def calibration_option() -> Any:
    return typer.Option(
        None,
        "--calibration",
        help=f"Error calibration: {choices(CALIBRATIONS)} (da: parallel; li_*: serial IF). Default: none.",
    )


def estimator_option() -> Any:
    return typer.Option("match", "--estimator", help=f"DA estimator: {choices(ESTIMATORS)}.")


def calibration_sites_option() -> Any:
    return typer.Option(
        "all",
        "--calibration-sites",
        help=f"DA: calibrate {choices(CALIBRATION_SITES)} sites (conv: conv sites only, as the paper's code).",
    )


def weight_refit_option() -> Any:
    return typer.Option(
        None,
        "--weight-refit/--no-weight-refit",
        help="DA: refit spike-fed layers (default: on with match at T=1 or on ReLU sites).",
    )


def reset_option() -> Any:
    return typer.Option(
        "subtract",
        "--reset",
        help=f"Serial reset: {choices(RESETS)} (subtract: NIR I + Threshold + feedback; zero: NIR IF/LIF).",
    )


def mode_option() -> Any:
    return typer.Option("auto", "--mode", help=f"SNN simulation: {choices(SIM_MODES)} (auto: rate for parallel).")


def quiet_option() -> Any:
    return typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress bars.")


# ------------------------------------------------------------------------------------------------------ sources
@dataclasses.dataclass
class Source:
    """What ``--checkpoint`` named: the ANN (always) and, for a saved SNN folder, the SNN itself."""

    path: Path
    ann: Any  # nn.Module
    meta: dict[str, Any]
    quant: Any  # QuantConfig | None
    snn: Any = None  # SpikingModel | None

    def dataset(self, override: str | None) -> str:
        return override or self.meta.get("dataset") or "digits"

    def report(self, dataset: str) -> dict[str, Any]:
        """What a report names as its source: model, dataset, this path and the SHA-256 of the ANN's weights."""
        return {
            "model": self.meta["model"]["name"],
            "dataset": dataset,
            "checkpoint": str(self.path),
            "checkpoint_sha256": self.meta["weights"]["sha256"],
        }


def load_source(path: Path, device: Any = "cpu") -> Source:
    """Load an ANN checkpoint or a saved SNN folder (with the ANN it was converted from)."""
    from ann2snn.export.checkpoint import load_checkpoint
    from ann2snn.export.snn_file import is_saved_snn, load_snn

    if is_saved_snn(path):
        saved = load_snn(path, map_location=device)
        return Source(path, saved.ann.model, saved.ann.meta, saved.ann.quant, saved.snn)
    ckpt = load_checkpoint(path, map_location=device)
    return Source(path, ckpt.model, ckpt.meta, ckpt.quant)


def given_options(ctx: typer.Context, names: Iterable[str]) -> list[str]:
    """The options among ``names`` (parameter names) that the user typed on the command line."""
    given = []
    for param in ctx.command.params:
        if param.name in names:
            source = ctx.get_parameter_source(param.name)  # type: ignore[arg-type]
            if source is not None and source.name == "COMMANDLINE":
                given.append(max(param.opts, key=len))
    return given


def refuse_conversion_options(ctx: typer.Context, source: Source, names: Iterable[str]) -> None:
    """A saved SNN is already converted: options that would convert it again are an error, not ignored."""
    if source.snn is None:
        return
    given = given_options(ctx, names)
    if given:
        cfg = source.snn.config
        raise ConfigError(
            f"{', '.join(given)} set(s) how to convert an ANN, but {source.path} is a saved SNN (method={cfg.method}, "
            f"T={cfg.timesteps}, calibration={cfg.calibration}); drop {'them' if len(given) > 1 else 'it'} or pass "
            f"the ANN checkpoint {source.path}/ann instead"
        )


CALIBRATION_BATCH_SIZE = 128


def calibration_data(dataset: str, data_dir: Path | None, batches: int, model: Any = None) -> list[Any]:
    """The first ``batches`` shuffled (seed 0) training batches of 128: the same for every command.

    With ``model``, first checks that it fits ``dataset`` (class count, channels, image size).
    """
    from ann2snn.cli.common import test_and_calibration_loaders

    return test_and_calibration_loaders(dataset, data_dir, None, CALIBRATION_BATCH_SIZE, batches, model=model)[1]
