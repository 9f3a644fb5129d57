"""Quantization-aware training loop: seeded, resumable, atomic checkpoints, torchrun/DDP aware.

:func:`train` trains a deep copy of the given model with SGD (Nesterov momentum, weight decay on weight matrices
and kernels only, not on biases, BatchNorm or thresholds) and a per-step cosine learning-rate schedule. The data
order of epoch ``e`` comes from a generator seeded by ``(seed, e)`` and the global RNG (dropout) is seeded from
``seed`` inside a forked RNG scope, so the same seed gives bitwise identical weights on CPU and a run resumed from
its ``last`` checkpoint ends with the same weights as an uninterrupted one.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from torch.utils.data import TensorDataset
    >>> data = TensorDataset(torch.randn(64, 4), torch.randint(0, 3, (64,)))
    >>> result = train(nn.Linear(4, 3), data, TrainConfig(epochs=2, batch_size=16), progress=False)
    >>> [row["epoch"] for row in result.history]
    [1, 2]
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ann2snn.config import QuantConfig, _Config, _finite, _positive_int
from ann2snn.errors import Ann2SnnError, CheckpointError, ConfigError, InputError
from ann2snn.export.checkpoint import load_checkpoint, save_checkpoint
from ann2snn.recovery import keep_previous, remove_stale_temps, resume_candidates
from ann2snn.validation import call_checked, check_finite_model, check_labels

__all__ = ["TrainConfig", "TrainResult", "evaluate_accuracy", "resolve_device", "train"]

LAST = "last"
FINAL = "final"
PREVIOUS = "previous"
# TrainConfig fields that must be equal to resume (the others may change between runs).
_RESUME_FIELDS = ("epochs", "batch_size", "lr", "momentum", "nesterov", "weight_decay", "label_smoothing", "seed")


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Config):
    """Settings of :func:`train`.

    Attributes:
        epochs: Passes over the training data.
        batch_size: Samples per step (per process under DDP). The last partial batch of an epoch is dropped
            unless the data is smaller than one batch.
        lr: Peak learning rate of SGD; a cosine schedule decays it to 0 over ``epochs`` x steps per epoch.
        momentum: SGD momentum.
        nesterov: Nesterov momentum (needs ``momentum > 0``).
        weight_decay: L2 penalty on weights with 2+ dimensions (not on biases, BatchNorm or thresholds).
        label_smoothing: Label smoothing of the cross-entropy loss, in [0, 1).
        seed: Seeds data order, dropout and everything random in the loop.
        checkpoint_every: Also write ``last`` every this many steps; ``None``: at the end of each epoch only.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    """

    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    seed: int = 0
    checkpoint_every: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _finite("lr", self.lr, 0.0, low_open=True)
        _finite("momentum", self.momentum, 0.0)
        if self.momentum >= 1:
            raise ConfigError(f"momentum={self.momentum!r} must be < 1")
        if not isinstance(self.nesterov, bool):
            raise ConfigError(f"nesterov={self.nesterov!r} must be True or False")
        if self.nesterov and self.momentum == 0:
            raise ConfigError("nesterov=True needs momentum > 0; set nesterov=False or momentum=0.9")
        _finite("weight_decay", self.weight_decay, 0.0)
        _finite("label_smoothing", self.label_smoothing, 0.0)
        if self.label_smoothing >= 1:
            raise ConfigError(f"label_smoothing={self.label_smoothing!r} must be < 1")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a non-negative integer")
        if self.checkpoint_every is not None:
            _positive_int("checkpoint_every", self.checkpoint_every)
        if not isinstance(self.device, str):
            raise ConfigError(f"device={self.device!r} must be a string such as 'auto', 'cpu' or 'cuda'")
        if self.device != "auto":
            try:
                torch.device(self.device)
            except (RuntimeError, ValueError) as exc:
                raise ConfigError(
                    f"device={self.device!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'"
                ) from exc


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: The trained copy (in eval mode, on the training device); the input model is untouched.
        history: One dict per finished epoch: ``epoch``, ``loss``, ``train_acc``, ``eval_acc`` (``None``
            without eval data), ``lr`` (at the epoch's last step) and ``seconds``.
        eval_acc: Evaluation accuracy after the last finished epoch (``None`` without eval data).
        train_acc: Running training accuracy of the last finished epoch.
        steps: Optimizer steps taken in total (including those before a resume).
        completed: ``False`` when ``max_steps`` stopped the run early.
        checkpoint: Stem of the checkpoint written last (``out_dir/final`` or ``out_dir/last``), else ``None``.
    """

    model: nn.Module
    history: list[dict[str, Any]]
    eval_acc: float | None
    train_acc: float | None
    steps: int
    completed: bool
    checkpoint: Path | None = None


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; other names are checked for availability."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={str(device)!r} but CUDA is not available; use device='cpu' or 'auto'")
    return dev


