"""``ann2snn convert``: convert a trained checkpoint and show what happened to every layer."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ann2snn.cli.app import app
from ann2snn.cli.common import METHOD_HELP


@app.command("convert")
def convert_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="ANN checkpoint stem (e.g. runs/x/final)."),
    method: str = typer.Option("parallel", "--method", help=METHOD_HELP),
    timesteps: int = typer.Option(8, "--timesteps", "-T", help="Simulation steps T."),
    neuron: str = typer.Option("if", "--neuron", help="Serial neuron: if or lif."),
    leak: float = typer.Option(1.0, "--leak", help="LIF leak λ in (0, 1]."),
    threshold_mode: str = typer.Option("auto", "--threshold-mode", help="auto, max or percentile."),
    per_channel: bool = typer.Option(False, "--per-channel", help="Data thresholds per channel."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Calibration data (default: checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    calibration_batches: int = typer.Option(
        16, "--calibration-batches", help="Batches for data thresholds and calibration."
    ),
    calibration: str | None = typer.Option(
        None, "--calibration", help="Error calibration: da (parallel), li_bias or li_potential (serial IF)."
    ),
    estimator: str = typer.Option("match", "--estimator", help="DA estimator: match, ema, ema_theta or mean."),
    calibration_sites: str = typer.Option(
        "all", "--calibration-sites", help="DA: calibrate all sites, or conv sites only (as the paper's code)."
    ),
    weight_refit: bool | None = typer.Option(
        None,
        "--weight-refit/--no-weight-refit",
        help="DA: refit spike-fed layers (default: match at T=1 or on ReLU sites).",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write the conversion summary as JSON."),
) -> None:
    """Convert an ANN checkpoint into an SNN and print the per-layer conversion summary."""
    from ann2snn.cli.common import test_and_calibration_loaders
    from ann2snn.config import ConversionConfig
    from ann2snn.export.checkpoint import load_checkpoint
    from ann2snn.io import atomic_write_text
    from ann2snn.transforms.convert import convert

    config = ConversionConfig(
        method=method,
        timesteps=timesteps,
        neuron=neuron,
        leak=leak,
        threshold_mode=threshold_mode,
        per_channel=per_channel,
        calibration=calibration,
        estimator=estimator,
        weight_refit=weight_refit,
        calibration_sites=calibration_sites,
        calibration_batches=calibration_batches,
    )
    ckpt = load_checkpoint(checkpoint)
    calib = None
    if ckpt.quant is None or threshold_mode != "auto" or calibration is not None:
        name = dataset or ckpt.meta.get("dataset") or "digits"
        _, calib = test_and_calibration_loaders(name, data_dir, None, 128, calibration_batches, model=ckpt.model)
    snn = convert(ckpt.model, config, calibration_data=calib)
    typer.echo(snn.summary())
    if json_path is not None:
        summary = snn.extra_state_dict() | {"checkpoint": str(checkpoint), "notes": snn.log}
        atomic_write_text(json_path, json.dumps(summary, indent=2) + "\n")
        typer.echo(f"wrote {json_path}")
