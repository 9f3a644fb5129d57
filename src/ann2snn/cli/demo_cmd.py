"""``ann2snn demo``: the whole pipeline on the embedded digits data in about a minute."""

from __future__ import annotations

from pathlib import Path

import typer

from ann2snn.cli.app import app
from ann2snn.cli.common import cost_line, echo_table, fmt, parse_int_list


@app.command("demo", short_help="Train, convert and report a digits QCFS CNN (about a minute).")
def demo_command(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Folder for the checkpoint and reports."),
    levels: int = typer.Option(4, "--levels", "-L", help="QCFS quantization levels L."),
    epochs: int = typer.Option(12, "--epochs", "-e", help="Training epochs."),
    timesteps: str = typer.Option("1,2,4,8", "--timesteps", "-T", help="Comma-separated T values."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = typer.Option(False, "--quiet/--no-quiet", "-q", help="No progress output."),
) -> None:
    """Train a QCFS CNN on digits, convert it (serial IF and parallel), and print ANN vs SNN accuracy per T."""
    import itertools
    import time

    import torch

    from ann2snn.config import ConversionConfig, QuantConfig
    from ann2snn.data import load_dataset, make_loader
    from ann2snn.evaluate import evaluate
    from ann2snn.evaluate.html import write_full_report
    from ann2snn.evaluate.progress import phase
    from ann2snn.export.checkpoint import load_checkpoint
    from ann2snn.models import create_model
    from ann2snn.simulate import simulate
    from ann2snn.train import TrainConfig, train
    from ann2snn.transforms import convert, prepare

    ts = parse_int_list(timesteps, "--timesteps")
    start = time.perf_counter()
    quant = QuantConfig(activation="qcfs", levels=levels)
    ann = prepare(create_model("cnn", num_classes=10, in_channels=1, image_size=8, seed=seed), quant)
    train_data, test_data = load_dataset("digits", "train"), load_dataset("digits", "test")
    n_train, n_test = len(train_data), len(test_data)  # type: ignore[arg-type]
    typer.echo(f"training a QCFS (L={levels}) CNN on digits: {n_train} train / {n_test} test images")
    result = train(
        ann,
        train_data,
        TrainConfig(epochs=epochs, batch_size=64, lr=0.05, seed=seed, device=device),
        out_dir=out / "checkpoint",
        eval_data=test_data,
        progress=not quiet,
        quant=quant,
        dataset="digits",
    )
    qann = result.model
    assert result.checkpoint is not None  # out_dir is given, so train wrote the final checkpoint
    source = load_checkpoint(result.checkpoint).source  # named in the reports
    test = make_loader(test_data, 256, shuffle=False)
    x = next(iter(test))[0].to(next(qann.parameters()).device)
    reports = {}
    show = not quiet
    for method in ("serial", "parallel"):
        snn = convert(qann, ConversionConfig(method=method, timesteps=max(ts)), progress=show)
        reports[method] = evaluate(qann, snn, test, ts, progress=show, source=source)
        with phase(f"writing the {method} report (costs, layer errors, plots)", enabled=show):
            write_full_report(reports[method], qann, snn, x, out / method)
    calib = list(itertools.islice(make_loader(train_data, 64, shuffle=True, seed=seed), 8))
    calibrated = {}  # DA calibration is specific to T: one calibrated SNN per T
    for t in ts:
        snn_da = convert(
            qann,
            ConversionConfig(method="parallel", timesteps=t, calibration="da"),
            calibration_data=calib,
            progress=show,
        )
        calibrated[t] = evaluate(qann, snn_da, test, (t,), progress=show, source=source).snn_accuracy[t]
    parallel = convert(qann, ConversionConfig(method="parallel", timesteps=levels))
    spike, rate = simulate(parallel, x, mode="spike"), simulate(parallel, x, mode="rate")
    with torch.no_grad():
        ann_logits = qann(x)
    ann_acc = reports["parallel"].ann_accuracy
    rows = [
        [
            str(t),
            fmt(ann_acc),
            fmt(reports["serial"].snn_accuracy[t]),
            fmt(reports["parallel"].snn_accuracy[t]),
            fmt(calibrated[t]),
        ]
        for t in ts
    ]
    echo_table(
        f"digits test accuracy (%), QCFS L={levels} CNN vs its SNNs",
        ["T", "ANN", "serial IF", "parallel", "parallel + DA calib."],
        rows,
    )
    typer.echo(
        f"parallel SNN at T=L={levels}: max |SNN - ANN| logits = {(spike.mean_output - ann_logits).abs().max():.2e}; "
        f"spike vs rate mode = {(spike.mean_output - rate.mean_output).abs().max():.2e}; "
        f"spikes/image = {float(rate.total_spikes().mean()):.0f}"
    )
    for method in ("serial", "parallel"):
        typer.echo(cost_line(reports[method]))
    typer.echo(
        f"reports: {out / 'serial'}/report.md, {out / 'parallel'}/report.md (+ .html, .json, PNG plots); "
        f"checkpoint: {result.checkpoint}; {time.perf_counter() - start:.0f} s"
    )
