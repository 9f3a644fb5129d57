"""Every README code example runs as written, on its own, and prints what the README says it prints.

Each ```python block runs in a fresh interpreter (so it must carry its own imports). A block followed by a line
ending in "prints:" and a ```text block must print exactly that text on stdout. A block preceded by
``<!-- readme-check: long -->`` takes minutes (DA calibration at three T); it runs under ``make check-readme``
(``ANN2SNN_README_ALL=1``), as does the comparison of ``ann2snn demo`` with the output quoted under Quick start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LONG = "<!-- readme-check: long -->"
ALL = os.environ.get("ANN2SNN_README_ALL", "") not in ("", "0")
BLOCK = re.compile(
    r"(?P<marker><!-- readme-check: long -->\n)?```python\n(?P<code>.*?)```\n"
    r"(?:\n[^\n]*prints:\n\n```text\n(?P<out>.*?)```\n)?",
    flags=re.S,
)


def _blocks() -> list[tuple[str, str | None, bool]]:
    return [(m["code"], m["out"], bool(m["marker"])) for m in BLOCK.finditer(README.read_text())]


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_readme_blocks_are_found_and_self_contained() -> None:
    blocks = _blocks()
    assert len(blocks) == README.read_text().count("```python"), "every python block matches the block pattern"
    assert len(blocks) >= 2
    for code, _, _ in blocks:
        uses = set(re.findall(r"\b(a2s|torch)\.", code))
        for name in uses:
            assert re.search(rf"^import (ann2snn as )?{name}\b", code, flags=re.M), f"block uses {name} unimported"
    api = blocks[0][0]
    assert len(api.strip().splitlines()) <= 14, "the API example stays short"
    assert all(out for _, out, long in blocks if not long), "fast blocks quote what they print"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_blocks())))
def test_readme_block_runs_and_prints_what_it_quotes(index: int) -> None:
    code, expected, long = _blocks()[index]
    if long and not ALL:
        pytest.skip("takes minutes: run `make check-readme` (ANN2SNN_README_ALL=1)")
    proc = _run([sys.executable, "-c", code], timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if expected is not None:
        assert proc.stdout == expected


@pytest.mark.slow
@pytest.mark.skipif(not ALL, reason="takes minutes: run `make check-readme` (ANN2SNN_README_ALL=1)")
def test_demo_prints_the_quoted_table(tmp_path: Path) -> None:
    text = README.read_text()
    quoted = re.search(r"make demo   #.*?```text\n(.*?)```", text, flags=re.S)
    assert quoted, "README quotes the demo's output under Quick start"
    proc = _run([sys.executable, "-m", "ann2snn", "demo", "--out", str(tmp_path)], timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout.splitlines()
    for line in quoted[1].splitlines():
        assert line in printed, line
