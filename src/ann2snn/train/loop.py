"""The training loop: :func:`train` and the resumable, checkpointing epoch/step loop behind it."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ann2snn.config import QuantConfig
from ann2snn.errors import Ann2SnnError, CheckpointError, ConfigError, InputError
from ann2snn.export.checkpoint import load_checkpoint, save_checkpoint
from ann2snn.limits import check_int
from ann2snn.recovery import keep_previous, remove_stale_temps, resume_candidates
from ann2snn.train.config import _RESUME_FIELDS, TrainConfig, TrainResult
from ann2snn.train.data import _as_dataset, _as_loader, _epoch_permutation
from ann2snn.train.distributed import _Dist, _init_distributed
from ann2snn.train.lock import out_dir_lock
from ann2snn.train.progress import _Reporter
from ann2snn.train.resume_state import check_loaded_optimizer, check_resume_state
from ann2snn.validation import call_checked, check_finite_model, check_labels

__all__ = ["FINAL", "LAST", "PREVIOUS", "train"]

LAST = "last"
FINAL = "final"
PREVIOUS = "previous"


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
        not fit. ResourceError: Another run is training into ``out_dir`` (the message names its pid, host and
        start time). Ann2SnnError: The loss became NaN/Inf.
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ConfigError(f"train expects a TrainConfig, got {type(config).__name__}")
    if not isinstance(model, nn.Module):
        raise ConfigError(f"train expects an nn.Module, got {type(model).__name__}")
    if max_steps is not None:
        check_int("max_steps", max_steps)
    check_finite_model(model)
    dataset_obj = _as_dataset(train_data, "train_data")
    eval_loader = None if eval_data is None else _as_loader(eval_data, config.batch_size)
    dist_ctx, device = _init_distributed(config.device)
    locked = out_dir is not None and dist_ctx.is_main  # one run per out_dir (see ann2snn.train.lock)
    try:
        with out_dir_lock(out_dir) if locked else contextlib.nullcontext():  # type: ignore[arg-type]
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
        self._resumed_from = ""
        self._classes: int | None = None

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
        check_resume_state(
            state,
            f"{last}.json",
            epochs=self.config.epochs,
            steps_per_epoch=self.steps_per_epoch,
            world_size=self.dist.world_size,
        )
        saved = state["config"]
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
        self._opt_state, self._resumed_from = state["optimizer"], f"{last}.json"
        try:
            torch.set_rng_state(state["rng"]["torch"][self.dist.rank])
            if self.device.type == "cuda" and "cuda" in state["rng"]:
                torch.cuda.set_rng_state(state["rng"]["cuda"][self.dist.rank], self.device)
        except RuntimeError as exc:
            raise CheckpointError(f"{last}.json: invalid resume state: 'rng' is not a generator state: {exc}") from exc

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
            try:
                self.optimizer.load_state_dict(self._opt_state)
                check_loaded_optimizer(self.optimizer, self._resumed_from)
            except CheckpointError:
                raise
            except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
                raise CheckpointError(
                    f"{self._resumed_from}: invalid resume state: 'optimizer' does not fit this model's "
                    f"optimizer: {exc}"
                ) from exc
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
            if self._classes is not None:  # every batch, on the CPU before the copy: labels below the outputs K
                check_labels(y, x.shape[0], self._classes, "train_data labels")
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            lr = self._lr(self.global_step)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.optimizer.zero_grad(set_to_none=True)
            logits = call_checked(net, x, "the model", "train_data inputs")
            if self._classes is None:  # the first batch: learn K from the model's outputs
                self._classes = int(logits.shape[-1]) if logits.dim() == 2 else None
                check_labels(y, x.shape[0], self._classes, "train_data labels")
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
