"""``ann2snn train --nproc-per-node N``: run N local training workers (one process group) without torchrun.

Each worker is ``python -m ann2snn train`` with the same options and the environment torchrun would give it
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``). When a worker fails the others are
stopped and the launcher exits with the failing worker's code: 2 for a user error, whose one-line message rank 0
has already printed (the other ranks stay quiet).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import Any

import typer

from ann2snn.errors import ConfigError

LAUNCHED_ENV = "ANN2SNN_LAUNCHED"  # set in the workers of ``--nproc-per-node``: the launcher reports Ctrl-C once
RANK_ENV = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def process_rank() -> int:
    """This process's rank in a torchrun / ``--nproc-per-node`` process group (0 when alone)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def launched() -> bool:
    """Whether this process is a worker that ``--nproc-per-node`` started (its launcher reports Ctrl-C)."""
    return os.environ.get(LAUNCHED_ENV) == "1"


def worker_args(ctx: typer.Context, skip: tuple[str, ...]) -> list[str]:
    """The command line that reproduces ``ctx``'s parameter values (except ``skip``) for a worker process."""
    args: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name in skip or name is None or not getattr(param, "opts", None):
            continue
        value = ctx.params.get(name)
        long_opt = max(param.opts, key=len)
        if isinstance(value, bool) and getattr(param, "secondary_opts", None):
            args.append(long_opt if value else max(param.secondary_opts, key=len))
        elif isinstance(value, bool):
            if value:
                args.append(long_opt)
        elif value is not None:
            args += [long_opt, str(value)]
    return args


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(nproc: int, command: list[str]) -> int:
    """Run ``python -m ann2snn <command>`` as ``nproc`` ranks; returns 0 or the first failing rank's exit code."""
    if nproc < 1:
        raise ConfigError(f"--nproc-per-node {nproc} must be >= 1")
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        raise ConfigError("--nproc-per-node starts its own workers; do not combine it with torchrun")
    port = _free_port()
    procs: list[subprocess.Popen[Any]] = []
    for rank in range(nproc):
        env = dict(os.environ)
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(nproc),
            LOCAL_WORLD_SIZE=str(nproc),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
        env[LAUNCHED_ENV] = "1"
        procs.append(subprocess.Popen([sys.executable, "-m", "ann2snn", *command], env=env))  # noqa: S603
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                _stop(procs)
                rank, code = min(failed, key=lambda rc: (rc[1] != 2, rc[0]))
                if rank != 0 and codes[0] != 2:
                    print(f"error: training worker rank {rank} exited with code {code}", file=sys.stderr, flush=True)
                return int(code) if code is not None and code > 0 else 1
            if all(c == 0 for c in codes):
                return 0
            time.sleep(0.2)
    except BaseException:
        _stop(procs)
        raise


def _stop(procs: list[subprocess.Popen[Any]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
