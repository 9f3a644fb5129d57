"""Training loop: seeded determinism, exact resume, no mutation of the input model, checkpoints, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from ann2snn.errors import CheckpointError, ConfigError, InputError
from ann2snn.export import load_checkpoint
from ann2snn.train import TrainConfig, _Dist, evaluate_accuracy, train


def make_data(n: int = 96) -> TensorDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 1, 4, 4, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + (x[:, 0, 0, 0] > 0).long()
    return TensorDataset(x, y)


def make_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Linear(64, 3)
    )


CFG = TrainConfig(epochs=3, batch_size=16, lr=0.05, seed=7)


def states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def strip_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def test_same_seed_same_weights_and_input_untouched() -> None:
    model = make_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    r1 = train(model, make_data(), CFG, progress=False)
    r2 = train(model, make_data(), CFG, progress=False)
    assert states_equal(r1.model, r2.model)
    assert strip_seconds(r1.history) == strip_seconds(r2.history)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's global RNG is left alone
    r3 = train(model, make_data(), CFG.replace(seed=8), progress=False)
    assert not states_equal(r1.model, r3.model)
    assert r1.completed and r1.steps == 3 * 6 and [h["epoch"] for h in r1.history] == [1, 2, 3]


@pytest.mark.parametrize("stop", [4, 6, 10])  # mid-epoch, exactly at an epoch end, mid-epoch after a boundary
def test_resume_equals_uninterrupted(tmp_path: Path, stop: int) -> None:
    data = make_data()
    full = train(make_model(), data, CFG, progress=False, eval_data=data)
    part = train(make_model(), data, CFG, out_dir=tmp_path, progress=False, eval_data=data, max_steps=stop)
    assert not part.completed and part.steps == stop
    assert (tmp_path / "last.json").is_file() and not (tmp_path / "final.json").exists()
    resumed = train(make_model(), data, CFG, out_dir=tmp_path, progress=False, eval_data=data, resume=True)
    assert resumed.completed and resumed.steps == full.steps
    assert states_equal(full.model, resumed.model)
    assert strip_seconds(full.history) == strip_seconds(resumed.history)
    final = load_checkpoint(tmp_path / "final", model=make_model())
    assert states_equal(final.model, full.model)
    assert final.metrics["eval_acc"] == full.eval_acc and final.training_state is None


def test_checkpoint_every_writes_mid_epoch(tmp_path: Path) -> None:
    train(
        make_model(),
        make_data(),
        CFG.replace(epochs=1, checkpoint_every=2),
        out_dir=tmp_path,
        progress=False,
        max_steps=5,
    )
    state = load_checkpoint(tmp_path / "last", model=make_model()).training_state
    assert state is not None and state["global_step"] == 5 and state["step_in_epoch"] == 5


def test_resume_with_other_settings_is_an_error(tmp_path: Path) -> None:
    train(make_model(), make_data(), CFG, out_dir=tmp_path, progress=False, max_steps=2)
    with pytest.raises(CheckpointError, match=r"last\.json.*batch_size"):
        train(make_model(), make_data(), CFG.replace(batch_size=8), out_dir=tmp_path, progress=False, resume=True)
    with pytest.raises(CheckpointError, match=r"last\.json.*num_samples"):
        train(make_model(), make_data(80), CFG, out_dir=tmp_path, progress=False, resume=True)


def test_resume_without_checkpoint_starts_fresh(tmp_path: Path) -> None:
    a = train(make_model(), make_data(), CFG, out_dir=tmp_path, progress=False, resume=True)
    b = train(make_model(), make_data(), CFG, progress=False)
    assert states_equal(a.model, b.model)


def test_small_data_and_tensor_tuple(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = make_data(10).tensors
    result = train(make_model(), (x, y), CFG.replace(epochs=2), progress=True)
    assert result.steps == 2  # one batch holding everything per epoch
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err


def test_learns_and_evaluate_accuracy_restores_mode() -> None:
    data = make_data(192)
    result = train(make_model(), data, CFG.replace(epochs=8, lr=0.1), eval_data=data, progress=False)
    assert result.eval_acc is not None and result.eval_acc > 0.7
    model = result.model.train()
    acc = evaluate_accuracy(model, data)
    assert model.training and acc == pytest.approx(result.eval_acc, abs=1e-12) or acc > 0.7
    with pytest.raises(InputError):
        evaluate_accuracy(model, [])


@pytest.mark.parametrize(
    "changes",
    [
        {"epochs": 0},
        {"lr": -1.0},
        {"lr": float("nan")},
        {"momentum": 1.0},
        {"momentum": 0.0},
        {"label_smoothing": 1.0},
        {"seed": -1},
        {"checkpoint_every": 0},
        {"device": "nonsense"},
    ],
)
def test_config_validation(changes: dict) -> None:
    with pytest.raises(ConfigError):
        TrainConfig(**changes)


def test_config_round_trip_and_errors() -> None:
    cfg = TrainConfig(epochs=2, checkpoint_every=5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        train(make_model(), make_data(), {"epochs": 1})  # type: ignore[arg-type]
    with pytest.raises(InputError):
        train(make_model(), make_data(0), CFG, progress=False)


def test_distributed_sharding_covers_every_sample() -> None:
    order = list(range(10))
    shards = [_Dist(rank=r, world_size=3).shard(order) for r in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]
    assert sorted(set(sum(shards, []))) == order
    assert _Dist().shard(order) == order
