"""The same study on N local worker processes and on a real local Ray cluster gives exactly the
numbers of the in-process run (started with torch's default thread count, see ``reference_run``):
executors and worker counts only decide where a cell runs, never how it computes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from engine_helpers import assert_same_run

from ptft.engine.study import run_study
from ptft.store import ResultsStore


def cell_pids(run_dir: Path) -> set[int]:
    pids = set()
    for log in (run_dir / "logs").glob("*.log"):
        pids |= {int(p) for p in re.findall(r": .* \(pid (\d+) on ", log.read_text())}
    return pids


def test_two_local_workers_give_the_same_numbers(reference_run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PTFT_NUM_THREADS", raising=False)  # the workers get no hint from the environment
    run = tmp_path / "run"
    result = run_study(reference_run.config, run_dir=run, workers=2, progress=False)
    assert result.ran == 8 and not result.failed
    assert_same_run(run, reference_run)
    pids = cell_pids(run)
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes did the work
    with ResultsStore(run / "results.sqlite") as store:
        runs = store.frame("runs")
    assert runs.slots.tolist() == [2] and runs.executor.tolist() == ["local"]


@pytest.fixture
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_ray_gives_the_same_numbers(reference_run, ray_cluster, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = run_study(reference_run.config, run_dir=run, executor="ray", progress=False)
    assert result.ran == 8 and not result.failed
    assert_same_run(run, reference_run)
    assert os.getpid() not in cell_pids(run)  # every cell ran in a Ray worker
    with ResultsStore(run / "results.sqlite") as store:
        runs = store.frame("runs")
    assert runs.executor.tolist() == ["ray"] and runs.slots.tolist() == [2]  # 2 CPUs / 1 CPU per cell
    assert ray_cluster.is_initialized()  # a cluster the caller started is left to the caller
