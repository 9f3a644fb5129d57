"""``ann2snn train``: build a registered model, prepare it for quantization-aware training, train, checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from ann2snn.cli import options as o
from ann2snn.cli.app import EXIT_INTERRUPTED, EXIT_USER_ERROR, Interrupted, app
from ann2snn.cli.launch import launch, launched, process_rank, worker_args
from ann2snn.config import ACTIVATIONS
from ann2snn.errors import Ann2SnnError, ConfigError

ACTIVATION_CHOICES = ("relu", *ACTIVATIONS)


def _resume_hint(out: Path) -> str:
    """What a Ctrl-C during training leaves in ``out`` and how to continue."""
    from ann2snn.export.checkpoint import checkpoint_exists
    from ann2snn.train.loop import LAST, PREVIOUS

    if checkpoint_exists(out / LAST) or checkpoint_exists(out / PREVIOUS):
        return (
            f"training stopped; {out / LAST} holds the last checkpoint (epoch ends and every --checkpoint-every "
            "steps): run the same command with --resume to continue; on CPU it ends bit-for-bit as an uninterrupted run"
        )
    return f"training stopped before its first checkpoint in {out}; run the same command again to start over"


@app.command("train", short_help="Train a model (QCFS by default); write OUT/last and OUT/final.")
def train_command(
    ctx: typer.Context,
    model: str = typer.Option("cnn", "--model", "-m", help="Registered model name (cnn, vgg11, resnet20, ...)."),
    dataset: str = typer.Option("digits", "--dataset", "-d", help="Dataset name (digits, fashion_mnist, ...)."),
    epochs: int = typer.Option(5, "--epochs", "-e", help="Training epochs."),
    activation: str = typer.Option(
        "qcfs", "--activation", "-a", help=f"Activation to train with: {', '.join(ACTIVATION_CHOICES)}."
    ),
    levels: int = typer.Option(8, "--levels", "-L", help="Quantization levels L of QCFS."),
    out: Path = typer.Option(Path("runs/train"), "--out", "-o", help="Output folder for checkpoints."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Root folder of on-disk datasets."),
    seed: int = typer.Option(0, "--seed", help="Random seed (data order, initialization, dropout)."),
    batch_size: int = typer.Option(128, "--batch-size", "-b", help="Samples per step."),
    lr: float = typer.Option(0.05, "--lr", help="Peak learning rate (cosine schedule)."),
    resume: bool = typer.Option(False, "--resume/--no-resume", help="Continue from OUT/last if it exists."),
    checkpoint_every: int | None = typer.Option(
        None, "--checkpoint-every", help="Also write OUT/last every N steps (default: at each epoch end)."
    ),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    quiet: bool = o.quiet_option(),
    limit: int | None = typer.Option(None, "--limit", help="Use only the first N samples of each split."),
    nproc_per_node: int | None = typer.Option(
        None, "--nproc-per-node", help="Train with N local processes (data parallel, like torchrun)."
    ),
) -> None:
    """Train a model (QCFS by default) and write OUT/last and OUT/final checkpoints.

    Under torchrun or --nproc-per-node only rank 0 prints; the other ranks stay quiet, errors included.
    """
    if nproc_per_node is not None:
        try:
            code = launch(nproc_per_node, ["train", *worker_args(ctx, ("nproc_per_node",))])
        except KeyboardInterrupt:  # the workers stay quiet; one line here
            raise Interrupted(_resume_hint(out)) from None
        if code:
            raise typer.Exit(code)
        return
    rank = process_rank()
    try:
        _train(
            model,
            dataset,
            epochs,
            activation,
            levels,
            out,
            data_dir,
            seed,
            batch_size,
            lr,
            resume,
            checkpoint_every,
            device,
            quiet or rank != 0,
            limit,
            rank,
        )
    except (Ann2SnnError, OSError):
        if rank == 0:
            raise
        raise typer.Exit(EXIT_USER_ERROR) from None  # rank 0 reports the same error once
    except KeyboardInterrupt:
        if rank == 0 and not launched():
            raise
        raise typer.Exit(EXIT_INTERRUPTED) from None  # rank 0 (or the --nproc-per-node launcher) says it once


def _train(
    model: str,
    dataset: str,
    epochs: int,
    activation: str,
    levels: int,
    out: Path,
    data_dir: Path | None,
    seed: int,
    batch_size: int,
    lr: float,
    resume: bool,
    checkpoint_every: int | None,
    device: str,
    quiet: bool,
    limit: int | None,
    rank: int,
) -> None:

    from ann2snn.config import QuantConfig
    from ann2snn.data import dataset_info, load_dataset
    from ann2snn.models import create_model
    from ann2snn.train import TrainConfig, train
    from ann2snn.transforms.prepare import prepare

    if activation not in ACTIVATION_CHOICES:
        raise ConfigError(
            f"--activation {activation!r} is not supported; choose one of {', '.join(ACTIVATION_CHOICES)}"
        )
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, checkpoint_every=checkpoint_every
    )
    quant = None if activation == "relu" else QuantConfig(activation=activation, levels=levels)
    info = dataset_info(dataset, data_dir)
    train_data = load_dataset(dataset, "train", data_dir, limit)
    eval_data = load_dataset(dataset, "test", data_dir, limit)
    net = create_model(
        model, num_classes=info.num_classes, in_channels=info.in_channels, image_size=info.image_size, seed=seed
    )
    if quant is not None:
        net = prepare(net, quant)
    try:
        result = train(
            net,
            train_data,
            config,
            out_dir=out,
            eval_data=eval_data,
            progress=not quiet,
            resume=resume,
            quant=quant,
            dataset=dataset,
        )
    except KeyboardInterrupt:
        raise Interrupted(_resume_hint(out)) from None
    if rank != 0:
        return
    accuracy = "n/a" if result.eval_acc is None else f"{result.eval_acc:.2%}"
    typer.echo(f"trained {model} on {dataset} ({activation}): eval accuracy {accuracy}; checkpoint {result.checkpoint}")
