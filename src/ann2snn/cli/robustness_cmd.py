"""``ann2snn robustness``: clean, noisy and adversarial accuracy of a checkpoint's ANN and its SNN at every T."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ann2snn.cli import options as o
from ann2snn.cli.app import app
from ann2snn.cli.common import echo_table, fmt, parse_int_list
from ann2snn.errors import ConfigError
from ann2snn.evaluate.noise import ATTACK_KINDS
from ann2snn.evaluate.robustness import GRADIENTS

CONVERSION_PARAMS = ("method", "leak", "leak_delta", "calibration_batches")


@app.command("robustness", short_help="Accuracy of the ANN and its SNN under noise and attacks.")
def robustness_command(
    ctx: typer.Context,
    checkpoint: Path = o.checkpoint_option(),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: the checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    attacks: str = typer.Option(
        "sp:0.05", "--attacks", "-a", help=f"Comma-separated kind:strength, kinds {o.choices(ATTACK_KINDS)}."
    ),
    timesteps: str | None = typer.Option(
        None, "--timesteps", "-T", help="Comma-separated T values (default: 1,2,4,8; a saved SNN: its T)."
    ),
    method: str | None = o.method_option(None, " Default: steprelu for StepReLU checkpoints, else parallel."),
    leak: float = typer.Option(1.0, "--leak", help="Exponential leak λ in (0, 1] (serial and steprelu)."),
    leak_delta: float = typer.Option(0.0, "--leak-delta", help="Linear leak δ per step, a fraction of θ."),
    gradient: str = typer.Option(
        "auto", "--gradient", help=f"Attack gradients from: {o.choices(GRADIENTS)} (auto: the SNN's if it has them)."
    ),
    mode: str = o.mode_option(),
    seed: int = typer.Option(0, "--seed", help="Noise seed."),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Evaluation batch size."),
    limit: int | None = typer.Option(None, "--limit", help="Evaluate on the first N test samples only."),
    calibration_batches: int = typer.Option(16, "--calibration-batches", help="Batches for data thresholds."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the result JSON here."),
    markdown_path: Path | None = typer.Option(None, "--markdown", help="Write the result table here."),
    quiet: bool = o.quiet_option(),
) -> None:
    """Accuracy of the ANN and its SNN under salt-and-pepper, Gaussian noise, FGSM and PGD."""
    from ann2snn.cli.common import test_and_calibration_loaders
    from ann2snn.config import ConversionConfig
    from ann2snn.evaluate.noise import parse_attacks
    from ann2snn.transforms.convert import convert

    attack_list = parse_attacks(attacks)
    source = o.load_source(checkpoint)
    o.refuse_conversion_options(ctx, source, CONVERSION_PARAMS)
    name = source.dataset(dataset)
    if source.snn is not None:
        snn = source.snn
        ts = [snn.timesteps] if timesteps is None else parse_int_list(timesteps, "--timesteps")
        if snn.config.calibration is not None and ts != [snn.timesteps]:
            raise ConfigError(
                f"{checkpoint} was calibrated ({snn.config.calibration}) for T={snn.timesteps}; use "
                f"--timesteps {snn.timesteps}, or convert again for another T"
            )
        test, _ = test_and_calibration_loaders(name, data_dir, limit, batch_size, 0, model=source.ann)
        _report(snn, test, attack_list, ts, source.ann, seed, gradient, mode, quiet, name, json_path, markdown_path)
        return
    ts = parse_int_list(timesteps or "1,2,4,8", "--timesteps")
    quant = source.quant
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
    test, _ = test_and_calibration_loaders(name, data_dir, limit, batch_size, 0, model=source.ann)
    calib = o.calibration_data(name, data_dir, calibration_batches) if quant is None else None
    snn = convert(source.ann, config, calibration_data=calib, progress=not quiet)
    _report(snn, test, attack_list, ts, source.ann, seed, gradient, mode, quiet, name, json_path, markdown_path)


def _report(
    snn: Any,
    test: Any,
    attack_list: list[Any],
    ts: list[int],
    ann: Any,
    seed: int,
    gradient: str,
    mode: str,
    quiet: bool,
    name: str,
    json_path: Path | None,
    markdown_path: Path | None,
) -> None:
    from ann2snn.evaluate.robustness import evaluate_robustness
    from ann2snn.io import atomic_write_text

    result = evaluate_robustness(
        snn, test, attack_list, ts, ann=ann, seed=seed, gradient=gradient, mode=mode, progress=not quiet
    )
    method = snn.config.method + (f"+{snn.config.calibration}" if snn.config.calibration else "")
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
