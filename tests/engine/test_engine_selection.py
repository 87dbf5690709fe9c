"""Learning-rate selection over plain training rows (the study-level behaviour is in test_engine_resume),
and FT - BASE comparisons over plain per-example scores."""

from __future__ import annotations

import json
import math

from ptft.checkpoints.series import Checkpoint
from ptft.engine.cells import Cell
from ptft.engine.selection import compare_with_base, select_learning_rates
from ptft.grid import FINAL, CellKind, EvalUnit, ModelState


def training(lr: float, dev_loss: float | None, dev_metric: float | None = None, seed: int = 1) -> dict:
    return dict(cell_id=f"c{lr:g}-{seed}", checkpoint="step1", train_task="t", seed=seed, lr=lr,
                dev_loss=dev_loss, dev_metric=dev_metric)


def test_lowest_dev_loss_wins_ties_go_to_the_smaller_rate_and_unscored_runs_are_candidates_only() -> None:
    rows = [training(0.01, 2.0), training(0.001, 1.0), training(0.003, 1.0), training(0.1, None)]
    (choice,) = select_learning_rates(rows, by_metric=False)
    assert (choice["lr"], choice["dev_score"], choice["cell_id"], choice["criterion"]) == (0.001, 1.0, "c0.001-1",
                                                                                           "dev_loss")
    candidates = json.loads(choice["candidates"])
    assert list(candidates) == ["0.01", "0.001", "0.003", "0.1"] and math.isnan(candidates["0.1"])


def test_by_metric_the_highest_dev_metric_wins_per_seed() -> None:
    rows = [training(0.01, 1.0, 0.5), training(0.001, 2.0, 0.7), training(0.01, 1.0, 0.9, seed=2),
            training(0.001, 1.0, None, seed=2), training(0.3, None, None, seed=3)]
    chosen = {(c["seed"], c["lr"]) for c in select_learning_rates(rows, by_metric=True)}
    assert chosen == {(1, 0.001), (2, 0.01)}  # seed 3 has no scored run: no choice


def test_every_state_of_a_fine_tuned_model_is_compared_with_the_one_base_state() -> None:
    ck = Checkpoint("step1", 1, "/ck")
    unit = EvalUnit("t", "t_val", "default", 0, "tokenprob")
    base = Cell("b", CellKind.BASE, "BASE", ck, units=[unit])
    ft = Cell("f", CellKind.FINETUNE, "FT", ck, "t", 1e-3, 0, "h", units=[unit])
    scores = {"b": {ModelState(): {unit: {"accuracy": [0.0, 0.0, 1.0, 1.0]}}},
              "f": {ModelState(ft_step=8): {unit: {"accuracy": [1.0, 1.0, 1.0, 1.0]}},
                    ModelState(ft_fraction=0.25, ft_step=2): {unit: {"accuracy": [0.0, 1.0, 1.0, 1.0]}},
                    ModelState("lines", ft_step=8): {unit: {"accuracy": [0.0, 0.0, 0.0, 1.0]}}}}
    rows = compare_with_base([base, ft], {"b", "f"}, set(), scores.__getitem__, seed=0, n_boot=50)
    assert sorted((r.variant, r.ft_fraction, r.diff, r.base_cell_id) for r in rows) == [
        ("lines", 1.0, -0.25, "b"), ("none", 0.25, 0.25, "b"), ("none", 1.0, 0.5, "b")]
    # the step is where a fraction fell, not part of which state it is
    assert ModelState(ft_step=8) == FINAL != ModelState("lines")
