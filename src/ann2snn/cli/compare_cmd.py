"""``ann2snn compare``: several conversion methods of one checkpoint, one table at equal latency T_total."""

from __future__ import annotations

from pathlib import Path

import typer

from ann2snn.cli import options as o
from ann2snn.cli.app import app
from ann2snn.cli.common import echo_table, fmt, parse_int_list
from ann2snn.evaluate.compare import METHOD_SPECS

METHODS_HELP = f"Comma-separated methods: {', '.join(METHOD_SPECS)}; 'srp:N' / 'cos:N' set that entry's pre-steps."


@app.command("compare", short_help="Compare conversion methods at equal latency T_total.")
def compare_command(
    checkpoint: Path = typer.Option(
        ..., "--checkpoint", "-c", help="ANN checkpoint stem, or a saved SNN folder (its source ANN is compared)."
    ),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: the checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    methods: str = typer.Option("serial,parallel,parallel+da,srp,cos,signed", "--methods", "-m", help=METHODS_HELP),
    timesteps: str = typer.Option("1,2,4,8", "--timesteps", "-T", help="Comma-separated T values (read steps)."),
    presteps: int = typer.Option(4, "--presteps", "-p", help="Pre-simulation steps of srp/cos (τ, ρ)."),
    calibration_batches: int = typer.Option(16, "--calibration-batches", help="Batches for data thresholds."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Evaluation batch size."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate on the first N test samples only."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for compare.csv/.md/.json/.png."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = o.quiet_option(),
) -> None:
    """Compare conversion methods of an ANN checkpoint on the same data; latency T_total = presteps + T."""
    from ann2snn.cli.common import test_and_calibration_loaders
    from ann2snn.errors import ConfigError
    from ann2snn.evaluate.compare import compare, parse_method
    from ann2snn.train import resolve_device

    ts = parse_int_list(timesteps, "--timesteps")
    names = [m for m in methods.split(",") if m.strip()]
    if presteps < 0:
        raise ConfigError(f"--presteps {presteps} must be >= 0")
    for name in names:
        parse_method(name, presteps)  # fail before loading anything
    dev = resolve_device(device)
    source = o.load_source(checkpoint, dev)
    if source.snn is not None:
        typer.echo(f"note: {checkpoint} is a saved SNN; comparing the methods on the ANN it was converted from")
    name = source.dataset(dataset)
    needs_data = source.quant is None or any(parse_method(n, presteps)[1].get("calibration") for n in names)
    test, _ = test_and_calibration_loaders(name, data_dir, limit, batch_size, 0, model=source.ann)
    calib = o.calibration_data(name, data_dir, calibration_batches) if needs_data else None
    report = compare(source.ann, test, names, ts, presteps=presteps, calibration_data=calib, progress=not quiet)
    by_latency = report.by_latency()
    echo_table(
        f"{name}: accuracy (%) at equal latency T_total = presteps + T (ANN {fmt(report.ann_accuracy)})",
        ["T_total", *report.methods],
        [[str(t), *(fmt(accs.get(m)) for m in report.methods)] for t, accs in by_latency.items()],
    )
    if out is not None:
        paths = report.save(out)
        typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
