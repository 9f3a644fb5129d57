"""The result tables quoted in README.md and docs/*.md are exactly what ``benchmarks/readme_tables.py`` renders from
the committed ``benchmarks/results/*.json``: a benchmark rerun that changes a number makes this fail until the
documents are regenerated, and no one edits a quoted number by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def tables(benchmark_module):  # type: ignore[no-untyped-def]
    return benchmark_module("readme_tables")


def test_every_marked_block_matches_the_results(tables) -> None:  # type: ignore[no-untyped-def]
    stale = {str(p.name): tables.stale(p) for p in tables.documents()}
    assert not {k: v for k, v in stale.items() if v}, "run: .venv/bin/python benchmarks/readme_tables.py"


def test_readme_results_tables_are_generated(tables) -> None:  # type: ignore[no-untyped-def]
    readme = (BENCH.parent / "README.md").read_text()
    names = [m["name"] for m in tables.MARKED.finditer(readme)]
    assert set(tables.README_BLOCKS) <= set(names), "each README results table sits between results markers"


def test_number_format(tables) -> None:  # type: ignore[no-untyped-def]
    assert tables.num(-0.004) == "0.00"
    assert tables.num(-1.5) == "\u22121.50"
    assert tables.num(2.0, signed=True) == "+2.00"
    assert tables.num(-0.001, signed=True) == "0.00"


def test_compare_counts_and_bolds_the_winner(tables, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def row(t: int, da: float, best: float, run: str) -> dict:
        kind = run.split(" ")[0].split(":")[0]
        return {"L": 4, "T_total": t, "ANN": 90.0, "parallel": 50.0, "parallel+DA": da, kind: best} | {
            "best baseline": run
        }

    rows = [row(1, 80.0, 20.0, "serial T=1"), row(2, 85.0, 85.0, "signed T=2"), row(8, 89.0, 89.5, "srp:4 T=4")]
    (tmp_path / "compare_equal_latency.json").write_text(json.dumps({"rows": rows, "limit": 2000}))
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    text = tables.compare()
    lines = text.splitlines()
    assert lines[2].endswith("| **80.00** | 20.00 (serial) | +60.00 |")
    assert lines[3].endswith("| **85.00** | 85.00 (signed IF) | 0.00 |")
    assert lines[4].endswith("| 89.00 | **89.50** (SRP τ=4, T=4) | \u22120.50 |")
    assert "ahead at 1, level at 1 and behind at 1; the largest loss is 0.50 pp (10 of 2000 images)" in text


def test_copy_takes_the_nth_table(tables, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "x.md").write_text("# t\n\n| a |\n|---:|\n| 1 |\n\ntext\n\n| b |\n|---:|\n| 2 |\n")
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    assert tables.render("copy:x") == "| a |\n|---:|\n| 1 |\n"
    assert tables.render("copy:x#2") == "| b |\n|---:|\n| 2 |\n"


def test_rewrite_replaces_only_marked_blocks(tables, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "x.md").write_text("| new |\n|---:|\n")
    monkeypatch.setattr(tables, "RESULTS", tmp_path)
    doc = tmp_path / "doc.md"
    doc.write_text("before\n<!-- results: copy:x -->\n| old |\n<!-- /results -->\nafter | kept |\n")
    assert tables.stale(doc) == ["copy:x"]
    assert tables.rewrite(doc)
    assert doc.read_text() == "before\n<!-- results: copy:x -->\n| new |\n|---:|\n<!-- /results -->\nafter | kept |\n"
    assert tables.stale(doc) == [] and not tables.rewrite(doc)
