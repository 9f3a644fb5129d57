"""CLI skeleton: one-line errors with exit code 2, --debug tracebacks, the train command end to end."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ann2snn.cli import app, main
from ann2snn.errors import ConfigError

runner = CliRunner()


def test_help_lists_train() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "train" in result.stdout


@pytest.mark.parametrize("args", [["train", "--epochs", "0"], ["train", "--activation", "gelu"]])
def test_ann2snn_error_is_one_line_and_exit_code_2(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output


def test_debug_shows_the_traceback_and_keeps_exit_code_2() -> None:
    result = runner.invoke(app, ["--debug", "train", "--epochs", "0"])
    assert result.exit_code == 2  # 1 is reserved for internal bugs (docs/errors.md)
    assert "Traceback" in result.stderr and ConfigError.__name__ in result.stderr


def test_main_entry_point_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--epochs", "0"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("error: --epochs=0")


def test_python_dash_m(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["ann2snn", "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("ann2snn", run_name="__main__")
    assert info.value.code == 0 and "train" in capsys.readouterr().out


def test_train_command_writes_checkpoints(tmp_path: Path) -> None:
    pytest.importorskip("ann2snn.data")
    pytest.importorskip("ann2snn.models")
    from ann2snn.export import load_checkpoint

    out = tmp_path / "run"
    args = [
        "train",
        "--model",
        "cnn",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--limit",
        "48",
        "--batch-size",
        "16",
        "--levels",
        "4",
        "--out",
        str(out),
        "--quiet",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "eval accuracy" in result.stdout and result.stderr == ""
    final = load_checkpoint(out / "final")
    assert final.quant is not None and final.quant.levels == 4
    assert final.meta["dataset"] == "digits" and final.meta["model"]["name"] == "cnn"
    assert (out / "last.json").is_file()
    again = runner.invoke(app, [*args, "--resume"])
    assert again.exit_code == 0, again.output


def test_calibration_sites_is_an_option_of_convert_and_evaluate() -> None:
    for command in ("convert", "evaluate"):
        result = runner.invoke(app, [command, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        assert "--calibration-sites" in result.output
        assert "all or conv" in " ".join(result.output.split())
