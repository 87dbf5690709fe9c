"""The results store's schema migrations: a run directory written before the store kept a schema
version (per-example scores keyed by the unit's dotted name), or at schema 1 (no model-state
columns), opens, migrates once, exports the same values and resumes with nothing to do; a
migration that dies half way leaves the old store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from ptft.engine.study import run_study
from ptft.store import SCHEMA_VERSION, ResultsStore, results_frame

from engine_helpers import assert_same_numbers

# the scores table exactly as stores before schema 1 declared it
SCORES_BEFORE_SCHEMA_1 = """CREATE TABLE scores (
    cell_id TEXT NOT NULL,
    unit TEXT NOT NULL,
    metric TEXT NOT NULL,
    vals TEXT NOT NULL,
    PRIMARY KEY (cell_id, unit, metric)
)"""

# results, scores and comparisons exactly as schema 1 declared them
TABLES_OF_SCHEMA_1 = {
    "results": """CREATE TABLE results (
    model_id TEXT NOT NULL, checkpoint TEXT NOT NULL, step INTEGER, train_task TEXT NOT NULL DEFAULT '', lr REAL,
    seed INTEGER, eval_set TEXT NOT NULL, eval_task TEXT NOT NULL, task_type TEXT NOT NULL, domain TEXT NOT NULL,
    format TEXT NOT NULL, shots INTEGER NOT NULL, method TEXT NOT NULL, metric TEXT NOT NULL, value REAL,
    ci_low REAL, ci_high REAL, n INTEGER, seconds REAL, config_hash TEXT, cell_id TEXT NOT NULL DEFAULT '',
    created_at REAL,
    PRIMARY KEY (cell_id, model_id, eval_set, format, shots, method, metric))""",
    "scores": """CREATE TABLE scores (
    cell_id TEXT NOT NULL, eval_task TEXT NOT NULL, eval_set TEXT NOT NULL, format TEXT NOT NULL,
    shots INTEGER NOT NULL, method TEXT NOT NULL, metric TEXT NOT NULL, vals TEXT NOT NULL,
    PRIMARY KEY (cell_id, eval_set, format, shots, method, metric))""",
    "comparisons": """CREATE TABLE comparisons (
    model_id TEXT NOT NULL, base_id TEXT NOT NULL, eval_set TEXT NOT NULL, format TEXT NOT NULL,
    shots INTEGER NOT NULL, method TEXT NOT NULL, metric TEXT NOT NULL, diff REAL, ci_low REAL, ci_high REAL,
    n INTEGER NOT NULL, cell_id TEXT NOT NULL DEFAULT '', base_cell_id TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (cell_id, base_cell_id, model_id, eval_set, format, shots, method, metric))""",
}
MODEL_STATE_COLUMNS = ("ft_method", "variant", "ft_step", "ft_fraction")


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


def as_schema_1(run: Path) -> Path:
    """Rewrite the run's store as ptft wrote it at schema 1: no model-state columns."""
    db = sqlite3.connect(run / "results.sqlite", isolation_level=None)
    db.execute("BEGIN")
    for table, create in TABLES_OF_SCHEMA_1.items():
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_v2")
        db.execute(create)
        cols = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        db.execute(f"INSERT INTO {table} SELECT {', '.join(cols)} FROM {table}_v2")
        db.execute(f"DROP TABLE {table}_v2")
    db.execute("PRAGMA user_version=1")
    db.execute("COMMIT")
    db.close()
    return run


def table_rows(run: Path, table: str, columns: str = "*") -> list[tuple]:
    db = sqlite3.connect(run / "results.sqlite")
    try:
        return sorted(db.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)
    finally:
        db.close()


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
                                               "metric", "vals", "variant", "ft_fraction", "ft_step"])
    assert scores == all_scores(reference_run.run_dir)
    assert sum(len(units) for states in scores.values() for units in states.values()) == 8
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


def test_a_store_at_schema_1_migrates_to_model_states_and_resumes_with_nothing_to_do(reference_run,
                                                                                    tmp_path: Path) -> None:
    run = as_schema_1(reference_run.copy_to(tmp_path / "run"))
    before = {t: table_rows(run, t) for t in TABLES_OF_SCHEMA_1}
    assert schema_of(run)[0] == 1 and "variant" not in schema_of(run)[1]
    assert all_scores(run) == all_scores(reference_run.run_dir)  # opening migrates
    assert schema_of(run)[0] == SCHEMA_VERSION
    for table, rows in before.items():  # every row keeps its values, the new columns come after them
        width = len(rows[0])
        assert [row[:width] for row in table_rows(run, table)] == rows
    # the defaults: final, unedited; FT rows are full fine-tuning at the steps their training made
    steps = dict(table_rows(run, "trainings", "cell_id, steps"))
    states = table_rows(run, "results", "train_task, cell_id, " + ", ".join(MODEL_STATE_COLUMNS))
    assert {s[1:] for s in states if s[0] == ""} == {(c, "", "none", None, 1.0) for _, c, *_ in states
                                                      if c not in steps}
    assert {s[1:] for s in states if s[0] != ""} == {(c, "full", "none", steps[c], 1.0) for _, c, *_ in states
                                                      if c in steps}
    assert set(table_rows(run, "comparisons", "variant, ft_fraction")) == {("none", 1.0)}
    assert_same_numbers(results_frame(run), reference_run.frame)
    pd.testing.assert_frame_equal(results_frame(run), reference_run.frame, check_exact=True)
    result = run_study(reference_run.config, run_dir=run, progress=False)
    assert (result.ran, result.skipped, result.failed) == (0, 8, [])
    assert len(table_rows(run, "comparisons")) == len(before["comparisons"]) > 0
