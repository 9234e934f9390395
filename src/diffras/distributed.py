"""Data parallelism over ``torch.distributed``: the same code on one process, several, or several machines.

Launch with ``torchrun`` (or ``diffras fit --nproc N``, which calls torch's own launcher for you)::

    torchrun --nproc-per-node 2 -m diffras fit                      # 2 processes, this machine
    torchrun --nnodes 4 --nproc-per-node 8 --rdzv-backend c10d \\
             --rdzv-endpoint HOST:29400 -m diffras fit               # 4 machines

Every rank builds the same scene with the same seed, renders only its shard of the views of each step,
and the gradients of the shared parameters are **summed** across ranks with one all-reduce (gloo on the
CPU, NCCL on CUDA). Losses are normalised by the *global* view count, so the sum equals the single-process
gradient and every rank takes the same optimiser step: results agree with one process up to the order of
floating-point additions.

Without the torchrun environment (``WORLD_SIZE`` unset or 1) everything here is a no-op, so the
workflows call it unconditionally.
"""
from __future__ import annotations

import atexit
import datetime
import os
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Sequence, Tuple

import torch

__all__ = [
    "Context",
    "DEFAULT_TIMEOUT_S",
    "all_reduce_grads",
    "context",
    "gather_to_main",
    "init_from_env",
    "shard",
    "threads_per_rank",
]

