"""``ann2snn check``: the up-front verdict on a registered model or an ANN checkpoint, before any training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ann2snn.cli.app import app
from ann2snn.errors import ConfigError

EXIT_REFUSED = 1


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["pool=max", "width=16"]`` → ``{"pool": "max", "width": 16}`` (ints, floats and true/false parsed)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r} must be KEY=VALUE, e.g. --option pool=max")
        value: Any = raw
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        options[key.strip()] = value
    return options


@app.command("check", short_help="Say whether a model converts (and why not) before training.")
def check_command(
    model: str | None = typer.Option(None, "--model", "-m", help="Registered model name (cnn, vgg16, resnet20, ...)."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", "-c", help="ANN checkpoint stem instead of --model."),
    num_classes: int = typer.Option(10, "--num-classes", help="Outputs K of --model."),
    in_channels: int = typer.Option(3, "--in-channels", help="Input channels C of --model."),
    image_size: int = typer.Option(32, "--image-size", help="Input side S of --model."),
    option: list[str] = typer.Option([], "--option", "-o", help="Model option KEY=VALUE (repeatable), e.g. pool=max."),
    levels: int = typer.Option(4, "--levels", "-L", help="Levels L (= T) of the trial prepare + convert."),
) -> None:
    """Say, before any training, whether prepare + convert accept a model, and what they do to every layer.

    Exit code 0 when the model converts, 1 when it does not (the verdict says why), 2 on bad arguments.
    """
    from ann2snn.check import check
    from ann2snn.config import QuantConfig
    from ann2snn.models import create_model

    if (model is None) == (checkpoint is None):
        raise ConfigError("give exactly one of --model NAME or --checkpoint STEM")
    if checkpoint is not None:
        from ann2snn.export.checkpoint import load_checkpoint

        net = load_checkpoint(checkpoint).model
    else:
        assert model is not None
        net = create_model(
            model, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **parse_options(option)
        )
    example = net.example_inputs(1) if hasattr(net, "example_inputs") else None  # type: ignore[operator]
    report = check(net, example, quant=QuantConfig(levels=levels))
    typer.echo(str(report))
    if not report.converts:
        raise typer.Exit(EXIT_REFUSED)
