"""``ann2snn export``: convert a checkpoint and write the SNN in an interchange format (NIR)."""

from __future__ import annotations

from pathlib import Path

import typer

from ann2snn.cli.app import app
from ann2snn.errors import ConfigError, ExportError

FORMATS = ("nir",)


@app.command("export")
def export_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="ANN checkpoint stem (e.g. runs/x/final)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file, e.g. model.nir."),
    fmt: str = typer.Option("nir", "--format", "-f", help="Export format: nir."),
    method: str = typer.Option("serial", "--method", help="serial (exportable) or parallel (single layer only)."),
    timesteps: int = typer.Option(8, "--timesteps", "-T", help="Simulation steps T (stored in the file)."),
    neuron: str = typer.Option("if", "--neuron", help="Serial neuron: if or lif."),
    leak: float = typer.Option(1.0, "--leak", help="LIF leak λ in (0, 1]."),
    reset: str = typer.Option(
        "subtract", "--reset", help="subtract (written as NIR I + Threshold + reset feedback) or zero (NIR IF/LIF)."
    ),
    v_init: float = typer.Option(0.5, "--v-init", help="Initial potential / θ (with --reset zero: 0 only)."),
    dt: float = typer.Option(1.0, "--dt", help="The consumer's time step: r = 1/dt, τ = dt/(1−λ) (1 is exact)."),
    allow_extensions: bool = typer.Option(
        False, "--allow-extensions", help="Write what standard NIR lacks as documented ann2snn_* node metadata."
    ),
    threshold_mode: str = typer.Option("auto", "--threshold-mode", help="auto, max or percentile."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: the checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    calibration_batches: int = typer.Option(16, "--calibration-batches", help="Batches for data thresholds."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto (export writes CPU arrays)."),
) -> None:
    """Convert an ANN checkpoint into an SNN and write it as a NIR graph (HDF5)."""
    from ann2snn.cli.common import test_and_calibration_loaders
    from ann2snn.config import ConversionConfig
    from ann2snn.data import dataset_info
    from ann2snn.export.checkpoint import load_checkpoint
    from ann2snn.export.nir import export_nir
    from ann2snn.export.nir_neurons import NIRRefusal
    from ann2snn.train import resolve_device
    from ann2snn.transforms.convert import convert

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not supported; choose one of {', '.join(FORMATS)}")
    config = ConversionConfig(
        method=method,
        timesteps=timesteps,
        neuron=neuron,
        leak=leak,
        reset=reset,
        v_init=v_init,
        threshold_mode=threshold_mode,
    )
    ckpt = load_checkpoint(checkpoint, map_location=resolve_device(device))
    name = dataset or ckpt.meta.get("dataset") or "digits"
    calib = None
    if ckpt.quant is None or threshold_mode != "auto":
        _, calib = test_and_calibration_loaders(name, data_dir, None, 128, calibration_batches, model=ckpt.model)
    snn = convert(ckpt.model, config, calibration_data=calib).cpu()
    info = dataset_info(name, data_dir)
    shape = (info.in_channels, info.image_size, info.image_size)
    try:
        graph = export_nir(snn, out, shape, extensions=allow_extensions, dt=dt)
    except NIRRefusal as exc:  # the same refusal, with this command's flags as the advice
        raise ExportError(exc.cli_message) from exc
    extended = graph.metadata.get("ann2snn_extensions") or ""
    typer.echo(f"wrote {out}: {len(graph.nodes)} NIR nodes, {len(graph.edges)} edges, T={timesteps}, dt={dt:g}")
    if extended:
        typer.echo(
            f"note: neuron nodes {extended} carry ann2snn_* metadata (v(0) with reset to zero / linear leak); "
            "a NIR tool that ignores it simulates a different network (see docs/ecosystem.md)"
        )
