"""Weight lenses, LiNeS and grafting in the grid: every fine-tuning cell stores the lenses of its
model against BASE, `ptft export` writes them beside the results, LiNeS and grafted rows are
evaluated on the same units (at alpha 1, beta 0 and at 100 % the fine-tuned numbers, at
alpha = beta = 0 and at 0 % BASE's), and a store of schema 2 migrates."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from ptft.api import export
from ptft.cli import main
from ptft.engine.study import run_study
from ptft.store import (LAYERS_COLUMNS, SCHEMA_VERSION, WEIGHTS_COLUMNS, ResultsStore, layers_frame, layers_path,
                        results_frame, weights_path)

from engine_helpers import assert_same_numbers

NUMBERS = ["value", "ci_low", "ci_high", "n"]
UNIT = ["checkpoint", "eval_set", "format", "shots", "method", "metric"]

# the test model: 2 blocks of 7 projections (hidden 64, MLP 192) and one embedding matrix tied to the head
MATRICES = {"embed_tokens": (1024, 64), "self_attn.q_proj": (64, 64), "self_attn.k_proj": (64, 64),
            "self_attn.v_proj": (64, 64), "self_attn.o_proj": (64, 64), "mlp.gate_proj": (192, 64),
            "mlp.up_proj": (192, 64), "mlp.down_proj": (64, 192)}


def test_every_fine_tuned_model_has_its_lenses_exported(reference_run, tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    out = export(run, tmp_path / "out" / "table.csv")
    lenses = pd.read_csv(weights_path(out))
    assert weights_path(out) == tmp_path / "out" / "table.weights.csv"
    assert list(lenses.columns) == WEIGHTS_COLUMNS
    per_model = lenses.groupby(["checkpoint", "train_task"])
    assert per_model.ngroups == 4 and (per_model.size() == 15).all()  # 2 checkpoints x 2 tasks
    shapes = {(r.module, r.layer): (r.rows, r.cols) for r in lenses.itertuples()}
    assert shapes == {(m, layer): s for m, s in MATRICES.items()
                      for layer in ((0,) if m == "embed_tokens" else (1, 2))}
    assert (lenses["relative_change"] > 0).all() and (lenses["effective_rank"] >= 1).all()
    assert (lenses["intruders"].between(0, 10)).all()
    assert set(lenses["intruder_k"]) == {10} and set(lenses["intruder_epsilon"]) == {0.5}


def test_lines_endpoints_repeat_the_fine_tuned_and_the_base_rows(reference_run, small_config_factory,
                                                                  tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    tables = {}
    for alpha in (1.0, 0.0):
        config = small_config_factory(**{"lines.enabled": True, "lines.alpha": alpha, "lines.beta": 0.0,
                                         "finetune.keep_weights": True})
        result = run_study(config, run_dir=run, progress=False)
        assert result.failed == [] and result.ran == 4  # the FT cells (new ids); BASE is reused
        tables[alpha] = results_frame(run)
    table = tables[1.0]
    ft = table[(table["train_task"] != "")]
    as_trained, edited = ft[ft["variant"] == "none"], ft[ft["variant"] == "lines"]
    assert len(edited) == len(as_trained) > 0
    assert_same_numbers(as_trained, reference_run.frame[reference_run.frame["train_task"] != ""])
    assert_same_numbers(edited.assign(variant="none"), as_trained)
    # alpha = beta = 0 is the BASE checkpoint: the numbers of the BASE cell on the same units
    table = tables[0.0]
    base = table[table["train_task"] == ""].set_index(UNIT)[NUMBERS]
    edited = table[table["variant"] == "lines"].set_index(UNIT)[NUMBERS]
    assert len(edited) == 4  # 2 checkpoints x 2 tasks, one in-domain set and one metric each
    pd.testing.assert_frame_equal(edited.sort_index(), base.loc[edited.index].sort_index(), check_exact=True)
    # ... and on the same examples: every paired FT - BASE difference of the edited models is 0
    with ResultsStore(run / "results.sqlite") as store:
        comparisons = store.frame("comparisons")
    plan = set(store_plan(run))
    lines = comparisons[(comparisons["variant"] == "lines") & comparisons["cell_id"].isin(plan)]
    assert len(lines) == 4 and (lines["diff"] == 0).all()


def test_grafting_none_and_all_of_the_change_repeats_the_base_and_the_fine_tuned_rows(
        reference_run, small_config_factory, tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    config = small_config_factory(**{"grafting.enabled": True, "grafting.top_percent": [0, 100, 1]})
    result = run_study(config, run_dir=run, progress=False)
    assert result.failed == [] and result.ran == 4  # the FT cells (new ids); BASE is reused
    table = results_frame(run)
    ft = table[table["train_task"] != ""]
    assert sorted(set(ft["variant"])) == ["graft0pct", "graft100pct", "graft1pct", "none"]
    assert_same_numbers(ft[ft["variant"] == "none"], reference_run.frame[reference_run.frame["train_task"] != ""])
    assert_same_numbers(ft[ft["variant"] == "graft100pct"].assign(variant="none"), ft[ft["variant"] == "none"])
    base = table[table["train_task"] == ""].set_index(UNIT)[NUMBERS]
    edited = table[table["variant"] == "graft0pct"].set_index(UNIT)[NUMBERS]
    assert len(edited) == 4
    pd.testing.assert_frame_equal(edited.sort_index(), base.loc[edited.index].sort_index(), check_exact=True)
    one = ft[ft["variant"] == "graft1pct"].set_index(UNIT + ["train_task"])["value"].sort_index()
    assert len(one) == 4 and one.notna().all()


def test_tuco_and_cka_are_stored_and_exported_and_change_no_other_number(reference_run, small_config_factory,
                                                                          tmp_path: Path, capsys) -> None:
    config = small_config_factory(**{"tuco.enabled": True, "cka.enabled": True, "evaluation.cross_task": True})
    run = tmp_path / "run"
    assert run_study(config, run_dir=run, progress=False).failed == []
    table_path = tmp_path / "out" / "table.csv"
    assert main(["export", str(run), "--out", str(table_path)]) == 0
    assert capsys.readouterr().out.split() == [str(table_path), str(weights_path(table_path)),
                                               str(layers_path(table_path))]
    layers = pd.read_csv(layers_path(table_path))
    assert list(layers.columns) == LAYERS_COLUMNS
    # 2 checkpoints x 2 tasks, each on its own set and the other task's, 2 blocks
    assert len(layers) == 16 and set(layers["layer"]) == {1, 2} and set(layers["measure"]) == {"cka"}
    assert layers["value"].between(0, 1).all() and (layers["value"] < 1).any()
    table = results_frame(run)
    rows = table[table["metric"] == "tuco"]
    # each fine-tuned model (2 checkpoints x 2 tasks) on its own set and the other task's
    assert len(rows) == 8 and (rows["train_task"] != "").all() and rows["value"].between(0, 1).all()
    assert (rows["value"] > 0).all() and (rows["ci_low"] <= rows["value"]).all()
    with ResultsStore(run / "results.sqlite") as store:
        scores, stored = store.frame("scores"), store.frame("results")
    tuco_cells = set(stored.loc[stored["metric"] == "tuco", "cell_id"])
    assert len(tuco_cells) == 4 and set(scores.loc[scores["metric"] == "tuco", "cell_id"]) == tuco_cells
    one = stored[stored["metric"] == "tuco"].iloc[0]
    folder = run / "predictions" / one["model_id"].replace("/", "__")
    path = folder / f"{one['eval_set']}.default.1shot.{one['method']}.jsonl"
    predictions = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(predictions) == one["n"] and all(0 < p["tuco"] < 1 for p in predictions)
    assert sum(p["tuco"] for p in predictions) / one["n"] == pytest.approx(one["value"])
    # the other rows are those of a run without TuCo
    without = small_config_factory(**{"evaluation.cross_task": True})
    other = tmp_path / "other"
    assert run_study(without, run_dir=other, progress=False).failed == []
    assert_same_numbers(table[table["metric"] != "tuco"], results_frame(other))
    assert layers_frame(other).empty  # both are off by default


def store_plan(run: Path) -> list[str]:
    with ResultsStore(run / "results.sqlite") as store:
        return store.plan()


def test_a_store_of_schema_2_migrates(reference_run, tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    db = sqlite3.connect(run / "results.sqlite", isolation_level=None)
    db.execute("DROP TABLE weights")
    db.execute("DROP TABLE layers")
    db.execute("PRAGMA user_version=2")
    db.close()
    with ResultsStore(run / "results.sqlite") as store:
        assert store.count("weights") == 0 and store.count("layers") == 0
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
    assert_same_numbers(results_frame(run), reference_run.frame)
    # the resumed run has nothing to do: cells done before the lenses existed simply lack them
    result = run_study(reference_run.config, run_dir=run, progress=False)
    assert (result.ran, result.failed) == (0, [])
