"""``ann2snn evaluate``: accuracy of the ANN and its SNN at every T, with a report on disk."""

from __future__ import annotations

from pathlib import Path

import typer

from ann2snn.cli import options as o
from ann2snn.cli.app import app
from ann2snn.cli.common import cost_line, echo_table, fmt, parse_int_list
from ann2snn.errors import ConfigError

# Parameters that say how to convert an ANN: an error when --checkpoint names a saved SNN.
CONVERSION_PARAMS = (
    "method",
    "neuron",
    "leak",
    "threshold_mode",
    "per_channel",
    "calibration",
    "estimator",
    "weight_refit",
    "calibration_sites",
    "calibration_batches",
)


@app.command("evaluate", short_help="Accuracy of the ANN and its SNN at every T; report on disk.")
def evaluate_command(
    ctx: typer.Context,
    checkpoint: Path = o.checkpoint_option(),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: the checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    method: str = o.method_option(),
    timesteps: str | None = typer.Option(
        None, "--timesteps", "-T", help="Comma-separated T values (default: 1,2,4,8; a saved SNN: its T)."
    ),
    mode: str = o.mode_option(),
    neuron: str = o.neuron_option(),
    leak: float = typer.Option(1.0, "--leak", help="LIF leak λ in (0, 1]."),
    threshold_mode: str = o.threshold_mode_option(),
    per_channel: bool = o.per_channel_option(),
    calibration: str | None = o.calibration_option(),
    estimator: str = o.estimator_option(),
    calibration_sites: str = o.calibration_sites_option(),
    weight_refit: bool | None = o.weight_refit_option(),
    calibration_batches: int = typer.Option(
        16, "--calibration-batches", help="Batches for data thresholds and calibration."
    ),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Evaluation batch size."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate on the first N test samples only."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder for report.json, report.md, PNGs."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the report JSON here."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = o.quiet_option(),
) -> None:
    """Evaluate an ANN checkpoint (converted here) or a saved SNN at every T; print the table, write the report."""
    from ann2snn.cli.common import test_and_calibration_loaders
    from ann2snn.config import ConversionConfig
    from ann2snn.evaluate import evaluate
    from ann2snn.train import resolve_device
    from ann2snn.transforms.convert import convert

    dev = resolve_device(device)
    source = o.load_source(checkpoint, dev)
    o.refuse_conversion_options(ctx, source, CONVERSION_PARAMS)
    name = source.dataset(dataset)
    if source.snn is not None:
        snn = source.snn
        ts = [snn.timesteps] if timesteps is None else parse_int_list(timesteps, "--timesteps")
        if snn.config.calibration is not None and ts != [snn.timesteps]:
            raise ConfigError(
                f"{checkpoint} was calibrated ({snn.config.calibration}) for T={snn.timesteps}; evaluate it at "
                f"--timesteps {snn.timesteps}, or convert again for another T"
            )
        test, _ = test_and_calibration_loaders(name, data_dir, limit, batch_size, 0, model=source.ann)
    else:
        ts = parse_int_list(timesteps or "1,2,4,8", "--timesteps")
        if calibration is not None and len(ts) > 1:
            raise ConfigError(
                f"--calibration {calibration} calibrates the SNN for one T; pass one --timesteps value "
                f"(e.g. -T {max(ts)}), not {timesteps or '1,2,4,8'}"
            )
        config = ConversionConfig(
            method=method,
            timesteps=max(ts),
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
        needs_data = source.quant is None or threshold_mode != "auto" or calibration is not None
        test, _ = test_and_calibration_loaders(name, data_dir, limit, batch_size, 0, model=source.ann)
        calib = o.calibration_data(name, data_dir, calibration_batches) if needs_data else None
        snn = convert(source.ann, config, calibration_data=calib, progress=not quiet)
    report = evaluate(source.ann, snn, test, ts, mode=mode, progress=not quiet, source=source.report(name))
    label = snn.config.method + (f"+{snn.config.calibration}" if snn.config.calibration else "")
    echo_table(
        f"{name}: ANN vs SNN ({label}) accuracy (%)",
        ["T", "ANN", "SNN", "gap (pp)"],
        [[str(t), fmt(report.ann_accuracy), fmt(report.snn_accuracy[t]), fmt(report.gap(t))] for t in ts],
    )
    if out is not None:
        from ann2snn.evaluate.html import write_full_report
        from ann2snn.evaluate.progress import phase

        with phase("writing the report (costs, layer errors, plots)", enabled=not quiet):
            paths = write_full_report(report, source.ann, snn, next(iter(test))[0].to(dev), out)
        typer.echo(cost_line(report))
        typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    if json_path is not None:
        report.to_json(json_path)
        typer.echo(f"wrote {json_path}")
