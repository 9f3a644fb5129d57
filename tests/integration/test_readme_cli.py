"""The README's "Command line" block runs top to bottom, scaled down to digits with each line's quick variant.

The commands are read from README.md itself (so the README cannot drift from what works): ``fashion_mnist``
becomes ``digits``, the flags after ``quick:`` in a line's comment are appended, and ``runs/`` moves into a
temporary folder. Every command runs through the real CLI parser; each one's inputs come from an earlier one.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ann2snn.cli import app

ROOT = Path(__file__).resolve().parents[2]
# Only for the test's time budget on 2 busy cores (digits is small, but DA at 4 T values still costs minutes).
EXTRA = {"compare": ["--timesteps", "2,4", "--methods", "serial,parallel,parallel+da,srp"]}


def readme_commands() -> list[tuple[list[str], list[str]]]:
    """``(argv, quick flags)`` of every ``ann2snn`` line in the README's Command line block."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        code, _, comment = line.partition("#")
        words = shlex.split(code)
        if not words or words[0] != "ann2snn":
            continue
        quick = re.search(r"quick:\s*([^;(]*)", comment)
        commands.append((words[1:], shlex.split(quick.group(1)) if quick else []))
    return commands


def test_readme_block_is_a_sequence():
    """Each --checkpoint names a folder an earlier line wrote (no dangling inputs such as runs/relu)."""
    written: set[str] = set()
    for argv, _ in readme_commands():
        if "--checkpoint" in argv:
            source = argv[argv.index("--checkpoint") + 1]
            assert any(source == w or source.startswith(w + "/") for w in written), f"nothing writes {source}"
        if "--out" in argv:
            written.add(argv[argv.index("--out") + 1])
    assert len(readme_commands()) >= 10


@pytest.mark.slow
def test_readme_command_line_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    timings = []
    for argv, quick in readme_commands():
        args = [a.replace("fashion_mnist", "digits") for a in argv] + quick
        if args[0] in EXTRA:
            extra = EXTRA[args[0]]
            for flag, value in zip(extra[::2], extra[1::2], strict=True):
                if flag in args:
                    args[args.index(flag) + 1] = value
                else:
                    args += [flag, value]
        if "--help" not in args:
            args.append("-q") if args[0] in ("train", "evaluate", "compare", "robustness") else None
        start = time.perf_counter()
        result = runner.invoke(app, args)
        timings.append((" ".join(args), time.perf_counter() - start))
        assert result.exit_code == 0, f"`ann2snn {' '.join(args)}` failed:\n{result.output}\n{result.exception!r}"
    print("\n".join(f"{s:6.1f} s  {cmd}" for cmd, s in timings))
    runs = tmp_path / "runs"
    assert (runs / "fmnist/report/report.md").is_file() and (runs / "fmnist/model.nir").is_file()
    for saved in ("fmnist/serial_T8", "relu/da_T4"):
        assert (runs / saved / "snn.json").is_file()
    assert json.loads((runs / "relu/da_T4/snn.json").read_text())["config"]["calibration"] == "da"
    assert (runs / "cmp/compare.png").is_file() and (runs / "robust.json").is_file()
    assert (runs / "ddp/final.json").is_file()