def evaluate_accuracy(model: nn.Module, loader: Any, device: str | torch.device | None = None) -> float:
    """Top-1 accuracy of an ANN in [0, 1] over ``loader`` (batches ``(x, y)``, a Dataset or ``(x, y)`` tensors).

    The model runs in eval mode without gradients; its previous mode is restored and it is not moved, so it
    must already be on ``device`` (default: the device of its first parameter).

    Raises:
        InputError: The data is empty.
    """
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    loader = _as_loader(loader, batch_size=256)
    was_training = model.training
    model.eval()
    correct, total = 0, 0
    try:
        with torch.no_grad():
            for batch in loader:
                x, y = batch[0].to(device), batch[1].to(device)
                correct += int((model(x).argmax(dim=1) == y).sum().item())
                total += int(y.shape[0])
    finally:
        model.train(was_training)
    if total == 0:
        raise InputError("evaluate_accuracy got no samples; pass a non-empty loader or dataset")
    return correct / total


def train(
    model: nn.Module,
    train_data: Any,
    config: TrainConfig | None = None,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    eval_data: Any = None,
    progress: bool = True,
    resume: bool = False,
    max_steps: int | None = None,
    quant: QuantConfig | None = None,
    dataset: str | None = None,
) -> TrainResult:
    """Train a copy of ``model`` with cross-entropy; ``model`` itself is never modified.

    Args:
        model: Classifier mapping ``[B, ...]`` inputs to logits ``[B, K]`` (e.g. a prepared QCFS model).
        train_data: Map-style Dataset of ``(x, y)``, a DataLoader (its dataset is used; batching and order come
            from ``config``), or a tuple of tensors ``(x, y)``.
        config: :class:`TrainConfig` (defaults when ``None``).
        out_dir: Folder for checkpoints: ``last`` (model + optimizer + RNG + counters, for resuming) at every
            epoch end (and every ``checkpoint_every`` steps), ``final`` (model + metrics) at the end.
        eval_data: Optional evaluation data (same kinds as ``train_data``), scored after every epoch.
        progress: Show a progress bar on a terminal, plain per-epoch lines otherwise (CI); ``False``: silent.
        resume: Continue from ``out_dir/last`` when it exists (written with the same config and data size).
        max_steps: Stop after this many optimizer steps in total (writes ``last``; ``completed=False``).
        quant: The QuantConfig ``model`` was prepared with, recorded in the checkpoints.
        dataset: Dataset name recorded in the checkpoints.

    Under torchrun (``WORLD_SIZE > 1``) every process trains on its shard of each epoch inside
    DistributedDataParallel (gloo on CPU, NCCL on CUDA) and only rank 0 writes checkpoints and logs.

    Raises:
        ConfigError: Invalid settings. InputError: Empty data. CheckpointError: A ``last`` checkpoint that does
        not fit. Ann2SnnError: The loss became NaN/Inf.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"train expects a TrainConfig, got {type(config).__name__}")
    if not isinstance(model, nn.Module):
        raise ConfigError(f"train expects an nn.Module, got {type(model).__name__}")
    if max_steps is not None:
        _positive_int("max_steps", max_steps)
    check_finite_model(model)
    dataset_obj = _as_dataset(train_data, "train_data")
    eval_loader = None if eval_data is None else _as_loader(eval_data, config.batch_size)
    dist_ctx, device = _init_distributed(config.device)
    try:
        loop = _Loop(model, dataset_obj, config, dist_ctx, device, out_dir, eval_loader, progress, quant, dataset)
        rng_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=rng_devices):
            return loop.run(resume=resume, max_steps=max_steps)
    finally:
        dist_ctx.close()


# ------------------------------------------------------------------------------------------------ the loop
class _Loop:
    def __init__(
        self,
        model: nn.Module,
        data: Dataset,
        config: TrainConfig,
        dist_ctx: _Dist,
        device: torch.device,
        out_dir: Any,
        eval_loader: DataLoader | None,
        progress: bool,
        quant: QuantConfig | None,
        dataset: str | None,
    ) -> None:
        self.model = copy.deepcopy(model)
        self.data, self.config, self.dist, self.device = data, config, dist_ctx, device
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.eval_loader, self.quant, self.dataset_name = eval_loader, quant, dataset
        self.num_samples = len(data)  # type: ignore[arg-type]
        if self.num_samples == 0:
            raise InputError("train_data is empty")
        shard = math.ceil(self.num_samples / dist_ctx.world_size)
        self.steps_per_epoch = max(1, shard // config.batch_size)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.reporter = _Reporter(progress and dist_ctx.is_main, config.epochs)
        self.history: list[dict[str, Any]] = []
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.running = self._zero_running()
        self._opt_state: dict[str, Any] | None = None
        self._batch_checked = False

    # --- state -----------------------------------------------------------------------------------------
    def _zero_running(self) -> dict[str, Any]:
        return {
            "loss_sum": torch.zeros((), dtype=torch.float64, device=self.device),
            "correct": torch.zeros((), dtype=torch.int64, device=self.device),
            "count": 0,
        }

    def _training_state(self) -> dict[str, Any]:
        # Every rank's RNG state (a collective under DDP, so all ranks call this), saved by rank 0.
        rng: dict[str, Any] = {"torch": self.dist.all_gather(torch.get_rng_state(), self.device)}
        if self.device.type == "cuda":
            rng["cuda"] = self.dist.all_gather(torch.cuda.get_rng_state(self.device), self.device)
        return {
            "config": self.config.to_dict(),
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "steps_per_epoch": self.steps_per_epoch,
            "num_samples": self.num_samples,
            "world_size": self.dist.world_size,
            "running": self.running,
            "history": self.history,
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
        }

    def _resume_latest(self, out_dir: Path) -> None:
        """Restore from ``last``, or from ``previous`` if a kill mid-save left ``last`` incomplete or unreadable."""
        if self.dist.is_main:
            names = tuple(f"{n}.{e}" for n in (LAST, PREVIOUS, FINAL) for e in ("json", "safetensors"))
            remove_stale_temps(out_dir, names)
        first_error: CheckpointError | None = None
        for stem in resume_candidates(out_dir / LAST, out_dir / PREVIOUS):
            try:
                self._restore(stem)
            except CheckpointError as exc:
                first_error = first_error or exc
                continue
            self.reporter.note(f"resuming from {stem} at epoch {self.epoch + 1}, step {self.global_step}")
            return
        if first_error is not None:
            raise first_error

    def _save(self, name: str, **kw: Any) -> Path | None:
        if self.out_dir is None or not self.dist.is_main:
            return None
        if name == LAST:  # keep a complete copy while ``last`` is rewritten (see ann2snn.recovery)
            keep_previous(self.out_dir / LAST, self.out_dir / PREVIOUS)
        return save_checkpoint(self.out_dir / name, self.model, quant=self.quant, dataset=self.dataset_name, **kw)

    def _restore(self, last: Path) -> None:
        ckpt = load_checkpoint(last, model=self.model)
        state = ckpt.training_state
        if state is None:
            raise CheckpointError(f"{last}.json holds no training state; cannot resume from it")
        saved = state.get("config", {})
        for field in _RESUME_FIELDS:
            if saved.get(field) != getattr(self.config, field):
                raise CheckpointError(
                    f"{last}.json was written with {field}={saved.get(field)!r} but this run has "
                    f"{field}={getattr(self.config, field)!r}; resume with the same settings or use a new out_dir"
                )
        for key, now in (("num_samples", self.num_samples), ("world_size", self.dist.world_size)):
            if state.get(key) != now:
                raise CheckpointError(
                    f"{last}.json was written with {key}={state.get(key)!r} but this run has "
                    f"{now}; resume with the same data and process count"
                )
        self.model = ckpt.model
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self.global_step, self.history = int(state["global_step"]), list(state["history"])
        running = state["running"]
        self.running = {
            "loss_sum": running["loss_sum"].to(self.device),
            "correct": running["correct"].to(self.device),
            "count": int(running["count"]),
        }
        self._opt_state = state["optimizer"]
        torch.set_rng_state(state["rng"]["torch"][self.dist.rank])
        if self.device.type == "cuda" and "cuda" in state["rng"]:
            torch.cuda.set_rng_state(state["rng"]["cuda"][self.dist.rank], self.device)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        decay: list[nn.Parameter] = []
        no_decay: list[nn.Parameter] = []
        for param in self.model.parameters():
            if param.requires_grad:
                (decay if param.ndim > 1 else no_decay).append(param)
        groups = [
            {"params": decay, "weight_decay": self.config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        groups = [g for g in groups if g["params"]]
        if not groups:
            raise ConfigError("the model has no trainable parameters")
        return torch.optim.SGD(groups, lr=self.config.lr, momentum=self.config.momentum, nesterov=self.config.nesterov)

    def _lr(self, step: int) -> float:
        return self.config.lr * 0.5 * (1.0 + math.cos(math.pi * step / self.total_steps))

    # --- running ---------------------------------------------------------------------------------------
    def run(self, resume: bool, max_steps: int | None) -> TrainResult:
        torch.default_generator.manual_seed(self.config.seed + self.dist.rank)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(self.config.seed + self.dist.rank)
        if resume and self.out_dir is not None:
            self._resume_latest(self.out_dir)
        self.model.to(self.device).train()
        self.optimizer = self._build_optimizer()
        if self._opt_state is not None:
            self.optimizer.load_state_dict(self._opt_state)
        net = self.dist.wrap(self.model, self.device)
        try:
            while self.epoch < self.config.epochs:
                if not self._run_epoch(net, max_steps):
                    return self._result(
                        completed=False, checkpoint=self._save(LAST, training_state=self._training_state())
                    )
                if max_steps is not None and self.global_step >= max_steps and self.epoch < self.config.epochs:
                    return self._result(completed=False, checkpoint=self.out_dir / LAST if self.out_dir else None)
        finally:
            self.reporter.close()
        final = self._save(
            FINAL, metrics=self._metrics(), extra={"history": self.history, "train_config": self.config.to_dict()}
        )
        return self._result(completed=True, checkpoint=final)

    def _run_epoch(self, net: nn.Module, max_steps: int | None) -> bool:
        """One (possibly resumed) epoch; ``False`` when ``max_steps`` stopped it before its end."""
        cfg, spe, start = self.config, self.steps_per_epoch, self.step_in_epoch
        indices = self.dist.shard(_epoch_permutation(self.num_samples, cfg.seed, self.epoch))
        batches = [indices[i * cfg.batch_size : (i + 1) * cfg.batch_size] for i in range(start, spe)]
        # An own generator keeps the loader from drawing on the global RNG (which must match across resumes).
        loader = DataLoader(
            self.data,
            batch_sampler=batches,
            num_workers=0,
            generator=torch.Generator(),
            pin_memory=self.device.type == "cuda",
        )
        started = time.perf_counter()
        self.reporter.start_epoch(self.epoch, spe, start)
        net.train()
        for x, y in loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            lr = self._lr(self.global_step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=True)
            logits = call_checked(net, x, "the model", "train_data inputs")
            if not self._batch_checked:  # once per run: labels vs the model's outputs
                check_labels(y, x.shape[0], logits.shape[-1] if logits.dim() == 2 else None, "train_data labels")
                self._batch_checked = True
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            loss.backward()
            self.optimizer.step()
            self.running["loss_sum"] += loss.detach().double() * y.shape[0]
            self.running["correct"] += (logits.detach().argmax(dim=1) == y).sum()
            self.running["count"] += int(y.shape[0])
            self.step_in_epoch += 1
            self.global_step += 1
            self.reporter.advance()
            if self.step_in_epoch < spe:
                stop = max_steps is not None and self.global_step >= max_steps
                if stop:
                    return False
                if cfg.checkpoint_every and self.global_step % cfg.checkpoint_every == 0:
                    self._save(LAST, training_state=self._training_state())
        self._end_epoch(time.perf_counter() - started)
        return True

    def _end_epoch(self, seconds: float) -> None:
        loss_sum, correct, count = self.dist.sum(self.running, self.device)
        if not math.isfinite(loss_sum):
            raise Ann2SnnError(
                f"training diverged: the loss is {loss_sum / count} in epoch {self.epoch + 1}; "
                "lower the learning rate (lr)"
            )
        eval_acc = None
        if self.eval_loader is not None:
            eval_acc = self.dist.evaluate(self.model, self.eval_loader, self.device)
        row = {
            "epoch": self.epoch + 1,
            "loss": loss_sum / count,
            "train_acc": correct / count,
            "eval_acc": eval_acc,
            "lr": self._lr(self.global_step - 1),
            "seconds": round(seconds, 3),
        }
        self.history.append(row)
        self.reporter.end_epoch(row)
        self.epoch, self.step_in_epoch, self.running = self.epoch + 1, 0, self._zero_running()
        self._save(LAST, training_state=self._training_state(), metrics=self._metrics())

    def _metrics(self) -> dict[str, Any]:
        if not self.history:
            return {}
        row = self.history[-1]
        return {
            "eval_acc": row["eval_acc"],
            "train_acc": row["train_acc"],
            "train_loss": row["loss"],
            "epochs": row["epoch"],
            "steps": self.global_step,
        }

    def _result(self, completed: bool, checkpoint: Path | None) -> TrainResult:
        self.model.eval()
        row = self.history[-1] if self.history else {}
        return TrainResult(
            model=self.model,
            history=list(self.history),
            eval_acc=row.get("eval_acc"),
            train_acc=row.get("train_acc"),
            steps=self.global_step,
            completed=completed,
            checkpoint=checkpoint,
        )


def _epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The data order of ``epoch``: a permutation from a generator seeded by ``(seed, epoch)`` only."""
    generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch * 7_919 + 17) % (2**63))
    return torch.randperm(n, generator=generator).tolist()


