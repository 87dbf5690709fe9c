"""A local worker process killed mid-cell (what the kernel's out-of-memory killer does) fails only
the cells that pool was running; the study goes on, and the next run completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import psutil
import pytest
from engine_helpers import assert_same_run

from ptft.engine.study import run_study
from ptft.store import ResultsStore


def running_cells(run: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{run / 'results.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM cells WHERE status='running'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_killed_worker_fails_its_cells_and_the_study_goes_on(reference_run, tmp_path: Path) -> None:
    run = tmp_path / "run"
    outcome: dict = {}
    driver = threading.Thread(target=lambda: outcome.update(
        result=run_study(reference_run.config, run_dir=run, workers=2, progress=False)))
    driver.start()
    victim = None
    deadline = time.monotonic() + 180
    while victim is None and time.monotonic() < deadline and driver.is_alive():
        workers = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
        if len(workers) == 2 and (run / "results.sqlite").exists() and running_cells(run) == 2:
            logs = list((run / "logs").glob("*.log")) if (run / "logs").exists() else []
            if len(logs) >= 2:  # both workers have started a cell's own work
                victim = workers[0]
                os.kill(victim.pid, signal.SIGKILL)
        time.sleep(0.05)
    driver.join(300)
    assert victim is not None, "never saw two workers running cells"
    result = outcome["result"]
    with ResultsStore(run / "results.sqlite") as store:
        cells = store.cells().set_index("cell_id")
    failed = cells[cells.status == "failed"]
    # the pool cannot tell which of its workers held which cell: both cells in flight fail ...
    assert 1 <= len(failed) <= 2 and set(failed.index) == set(result.failed)
    assert all("worker process died" in e for e in failed.error)
    # ... and every other cell ran in a rebuilt pool
    assert (cells.status == "done").sum() == 8 - len(failed) and result.ran == 8 - len(failed)
    again = run_study(reference_run.config, run_dir=run, workers=2, progress=False)
    assert again.ran == len(failed) and not again.failed
    assert_same_run(run, reference_run)
