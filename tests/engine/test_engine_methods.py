"""The fine-tuning method axis in the grid: ids, learning rates and their selection per method, what
each cell records, kept LoRA weights, the exported column and the store's migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from engine_helpers import assert_same_numbers

from ptft.analysis import Slice, compute
from ptft.engine.study import plan_cells, run_study
from ptft.store import SCHEMA_VERSION, ResultsStore, results_frame

ONE_TASK = [{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16}]
METHODS = {"finetune.methods": ["full", "lora", "hft"], "finetune.learning_rates": [0.001, 0.01],
           "finetune.lora.learning_rates": [0.03]}


def test_adding_methods_keeps_every_existing_cell_id(small_config_factory, tmp_path: Path) -> None:
    before = plan_cells(small_config_factory(), tmp_path)
    after = plan_cells(small_config_factory(**{"finetune.methods": ["full", "lora", "hft"]}), tmp_path)
    old = {c.cell_id: c for c in before}
    assert old.keys() <= {c.cell_id for c in after}
    assert all(c.training_hash == old[c.cell_id].training_hash and c.model_id == old[c.cell_id].model_id
               for c in after if c.cell_id in old)
    new = [c for c in after if c.cell_id not in old]
    assert sorted(c.ft_method for c in new) == ["hft"] * 4 + ["lora"] * 4 and {c.kind for c in new} == {"finetune"}
    tuned = [c for c in after if c.kind == "finetune"]
    assert len({c.model_id for c in tuned}) == len(tuned) == 12  # a non-full model's name has its method
    # a method's settings are its own cells' inputs alone
    lora_r = plan_cells(small_config_factory(**{"finetune.methods": ["full", "lora", "hft"],
                                                "finetune.lora.r": 4}), tmp_path)
    changed = {c.cell_id for c in after} - {c.cell_id for c in lora_r}
    assert changed == {c.cell_id for c in after if c.ft_method == "lora"}
    redrawn = plan_cells(small_config_factory(**{"finetune.methods": ["full", "lora", "hft"],
                                                 "finetune.hft.redraw_every_epoch": True}), tmp_path)
    changed = {c.cell_id for c in after} - {c.cell_id for c in redrawn}
    assert changed == {c.cell_id for c in after if c.ft_method == "hft"}
    # and only while the method is in the grid
    assert [c.cell_id for c in plan_cells(small_config_factory(**{"finetune.lora.r": 4}), tmp_path)] == \
           [c.cell_id for c in before]


def test_each_method_has_its_own_learning_rates(small_config_factory, tmp_path: Path) -> None:
    cells = plan_cells(small_config_factory(tasks=ONE_TASK, **METHODS), tmp_path)
    rates = {}
    for c in cells:
        if c.kind == "finetune":
            rates.setdefault(c.ft_method, set()).add(c.lr)
    assert rates == {"full": {0.001, 0.01}, "hft": {0.001, 0.01}, "lora": {0.03}}


@pytest.fixture(scope="module")
def methods_run(small_config_factory, tmp_path_factory):
    """One task, two checkpoints, three methods (full and HFT at two learning rates, LoRA at its own
    one), LoRA's weights kept."""
    config = small_config_factory(tasks=ONE_TASK, **METHODS, **{"finetune.keep_weights": True})
    run = tmp_path_factory.mktemp("methods") / "run"
    result = run_study(config, run_dir=run, progress=False)
    assert not result.failed and result.ran == 2 + 2 * 5
    return config, run, result


def test_every_method_is_trained_recorded_and_selected_on_its_own(methods_run) -> None:
    config, run, result = methods_run
    with ResultsStore(run / "results.sqlite") as store:
        trainings = store.frame("trainings")
        selections = store.frame("selections")
    assert sorted(trainings.groupby("ft_method").size().items()) == [("full", 4), ("hft", 4), ("lora", 2)]
    by_method = trainings.groupby("ft_method")["trainable_parameters"].agg(["min", "max"])
    assert by_method.loc["lora", "min"] == by_method.loc["lora", "max"] == 20480  # test_methods.LORA_PARAMETERS
    assert by_method.loc["hft", "max"] < by_method.loc["full", "min"] == 172352
    assert (trainings["tokens_per_second"] > 0).all() and trainings["peak_memory_mb"].notna().all()
    # one choice per (checkpoint, task, method, seed), among the method's own rates
    assert sorted(selections.groupby("ft_method").size().items()) == [("full", 2), ("hft", 2), ("lora", 2)]
    assert set(selections.loc[selections.ft_method == "lora", "lr"]) == {0.03}
    for r in selections.itertuples():
        mine = trainings[(trainings.checkpoint == r.checkpoint) & (trainings.ft_method == r.ft_method)]
        assert r.lr == mine.loc[mine.dev_loss.idxmin(), "lr"]
    table = results_frame(run)
    ft = table[table.train_task != ""]
    assert set(ft.ft_method) == {"full", "lora", "hft"} and set(table[table.train_task == ""].ft_method) == {""}
    # the selected rate of each method, not a mix: one rate per (checkpoint, method)
    rates = ft[ft.selected].groupby(["checkpoint", "ft_method"])["lr"].nunique()
    assert len(rates) == 2 * 3 and (rates == 1).all()


