"""``finetune.evaluate: selected``: every learning rate is trained, only the run the dev split
selects is evaluated, and what is evaluated is what evaluating every rate gives for that run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ptft.config import load_config
from ptft.engine.study import plan_cells, run_study
from ptft.errors import ConfigError
from ptft.store import ResultsStore, results_frame

ONE_TASK = [{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16}]
# a rate that learns and one that barely moves: the dev losses differ, so one is chosen per checkpoint
RATES = {"finetune.learning_rates": [0.003, 0.0001], "evaluation.cross_task": True}
SELECTED = {**RATES, "finetune.evaluate": "selected"}
KEY = ["checkpoint", "train_task", "lr", "eval_set", "format", "method", "metric"]


def tables(run: Path):
    with ResultsStore(run / "results.sqlite") as store:
        return (store.frame("trainings").sort_values(["checkpoint", "train_task", "lr"]).reset_index(drop=True),
                store.frame("selections").sort_values(["checkpoint", "train_task"]).reset_index(drop=True),
                store.frame("comparisons"), store.cells().set_index("cell_id"))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_the_selected_run_is_evaluated_alone_with_the_numbers_of_evaluating_every_rate(
        small_config_factory, tmp_path: Path, method: str) -> None:
    # LoRA's kept weights are its adapter alone, merged into BASE when the evaluation loads them
    axis = {"finetune.methods": [method]}
    every = run_study(small_config_factory(**RATES, **axis), run_dir=tmp_path / "all", progress=False)
    chosen = run_study(small_config_factory(**SELECTED, **axis), run_dir=tmp_path / "sel", progress=False)
    assert not every.failed and not chosen.failed
    kinds = [c.kind for c in chosen.cells]
    # 2 checkpoints x 2 tasks: 4 BASE, 8 training runs, 4 evaluations of a chosen run
    assert (kinds.count("base"), kinds.count("finetune"), kinds.count("selected")) == (4, 8, 4)

    train_all, sel_all, cmp_all, _ = tables(tmp_path / "all")
    train_sel, sel_sel, cmp_sel, cells = tables(tmp_path / "sel")
    # the same trainings (every rate trained, to the same dev losses) and the same choices
    assert train_sel[["model_id", "dev_loss", "steps"]].equals(train_all[["model_id", "dev_loss", "steps"]])
    assert sel_sel[["checkpoint", "train_task", "lr"]].equals(sel_all[["checkpoint", "train_task", "lr"]])

    a, s = results_frame(tmp_path / "all"), results_frame(tmp_path / "sel")
    ft_all, ft_sel = a[a.train_task != ""], s[s.train_task != ""]
    # only the chosen runs have rows, and they are the chosen runs' rows of the full evaluation
    assert set(ft_all.lr) == {0.003, 0.0001} and set(ft_sel.lr) == set(sel_sel.lr)
    assert 2 * len(ft_sel) == len(ft_all)
    assert ft_sel.selected.all() and not ft_all.selected.all()
    expected = ft_all[ft_all.selected].sort_values(KEY).reset_index(drop=True)
    got = ft_sel.sort_values(KEY).reset_index(drop=True)
    assert len(got) == len(expected) > 0
    for column in [*KEY, "value", "ci_low", "ci_high", "n"]:
        assert got[column].tolist() == expected[column].tolist(), column
    # BASE is evaluated alike, and FT - BASE compared for the chosen models only, to the same numbers
    assert s[s.train_task == ""].value.tolist() == a[a.train_task == ""].value.tolist()
    shown = "" if method == "full" else f"/{method}"
    chosen_models = {f"finetune/{r.checkpoint}/{r.train_task}{shown}/lr{r.lr:g}/seed{r.seed}"
                     for r in sel_sel.itertuples()}
    compared = cmp_all[cmp_all.model_id.isin(chosen_models)]
    assert sorted(cmp_sel.model_id.unique()) == sorted(chosen_models)
    assert sorted(cmp_sel["diff"].round(12)) == sorted(compared["diff"].round(12))

    run = tmp_path / "sel"
    # predictions are filed under the chosen run's model, the weights are gone, the dev figures stay
    filed = {p.name for p in (run / "predictions").iterdir() if p.name.startswith("finetune")}
    assert filed == {m.replace("/", "__") for m in chosen_models}
    assert not any((run / "models").iterdir())
    dev = {p.stem: json.loads(p.read_text())["dev_loss"] for p in (run / "dev").iterdir()}
    trained = {c.training_hash: c for c in chosen.cells if c.kind == "finetune"}
    assert sorted(dev) == sorted(trained)
    selected = [c for c in chosen.cells if c.kind == "selected"]
    note = cells.loc[selected[0].cell_id, "notes"]
    assert "selected lr" in note and "deleted the weights of the 2 run(s)" in note

    # an evaluation-only change reruns the evaluations alone: the trained runs stay done, and the
    # chosen runs, whose weights were deleted, are trained again to the same numbers
    again = run_study(small_config_factory(**SELECTED, **axis, **{"evaluation.n_bootstrap": 50}), run_dir=run,
                      progress=False)
    assert not again.failed
    assert (again.ran, again.skipped) == (8, 8)  # 4 BASE (their ids hash the bootstrap) + 4 evaluations
    redone = results_frame(run)
    assert redone.sort_values(KEY).value.tolist() == s.sort_values(KEY).value.tolist()


def test_a_rate_that_diverges_is_no_candidate_and_no_failure(small_config_factory, tmp_path: Path) -> None:
    config = small_config_factory(tasks=ONE_TASK, **{"finetune.learning_rates": [1e6, 0.001],
                                                     "finetune.evaluate": "selected"})
    result = run_study(config, run_dir=tmp_path / "run", progress=False)
    assert not result.failed
    _, selections, _, cells = tables(tmp_path / "run")
    assert set(selections.lr) == {0.001}
    diverged = [c for c in result.cells if c.kind == "finetune" and c.lr == 1e6]
    assert all("left out of the learning-rate selection" in cells.loc[c.cell_id, "notes"] for c in diverged)


def test_selected_evaluation_refuses_points_during_training_and_keeps_every_id_when_off(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="finetune.eval_at.*evaluate: all"):
        load_config("tiny", {"finetune.evaluate": "selected", "finetune.eval_at": [0.5, 1.0]})
    off = plan_cells(load_config("tiny", {"finetune.evaluate": "all"}), tmp_path)
    on = plan_cells(load_config("tiny"), tmp_path)
    # BASE and pre-training cells are shared; the trainings are the same runs (same training hashes)
    assert {c.cell_id for c in off if c.kind in ("pretrain", "base")} == \
           {c.cell_id for c in on if c.kind in ("pretrain", "base")}
    assert [c.training_hash for c in off if c.kind == "finetune"] == \
           [c.training_hash for c in on if c.kind == "finetune"]
    assert all(not c.units for c in on if c.kind == "finetune")


def test_a_training_cell_that_scores_its_dev_split_hashes_how(tmp_path: Path) -> None:
    """Selecting by the dev metric, the training half scores the dev split with the first
    evaluation method: reordering the methods is another choice, so other training cells."""
    def trainings(selection: str, methods: list[str]) -> set[str]:
        config = load_config("tiny", {"finetune.selection_metric": selection, "evaluation.methods": methods})
        return {c.cell_id for c in plan_cells(config, tmp_path) if c.kind == "finetune" and
                c.train_task == "review_polarity"}  # question generation is scored by generation either way

    assert trainings("metric", ["tokenprob", "constrained"]).isdisjoint(trainings("metric", ["constrained", "tokenprob"]))
    assert trainings("loss", ["tokenprob", "constrained"]) == trainings("loss", ["constrained", "tokenprob"])
