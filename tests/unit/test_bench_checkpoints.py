"""Benchmark checkpoints: the committed files match their recorded SHA-256, a changed file is refused, and the
seed summary of ``--retrain`` runs is the plain mean / min / max."""

from __future__ import annotations

from pathlib import Path

import pytest

import ann2snn as a2s

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def common(benchmark_module):  # type: ignore[no-untyped-def]
    return benchmark_module("common")


def test_every_committed_checkpoint_has_its_recorded_hash(common) -> None:  # type: ignore[no-untyped-def]
    sums = common.read_checksums()
    files = sorted(p.relative_to(BENCH).as_posix() for p in (BENCH / "models").glob("*.*"))
    assert files, "benchmarks/models holds the committed checkpoints"
    assert set(files) <= set(sums), f"not recorded: {sorted(set(files) - set(sums))}"
    for name in files:
        assert common.file_sha256(BENCH / name) == sums[name], name


def test_changed_checkpoint_is_refused_and_new_one_recorded(common, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(common, "ROOT", tmp_path)
    monkeypatch.setattr(common, "MODELS", tmp_path / "models")
    monkeypatch.setattr(common, "CHECKSUMS", tmp_path / "results" / "checkpoints.sha256")
    monkeypatch.setattr(common, "LOADED", {})
    (tmp_path / "results").mkdir()
    net = a2s.create_model("cnn", num_classes=3, in_channels=1, image_size=8, hidden=4)
    a2s.save_checkpoint(tmp_path / "models" / "tiny", net)
    trained: list[Path] = []

    def no_training(out: Path) -> None:
        trained.append(out)

    model = common.cached_model("tiny", no_training)  # committed: loaded, not trained; hash recorded on first sight
    assert trained == []
    assert common.source(model)["checkpoint"] == "benchmarks/models/tiny"
    sums = common.read_checksums()
    assert set(sums) == {"models/tiny.json", "models/tiny.safetensors"}
    assert common.LOADED == {"models/tiny": sums["models/tiny.safetensors"]}
    assert common.source(model)["checkpoint_sha256"] == sums["models/tiny.safetensors"]
    common.cached_model("tiny", no_training)  # unchanged: fine
    weights = tmp_path / "models" / "tiny.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(common.ChecksumError, match=r"models/tiny.safetensors has sha256 .* records"):
        common.cached_model("tiny", no_training)


def test_seed_summary_is_mean_min_max_per_group(common) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {"L": 4, "T": 4, "seed": 0, "gap": 3.0},
        {"L": 4, "T": 4, "seed": 1, "gap": 1.0},
        {"L": 4, "T": 4, "seed": 2, "gap": 2.5},
        {"L": 8, "T": 4, "seed": 0, "gap": -1.0},
    ]
    out = common.seed_summary(rows, ["L", "T"], ["gap"])
    assert out == [
        {"L": 4, "T": 4, "seeds": "0,1,2", "gap_mean": 6.5 / 3, "gap_min": 1.0, "gap_max": 3.0},
        {"L": 8, "T": 4, "seeds": "0", "gap_mean": -1.0, "gap_min": -1.0, "gap_max": -1.0},
    ]


def test_keep_committed_reuses_the_committed_run_only_when_it_matches(
    common, benchmark_module, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import argparse
    import json

    avt = benchmark_module("accuracy_vs_T")
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    rows = [{"L": 4, "T": 1, "ann": 90.0}, {"L": 4, "T": 4, "ann": 90.0}, {"L": 8, "T": 8, "ann": 91.0}]
    (tmp_path / "avt.json").write_text(json.dumps({"rows": rows, "args": {"limit": None, "epochs": 4}}))
    args = argparse.Namespace(stem="avt", limit=None, epochs=4)
    assert avt.committed_rows(args) == {4: rows[:2], 8: rows[2:]}
    assert avt.committed_rows(argparse.Namespace(stem="avt", limit=500, epochs=4)) == {}
    assert avt.committed_rows(argparse.Namespace(stem="avt", limit=None, epochs=2)) == {}
    assert avt.committed_rows(argparse.Namespace(stem="missing", limit=None, epochs=4)) == {}
