"""Numbers computed two ways never mix silently: every done cell records the numerics it was
computed with (torch build, the kernels the hardware selects), and a resume that would compute
with other numerics is refused before any cell runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from engine_helpers import assert_same_run

from ptft.engine.study import run_study
from ptft.engine.work import numerics_of
from ptft.errors import PtftError
from ptft.store import ResultsStore


def test_done_cells_record_their_numerics(reference_run) -> None:
    with ResultsStore(reference_run.run_dir / "results.sqlite") as store:
        recorded = store.numerics(store.plan())
    mine = numerics_of(reference_run.config)
    assert list(recorded) == [mine] and len(recorded[mine]) == 8
    # a CPU fine-tunes on SDPA, which the numerics leave unsaid
    assert mine.startswith("torch ") and "CPU kernels" in mine and "fine-tuning on" not in mine


def test_resume_on_other_numerics_is_refused_before_any_cell_runs(reference_run, tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    db = sqlite3.connect(run / "results.sqlite")
    with db:  # as if another machine had computed the done cells, and one cell is left to do
        db.execute("UPDATE cells SET numerics='torch 2.0.0, CPU kernels AVX2'")
        todo = db.execute("SELECT cell_id FROM cells WHERE kind='finetune' LIMIT 1").fetchone()[0]
        db.execute("UPDATE cells SET status='pending' WHERE cell_id=?", (todo,))
        db.execute("DELETE FROM results WHERE cell_id=?", (todo,))
    db.close()
    with pytest.raises(PtftError) as err:
        run_study(reference_run.config, run_dir=run, progress=False)
    message = str(err.value)
    assert "7 done cell(s) were computed with torch 2.0.0, CPU kernels AVX2" in message
    assert numerics_of(reference_run.config) in message and "--allow-mixed-numerics" in message
    with ResultsStore(run / "results.sqlite") as store:
        assert store.cell_status()[todo] == "pending"  # nothing ran

    result = run_study(reference_run.config, run_dir=run, progress=False, allow_mixed_numerics=True)
    assert result.ran == 1 and not result.failed
    assert_same_run(run, reference_run)
