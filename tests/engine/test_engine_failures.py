"""A failing cell is recorded with its error and traceback, the others go on, `ptft run` exits 1
and retries it on the next run; `ptft status` shows the grid with the right counts."""

from __future__ import annotations

from pathlib import Path

from engine_helpers import assert_same_numbers

from ptft.cli import main
from ptft.engine.status import grid_status
from ptft.store import ResultsStore, results_frame


def test_nan_loss_cell_fails_others_finish_exit_code_and_status(reference_run, small_config_file,
                                                               tmp_path: Path, capsys) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    # vitaminc also at a learning rate so large that the loss becomes NaN
    tasks = [{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16, "lr": [0.001, 1.0e4]},
             {"name": "social_qg", "n_train": 16, "n_dev": 4, "n_eval": 4}]
    config = small_config_file(tasks=tasks)
    assert main(["run", str(config), "--out", str(run), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "0 cell(s) run, 8 already done, 2 failed" in out and "ptft status" in out

    with ResultsStore(run / "results.sqlite") as store:
        cells = store.cells().set_index("label")
    failed = cells[cells.status == "failed"]
    assert sorted(failed.index) == ["FT step60 sentiment lr=10000 seed=0",
                                    "FT step8 sentiment lr=10000 seed=0"]
    assert all(e.startswith("NonFiniteLoss: ") for e in failed.error)
    assert all("Traceback (most recent call last)" in t and "NonFiniteLoss" in t for t in failed.traceback)
    assert (cells.drop(failed.index).status == "done").all() and (failed.attempts == 1).all()
    for cell_id in failed.cell_id:
        assert "failed after" in (run / "logs" / f"{cell_id}.log").read_text()

    # the other cells' results are all there, the failed rate is simply not a candidate
    assert_same_numbers(results_frame(run), reference_run.frame)

    assert main(["status", str(run)]) == 1
    shown = capsys.readouterr().out
    assert "cells: 10 = done 8, running 0, failed 2, pending 0" in shown
    assert "not running (last run failed)" in shown
    assert shown.count("[failed ]") == 2 and "NonFiniteLoss" in shown and "attempts 1" in shown
    status = grid_status(run)
    assert status.counts == {"done": 8, "running": 0, "failed": 2, "pending": 0}

    # the next run retries exactly the failed cells (and they fail again: still exit 1)
    assert main(["run", str(config), "--out", str(run), "--no-progress"]) == 1
    assert "0 cell(s) run, 8 already done, 2 failed" in capsys.readouterr().out
    with ResultsStore(run / "results.sqlite") as store:
        cells = store.cells().set_index("label")
    assert (cells[cells.status == "failed"].attempts == 2).all() and (cells.status == "done").sum() == 8
