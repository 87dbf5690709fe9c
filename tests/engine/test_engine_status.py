"""`ptft status`: counts, running vs interrupted, elapsed and remaining time, on a store written
through the real ResultsStore (no model needed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ptft.cli import main
from ptft.engine.status import grid_status
from ptft.engine.study import RunLock
from ptft.errors import PtftError
from ptft.store import ResultsStore

CELLS = [("b1", "base", "BASE s1 t"), ("b2", "base", "BASE s2 t"), ("f1", "finetune", "FT s1 t"),
         ("f2", "finetune", "FT s2 t"), ("f3", "finetune", "FT s3 t"), ("b3", "base", "BASE s3 t"),
         ("old", "finetune", "FT of an earlier config")]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    with ResultsStore(run / "results.sqlite") as store:
        store.register_cells([(cid, kind, label, {}) for cid, kind, label in CELLS])
        store.set_plan([cid for cid, _, _ in CELLS[:-1]])  # "old" is not part of the current config
        store.start_run(12345, "somehost", "local", 2, 6)
        store.mark_cell("b1", "done", seconds=2.0)
        store.mark_cell("b2", "done", seconds=4.0)
        store.mark_cell("f1", "done", seconds=10.0)
        store.mark_cell("f2", "running")
        store.mark_cell("f3", "failed", error="NonFiniteLoss: loss became nan\nmore", seconds=1.0)
        store.mark_cell("old", "failed", error="not shown")
    return run


def test_status_while_a_driver_runs(run: Path) -> None:
    with RunLock(run):
        status = grid_status(run)
        assert status.driver and "pid" in status.driver
        assert status.counts == {"done": 3, "running": 1, "failed": 1, "pending": 1}
        # left: f2 (10 s median, minus the ~0 s it has run), f3 (10 s), b3 (3 s median) over 2 slots
        assert status.remaining == pytest.approx((10 + 10 + 3) / 2, abs=0.1)
        assert status.cell_seconds == 16.0 and status.elapsed is not None
        text = status.render()
        assert text.splitlines()[1] == "cells: 6 = done 3, running 1, failed 1, pending 1"
        assert "running: pid" in text and "(local executor, 2 at a time)" in text
        assert "estimated remaining 0h00m11s (2 at a time)" in text
        assert "[running] FT s2 t  (running 0h00m0" in text and "log: logs/f2.log" in text
        assert "[failed ] FT s3 t  (attempts 0; NonFiniteLoss: loss became nan; log: logs/f3.log)" in text
        assert "earlier config" not in text and "[done   ]" not in text
        assert "[done   ] BASE s1 t  (2.0s)" in status.render(show_all=True)
        with pytest.raises(PtftError, match="is being run by pid"):  # one driver per run directory
            with RunLock(run):
                pass


def test_status_after_the_driver_died(run: Path, capsys) -> None:
    status = grid_status(run)  # nobody holds the lock: the 'running' cell was left by a killed run
    assert status.driver is None
    assert status.counts == {"done": 3, "running": 0, "failed": 1, "pending": 2}
    assert main(["status", str(run)]) == 1  # a failed cell: non-zero
    text = capsys.readouterr().out
    assert "not running (last run interrupted)" in text
    assert "[pending] FT s2 t  (interrupted: will run again; log: logs/f2.log)" in text


def test_status_before_any_cell_finished(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.register_cells([("a", "base", "BASE a", {})])
    status = grid_status(tmp_path)
    assert status.remaining is None and status.elapsed is None
    assert status.counts == {"done": 0, "running": 0, "failed": 0, "pending": 1}
    assert "unknown until a cell finishes" in status.render() and "never run" in status.render()
    with pytest.raises(PtftError, match="not a run directory"):
        grid_status(tmp_path / "nothing")


def test_status_elapsed_of_a_finished_run(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.register_cells([("a", "base", "BASE a", {})])
        run_id = store.start_run(1, "h", "ray", 4, 1)
        store.mark_cell("a", "done", seconds=1.0)
        time.sleep(0.05)
        store.end_run(run_id, "finished")
    status = grid_status(tmp_path)
    assert 0.05 <= status.elapsed < 5 and "nothing left" in status.render()
    assert "not running (last run finished)" in status.render()
