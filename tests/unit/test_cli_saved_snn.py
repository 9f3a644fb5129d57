"""CLI: convert --out saves an SNN that evaluate/export/robustness read; help matches what the code accepts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.cli import app
from ann2snn.config import CALIBRATIONS, ESTIMATORS, METHODS, NEURONS, THRESHOLD_MODES
from ann2snn.export.checkpoint import save_checkpoint
from ann2snn.export.snn_file import load_snn
from ann2snn.models import create_model

runner = CliRunner()


def _checkpoint(tmp_path: Path, quant: a2s.QuantConfig | None, name: str) -> Path:
    net = create_model("cnn", num_classes=10, in_channels=1, image_size=8, hidden=16, seed=3)
    if quant is not None:
        net = a2s.prepare(net, quant)
    return save_checkpoint(tmp_path / name, net, quant=quant, dataset="digits")


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output + str(result.exception)
    return result


def test_convert_out_then_evaluate_export_robustness(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, a2s.QuantConfig(levels=4), "qcfs")
    out = tmp_path / "snn"
    result = _ok(["convert", "-c", str(ckpt), "--method", "serial", "-T", "4", "--out", str(out)])
    assert f"wrote {out}" in result.stdout
    assert {p.name for p in out.iterdir()} >= {"snn.json", "snn.safetensors", "ann.json", "report.md"}
    saved = load_snn(out)
    assert saved.snn.config.method == "serial" and saved.snn.timesteps == 4

    result = _ok(["evaluate", "-c", str(out), "--limit", "64", "-q"])
    assert re.search(r"│ 4 │", result.stdout) and "serial" in result.stdout  # its own T by default

    nir = tmp_path / "m.nir"
    result = _ok(["export", "-c", str(out), "--out", str(nir)])
    assert nir.is_file() and "T=4" in result.stdout

    result = _ok(["robustness", "-c", str(out), "--attacks", "sp:0.05", "--limit", "32", "-q"])
    assert "SNN T=4" in result.stdout


def test_evaluate_with_calibration_matches_convert_out(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, None, "relu")
    common = ["-T", "2", "--per-channel", "--calibration", "da", "--calibration-batches", "1"]
    out = tmp_path / "snn"
    _ok(["convert", "-c", str(ckpt), *common, "--out", str(out)])
    direct = _ok(["evaluate", "-c", str(ckpt), *common, "--limit", "128", "-q"]).stdout
    saved = _ok(["evaluate", "-c", str(out), "--limit", "128", "-q"]).stdout
    row = re.compile(r"│ 2 │.*│")
    assert row.search(direct) and row.search(direct).group(0) == row.search(saved).group(0)  # type: ignore[union-attr]


def test_saved_snn_refuses_conversion_options_and_other_T(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, None, "relu")
    out = tmp_path / "snn"
    _ok(["convert", "-c", str(ckpt), "-T", "2", "--calibration", "da", "--calibration-batches", "1", "--out", str(out)])
    result = runner.invoke(app, ["evaluate", "-c", str(out), "--method", "serial"])
    assert result.exit_code == 2 and "--method" in result.stderr and "saved SNN" in result.stderr
    result = runner.invoke(app, ["evaluate", "-c", str(out), "-T", "4"])
    assert result.exit_code == 2 and "calibrated" in result.stderr
    result = runner.invoke(app, ["convert", "-c", str(out)])
    assert result.exit_code == 2 and "already converted" in result.stderr
    result = runner.invoke(app, ["evaluate", "-c", str(ckpt), "--calibration", "da", "-T", "1,2"])
    assert result.exit_code == 2 and "one --timesteps value" in result.stderr


def test_export_prints_each_warning_once(tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, a2s.QuantConfig(levels=4), "qcfs")
    nir = tmp_path / "m.nir"
    args = ["export", "-c", str(ckpt), "--out", str(nir), "--reset", "zero", "--v-init", "0.5", "--allow-extensions"]
    result = _ok(args)
    assert result.output.count("ann2snn_* metadata") == 1


COMMANDS = ["train", "convert", "evaluate", "compare", "check", "robustness", "export", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_at_80_columns_shows_every_option_whole(command: str) -> None:
    import typer.main

    result = runner.invoke(app, [command, "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "…" not in result.stdout and "<bool>" not in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    group = typer.main.get_command(app)
    cmd = group.commands[command]  # type: ignore[attr-defined]
    for param in cmd.params:
        for opt in [*param.opts, *getattr(param, "secondary_opts", [])]:
            assert opt in result.stdout, f"{opt} missing from `{command} --help`"


def test_top_level_help_is_not_truncated() -> None:
    result = runner.invoke(app, ["--help"], terminal_width=80)
    commands = result.stdout.split("Commands:")[1].splitlines()
    assert not any(line.rstrip().endswith(("...", "…")) for line in commands), result.stdout
    assert all(c in result.stdout for c in COMMANDS)


@pytest.mark.parametrize("command", ["convert", "evaluate"])
def test_help_lists_every_choice_the_code_accepts(command: str) -> None:
    text = " ".join(runner.invoke(app, [command, "--help"], terminal_width=200).stdout.split())
    for values in (METHODS, NEURONS, THRESHOLD_MODES, CALIBRATIONS, ESTIMATORS):
        listed = ", ".join(values[:-1]) + " or " + values[-1]
        assert listed in text, f"{listed!r} not in `{command} --help`"


def test_bool_options_take_flag_and_no_flag(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "--no-resume", "--epochs", "0"])
    assert result.exit_code == 2 and "epochs" in result.stderr  # parsed, then the config check fails
    result = runner.invoke(app, ["train", "--resume", "true"])
    assert result.exit_code == 2 and "true" in result.stderr


def test_non_zero_rank_stays_quiet_on_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    result = runner.invoke(app, ["train", "--epochs", "0"])
    assert result.exit_code == 2 and result.stderr == ""
    monkeypatch.setenv("RANK", "0")
    result = runner.invoke(app, ["train", "--epochs", "0"])
    assert result.exit_code == 2 and result.stderr.startswith("error: --epochs=0")  # main's range check


def test_nproc_per_node_refuses_nested_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = runner.invoke(app, ["train", "--nproc-per-node", "2"])
    assert result.exit_code == 2 and "torchrun" in result.stderr


def test_worker_args_reproduce_the_options() -> None:
    import typer.main

    from ann2snn.cli.launch import worker_args

    cmd = typer.main.get_command(app).commands["train"]  # type: ignore[attr-defined]
    ctx = cmd.make_context("train", ["--epochs", "3", "--no-resume", "--limit", "10", "--nproc-per-node", "2"])
    args = worker_args(ctx, ("nproc_per_node",))
    assert "--nproc-per-node" not in args and "--no-resume" in args
    assert args[args.index("--epochs") + 1] == "3" and args[args.index("--limit") + 1] == "10"
    again = cmd.make_context("train", args)
    assert {k: v for k, v in again.params.items() if k != "nproc_per_node"} == {
        k: v for k, v in ctx.params.items() if k != "nproc_per_node"
    }
