"""The results store's schema migration: a run directory written before the store kept a schema
version (per-example scores keyed by the unit's dotted name) opens, migrates once, exports the
same values and resumes with nothing to do; a migration that dies half way leaves the old store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ptft.engine.study import results_frame, run_study
from ptft.store import SCHEMA_VERSION, ResultsStore

from engine_helpers import assert_same_numbers

# the scores table exactly as stores before schema 1 declared it
SCORES_BEFORE_SCHEMA_1 = """CREATE TABLE scores (
    cell_id TEXT NOT NULL,
    unit TEXT NOT NULL,
    metric TEXT NOT NULL,
    vals TEXT NOT NULL,
    PRIMARY KEY (cell_id, unit, metric)
)"""


def all_scores(run: Path) -> dict:
    with ResultsStore(run / "results.sqlite") as store:
        return {cell_id: store.scores(cell_id) for cell_id in store.plan()}


def as_before_schema_1(run: Path) -> Path:
    """Rewrite the run's store as ptft wrote it before schema 1."""
    db = sqlite3.connect(run / "results.sqlite", isolation_level=None)
    rows = db.execute("SELECT cell_id, eval_set, format, shots, method, metric, vals FROM scores").fetchall()
    db.execute("BEGIN")
    db.execute("DROP TABLE scores")
    db.execute(SCORES_BEFORE_SCHEMA_1)
    db.executemany("INSERT INTO scores VALUES (?, ?, ?, ?)",
                   [(cell_id, f"{eval_set}.{fmt}.{shots}shot.{method}", metric, vals)
                    for cell_id, eval_set, fmt, shots, method, metric, vals in rows])
    db.execute("PRAGMA user_version=0")
    db.execute("COMMIT")
    db.close()
    return run


def schema_of(run: Path) -> tuple[int, list[str]]:
    db = sqlite3.connect(run / "results.sqlite")
    try:
        return (db.execute("PRAGMA user_version").fetchone()[0],
                [row[1] for row in db.execute("PRAGMA table_info(scores)")])
    finally:
        db.close()


def test_a_store_from_before_schema_1_migrates_and_resumes_with_nothing_to_do(reference_run, tmp_path: Path) -> None:
    run = as_before_schema_1(reference_run.copy_to(tmp_path / "run"))
    assert schema_of(run) == (0, ["cell_id", "unit", "metric", "vals"])
    scores = all_scores(run)  # opening migrates
    assert schema_of(run) == (SCHEMA_VERSION, ["cell_id", "eval_task", "eval_set", "format", "shots", "method",
                                               "metric", "vals"])
    assert scores == all_scores(reference_run.run_dir) and sum(map(len, scores.values())) == 8
    assert all_scores(run) == scores  # opening again changes nothing
    assert_same_numbers(results_frame(run), reference_run.frame)
    result = run_study(reference_run.config, run_dir=run, progress=False)
    assert (result.ran, result.skipped, result.failed) == (0, 8, [])
    assert_same_numbers(results_frame(run), reference_run.frame)


def test_a_migration_that_dies_half_way_leaves_the_old_store(reference_run, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import ptft.store

    run = as_before_schema_1(reference_run.copy_to(tmp_path / "run"))
    upsert = ptft.store._upsert

    def dies_writing_scores(db, table, rows):
        if table == "scores":
            raise RuntimeError("killed")
        upsert(db, table, rows)

    monkeypatch.setattr(ptft.store, "_upsert", dies_writing_scores)
    with pytest.raises(RuntimeError, match="killed"):
        ResultsStore(run / "results.sqlite")
    assert schema_of(run) == (0, ["cell_id", "unit", "metric", "vals"])
    monkeypatch.setattr(ptft.store, "_upsert", upsert)
    assert all_scores(run) == all_scores(reference_run.run_dir)
