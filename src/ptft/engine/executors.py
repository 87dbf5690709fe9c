"""Where cells run: in this process, in N local worker processes, or as Ray tasks.

Executors only run cells and hand their outputs back as they finish; the study driver decides
what to submit (a cell whose dependencies are done, while the executor has a free slot) and is
the one writer of the results store. None of them is a scheduler of our own: local parallelism is
``concurrent.futures`` and distribution is Ray.

The protocol (what :func:`ptft.engine.study.run_study` uses):
``start(config, run_dir, progress)``, ``free()`` (how many more cells may be submitted now),
``submit(cell)``, ``in_flight()``, ``next_outcome()`` (blocks until a submitted cell finishes:
its :class:`CellOutput` or a :class:`CellFailure`), ``close(cancel)``; ``kind`` and ``slots``
describe it (``ptft status`` divides the estimated remaining time by ``slots``).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput
from ptft.engine.kinds import KINDS, run_cell
from ptft.engine.work import set_threads
from ptft.errors import ConfigError, PtftError

log = logging.getLogger("ptft.engine")


@dataclass
class CellFailure:
    cell_id: str
    error: str
    traceback: str
    seconds: float | None = None


Outcome = CellOutput | CellFailure


def cell_threads(config: StudyConfig, cell: Cell) -> int:
    """The torch thread count a cell computes with: a study setting, whatever runs the cell."""
    return KINDS[cell.kind].threads(config)


def _guarded(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> Outcome:
    set_threads(cell_threads(config, cell))
    start = time.perf_counter()
    try:
        return run_cell(config, run_dir, cell, progress)
    except Exception as err:  # a failing cell (exception, NaN loss, CUDA out of memory) is recorded; the study goes on
        return CellFailure(cell.cell_id, f"{type(err).__name__}: {err}", traceback.format_exc(),
                           time.perf_counter() - start)
    finally:
        _release_gpu_memory()


def _release_gpu_memory() -> None:
    """Hand the cached GPU memory of a finished (or failed: out of memory) cell back, so that the
    next cell in this process starts from a clean device."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        import gc

        gc.collect()
        torch.cuda.empty_cache()


class _Executor:
    kind = "local"
    slots = 1


class InProcessExecutor(_Executor):
    """One cell at a time in the driver's own process (the default): no start-up cost, progress
    bars of the cell's own work, but a crash of the process (not an exception) ends the run."""

    def __init__(self) -> None:
        self._queue: deque[Cell] = deque()

    def start(self, config: StudyConfig, run_dir: Path, progress: bool) -> None:
        self._config, self._run_dir, self._progress = config, run_dir, progress

    def free(self) -> int:
        return 1 - len(self._queue)

    def in_flight(self) -> int:
        return len(self._queue)

    def submit(self, cell: Cell) -> None:
        self._queue.append(cell)

    def next_outcome(self) -> Outcome:
        cell = self._queue[0]
        try:
            return _guarded(self._config, self._run_dir, cell, self._progress)
        finally:
            self._queue.popleft()

    def close(self, cancel: bool = False) -> None:
        self._queue.clear()


def _worker_init(parent: int) -> None:
    """In each worker process: a watchdog that ends the worker when the driver is gone (a
    SIGKILLed driver must not leave orphans writing into the run directory)."""

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(1.0)

    threading.Thread(target=watch, daemon=True, name="ptft-orphan-watchdog").start()


class PoolExecutor(_Executor):
    """N worker processes (spawned, so CUDA and OpenMP start clean), one cell each at a time.
    A worker that dies (killed, out of memory) fails only the cells it may have been running;
    the pool is rebuilt and the study goes on. ``retries`` resubmits such cells that many times."""

    def __init__(self, workers: int, retries: int = 0):
        self.workers = self.slots = workers
        self.retries = retries
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, Cell] = {}
        self._ready: deque[Outcome] = deque()
        self._tries: dict[str, int] = {}

    def start(self, config: StudyConfig, run_dir: Path, progress: bool) -> None:
        self._config, self._run_dir, self._progress = config, run_dir, progress

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init,
                                             initargs=(os.getpid(),))
        return self._pool

    def free(self) -> int:
        return self.workers - len(self._futures)

    def in_flight(self) -> int:
        return len(self._futures) + len(self._ready)

    def submit(self, cell: Cell) -> None:
        self._tries[cell.cell_id] = self._tries.get(cell.cell_id, 0) + 1
        # a stage of its own (pre-training: every other cell waits for it) shows its progress bar,
        # which cannot interleave with another cell's
        alone = KINDS[cell.kind].alone
        fut = self._get_pool().submit(_guarded, self._config, self._run_dir, cell, alone and self._progress)
        self._futures[fut] = cell

    def next_outcome(self) -> Outcome:
        while not self._ready:
            done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
            died: list[tuple[Cell, BaseException]] = []
            for fut in done:
                cell = self._futures.pop(fut)
                try:
                    self._ready.append(fut.result())
                except BrokenProcessPool as err:
                    died.append((cell, err))
                except Exception as err:  # e.g. an outcome that cannot be unpickled
                    self._ready.append(CellFailure(cell.cell_id, f"{type(err).__name__}: {err}",
                                                   "".join(traceback.format_exception(err))))
            if died:  # every cell of a broken pool fails the same way: we cannot tell which killed it
                died += [(cell, BrokenProcessPool("the pool broke while this cell ran"))
                         for cell in self._futures.values()]
                self._futures.clear()
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
                for cell, err in died:
                    self._worker_died(cell, err)
        return self._ready.popleft()

    def _worker_died(self, cell: Cell, err: BaseException) -> None:
        if self._tries.get(cell.cell_id, 0) <= self.retries:
            log.warning("a worker process died while running %s; retrying it", cell.label)
            self.submit(cell)
            return
        self._ready.append(CellFailure(
            cell.cell_id, f"worker process died (killed, e.g. out of memory?) while this cell ran: {err}",
            "".join(traceback.format_exception(err))))

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            if cancel:  # do not wait for cells in flight: they are recorded as not done
                for proc in list(getattr(self._pool, "_processes", {}).values()):
                    proc.kill()
            self._pool.shutdown(wait=not cancel, cancel_futures=True)
            self._pool = None
        self._futures.clear()


