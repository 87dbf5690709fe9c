"""Where cells run: in this process, in N local worker processes, or as Ray tasks.

Executors only run cells and hand their outputs back as they finish; the study driver is the one
writer of the results store. None of them is a scheduler of our own: local parallelism is
``concurrent.futures`` and distribution is Ray.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ptft.config import StudyConfig
from ptft.engine.cells import Cell
from ptft.engine.work import CellOutput, run_cell, set_threads


@dataclass
class CellFailure:
    cell_id: str
    error: str
    traceback: str


Outcome = CellOutput | CellFailure
OnStart = Callable[[Cell], None]


def _guarded(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool, threads: int | None) -> Outcome:
    set_threads(threads)
    try:
        return run_cell(config, run_dir, cell, progress)
    except Exception as err:  # a failing cell is recorded as failed; the study goes on
        return CellFailure(cell.cell_id, f"{type(err).__name__}: {err}", traceback.format_exc())


class LocalExecutor:
    def __init__(self, workers: int = 1):
        self.workers = workers

    def run(self, config: StudyConfig, run_dir: Path, cells: list[Cell], on_start: OnStart,
            progress: bool = True) -> Iterator[Outcome]:
        if self.workers == 1:
            for cell in cells:
                on_start(cell)
                yield _guarded(config, run_dir, cell, progress, None)
            return
        threads = max(1, (os.cpu_count() or 1) // self.workers)
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx) as pool:
            pending = {}
            queue = list(cells)
            while queue or pending:
                while queue and len(pending) < self.workers:
                    cell = queue.pop(0)
                    on_start(cell)
                    pending[pool.submit(_guarded, config, run_dir, cell, False, threads)] = cell
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    cell = pending.pop(fut)
                    try:
                        yield fut.result()
                    except Exception as err:  # the worker process itself died (e.g. killed for memory)
                        yield CellFailure(cell.cell_id, f"worker died: {type(err).__name__}: {err}",
                                          traceback.format_exc())


class RayExecutor:
    """Each cell a Ray task with the resources the config asks for. On a multi-node cluster the run
    directory must be on storage every node sees (pre-trained checkpoints and kept weights live
    there); results travel back to the driver through Ray."""

    def __init__(self, address: str | None, num_cpus: float, num_gpus: float, memory_gb: float | None,
                 retries: int = 0):
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.memory_gb, self.retries = memory_gb, retries

    def run(self, config: StudyConfig, run_dir: Path, cells: list[Cell], on_start: OnStart,
            progress: bool = True) -> Iterator[Outcome]:
        import ray

        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(1, os.cpu_count() or 1), log_to_driver=False, include_dashboard=False)
        options = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus, "max_retries": self.retries}
        if self.memory_gb:
            options["memory"] = int(self.memory_gb * 2**30)
        remote = ray.remote(_guarded).options(**options)
        threads = max(1, int(self.num_cpus))
        refs = {}
        for cell in cells:
            on_start(cell)
            refs[remote.remote(config, run_dir, cell, False, threads)] = cell
        while refs:
            done, _ = ray.wait(list(refs), num_returns=1)
            for ref in done:
                cell = refs.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as err:  # the task's worker died (node lost, OOM-killed)
                    yield CellFailure(cell.cell_id, f"ray task failed: {type(err).__name__}: {err}",
                                      traceback.format_exc())


def make_executor(config: StudyConfig, kind: str | None = None, address: str | None = None,
                  workers: int | None = None):
    ex = config.executor
    kind = kind or ex.kind
    if kind == "ray":
        return RayExecutor(address or ex.address, ex.num_cpus, ex.num_gpus, ex.memory_gb, ex.retries)
    return LocalExecutor(workers or ex.workers)