def _as_dataset(data: Any, name: str) -> Dataset:
    if isinstance(data, DataLoader):
        data = data.dataset
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return TensorDataset(data[0], data[1])
    if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        raise InputError(
            f"{name} must be a map-style Dataset, a DataLoader or a tuple (x, y) of tensors, got {type(data).__name__}"
        )
    return data  # type: ignore[no-any-return]


def _as_loader(data: Any, batch_size: int) -> Any:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, tuple | list) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return DataLoader(TensorDataset(data[0], data[1]), batch_size=batch_size, generator=torch.Generator())
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        return DataLoader(data, batch_size=batch_size, generator=torch.Generator())  # type: ignore[arg-type]
    return data  # any iterable of (x, y) batches


# ------------------------------------------------------------------------------------------ progress output
class _Reporter:
    """A rich progress bar on a terminal; plain per-epoch lines on stderr otherwise (CI logs); or silence."""

    def __init__(self, enabled: bool, epochs: int) -> None:
        self.enabled, self.epochs = enabled, epochs
        ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
        self.bar: Any = None
        self.task: Any = None
        if enabled and sys.stderr.isatty() and not ci:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()

    def note(self, text: str) -> None:
        if self.enabled:
            self._print(text)

    def _print(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, highlight=False, markup=False)
        else:
            print(text, file=sys.stderr, flush=True)

    def start_epoch(self, epoch: int, steps: int, done: int) -> None:
        if self.bar is not None:
            if self.task is not None:
                self.bar.remove_task(self.task)
            self.task = self.bar.add_task(f"epoch {epoch + 1}/{self.epochs}", total=steps, completed=done)

    def advance(self) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.advance(self.task)

    def end_epoch(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        eval_part = "" if row["eval_acc"] is None else f"  eval_acc {row['eval_acc']:.2%}"
        self._print(
            f"epoch {row['epoch']}/{self.epochs}  loss {row['loss']:.4f}  train_acc {row['train_acc']:.2%}"
            f"{eval_part}  lr {row['lr']:.3g}  {row['seconds']:.1f}s"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


# --------------------------------------------------------------------------------- torchrun / DDP support
@dataclasses.dataclass
class _Dist:
    """Process-group facts; the single-process default does nothing."""

    rank: int = 0
    world_size: int = 1
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, indices: list[int]) -> list[int]:
        """This rank's part of an epoch's order, padded (DistributedSampler-style) so every rank has as many."""
        if self.world_size == 1:
            return indices
        total = math.ceil(len(indices) / self.world_size) * self.world_size
        padded = (indices * math.ceil(total / len(indices)))[:total]
        return padded[self.rank :: self.world_size]

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def all_gather(self, tensor: torch.Tensor, device: torch.device) -> list[torch.Tensor]:
        """``tensor`` of every rank, in rank order, on the CPU."""
        if self.world_size == 1:
            return [tensor]
        import torch.distributed as dist

        local = tensor.to(device)
        gathered = [torch.empty_like(local) for _ in range(self.world_size)]
        dist.all_gather(gathered, local)
        return [t.cpu() for t in gathered]

    def evaluate(self, model: nn.Module, loader: Any, device: torch.device) -> float:
        """Accuracy over ``loader`` with batches sharded round-robin across ranks and counts all-reduced."""
        if self.world_size == 1:
            return evaluate_accuracy(model, loader, device)
        import torch.distributed as dist

        counts = torch.zeros(2, dtype=torch.float64, device=device)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for i, batch in enumerate(loader):
                    if i % self.world_size == self.rank:
                        x, y = batch[0].to(device), batch[1].to(device)
                        counts[0] += (model(x).argmax(dim=1) == y).sum()
                        counts[1] += y.shape[0]
        finally:
            model.train(was_training)
        dist.all_reduce(counts)
        if counts[1] == 0:
            raise InputError("evaluation got no samples; pass a non-empty eval_data")
        return float(counts[0] / counts[1])

    def sum(self, running: dict[str, Any], device: torch.device) -> tuple[float, int, int]:
        """``(loss_sum, correct, count)`` over all ranks."""
        values = torch.stack(
            [
                running["loss_sum"],
                running["correct"].double(),
                torch.tensor(float(running["count"]), dtype=torch.float64, device=device),
            ]
        )
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(values)
        loss_sum, correct, count = values.tolist()
        return float(loss_sum), int(correct), int(count)

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.owns_group = False


def _init_distributed(device_name: str) -> tuple[_Dist, torch.device]:
    """Join the torchrun process group when ``WORLD_SIZE > 1`` (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world <= 1:
        return _Dist(), device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), owns_group=owns), device
