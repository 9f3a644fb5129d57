"""Corpus of runtime faults: memory guards, silent wrong answers, out-of-range numbers, command-line manners.

API cases assert the exception type and that the message names the setting, file or layer (and, for ranges, the
accepted range). CLI cases assert exit code 2 and exactly one line ``error: ...`` naming the option. Every case
also asserts that nothing half-written (``*.tmp``) was left in its folder. Faults are real where it matters: a
second process holding the training lock, SIGINT to a training process, an ``RLIMIT_AS`` memory limit.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from typer.testing import CliRunner

import ann2snn as a2s
from ann2snn.cli import app
from ann2snn.errors import Ann2SnnError, ConfigError, DatasetError, InputError, ResourceError
from ann2snn.limits import INT_RANGES, check_int, check_timesteps, describe_range
from ann2snn.simulate import memory
from ann2snn.train.distributed import resolve_device
from ann2snn.train.lock import holder, out_dir_lock

torch.set_num_threads(1)
runner = CliRunner()
SRC = str(Path(a2s.__file__).resolve().parents[1])
CPU_ONLY = not torch.cuda.is_available()


def _qann(num_classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    model = a2s.create_model("cnn", num_classes=num_classes, in_channels=1, image_size=8)
    return a2s.prepare(model, a2s.QuantConfig(levels=4))


def _snn(method: str = "parallel", num_classes: int = 10) -> a2s.SpikingModel:
    return a2s.convert(_qann(num_classes), a2s.ConversionConfig(method=method, timesteps=4))


def _data(n: int = 16, top: int = 10) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, top, (n,), generator=g))]


def _bad_label_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Two batches; the second holds label 57 for a 10-class model."""
    good = _data(8)[0]
    return [good, (good[0], torch.tensor([1, 2, 3, 57, 0, 0, 0, 0]))]


def _bad_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    batches = _bad_label_batches()
    return torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])


