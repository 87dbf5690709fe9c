"""Nothing lost: `ptft run` killed with SIGKILL in the middle of a cell loses only that cell; the
rerun completes the study with no duplicate rows and the numbers of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from engine_helpers import KEYS, assert_same_run

from ptft.engine.status import grid_status
from ptft.engine.study import driver_alive, run_study
from ptft.store import ResultsStore, results_frame


def _cells(run: Path) -> dict[str, tuple[str, str, str]]:
    """cell_id -> (status, kind, label), read without the engine (a plain read-only connection)."""
    db = run / "results.sqlite"
    if not db.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return {r[0]: r[1:] for r in con.execute("SELECT cell_id, status, kind, label FROM cells")}
        finally:
            con.close()
    except sqlite3.OperationalError:  # the driver is creating the schema
        return {}


def _kill_mid_cell(config_file: Path, run: Path, timeout: float = 120) -> tuple[str, str]:
    """Start `ptft run`, wait until two cells are done and a fine-tuning cell is running, SIGKILL
    it. Returns (killed cell id, what it was doing: "fine-tuning" or "evaluation")."""
    proc = subprocess.Popen([sys.executable, "-m", "ptft", "run", str(config_file), "--out", str(run),
                             "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"ptft run ended before it could be killed: {proc.stderr.read().decode()}"
            cells = _cells(run)
            done = sum(s == "done" for s, _, _ in cells.values())
            running = [cid for cid, (s, kind, _) in cells.items() if s == "running" and kind == "finetune"]
            if done >= 2 and running:
                log = run / "logs" / f"{running[0]}.log"
                if log.exists():  # the cell's own work has started
                    phase = "evaluation" if "trained:" in log.read_text() else "fine-tuning"
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(30)
                    return running[0], phase
            time.sleep(0.02)
        raise AssertionError("no fine-tuning cell seen running in time")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stderr.close()


def test_sigkill_mid_cell_loses_only_that_cell(reference_run, small_config_file, tmp_path: Path) -> None:
    config_file = small_config_file()
    for attempt in range(3):  # the cell may finish between our look and the kill: then kill again
        run = tmp_path / f"run{attempt}"
        killed, phase = _kill_mid_cell(config_file, run)
        after = _cells(run)
        if after[killed][0] == "running":
            break
    else:
        raise AssertionError("three kills all landed between cells")
    done = {cid for cid, (s, _, _) in after.items() if s == "done"}
    assert 2 <= len(done) < 8 and killed not in done
    assert driver_alive(run) is None  # the kernel released the dead driver's lock

    # status: nobody is running it, so the killed cell is pending again (interrupted), not running
    status = grid_status(run)
    assert status.driver is None
    assert status.counts == {"done": len(done), "running": 0, "failed": 0, "pending": 8 - len(done)}
    assert "interrupted: will run again" in status.render()
    # what the dead run stored is complete cells only: rows of done cells, nothing of the killed one
    with ResultsStore(run / "results.sqlite") as store:
        rows = store.frame("results")
    assert set(rows.cell_id) <= done and killed not in set(rows.cell_id)

    result = run_study(reference_run.config, run_dir=run, progress=False)
    assert result.interrupted == [killed]
    assert result.ran == 8 - len(done) and result.skipped == len(done) and not result.failed
    df = results_frame(run)
    assert not df.duplicated(KEYS).any()
    with ResultsStore(run / "results.sqlite") as store:
        assert store.count("results") == len(df) == 8  # no stray rows either
        cells = store.cells().set_index("cell_id")
        runs = store.frame("runs")
    assert cells.loc[killed, "attempts"] == 2 and (cells.status == "done").all()
    assert runs.outcome.isna().tolist() == [True, False] and runs.outcome.iloc[1] == "finished"  # killed: never ended
    assert_same_run(run, reference_run)
    print(f"killed during {phase}; {len(done)} cells were done")


def test_killed_during_final_selection_and_comparisons(reference_run, tmp_path: Path) -> None:
    """Every cell is done and the driver dies while choosing learning rates or computing the paired
    FT - BASE comparisons. Each of those final writes is one transaction and they take
    milliseconds, too short to SIGKILL into reliably, so the test builds what such a kill leaves:
    every cell done, the run never ended, no selections and no (or only some) comparisons. The
    rerun runs no cell and completes both."""
    with ResultsStore(reference_run.run_dir / "results.sqlite") as store:
        want = store.frame("comparisons").drop(columns=["id"], errors="ignore")
    run = reference_run.copy_to(tmp_path / "run")
    db = sqlite3.connect(run / "results.sqlite", isolation_level=None)
    db.execute("UPDATE runs SET outcome = NULL, finished_at = NULL")
    db.execute("DELETE FROM selections")
    db.execute("DELETE FROM comparisons WHERE rowid NOT IN (SELECT MIN(rowid) FROM comparisons)")
    db.close()

    result = run_study(reference_run.config, run_dir=run, progress=False)
    assert result.ran == 0 and result.skipped == 8 and not result.failed
    assert_same_run(run, reference_run)  # includes the `selected` column
    with ResultsStore(run / "results.sqlite") as store:
        got = store.frame("comparisons").drop(columns=["id"], errors="ignore")
        assert len(store.frame("selections")) == 4  # (checkpoint, task, seed) groups
    key = ["model_id", "eval_set", "format", "shots", "method", "metric"]
    pd.testing.assert_frame_equal(got.sort_values(key).reset_index(drop=True),
                                  want.sort_values(key).reset_index(drop=True), check_exact=True)
