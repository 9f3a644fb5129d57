"""``ann2snn evaluate``: accuracy of the ANN and its SNN at every T, with a report on disk."""

from __future__ import annotations

from pathlib import Path

import typer

from ann2snn.cli.app import app
from ann2snn.cli.common import METHOD_HELP, cost_line, echo_table, fmt, parse_int_list


@app.command("evaluate")
def evaluate_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="ANN checkpoint stem (e.g. runs/x/final)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: the checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    method: str = typer.Option("parallel", "--method", help=METHOD_HELP),
    timesteps: str = typer.Option("1,2,4,8", "--timesteps", "-T", help="Comma-separated T values."),
    mode: str = typer.Option("auto", "--mode", help="auto (rate for parallel), spike or rate."),
    neuron: str = typer.Option("if", "--neuron", help="Serial neuron: if or lif."),
    leak: float = typer.Option(1.0, "--leak", help="LIF leak λ in (0, 1]."),
    threshold_mode: str = typer.Option("auto", "--threshold-mode", help="auto, max or percentile."),
    calibration_batches: int = typer.Option(16, "--calibration-batches", help="Batches for data thresholds."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Evaluation batch size."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate on the first N test samples only."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for report.json, report.md, PNGs."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the report JSON here."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Evaluate an ANN checkpoint and its converted SNN at every T; print the table, write the report."""
    from ann2snn.cli.common import test_and_calibration_loaders
    from ann2snn.config import ConversionConfig
    from ann2snn.evaluate import evaluate
    from ann2snn.export.checkpoint import load_checkpoint
    from ann2snn.train import resolve_device
    from ann2snn.transforms.convert import convert

    ts = parse_int_list(timesteps, "--timesteps")
    dev = resolve_device(device)
    ckpt = load_checkpoint(checkpoint, map_location=dev)
    name = dataset or ckpt.meta.get("dataset") or "digits"
    test, calib = test_and_calibration_loaders(name, data_dir, limit, batch_size, calibration_batches, model=ckpt.model)
    config = ConversionConfig(method=method, timesteps=max(ts), neuron=neuron, leak=leak, threshold_mode=threshold_mode)
    needs_data = ckpt.quant is None or threshold_mode != "auto"
    snn = convert(ckpt.model, config, calibration_data=calib if needs_data else None, progress=not quiet)
    source = {**ckpt.source, "dataset": name}
    report = evaluate(ckpt.model, snn, test, ts, mode=mode, progress=not quiet, source=source)
    echo_table(
        f"{name}: ANN vs SNN ({method}) accuracy (%)",
        ["T", "ANN", "SNN", "gap (pp)"],
        [[str(t), fmt(report.ann_accuracy), fmt(report.snn_accuracy[t]), fmt(report.gap(t))] for t in ts],
    )
    if out is not None:
        from ann2snn.evaluate.html import write_full_report
        from ann2snn.evaluate.progress import phase

        with phase("writing the report (costs, layer errors, plots)", enabled=not quiet):
            paths = write_full_report(report, ckpt.model, snn, next(iter(test))[0].to(dev), out)
        typer.echo(cost_line(report))
        typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    if json_path is not None:
        report.to_json(json_path)
        typer.echo(f"wrote {json_path}")