def _no_temps(folder: Path) -> None:
    stray = [p for p in folder.rglob("*") if p.name.endswith(".tmp")]
    assert not stray, f"half-written files left behind: {stray}"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _hold_lock(folder: Path) -> subprocess.Popen[str]:
    """A second process that holds ``folder``'s training lock until killed."""
    code = (
        "import sys, time\nfrom ann2snn.train.lock import out_dir_lock\n"
        f"with out_dir_lock({str(folder)!r}):\n    print('held', flush=True)\n    time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


# ---------------------------------------------------------------------------------------------- data files
def _cifar_root(tmp: Path, data: Any, labels: Any) -> Path:
    folder = tmp / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batch = {b"data": data, b"labels": labels}
    (folder / "test_batch").write_bytes(pickle.dumps(batch))
    return tmp


def _cifar_fraction_label(tmp: Path) -> Any:
    root = _cifar_root(tmp, np.zeros((2, 3072), np.uint8), [0.7, 3])
    return a2s.load_dataset("cifar10", "test", root)


def _cifar_nan_pixels(tmp: Path) -> Any:
    data = np.full((2, 3072), np.nan, np.float32)
    return a2s.load_dataset("cifar10", "test", _cifar_root(tmp, data, [1, 2]))


def _cifar_pixels_over_255(tmp: Path) -> Any:
    data = np.full((2, 3072), 300.0, np.float64)
    return a2s.load_dataset("cifar10", "test", _cifar_root(tmp, data, [1, 2]))


def _cifar_string_labels(tmp: Path) -> Any:
    return a2s.load_dataset("cifar10", "test", _cifar_root(tmp, np.zeros((2, 3072), np.uint8), ["a", "b"]))


def _image_root(tmp: Path, empty: str = "zebra") -> Path:
    from PIL import Image

    for cls in ("cat", "dog"):
        (tmp / "train" / cls).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(tmp / "train" / cls / "a.png")
    (tmp / "train" / empty).mkdir()
    return tmp


# ---------------------------------------------------------------------------------------------- API corpus
def _snn_x() -> tuple[a2s.SpikingModel, torch.Tensor]:
    return _snn(), torch.rand(4, 1, 8, 8)


def _simulate_tight(tmp: Path) -> Any:
    snn = _snn()
    old = memory.available_bytes
    memory.available_bytes = lambda device: 50_000_000  # type: ignore[assignment]
    try:
        return a2s.simulate(snn, torch.rand(64, 1, 8, 8), 200_000)
    finally:
        memory.available_bytes = old  # type: ignore[assignment]


def _train_while_locked(tmp: Path) -> Any:
    proc = _hold_lock(tmp / "run")
    try:
        x, y = _data(8)[0]
        return a2s.train(_qann(), (x, y), a2s.TrainConfig(epochs=1, batch_size=8), out_dir=tmp / "run", progress=False)
    finally:
        proc.kill()
        proc.wait()


def _evaluate_ann_snn_mismatch(tmp: Path) -> Any:
    return a2s.evaluate(_qann(10), _snn(num_classes=3), _data(8, top=3), (1,))


def _robustness_ann_snn_mismatch(tmp: Path) -> Any:
    return a2s.evaluate_robustness(_snn(num_classes=3), _data(8, top=3), "sp:0.1", (2,), ann=_qann(10), progress=False)


def _train_bad_label_later(tmp: Path) -> Any:
    x = torch.rand(16, 1, 8, 8)
    y = torch.zeros(16, dtype=torch.long)
    y[12] = 10  # in the second batch of 8 (no shuffling can move it into the first: checked on every batch)
    return a2s.train(_qann(), (x, y), a2s.TrainConfig(epochs=1, batch_size=8), progress=False)


def _load_map_location(tmp: Path, where: str) -> Any:
    stem = a2s.save_checkpoint(tmp / "ck", _qann(), quant=a2s.QuantConfig(levels=4), dataset="digits")
    return a2s.load_checkpoint(stem, map_location=where)


# (case id, call(tmp_path), exception type, substrings of the message)
API_CASES: list[tuple[str, Callable[[Path], Any], type[Exception], tuple[str, ...]]] = [
    ("levels 10**400", lambda t: a2s.QuantConfig(levels=10**400), ConfigError, ("levels", "1..65536")),
    ("levels 0", lambda t: a2s.QuantConfig(levels=0), ConfigError, ("levels=0",)),
    ("threshold 1e308 (inf in float32)", lambda t: a2s.QuantConfig(threshold=1e308), ConfigError, ("threshold",)),
    ("threshold 1e-320 (0 in float32)", lambda t: a2s.QuantConfig(threshold=1e-320), ConfigError, ("threshold",)),
    ("steprelu steps 10**6", lambda t: a2s.QuantConfig(activation="steprelu", steps=10**6), ConfigError, ("steps",)),
    ("staircase beyond float32-safe", lambda t: a2s.QuantConfig(step=100.0, steps=60_000), ConfigError, ("step",)),
    ("timesteps 10**7", lambda t: a2s.ConversionConfig(timesteps=10**7), ConfigError, ("timesteps", "1..1000000")),
    (
        "presteps 10**6 (unbounded run)",
        lambda t: a2s.ConversionConfig(method="srp", presteps=10**6),
        ConfigError,
        ("presteps", "0..4096"),
    ),
    ("calibration_batches 10**9", lambda t: a2s.ConversionConfig(calibration_batches=10**9), ConfigError, ("calib",)),
    (
        "neg_threshold -1e300",
        lambda t: a2s.ConversionConfig(method="serial", neuron="signed_if", neg_threshold=-1e300),
        ConfigError,
        ("neg_threshold",),
    ),
    (
        "leak_delta 1e300",
        lambda t: a2s.ConversionConfig(method="serial", leak_mode="linear", leak_delta=1e300),
        ConfigError,
        ("leak_delta",),
    ),
    ("train seed 2**64", lambda t: a2s.TrainConfig(seed=2**64), ConfigError, ("seed", "2**63-1")),
    ("train seed -1", lambda t: a2s.TrainConfig(seed=-1), ConfigError, ("seed",)),
    ("train epochs 10**9", lambda t: a2s.TrainConfig(epochs=10**9), ConfigError, ("epochs", "100000")),
    ("train batch 2**40", lambda t: a2s.TrainConfig(batch_size=2**40), ConfigError, ("batch_size",)),
    ("checkpoint_every 2**50", lambda t: a2s.TrainConfig(checkpoint_every=2**50), ConfigError, ("checkpoint_every",)),
    ("train device cuda:x", lambda t: a2s.TrainConfig(device="cuda:x"), ConfigError, ("cuda:x",)),
    ("limit 2**50", lambda t: a2s.load_dataset("digits", "test", limit=2**50), ConfigError, ("limit",)),
    (
        "loader batch 2**30",
        lambda t: a2s.make_loader(a2s.load_dataset("digits", "test", limit=8), 2**30, False),
        ConfigError,
        ("batch_size",),
    ),
    (
        "loader seed 2**64",
        lambda t: a2s.make_loader(a2s.load_dataset("digits", "test", limit=8), 4, True, seed=2**64),
        ConfigError,
        ("seed",),
    ),
    (
        "loader workers 10**6",
        lambda t: a2s.make_loader(a2s.load_dataset("digits", "test", limit=8), 4, False, num_workers=10**6),
        ConfigError,
        ("num_workers",),
    ),
    ("model classes 10**9", lambda t: a2s.create_model("cnn", num_classes=10**9), ConfigError, ("num_classes",)),
    ("simulate T 10**7", lambda t: a2s.simulate(*_snn_x(), 10**7), ConfigError, ("timesteps",)),
    (
        "simulate T 2.5",
        lambda t: a2s.simulate(*_snn_x(), 2.5),  # type: ignore[arg-type]
        ConfigError,
        ("timesteps", "integer"),
    ),
    (
        "evaluate T 2.5 not truncated",
        lambda t: a2s.evaluate(None, _snn(), _data(), (2.5,)),  # type: ignore[arg-type]
        ConfigError,
        ("2.5",),
    ),
    (
        "evaluate max_batches 0",
        lambda t: a2s.evaluate(None, _snn(), _data(), (1,), max_batches=0),
        ConfigError,
        ("max_b",),
    ),
    ("compare srp:100000", lambda t: a2s.compare(_qann(), _data(), ["srp:100000"], (1,)), ConfigError, ("srp:100000",)),
    (
        "compare presteps 10**6",
        lambda t: a2s.compare(_qann(), _data(), ["srp"], (1,), presteps=10**6),
        ConfigError,
        ("presteps",),
    ),
    (
        "robustness seed 2**64",
        lambda t: a2s.evaluate_robustness(_snn(), _data(), "sp:0.1", (1,), seed=2**64, progress=False),
        ConfigError,
        ("seed",),
    ),
    (
        "train max_steps 2**50",
        lambda t: a2s.train(
            _qann(), _data()[0], a2s.TrainConfig(epochs=1, batch_size=8), max_steps=2**50, progress=False
        ),
        ConfigError,
        ("max_steps",),
    ),
    ("device cuda:x", lambda t: resolve_device("cuda:x"), ConfigError, ("cuda:x", "cuda:N")),
    ("map_location cuda:x", lambda t: _load_map_location(t, "cuda:x"), ConfigError, ("map_location", "not read")),
    (
        "evaluate label 57 of 10 classes",
        lambda t: a2s.evaluate(_qann(), _snn(), _bad_label_batches(), (1,)),
        InputError,
        ("batch 1 labels", "57", "10 outputs"),
    ),
    (
        "evaluate SNN alone label 57",
        lambda t: a2s.evaluate(None, _snn("serial"), _bad_label_batches(), (2,)),
        InputError,
        ("57", "the SNN"),
    ),
    ("evaluate ANN 10 vs SNN 3 classes", _evaluate_ann_snn_mismatch, ConfigError, ("10 outputs", "SNN has 3")),
    ("robustness ANN 10 vs SNN 3 classes", _robustness_ann_snn_mismatch, ConfigError, ("10 outputs", "SNN has 3")),
    (
        "robustness label 57",
        lambda t: a2s.evaluate_robustness(_snn(), _bad_label_batches(), "sp:0.1", (1,), progress=False),
        InputError,
        ("batch 1 labels", "57"),
    ),
    ("train label 10 in a later batch", _train_bad_label_later, InputError, ("train_data labels", "10")),
    (
        "eval_data label 57",
        lambda t: a2s.evaluate_accuracy(_qann(), DataLoader(TensorDataset(*_bad_tensors()), batch_size=8)),
        InputError,
        ("eval_data labels", "57"),
    ),
    (
        "imagefolder empty class folder",
        lambda t: a2s.dataset_info("imagefolder", _image_root(t)),
        DatasetError,
        ("zebra",),
    ),
    (
        "imagefolder empty folder in load",
        lambda t: a2s.load_dataset("imagefolder", "train", _image_root(t, "aardvark")),
        DatasetError,
        ("aardvark", "extra class"),
    ),
    ("cifar label 0.7", _cifar_fraction_label, DatasetError, ("test_batch", "labels", "0.7")),
    ("cifar NaN pixels", _cifar_nan_pixels, DatasetError, ("test_batch", "b'data'", "uint8")),
    ("cifar pixels 300", _cifar_pixels_over_255, DatasetError, ("test_batch", "uint8")),
    ("cifar string labels", _cifar_string_labels, DatasetError, ("test_batch", "labels")),
    ("spike simulation over free memory", _simulate_tight, ResourceError, ("T=200000", "needs about", "mode='rate'")),
    ("train into a locked out_dir", _train_while_locked, ResourceError, ("in use", "pid", "host")),
    ("timesteps empty", lambda t: check_timesteps([]), ConfigError, ("at least one",)),
    ("timesteps string", lambda t: check_timesteps("1,2"), ConfigError, ("sequence",)),
]
if CPU_ONLY:
    API_CASES += [
        ("device cuda without CUDA", lambda t: resolve_device("cuda"), ConfigError, ("CUDA is not available",)),
        (
            "map_location cuda without CUDA blames no file",
            lambda t: _load_map_location(t, "cuda"),
            ConfigError,
            ("map_location='cuda'", "CUDA is not available", "not read"),
        ),
    ]


@pytest.mark.parametrize(("case", "call", "exc_type", "names"), API_CASES, ids=[c[0] for c in API_CASES])
def test_api_runtime_fault(
    tmp_path: Path, case: str, call: Callable[[Path], Any], exc_type: type[Exception], names: tuple[str, ...]
) -> None:
    with pytest.raises(exc_type) as info:
        call(tmp_path)
    assert isinstance(info.value, Ann2SnnError)
    message = str(info.value)
    assert "\n" not in message.strip()
    for name in names:
        assert name in message, f"{name!r} not in {message!r}"
    _no_temps(tmp_path)


def test_map_location_error_does_not_blame_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        _load_map_location(tmp_path, "cuda:x")
    assert str(tmp_path) not in str(info.value)
    assert a2s.load_checkpoint(tmp_path / "ck").model is not None  # the file was fine all along


# ---------------------------------------------------------------------------------------------- ranges
def test_every_range_is_documented_and_enforced_at_both_ends() -> None:
    errors_md = (Path(__file__).resolve().parents[2] / "docs" / "errors.md").read_text()
    for name, (low, high, _) in INT_RANGES.items():
        assert f"`{name}`" in errors_md and describe_range(name) in errors_md, name
        assert check_int(name, low) == low and check_int(name, high) == high
        for bad in (low - 1, high + 1):
            with pytest.raises(ConfigError, match=name):
                check_int(name, bad)


def test_plan_chunks_a_parallel_run_to_fit_before_refusing() -> None:
    kw = dict(timesteps=1000, batch=64, widest=2048, total=4096, classes=10, itemsize=4, parallel=True)
    one_chunk = memory.spike_bytes(chunk=1, **kw)  # type: ignore[arg-type]
    whole = memory.spike_bytes(chunk=64, **kw)  # type: ignore[arg-type]
    assert whole > one_chunk
    free = int(memory.spike_bytes(chunk=8, **kw) / memory.HEADROOM) + 1  # type: ignore[arg-type]
    decided = memory.plan(chunk=64, device=torch.device("cpu"), free=free, **kw)  # type: ignore[arg-type]
    assert decided.chunk == 8 and decided.bytes_needed <= free
    with pytest.raises(ResourceError, match="needs about"):
        memory.plan(chunk=64, device=torch.device("cpu"), free=one_chunk // 2, **kw)  # type: ignore[arg-type]


def test_chunked_spike_run_equals_the_unchunked_one() -> None:
    snn, x = _snn(), torch.rand(16, 1, 8, 8)
    snn.max_rows = 1 << 30
    whole = a2s.simulate(snn, x, 8)
    old = memory.available_bytes
    widest, total, k = snn.sample_sizes(x[:1])
    need_two = memory.spike_bytes(8, 16, 2, widest, total, k, 4, True)
    memory.available_bytes = lambda device: int(need_two / memory.HEADROOM) + 1  # type: ignore[assignment]
    memory.SMALL, small = 0, memory.SMALL
    try:
        chunked = a2s.simulate(snn, x, 8)
    finally:
        memory.available_bytes, memory.SMALL = old, small  # type: ignore[assignment]
    assert torch.equal(whole.mean_output, chunked.mean_output)
    for name, counts in whole.spike_counts.items():
        assert torch.equal(counts, chunked.spike_counts[name])


_RLIMIT_SCRIPT = textwrap.dedent(
    """
    import resource, torch, ann2snn as a2s
    from ann2snn.errors import ResourceError
    from ann2snn.simulate import memory
    torch.set_num_threads(1)
    model = a2s.prepare(a2s.create_model("cnn", num_classes=10, in_channels=1, image_size=8), a2s.QuantConfig(levels=4))
    snn = a2s.convert(model, a2s.ConversionConfig(method="parallel", timesteps=4))
    x = torch.rand(32, 1, 8, 8)
    vm = int([l for l in open("/proc/self/status") if l.startswith("VmSize")][0].split()[1]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + 600 * 2**20, resource.RLIM_INFINITY))
    print("small", a2s.simulate(snn, x, 8).mean_output.shape[0])
    try:  # several GB of time-flattened activations: refused before allocating
        a2s.simulate(snn, x, 1_000_000)
    except ResourceError as exc:
        print("guard", str(exc).splitlines()[0])
    import sys
    runner = sys.modules["ann2snn.simulate.runner"]
    runner.memory_plan = lambda **kw: memory.MemoryPlan(0, kw["chunk"])  # guard off: the allocation itself fails
    try:
        a2s.simulate(snn, x, 1_000_000)
    except ResourceError as exc:
        print("fallback", str(exc).splitlines()[0])
    """
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux")
def test_memory_guard_under_rlimit_as() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _RLIMIT_SCRIPT], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.strip().splitlines())
    assert lines["small"] == "32"
    assert "T=1000000" in lines["guard"] and "free" in lines["guard"] and "--batch-size" in lines["guard"]
    assert "out of memory" in lines["fallback"] and "image size" not in lines["fallback"]


def test_lock_is_taken_over_from_a_dead_holder(tmp_path: Path) -> None:
    proc = _hold_lock(tmp_path)
    dead_pid = proc.pid
    proc.kill()
    proc.wait()
    assert holder(tmp_path)["pid"] == dead_pid  # type: ignore[index]
    with out_dir_lock(tmp_path):
        assert holder(tmp_path)["pid"] == os.getpid()  # type: ignore[index]


# ---------------------------------------------------------------------------------------------- CLI corpus
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ck")
    return a2s.save_checkpoint(folder / "ck", _qann(), quant=a2s.QuantConfig(levels=4), dataset="digits")


def _cli_locked(t: Path, c: Path) -> list[str]:
    return ["train", "--epochs", "1", "--limit", "32", "-q", "-o", str(t / "busy")]


# (case id, args(tmp_path, checkpoint), substrings of the one line)
CLI_CASES: list[tuple[str, Callable[[Path, Path], list[str]], tuple[str, ...]]] = [
    ("not an integer", lambda t, c: ["train", "--levels", "abc"], ("--levels", "train --help")),
    ("unknown option", lambda t, c: ["train", "--bogus"], ("--bogus", "train --help")),
    ("missing option", lambda t, c: ["evaluate"], ("--checkpoint",)),
    ("unknown command", lambda t, c: ["evaluat"], ("evaluat",)),
    ("seed 2**64", lambda t, c: ["train", "--seed", str(2**64), "-o", str(t)], ("--seed", "2**63-1")),
    ("levels 10**5", lambda t, c: ["train", "--levels", "100000", "-o", str(t)], ("--levels", "1..65536")),
    ("levels 10**400", lambda t, c: ["train", "-L", "1" + "0" * 400, "-o", str(t)], ("--levels", "401-digit")),
    ("epochs 10**6", lambda t, c: ["train", "--epochs", "1000000", "-o", str(t)], ("--epochs",)),
    ("batch size 0", lambda t, c: ["train", "--batch-size", "0", "-o", str(t)], ("--batch-size",)),
    ("limit 0", lambda t, c: ["train", "--limit", "0", "-o", str(t)], ("--limit",)),
    ("checkpoint-every 2**50", lambda t, c: ["train", "--checkpoint-every", str(2**50)], ("--checkpoint-every",)),
    ("train device cuda:x", lambda t, c: ["train", "--device", "cuda:x", "-o", str(t)], ("cuda:x",)),
    ("evaluate T 10**7", lambda t, c: ["evaluate", "-c", str(c), "-T", "10000000"], ("--timesteps", "1..1000000")),
    ("evaluate T list", lambda t, c: ["evaluate", "-c", str(c), "-T", "1,abc"], ("--timesteps",)),
    ("evaluate device cuda:x", lambda t, c: ["evaluate", "-c", str(c), "--device", "cuda:x"], ("cuda:x",)),
    ("evaluate 100-class data", lambda t, c: ["evaluate", "-c", str(c), "-d", "cifar100"], ("100 classes", "10")),
    ("evaluate calib -1", lambda t, c: ["evaluate", "-c", str(c), "--calibration-batches", "-1"], ("--calibration",)),
    ("evaluate batch 2**21", lambda t, c: ["evaluate", "-c", str(c), "-b", str(2**21)], ("--batch-size",)),
    ("compare presteps 10**5", lambda t, c: ["compare", "-c", str(c), "--presteps", "100000"], ("--presteps",)),
    ("compare srp:10**5", lambda t, c: ["compare", "-c", str(c), "--methods", "srp:100000"], ("srp:100000",)),
    ("convert T 0", lambda t, c: ["convert", "-c", str(c), "-T", "0"], ("--timesteps",)),
    ("export T 10**7", lambda t, c: ["export", "-c", str(c), "-T", "10000000", "-o", str(t / "x.nir")], ("--timest",)),
    ("robustness seed 2**64", lambda t, c: ["robustness", "-c", str(c), "--seed", str(2**64)], ("--seed",)),
    ("check num-classes 0", lambda t, c: ["check", "-m", "cnn", "--num-classes", "0"], ("--num-classes",)),
    ("check image-size 10**6", lambda t, c: ["check", "-m", "cnn", "--image-size", "1000000"], ("--image-size",)),
    ("demo seed -1", lambda t, c: ["demo", "--seed", "-1", "-o", str(t)], ("--seed",)),
]


@pytest.mark.parametrize(("case", "args", "names"), CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_runtime_fault(
    tmp_path: Path, checkpoint: Path, case: str, args: Callable[[Path, Path], list[str]], names: tuple[str, ...]
) -> None:
    result = runner.invoke(app, args(tmp_path, checkpoint))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "╭" not in result.output
    for name in names:
        assert name in lines[0], f"{name!r} not in {lines[0]!r}"
    _no_temps(tmp_path)


def test_cli_train_into_a_locked_folder_names_the_holder(tmp_path: Path) -> None:
    proc = _hold_lock(tmp_path / "busy")
    try:
        result = runner.invoke(app, _cli_locked(tmp_path, tmp_path))
    finally:
        proc.kill()
        proc.wait()
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {proc.pid}" in lines[0] and "--out" in lines[0], result.stderr
    assert not list((tmp_path / "busy").glob("*.json"))  # nothing written by the refused run


def test_cli_memory_guard_is_one_line(monkeypatch: pytest.MonkeyPatch, checkpoint: Path) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: 50_000_000)
    args = ["evaluate", "-c", str(checkpoint), "-T", "1000000", "--mode", "spike", "--limit", "8", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs about" in lines[0] and "--mode rate" in lines[0], result.stderr


def test_cli_logged_warning_does_not_precede_an_error(monkeypatch: pytest.MonkeyPatch, checkpoint: Path) -> None:
    import logging

    from ann2snn.cli import common

    def warn_then_fail(*args: Any, **kwargs: Any) -> None:
        logging.getLogger("ann2snn").warning("something looked odd")
        raise ConfigError("the real problem")

    monkeypatch.setattr(common, "check_model_fits_dataset", warn_then_fail)
    result = runner.invoke(app, ["evaluate", "-c", str(checkpoint), "-q"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["error: the real problem"]


def test_cli_logged_warning_is_shown_after_success(monkeypatch: pytest.MonkeyPatch, checkpoint: Path) -> None:
    import logging

    from ann2snn.cli import common

    def warn(*args: Any, **kwargs: Any) -> None:
        logging.getLogger("ann2snn").warning("something looked odd")

    monkeypatch.setattr(common, "check_model_fits_dataset", warn)
    result = runner.invoke(app, ["evaluate", "-c", str(checkpoint), "-T", "1", "--limit", "16", "-q"])
    assert result.exit_code == 0, result.output
    assert "warning: something looked odd" in result.stderr.splitlines()


def test_cli_ctrl_c_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch, checkpoint: Path) -> None:
    from ann2snn.cli import common

    def interrupt(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(common, "check_model_fits_dataset", interrupt)
    result = runner.invoke(app, ["evaluate", "-c", str(checkpoint), "-q"])
    assert result.exit_code == 130
    assert result.stderr.strip().splitlines() == ["interrupted: stopped by Ctrl-C"]


def test_cli_help_shows_ranges() -> None:
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "[1..65536]" in result.stdout and "[0..2**63-1]" in result.stdout


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals")
def test_sigint_during_train_says_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [sys.executable, "-m", "ann2snn", "train", "--epochs", "40", "--limit", "256", "-b", "32"]
    args += ["--checkpoint-every", "2", "--device", "cpu", "-q", "-o", str(out)]
    proc = subprocess.Popen(  # SIGINT back to its default: a shell starts background jobs with it ignored
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (out / "last.json").exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted: "), err
    assert "--resume" in lines[0] and "bit-for-bit" in lines[0] and str(out / "last") in lines[0]
    assert json.loads((out / "last.json").read_text())  # the checkpoint it points at is complete
    _no_temps(out)
