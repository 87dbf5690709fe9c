"""The grid's coordinates are declared once (ptft.grid); the store, the export and the analyses
derive their keys from them."""

from __future__ import annotations

import sqlite3

from ptft.grid import (MODEL_COLUMNS, RESULT_KEY, SCORE_KEY, STATE_COLUMNS, UNIT_COLUMNS, EvalUnit, ModelState,
                       store_path)
from ptft.store import EXPORT_COLUMNS, WEIGHTS_COLUMNS, ResultsStore


def test_the_coordinates_come_from_the_types():
    # ft_step is carried, not compared; an eval set names its eval task
    assert STATE_COLUMNS == ("variant", "ft_fraction")
    assert UNIT_COLUMNS == ("eval_set", "format", "shots", "method")
    assert RESULT_KEY == MODEL_COLUMNS + STATE_COLUMNS + UNIT_COLUMNS + ("metric",)
    assert ModelState("lines", 0.5, ft_step=3) == ModelState("lines", 0.5, ft_step=7)
    assert EvalUnit("nli", "nli_val", "io", 4, "tokenprob").name == "nli_val.io.4shot.tokenprob"


def test_the_export_and_the_weights_table_carry_every_coordinate():
    assert set(RESULT_KEY) <= set(EXPORT_COLUMNS)
    assert set(MODEL_COLUMNS) <= set(WEIGHTS_COLUMNS)


def test_the_stores_tables_are_keyed_by_the_score_key(tmp_path):
    with ResultsStore(store_path(tmp_path)):
        pass
    db = sqlite3.connect(store_path(tmp_path))

    def primary_key(table: str) -> tuple[str, ...]:
        columns = db.execute(f"PRAGMA table_info({table})").fetchall()
        return tuple(name for _, name, _, _, _, pk in sorted(columns, key=lambda c: c[5]) if pk)

    assert primary_key("results") == ("cell_id", "model_id", *SCORE_KEY)
    assert primary_key("scores") == ("cell_id", *SCORE_KEY)
    assert primary_key("comparisons") == ("cell_id", "base_cell_id", "model_id", *SCORE_KEY)
    db.close()
