"""compare(): every method on the same data, latency T_total = presteps + T, files and the CLI command."""

import csv
from pathlib import Path

import pytest
import torch
from _baseline_reference import random_mlp
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.errors import ConfigError
from ann2snn.evaluate.compare import compare, parse_method


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    model = random_mlp(3)
    g = torch.Generator().manual_seed(0)
    xs = [torch.rand(32, 6, generator=g, dtype=torch.float64) * 2 - 0.5 for _ in range(3)]
    with torch.no_grad():
        data = [(x, model(x).argmax(-1)) for x in xs]  # labels from the ANN: it scores 100%
    return model, data


def test_rows_latency_and_consistency(setup, tmp_path):
    model, data = setup
    methods = ["serial", "parallel", "srp:0", "srp:2", "cos", "signed"]
    rep = compare(model, data, methods, timesteps=(1, 2, 4), presteps=3)
    assert rep.methods == ["serial", "parallel", "srp:0", "srp:2", "cos:3", "signed"]
    assert len(rep.rows) == 6 * 3 and rep.num_samples == 96 and rep.ann_accuracy == 100.0
    for row in rep.rows:
        assert row["total_timesteps"] == row["presteps"] + row["timesteps"]
    assert {r["presteps"] for r in rep.rows if r["method"] == "cos:3"} == {3}
    # parallel at T = L = 4 is lossless: exactly the ANN's accuracy
    assert rep.accuracy("parallel", 4) == rep.ann_accuracy
    # SRP without pre-simulation is serial IF; and compare agrees with evaluate on the serial SNN
    for t in (1, 2, 4):
        assert rep.accuracy("srp:0", t) == rep.accuracy("serial", t)
    serial = a2s.evaluate(None, a2s.convert(model, a2s.ConversionConfig(method="serial", timesteps=4)), data, (1, 2, 4))
    assert all(rep.accuracy("serial", t) == serial.snn_accuracy[t] for t in (1, 2, 4))
    assert rep.by_latency()[3] == {"srp:2": rep.accuracy("srp:2", 1)}
    assert rep.by_latency()[4]["cos:3"] == rep.accuracy("cos:3", 1) and "parallel" in rep.by_latency()[4]

    paths = rep.save(tmp_path)
    with open(paths["csv"]) as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == 18 and lines[0].keys() == {"method", "presteps", "timesteps", "total_timesteps", "accuracy"}
    md = paths["md"].read_text()
    assert "| T_total | serial | parallel |" in md and "—" in md
    assert paths["png"].read_bytes()[:4] == b"\x89PNG" and paths["json"].is_file()


def test_one_shot_iterator_is_read_once(setup):
    model, data = setup
    rep = compare(model, iter(data), ["serial", "parallel"], timesteps=(2,))
    assert rep.num_samples == 96 and len(rep.rows) == 2


@pytest.mark.parametrize(
    "spec, match",
    [("foo", "unknown method"), ("parallel:2", "only srp and cos"), ("cos:x", "integer"), ("srp:-1", "0..4096")],
)
def test_bad_method_specs(spec, match):
    with pytest.raises(ConfigError, match=match):
        parse_method(spec)


def test_duplicate_and_empty(setup):
    model, data = setup
    with pytest.raises(ConfigError, match="twice"):
        compare(model, data, ["srp", "srp:4"], presteps=4)
    with pytest.raises(ConfigError, match="timesteps"):
        compare(model, data, ["serial"], timesteps=())


def test_cli_compare_writes_the_table(tmp_path: Path):
    pytest.importorskip("ann2snn.models")
    from ann2snn.cli.app import app

    torch.manual_seed(0)
    quant = a2s.QuantConfig(levels=4, threshold=1.0)
    model = a2s.prepare(a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8), quant)
    stem = a2s.save_checkpoint(tmp_path / "ckpt", model, quant=quant, dataset="digits")
    out = tmp_path / "cmp"
    args = [
        "compare",
        "-c",
        str(stem),
        "--methods",
        "serial,parallel,srp,cos:1,signed",
        "-T",
        "1,2",
        "--presteps",
        "1",
        "--limit",
        "40",
        "--out",
        str(out),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "T_total" in result.stdout
    assert {p.name for p in out.iterdir()} >= {"compare.csv", "compare.md", "compare.json", "compare.png"}
    bad = CliRunner().invoke(app, ["compare", "-c", str(stem), "--methods", "serial,nope"])
    assert bad.exit_code == 2 and "unknown method" in bad.stderr


def test_parallel_da_is_calibrated_for_each_t(setup):
    model, data = setup
    calib = [x for x, _ in data]
    rep = compare(model, data, ["parallel+da"], timesteps=(1, 2), calibration_data=calib)
    for t in (1, 2):  # each T gets its own calibrated SNN: the same as converting at that T directly
        snn = a2s.convert(model, a2s.ConversionConfig(timesteps=t, calibration="da"), calibration_data=calib)
        assert rep.accuracy("parallel+da", t) == a2s.evaluate(None, snn, data, (t,)).snn_accuracy[t]
    with pytest.raises(ConfigError, match="calibration_data"):
        compare(model, data, ["parallel+da"], timesteps=(1,))
