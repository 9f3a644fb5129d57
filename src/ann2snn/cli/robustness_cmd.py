"""``ann2snn robustness``: clean, noisy and adversarial accuracy of a checkpoint's ANN and its SNN at every T."""

from __future__ import annotations

from pathlib import Path

import typer

from ann2snn.cli.app import app
from ann2snn.cli.common import echo_table, fmt, parse_int_list


@app.command("robustness")
def robustness_command(
    checkpoint: Path = typer.Option(..., "--checkpoint", "-c", help="ANN checkpoint stem (e.g. runs/x/final)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: the checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    attacks: str = typer.Option(
        "sp:0.05", "--attacks", "-a", help="Comma-separated kind:strength, kinds sp, gauss, fgsm, pgd."
    ),
    timesteps: str = typer.Option("1,2,4,8", "--timesteps", "-T", help="Comma-separated T values."),
    method: str | None = typer.Option(
        None, "--method", help="Conversion method (default: steprelu for StepReLU checkpoints, else parallel)."
    ),
    leak: float = typer.Option(1.0, "--leak", help="Exponential leak λ in (0, 1] (serial and steprelu)."),
    leak_delta: float = typer.Option(0.0, "--leak-delta", help="Linear leak δ per step, a fraction of θ."),
    gradient: str = typer.Option("auto", "--gradient", help="Attack gradients from: auto, ann or snn."),
    mode: str = typer.Option("auto", "--mode", help="SNN simulation: auto, spike or rate."),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Evaluation batch size."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate on the first N test samples only."),
    calibration_batches: int = typer.Option(16, "--calibration-batches", help="Batches for data thresholds."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the result JSON here."),
    markdown_path: Path | None = typer.Option(None, "--markdown", help="Write the result table here."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Accuracy of the ANN and its SNN under salt-and-pepper, Gaussian noise, FGSM and PGD."""
    from ann2snn.cli.common import test_and_calibration_loaders
    from ann2snn.config import ConversionConfig
    from ann2snn.evaluate.noise import parse_attacks
    from ann2snn.evaluate.robustness import evaluate_robustness
    from ann2snn.export.checkpoint import load_checkpoint
    from ann2snn.io import atomic_write_text
    from ann2snn.transforms.convert import convert

    ts = parse_int_list(timesteps, "--timesteps")
    attack_list = parse_attacks(attacks)
    ckpt = load_checkpoint(checkpoint)
    quant = ckpt.quant
    if method is None:
        method = "steprelu" if quant is not None and quant.activation == "steprelu" else "parallel"
    leaky = leak != 1.0 or leak_delta != 0.0
    config = ConversionConfig(
        method=method,
        timesteps=max(ts),
        neuron="lif" if leaky else "if",
        leak=leak,
        leak_mode="linear" if leak_delta and leak == 1.0 else "exponential",
        leak_delta=leak_delta,
    )
    name = dataset or ckpt.meta.get("dataset") or "digits"
    needs_data = quant is None
    test, calib = test_and_calibration_loaders(
        name, data_dir, limit, batch_size, calibration_batches if needs_data else 0, model=ckpt.model
    )
    snn = convert(ckpt.model, config, calibration_data=calib if needs_data else None, progress=not quiet)
    result = evaluate_robustness(
        snn, test, attack_list, ts, ann=ckpt.model, seed=seed, gradient=gradient, mode=mode, progress=not quiet
    )
    names = ["clean"] + [a.name for a in attack_list]
    rows = [
        [("ANN" if m == "ann" else f"SNN T={t}")] + [fmt(result.accuracy(m, a, t)) for a in names]
        for m, t in dict.fromkeys((r["model"], r["timesteps"]) for r in result.rows)
    ]
    echo_table(f"{name}: accuracy (%) under corruption, SNN method={method}", ["model", *names], rows)
    if json_path is not None:
        result.to_json(json_path)
        typer.echo(f"wrote {json_path}")
    if markdown_path is not None:
        atomic_write_text(markdown_path, result.to_markdown())
        typer.echo(f"wrote {markdown_path}")