RAY_CONNECT_TIMEOUT_S = 10.0


def check_ray_address(address: str, flag: str, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Refuse, in one line, a Ray address where nothing answers within ``timeout`` seconds: Ray's
    own client retries for minutes and hears no Ctrl-C meanwhile. ``auto`` (find a running local
    cluster) is left to Ray."""
    import socket

    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{flag} {address}: expected host:port (e.g. 127.0.0.1:6379, or ray://host:10001), or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ConfigError(f"{flag} {address}: no Ray cluster answers there within {timeout:g} s ({err.strerror or err}); "
                          "start one (`ray start --head`) or check the address, or leave it out to start a local "
                          "cluster") from None


class RayExecutor(_Executor):
    """Each cell a Ray task with the resources the config asks for (``executor.num_cpus``,
    ``num_gpus``, ``memory_gb``). Cells are submitted only as far as the cluster has room for them
    (re-read at every submission, so a cluster that grows is used), so a cell marked running is
    running. On a multi-node cluster the run directory must be on storage every node sees
    (pre-trained checkpoints, kept weights and cell logs live there); results travel back to the
    driver through Ray and only the driver writes the store."""

    kind = "ray"

    def __init__(self, address: str | None, num_cpus: float, num_gpus: float, memory_gb: float | None,
                 retries: int = 0):
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.memory_gb, self.retries = memory_gb, retries
        self._refs: dict = {}
        self._started_ray = False
        self.slots = 1

    def start(self, config: StudyConfig, run_dir: Path, progress: bool) -> None:
        import ray

        if not ray.is_initialized():
            kwargs = {"log_to_driver": False, "include_dashboard": False}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(num_cpus=max(1, os.cpu_count() or 1), **kwargs)
            self._started_ray = True
        options = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_retries": self.retries}
        if self.memory_gb:
            options["memory"] = int(self.memory_gb * 2**30)
        self._remote = ray.remote(_guarded).options(**options)
        self._config_ref = ray.put(config)
        self._run_dir = run_dir
        self.slots = self._capacity()

    def _capacity(self) -> int:
        import ray

        total = ray.cluster_resources()
        need = {"CPU": self.num_cpus, "GPU": self.num_gpus}
        if self.memory_gb:
            need["memory"] = self.memory_gb * 2**30
        fits = [int(total.get(k, 0) // v) for k, v in need.items() if v > 0]
        if fits and min(fits) < 1:
            raise PtftError(f"the Ray cluster ({', '.join(f'{k} {v:g}' for k, v in sorted(total.items()) if k in need)}) "
                            f"cannot fit one cell's request ({', '.join(f'{k} {v:g}' for k, v in need.items() if v)}); "
                            "lower executor.num_cpus / num_gpus / memory_gb or add nodes")
        return max(1, min(fits)) if fits else 1

    def free(self) -> int:
        self.slots = self._capacity()
        return self.slots - len(self._refs)

    def in_flight(self) -> int:
        return len(self._refs)

    def submit(self, cell: Cell) -> None:
        self._refs[self._remote.remote(self._config_ref, self._run_dir, cell, False)] = cell

    def next_outcome(self) -> Outcome:
        import ray

        done, _ = ray.wait(list(self._refs), num_returns=1)
        cell = self._refs.pop(done[0])
        try:
            return ray.get(done[0])
        except Exception as err:  # the task's worker died (node lost, killed for memory)
            return CellFailure(cell.cell_id, f"ray task failed: {type(err).__name__}: {err}",
                               traceback.format_exc())

    def close(self, cancel: bool = False) -> None:
        import ray

        if cancel:
            for ref in self._refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # already finished or gone
                    pass
        self._refs.clear()
        if self._started_ray:
            ray.shutdown()
            self._started_ray = False


def LocalExecutor(workers: int = 1, retries: int = 0) -> _Executor:
    """The local executor: in this process for one worker, else a pool of worker processes."""
    return InProcessExecutor() if workers <= 1 else PoolExecutor(workers, retries)


def make_executor(config: StudyConfig, kind: str | None = None, address: str | None = None,
                  workers: int | None = None) -> _Executor:
    ex = config.executor
    kind = kind or ex.kind
    if kind == "ray":
        return RayExecutor(address or ex.address, ex.num_cpus, ex.num_gpus, ex.memory_gb, ex.retries)
    return LocalExecutor(workers or ex.workers, ex.retries)
