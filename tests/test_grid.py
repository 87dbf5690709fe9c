"""The grid's coordinates are declared once (ptft.grid); the store, the export and the analyses
derive their keys from them."""

from __future__ import annotations

import sqlite3

from ptft.grid import (MODEL_COLUMNS, PROVENANCE_COLUMNS, RESULT_COLUMNS, RESULT_KEY, SCORE_KEY, STATE_COLUMNS,
                       UNIT_COLUMNS, EvalUnit, ModelKey, ModelState, ResultRow, store_path)
from ptft.store import EXPORT_COLUMNS, WEIGHTS_COLUMNS, ResultsStore


def test_the_coordinates_come_from_the_types():
    # ft_step is carried, not compared; an eval set names its eval task
    assert STATE_COLUMNS == ("variant", "ft_fraction")
    assert UNIT_COLUMNS == ("eval_set", "format", "shots", "method")
    assert RESULT_KEY == MODEL_COLUMNS + STATE_COLUMNS + UNIT_COLUMNS + ("metric",)
    assert ModelState("lines", 0.5, ft_step=3) == ModelState("lines", 0.5, ft_step=7)
    assert EvalUnit("nli", "nli_val", "io", 4, "tokenprob").name == "nli_val.io.4shot.tokenprob"


def test_the_export_and_the_weights_table_carry_every_coordinate():
    # the export is the results' columns without their provenance, plus the selection mark; its
    # order is a published file format, so a new coordinate is appended to it by hand
    assert set(EXPORT_COLUMNS) == set(RESULT_COLUMNS) - set(PROVENANCE_COLUMNS) | {"selected"}
    assert set(RESULT_KEY) <= set(EXPORT_COLUMNS)
    assert set(MODEL_COLUMNS) <= set(WEIGHTS_COLUMNS)


def test_a_result_row_is_the_coordinates_it_is_made_of():
    model = ModelKey("step8", 8, "nli", "lora", 1e-3, 2)
    row = ResultRow("m", model, EvalUnit("nli", "nli_val", "io", 4, "tokenprob"), "classification", "in", "accuracy",
                    0.5, 0.4, 0.6, 10, ModelState("lines", 0.5, ft_step=3), seconds=1.5, cell_id="c", created_at=9.0)
    assert row.columns() == {
        "model_id": "m", "checkpoint": "step8", "step": 8, "train_task": "nli", "ft_method": "lora", "lr": 1e-3,
        "seed": 2, "eval_task": "nli", "eval_set": "nli_val", "format": "io", "shots": 4, "method": "tokenprob",
        "task_type": "classification", "domain": "in", "metric": "accuracy", "value": 0.5, "ci_low": 0.4,
        "ci_high": 0.6, "n": 10, "variant": "lines", "ft_fraction": 0.5, "ft_step": 3, "seconds": 1.5,
        "config_hash": "", "cell_id": "c", "created_at": 9.0}
    assert tuple(row.columns()) == RESULT_COLUMNS
    # the step is carried with the checkpoint, not compared: the label names it
    assert model == ModelKey("step8", None, "nli", "lora", 1e-3, 2)


def test_the_stores_tables_are_keyed_by_the_score_key(tmp_path):
    with ResultsStore(store_path(tmp_path)):
        pass
    db = sqlite3.connect(store_path(tmp_path))

    def primary_key(table: str) -> tuple[str, ...]:
        columns = db.execute(f"PRAGMA table_info({table})").fetchall()
        return tuple(name for _, name, _, _, _, pk in sorted(columns, key=lambda c: c[5]) if pk)

    assert primary_key("results") == ("cell_id", "model_id", *SCORE_KEY)
    # the results table holds exactly a result row's columns
    assert {c[1] for c in db.execute("PRAGMA table_info(results)")} == set(RESULT_COLUMNS)
    assert primary_key("scores") == ("cell_id", *SCORE_KEY)
    assert primary_key("comparisons") == ("cell_id", "base_cell_id", "model_id", *SCORE_KEY)
    db.close()