def test_kept_lora_weights_are_the_adapter_alone_and_reused(methods_run, small_config_factory) -> None:
    config, run, result = methods_run
    lora = [c for c in result.cells if c.ft_method == "lora"]
    for c in result.cells:
        if c.kind != "finetune":
            continue
        files = {p.name for p in (run / "models" / c.training_hash).iterdir()}
        if c.ft_method == "lora":
            assert {"adapter_model.safetensors", "adapter_config.json"} <= files and "model.safetensors" not in files
        else:
            assert "model.safetensors" in files
    before = results_frame(run)
    # new evaluation settings: the LoRA cells rerun from their kept adapters, to the same numbers
    again = run_study(small_config_factory(tasks=ONE_TASK, **METHODS, **{"finetune.keep_weights": True,
                                                                         "evaluation.n_bootstrap": 50}),
                      run_dir=run, progress=False)
    with ResultsStore(run / "results.sqlite") as store:
        reused = store.frame("trainings").set_index("cell_id")["reused"]
    assert all(reused[c.cell_id] == 1 for c in again.cells if c.ft_method == "lora") and lora
    after = results_frame(run)
    key = ["checkpoint", "ft_method", "lr", "eval_set", "metric"]
    assert after.sort_values(key).value.tolist() == before.sort_values(key).value.tolist()


def test_the_analyses_compare_the_methods_and_default_to_full(methods_run) -> None:
    _, run, _ = methods_run
    results = compute(run)
    methods = results.frames["methods"]
    assert set(methods["method"]) == {"full", "lora", "hft"}
    assert set(results.frames["weights"]["method"]) == {"full", "lora", "hft"}
    assert "fine-tuning method full" in results.describe()
    assert set(results.frames["prediction"]["ft_method"]) == {"full", "lora", "hft"}
    # the headline analyses read one method: its gain is the methods table's
    gain = results.frames["gain"]
    lora = compute(run, Slice(ft_method="lora"))
    assert "fine-tuning method lora" in lora.describe()
    for frame, method in ((gain, "full"), (lora.frames["gain"], "lora")):
        mine = methods[(methods["method"] == method) & (methods["measure"] == "gain")]
        means = frame.groupby("checkpoint")["raw_change"].mean()
        assert [round(means[c], 12) for c in mine["checkpoint"]] == [round(v, 12) for v in mine["value"]]


def test_a_store_of_schema_3_migrates_to_selections_per_method(reference_run, tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    db = sqlite3.connect(run / "results.sqlite", isolation_level=None)
    chosen = db.execute("SELECT checkpoint, train_task, seed, lr FROM selections ORDER BY 1, 2").fetchall()
    db.execute("DROP TABLE selections")
    db.execute("""CREATE TABLE selections (checkpoint TEXT NOT NULL, train_task TEXT NOT NULL, seed INTEGER NOT NULL,
                  lr REAL NOT NULL, dev_score REAL, criterion TEXT, candidates TEXT, cell_id TEXT,
                  PRIMARY KEY (checkpoint, train_task, seed))""")
    db.executemany("INSERT INTO selections (checkpoint, train_task, seed, lr) VALUES (?, ?, ?, ?)", chosen)
    for column in ("ft_method", "trainable_parameters", "peak_memory_mb"):
        db.execute(f"ALTER TABLE trainings DROP COLUMN {column}")
    db.execute("PRAGMA user_version=3")
    db.close()
    with ResultsStore(run / "results.sqlite") as store:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 5
        migrated = store.frame("selections")
        assert set(store.frame("trainings")["ft_method"]) == {"full"}
    assert sorted(zip(migrated.checkpoint, migrated.train_task, migrated.seed, migrated.lr)) == sorted(chosen)
    assert set(migrated.ft_method) == {"full"}
    assert_same_numbers(results_frame(run), reference_run.frame)
    result = run_study(reference_run.config, run_dir=run, progress=False)
    assert (result.ran, result.failed) == (0, [])


def test_methods_are_evaluated_during_their_training_too(small_config_factory, tmp_path: Path) -> None:
    """A LoRA model is evaluated with its adapters unmerged during training, merged at the end;
    HFT's freezing survives the evaluations (its frozen weights stay exact: test_methods)."""
    config = small_config_factory(tasks=ONE_TASK, **{"finetune.methods": ["lora", "hft"],
                                                     "finetune.eval_at": [0.5, 1.0]})
    result = run_study(config, run_dir=tmp_path / "run", progress=False)
    assert not result.failed and result.ran == 2 + 4
    table = results_frame(tmp_path / "run")
    ft = table[table.train_task != ""]
    points = ft.groupby("ft_method")["ft_fraction"].apply(lambda f: sorted(set(f)))
    assert points.to_dict() == {"hft": [0.5, 1.0], "lora": [0.5, 1.0]}
    assert (ft.groupby(["ft_method", "checkpoint"])["ft_step"].nunique() == 2).all()