#: Seconds a collective may wait for a peer before failing (a dead rank must end the job, never hang it).
DEFAULT_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Context:
    """Where this process sits in the job: ``rank`` in ``[0, world_size)``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_main(self) -> bool:
        """True on the rank that writes outputs and shows progress (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def context() -> Context:
    """The current :class:`Context`: from the initialised process group, else a single process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                       int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    return Context()


def threads_per_rank(local_world_size: int, cores: Optional[int] = None) -> int:
    """Threads each of ``local_world_size`` ranks on one machine may use so ranks x threads <= cores (>= 1)."""
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, local_world_size))


def _destroy_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def init_from_env(device: Optional[torch.device] = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> Context:
    """Join the process group that ``torchrun`` describes in the environment; a no-op for one process.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE`` (and ``MASTER_ADDR``/``MASTER_PORT``
    through torch). Chooses NCCL for a CUDA ``device``, gloo otherwise, with ``timeout_s`` on every collective.
    Sets torch's and Numba's thread counts so that the ranks on one machine do not oversubscribe its cores.
    Idempotent: a second call returns the current context.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context()
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this torch build; run one process")
    if not dist.is_initialized():
        backend = "nccl" if device is not None and torch.device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
        # Tear the group down before the interpreter does: left to the exit-time destructors, gloo's threads
        # could be destroyed still joinable, and a rank that had finished its work died with SIGABRT
        # ("terminate called without an active exception") about once in a few CI runs.
        atexit.register(_destroy_group)
    ctx = context()
    threads = threads_per_rank(ctx.local_world_size)
    torch.set_num_threads(threads)
    try:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    except (ImportError, ValueError):
        pass
    return ctx


def shard(items: Sequence[Any], ctx: Optional[Context] = None) -> List[Any]:
    """This rank's share of ``items``: ``items[rank::world_size]`` (round robin, so shards differ by <= 1)."""
    ctx = ctx or context()
    return list(items)[ctx.rank::ctx.world_size]


def all_reduce_grads(params: Iterable[torch.Tensor], extra: Optional[torch.Tensor] = None,
                     ctx: Optional[Context] = None) -> Tuple[Optional[torch.Tensor], int]:
    """Sum the ``.grad`` of ``params`` (and the small tensor ``extra``, e.g. loss values to log) over ranks.

    One flat buffer, one all-reduce: the cost is one message of ``sum(numel) * itemsize`` bytes, whatever the
    number of parameters. A parameter without a gradient contributes zeros (a rank whose shard was empty
    this step still takes part). Returns ``(extra summed, bytes all-reduced)``; no-op for one process.
    """
    import torch.distributed as dist

    ctx = ctx or context()
    params = list(params)
    if not ctx.distributed:
        return extra, 0
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    dtype = params[0].grad.dtype if params else extra.dtype
    flat = torch.cat([p.grad.reshape(-1) for p in params] + ([extra.reshape(-1).to(dtype)]
                                                            if extra is not None else []))
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p in params:
        n = p.grad.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n
    summed = flat[offset:].view_as(extra).to(extra.dtype) if extra is not None else None
    return summed, flat.numel() * flat.element_size()


def gather_to_main(obj: Any, ctx: Optional[Context] = None) -> Optional[List[Any]]:
    """Every rank's ``obj`` (picklable; tensors go through CPU) as a list indexed by rank on rank 0, None
    elsewhere. A single process gets ``[obj]``."""
    import torch.distributed as dist

    ctx = ctx or context()
    if not ctx.distributed:
        return [obj]
    out = [None] * ctx.world_size if ctx.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def fault_injection(step: int, ctx: Optional[Context] = None) -> None:
    """Test hook: ``DIFFRAS_FAULT=RANK:STEP`` kills that rank (``os._exit(17)``) when it reaches that step, so
    the tests can check that a dead rank ends the job with a clear error instead of a hang."""
    spec = os.environ.get("DIFFRAS_FAULT")
    if not spec:
        return
    rank, at = (int(x) for x in spec.split(":"))
    if (ctx or context()).rank == rank and step == at:
        os._exit(17)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_local(nproc: int, argv: Sequence[str], log_dir: Optional[os.PathLike] = None) -> None:
    """Run ``python -m diffras *argv`` as ``nproc`` ranks on this machine through torch's own launcher (what
    ``torchrun --nproc-per-node nproc`` does), rendezvous on a free loopback port, no restarts.

    Raises:
        RuntimeError: naming the first rank that failed, its exit code, and its log file when there is one.
    """
    import sys

    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    import logging

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"diffras-{os.getpid()}",
                          rdzv_backend="c10d", rdzv_endpoint=f"127.0.0.1:{_free_port()}", max_restarts=0,
                          monitor_interval=0.1, start_method="spawn")
    # The launcher reports a failed rank itself (one line, below): the workers stay quiet about the peers they
    # lost, and torch's launcher logs only what it cannot recover from.
    elastic_log = logging.getLogger("torch.distributed.elastic")
    level = elastic_log.level
    os.environ[LAUNCHED_ENV] = "1"
    elastic_log.setLevel(logging.CRITICAL)
    try:
        elastic_launch(config, entrypoint=sys.executable)("-m", "diffras", *argv)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        where = f"; its log: {os.path.join(log_dir, f'rank{rank}.log')}" if log_dir is not None and rank else ""
        raise RuntimeError(f"rank {rank} of {nproc} failed (exit code {failure.exitcode}){where}") from None
    finally:
        os.environ.pop(LAUNCHED_ENV, None)
        elastic_log.setLevel(level)


#: Set in the environment of the ranks that ``launch_local`` starts (``diffras --nproc N``).
LAUNCHED_ENV = "DIFFRAS_LAUNCHED_BY_NPROC"


def is_peer_failure(e: BaseException) -> bool:
    """True for the errors a collective raises when another rank died or timed out (gloo / NCCL)."""
    if type(e).__name__ in ("DistBackendError", "DistNetworkError"):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(s in text for s in (
        "Connection reset by peer", "Connection closed by peer", "gloo", "NCCL", "Timed out", "timed out"))


def log_to_file_unless_main(log_dir: os.PathLike, ctx: Optional[Context] = None) -> None:
    """On ranks other than 0, send stdout and stderr (progress, warnings) to ``log_dir/rank<r>.log``."""
    import sys

    ctx = ctx or context()
    if ctx.is_main:
        return
    os.makedirs(log_dir, exist_ok=True)
    stream = open(os.path.join(log_dir, f"rank{ctx.rank}.log"), "a", buffering=1)
    # The file descriptors too, so that native messages (a C++ abort in gloo, OpenMP, Numba) reach the log.
    os.dup2(stream.fileno(), 1)
    os.dup2(stream.fileno(), 2)
    sys.stdout = sys.stderr = stream
