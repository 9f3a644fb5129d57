"""``ann2snn convert``: convert a trained checkpoint, show what happened to every layer, save the SNN."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ann2snn.cli import options as o
from ann2snn.cli.app import app
from ann2snn.errors import ConfigError


@app.command("convert", short_help="Convert an ANN checkpoint; show every layer; save the SNN.")
def convert_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="ANN checkpoint stem (e.g. runs/x/final)."),
    method: str = o.method_option(),
    timesteps: int = typer.Option(8, "--timesteps", "-T", help="Simulation steps T."),
    neuron: str = o.neuron_option(),
    leak: float = typer.Option(1.0, "--leak", help="LIF leak λ in (0, 1]."),
    threshold_mode: str = o.threshold_mode_option(),
    per_channel: bool = o.per_channel_option(),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Calibration data (default: checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    calibration_batches: int = typer.Option(
        16, "--calibration-batches", help="Batches for data thresholds and calibration."
    ),
    calibration: str | None = o.calibration_option(),
    estimator: str = o.estimator_option(),
    calibration_sites: str = o.calibration_sites_option(),
    weight_refit: bool | None = o.weight_refit_option(),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Save the SNN in this folder (evaluate/export/robustness read it)."
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Write the conversion summary as JSON."),
) -> None:
    """Convert an ANN checkpoint into an SNN, print the per-layer conversion summary and (with --out) save it."""
    from ann2snn.config import ConversionConfig
    from ann2snn.export.checkpoint import load_checkpoint
    from ann2snn.export.snn_file import is_saved_snn, save_snn
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
    if is_saved_snn(checkpoint):
        raise ConfigError(
            f"{checkpoint} is a saved SNN, already converted; evaluate it with `ann2snn evaluate --checkpoint "
            f"{checkpoint}`, or convert its ANN again with --checkpoint {checkpoint}/ann"
        )
    ckpt = load_checkpoint(checkpoint)
    calib = None
    if ckpt.quant is None or threshold_mode != "auto" or calibration is not None:
        name = dataset or ckpt.meta.get("dataset") or "digits"
        calib = o.calibration_data(name, data_dir, calibration_batches, model=ckpt.model)
    snn = convert(ckpt.model, config, calibration_data=calib)
    typer.echo(snn.summary())
    if json_path is not None:
        summary = snn.extra_state_dict() | {"checkpoint": str(checkpoint), "notes": snn.log}
        atomic_write_text(json_path, json.dumps(summary, indent=2) + "\n")
        typer.echo(f"wrote {json_path}")
    if out is not None:
        save_snn(out, snn, ckpt, source=checkpoint)
        typer.echo(f"wrote {out} (SNN + source ANN + report.md); accuracy: ann2snn evaluate --checkpoint {out}")
