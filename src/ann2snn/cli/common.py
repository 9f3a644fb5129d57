"""Shared pieces of the CLI commands: parsing lists, loading checkpoints and data, conversion options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ann2snn.errors import ConfigError
from ann2snn.limits import check_int


def parse_int_list(text: str, option: str) -> list[int]:
    """``"1,2,4,8"`` → ``[1, 2, 4, 8]``; anything else is a ConfigError naming the option."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} {text!r} must be a comma-separated list of integers, e.g. 1,2,4,8") from None
    if not values or any(v <= 0 for v in values):
        raise ConfigError(f"{option} {text!r} must list positive integers, e.g. 1,2,4,8")
    for value in values:
        check_int(option, value, key=option.lstrip("-").replace("-", "_"))
    return values


def check_model_fits_dataset(model: Any, dataset: str, data_dir: Path | None) -> None:
    """ConfigError if a registered model's classes, channels or image size differ from ``dataset``'s.

    A 10-class checkpoint evaluated on a 100-class dataset would otherwise print a table of meaningless accuracies.
    """
    from ann2snn.data import dataset_info

    kwargs = getattr(model, "model_kwargs", None)
    if not isinstance(kwargs, dict):
        return  # not a registered model: the labels are checked against its outputs batch by batch
    info = dataset_info(dataset, data_dir)
    for key, have, what in (
        ("num_classes", info.num_classes, "classes"),
        ("in_channels", info.in_channels, "channels"),
        ("image_size", info.image_size, "pixels per side"),
    ):
        want = kwargs.get(key)
        if isinstance(want, int) and want != have:
            raise ConfigError(
                f"--dataset {dataset} has {have} {what} but the checkpoint's model was built for {want} "
                f"({key}={want}); pass the dataset it was trained on with --dataset"
            )


def test_and_calibration_loaders(
    dataset: str,
    data_dir: Path | None,
    limit: int | None,
    batch_size: int,
    calibration_batches: int,
    model: Any = None,
) -> tuple[Any, list[Any]]:
    """Test loader, and up to ``calibration_batches`` training batches for data-based thresholds.

    With ``model``, first checks that it fits ``dataset`` (:func:`check_model_fits_dataset`).
    """
    from ann2snn.data import load_dataset, make_loader

    check_int("--calibration-batches", calibration_batches, key="calibration_batches")
    if model is not None:
        check_model_fits_dataset(model, dataset, data_dir)

    test = make_loader(load_dataset(dataset, "test", data_dir, limit), batch_size, shuffle=False)
    calib: list[Any] = []
    if calibration_batches > 0:
        train = make_loader(load_dataset(dataset, "train", data_dir, limit), batch_size, shuffle=True, seed=0)
        for i, batch in enumerate(train):
            if i >= calibration_batches:
                break
            calib.append(batch)
    return test, calib


METHOD_HELP = "Conversion method: parallel or serial (and any registered method)."


def echo_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    """Print a table with rich (plain text when not a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in header:
        table.add_column(h, justify="right")
    for row in rows:
        table.add_row(*row)
    Console(width=max(80, sum(len(h) + 6 for h in header))).print(table)


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def cost_line(report: Any) -> str:
    """One line with the spike/SOP/energy summary of a report that went through ``write_full_report``."""
    cost = report.extra.get("cost")
    if not cost:
        return ""
    ann = cost.get("ann_energy_pj")
    ann_text = "" if ann is None else f" vs ANN {ann / 1e6:.2f} µJ ({cost['snn_energy_pj'] / ann:.2f}×)"
    rates = ", ".join(f"{n} {r:.3f}" for n, r in report.firing_rates.items())
    return (
        f"{report.method} T={cost['timesteps']}: {cost['sops'] / 1e6:.2f} M SOPs/image, "
        f"energy {cost['snn_energy_pj'] / 1e6:.2f} µJ/image{ann_text}; firing rates: {rates}"
    )
