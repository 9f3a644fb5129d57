"""``ann2snn export``: write an SNN (converted here, or saved by ``convert --out``) in an interchange format."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import typer

from ann2snn.cli import options as o
from ann2snn.cli.app import app
from ann2snn.errors import ConfigError, ExportError

FORMATS = ("nir",)
CONVERSION_PARAMS = (
    "method",
    "timesteps",
    "neuron",
    "leak",
    "reset",
    "v_init",
    "threshold_mode",
    "calibration_batches",
)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _warnings_collected() -> Iterator[list[str]]:
    """The library's warnings during the block, collected (printed once by the command) instead of logged."""
    logger = logging.getLogger("ann2snn")
    handler, propagate, handlers = _Collect(), logger.propagate, logger.handlers[:]
    for other in handlers:  # e.g. the app's, which would print each warning again after the command
        logger.removeHandler(other)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
        for other in handlers:
            logger.addHandler(other)
        logger.propagate = propagate


@app.command("export", short_help="Write an SNN as a NIR graph (HDF5).")
def export_command(
    ctx: typer.Context,
    checkpoint: Path = o.checkpoint_option(),
    out: Path = typer.Option(..., "--out", "-o", help="Output file, e.g. model.nir."),
    fmt: str = typer.Option("nir", "--format", "-f", help=f"Export format: {o.choices(FORMATS)}."),
    method: str = o.method_option("serial", " NIR takes serial methods (parallel: a single layer only)."),
    timesteps: int = typer.Option(8, "--timesteps", "-T", help="Simulation steps T (stored in the file)."),
    neuron: str = o.neuron_option(),
    leak: float = typer.Option(1.0, "--leak", help="LIF leak λ in (0, 1]."),
    reset: str = o.reset_option(),
    v_init: float = typer.Option(0.5, "--v-init", help="Initial potential / θ (with --reset zero: 0 only)."),
    dt: float = typer.Option(1.0, "--dt", help="The consumer's time step: r = 1/dt, τ = dt/(1−λ) (1 is exact)."),
    allow_extensions: bool = typer.Option(
        False,
        "--allow-extensions/--no-allow-extensions",
        help="Write what standard NIR lacks as documented ann2snn_* node metadata.",
    ),
    threshold_mode: str = o.threshold_mode_option(),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset (default: the checkpoint's)."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    calibration_batches: int = typer.Option(16, "--calibration-batches", help="Batches for data thresholds."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto (export writes CPU arrays)."),
) -> None:
    """Convert an ANN checkpoint (or take a saved SNN) and write it as a NIR graph (HDF5)."""
    from ann2snn.config import ConversionConfig
    from ann2snn.data import dataset_info
    from ann2snn.export.nir import export_nir
    from ann2snn.export.nir_neurons import NIRRefusal
    from ann2snn.train import resolve_device
    from ann2snn.transforms.convert import convert

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r} is not supported; choose one of {', '.join(FORMATS)}")
    source = o.load_source(checkpoint, resolve_device(device))
    o.refuse_conversion_options(ctx, source, CONVERSION_PARAMS)
    name = source.dataset(dataset)
    if source.snn is not None:
        snn = source.snn.cpu()
    else:
        config = ConversionConfig(
            method=method,
            timesteps=timesteps,
            neuron=neuron,
            leak=leak,
            reset=reset,
            v_init=v_init,
            threshold_mode=threshold_mode,
        )
        calib = None
        if source.quant is None or threshold_mode != "auto":
            calib = o.calibration_data(name, data_dir, calibration_batches, model=source.ann)
        snn = convert(source.ann, config, calibration_data=calib).cpu()
    info = dataset_info(name, data_dir)
    shape = (info.in_channels, info.image_size, info.image_size)
    with _warnings_collected() as warnings:
        try:
            graph = export_nir(snn, out, shape, extensions=allow_extensions, dt=dt)
        except NIRRefusal as exc:  # the same refusal, with this command's flags as the advice
            if source.snn is None:
                raise ExportError(exc.cli_message) from exc
            raise ExportError(
                f"{exc.what}; {checkpoint} is a saved {snn.config.method} SNN; save an exportable one with "
                f"`ann2snn convert --checkpoint {checkpoint}/ann --method serial --out DIR` and export DIR"
            ) from exc
    typer.echo(f"wrote {out}: {len(graph.nodes)} NIR nodes, {len(graph.edges)} edges, T={snn.timesteps}, dt={dt:g}")
    advice = "; a NIR tool that ignores that metadata simulates a different network (see docs/ecosystem.md)"
    for message in warnings:  # each library warning once, as a note
        typer.echo(f"note: {message}" + (advice if "ann2snn_* metadata" in message else ""))
