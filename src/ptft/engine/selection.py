"""The statistics the driver computes over finished cells: the learning rate each fine-tuning
run keeps (chosen on the dev split) and the paired FT - BASE comparisons. Plain rows in, plain
rows out: the driver reads them from the store and writes the answers back."""

from __future__ import annotations

import json
import math
from typing import Callable

import numpy as np

from ptft.engine.cells import Cell
from ptft.grid import FINAL, FULL, CellKind, Scores
from ptft.store import ComparisonRow


def select_learning_rates(trainings: list[dict], by_metric: bool) -> list[dict]:
    """Per (checkpoint, task, fine-tuning method, seed) of the ``trainings`` rows: the learning
    rate with the lowest dev loss (``by_metric``: the highest dev metric); the dev split only,
    never an eval set. Each method is selected among its own rates (LoRA's are not full
    fine-tuning's). Ties go to the smaller rate, so the choice never depends on the order cells
    finished in. A choice is made even among a single rate, so it is always explicit."""
    criterion = "dev_metric" if by_metric else "dev_loss"
    groups: dict[tuple, list[dict]] = {}
    for row in trainings:
        groups.setdefault((row["checkpoint"], row["train_task"], row.get("ft_method") or FULL, row["seed"]),
                          []).append(row)
    selections = []
    for (checkpoint, task, method, seed), group in sorted(groups.items()):
        def score(row: dict) -> float:
            return math.nan if row[criterion] is None else float(row[criterion])

        scored = [row for row in group if math.isfinite(score(row))]
        if not scored:
            continue
        best = min(scored, key=lambda row: (-score(row) if by_metric else score(row), row["lr"]))
        selections.append(dict(checkpoint=checkpoint, train_task=task, ft_method=method, seed=int(seed),
                               lr=float(best["lr"]),
                               dev_score=score(best), criterion=criterion,
                               candidates=json.dumps({f"{row['lr']:g}": score(row) for row in group}),
                               cell_id=best["cell_id"]))
    return selections


def compare_with_base(cells: list[Cell], done: set[str], compared: set[tuple[str, str]],
                      scores_of: Callable[[str], Scores], seed: int, n_boot: int,
                      model_ids: dict[str, str] | None = None) -> list[ComparisonRow]:
    """Paired bootstrap FT - BASE on the same examples, for every unit of every model state of a
    done fine-tuning (or selected-rate evaluation) cell whose BASE counterpart (same checkpoint and
    unit) is done, except the pairs of cells in ``compared``. ``scores_of(cell_id)`` gives a cell's
    per-example scores; ``model_ids`` the model a cell's results are of, where that is not the
    cell's own (a selected-rate evaluation's: the run it chose).

    BASE has one state, the checkpoint itself: every state of the fine-tuned model (an
    intermediate point of its training, an evaluation-only edit) is compared with it, and the
    comparison row carries the fine-tuned state's variant and fraction."""
    from ptft.evaluation import paired_bootstrap  # deferred: the package imports torch, the driver need not

    base_of = {(c.checkpoint.label, c.units[0].eval_task): c for c in cells
               if c.kind == CellKind.BASE and c.units and c.cell_id in done}
    rows: list[ComparisonRow] = []
    for cell in cells:
        if cell.kind not in (CellKind.FINETUNE, CellKind.SELECTED) or cell.cell_id not in done:
            continue
        model_id = (model_ids or {}).get(cell.cell_id, cell.model_id)
        ft_scores = None
        for eval_task in dict.fromkeys(u.eval_task for u in cell.units):
            base = base_of.get((cell.checkpoint.label, eval_task))
            if base is None or (cell.cell_id, base.cell_id) in compared:
                continue
            ft_scores = ft_scores if ft_scores is not None else scores_of(cell.cell_id)
            base_scores = scores_of(base.cell_id).get(FINAL, {})
            for state, units in ft_scores.items():
                for unit, metrics in units.items():
                    if unit not in base_scores:
                        continue
                    for metric, values in metrics.items():
                        ref = base_scores[unit].get(metric)
                        if ref is None or len(ref) != len(values):
                            continue
                        diff, lo, hi = paired_bootstrap(np.asarray(values), np.asarray(ref), seed=seed,
                                                        n_boot=n_boot)
                        rows.append(ComparisonRow(model_id, base.model_id, unit.eval_set, unit.format,
                                                  unit.shots, unit.method, metric, float(diff), float(lo), float(hi),
                                                  len(values), cell.cell_id, base.cell_id, state.variant,
                                                  state.ft_fraction))
    return rows
