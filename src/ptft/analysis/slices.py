"""Choose the comparable rows of a results table and pair each fine-tuned row with its BASE.

FT and BASE are only ever compared at the same checkpoint, eval set, format, shots, method and
metric, so that they differ in the weights alone. Before pairing:

- one state of the fine-tuned models: the slice's fraction of the training steps (default 1.0,
  the final model) and variant (default 'none', unedited); BASE has one state;
- one fine-tuning method (default: full fine-tuning, the study's, or the first the table has);
- one learning rate per (checkpoint, train task, seed): the one selected on the dev split, or the
  user's override;
- seeds are averaged, each averaged cell with an interval over seeds and examples;
- one (method, metric) per eval set, by the preference orders below, so that an eval set scored
  three ways (tokenprob, constrained, free) or with acc and acc_norm counts once in every mean.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import pandas as pd

from ptft.analysis.stats import Z, se_from_ci, se_from_n
from ptft.analysis.table import Source, load_table, study_rows
from ptft.errors import DataError
from ptft.grid import FULL, INSTRUCT_TRAIN_TASK, UNEDITED
from ptft.task_types import all_metrics, preferred_methods

BASE = ""

CELL = ["checkpoint", "train_task", "eval_set", "format", "shots", "method", "metric"]
CARRIED = ["step", "eval_task", "task_type", "domain"]


@dataclass(frozen=True)
class Slice:
    """Which rows the headline numbers use. ``shots=None``: the shot count present at the most
    checkpoints (ties: the largest), so a count scored at one checkpoint only never hides the series.
    ``ft_fraction`` and ``variant`` choose the fine-tuned models' state (the final, unedited model
    by default); ``ft_method`` the fine-tuning method (None: see :func:`resolve_method`)."""

    fmt: str = "default"
    shots: int | None = None
    lr: Mapping[str, float] = field(default_factory=dict)
    ft_fraction: float = 1.0
    variant: str = UNEDITED
    ft_method: str | None = None


def ft_methods(table: pd.DataFrame) -> list[str]:
    """The fine-tuning methods of the table's fine-tuned rows, full fine-tuning first."""
    present = set(table.loc[table["train_task"] != BASE, "ft_method"])
    return sorted(present, key=lambda m: (m != FULL, m))


def resolve_method(table: pd.DataFrame, sl: Slice) -> Slice:
    """``sl`` with its method named: full fine-tuning when the table has it, else the first of
    :func:`ft_methods` (the methods analysis compares them all). A method the table lacks is an
    error naming those it has."""
    present = ft_methods(table)
    if sl.ft_method is None:
        return replace(sl, ft_method=present[0]) if present else sl
    if present and sl.ft_method not in present:
        raise DataError(f"no fine-tuned rows with ft_method {sl.ft_method!r} (present: {', '.join(present)})")
    return sl


def default_shots(table: pd.DataFrame) -> int:
    coverage = table.groupby("shots")["checkpoint"].nunique()
    return int(max(coverage.index, key=lambda k: (coverage[k], k)))


def comparable(source: Source, sl: Slice) -> tuple[pd.DataFrame, int | None]:
    """Rows at the slice's shots (all formats), one lr and one (method, metric) per set, seeds
    averaged. Returns them with the resolved shots value (None for an empty table). ``source`` is
    anything :func:`load_table` reads; every analysis starts here, so each validates its input.

    Columns: CELL + CARRIED + value, ci_low, ci_high, n, n_seeds; a single-seed cell keeps its
    evaluation's own bootstrap CI, a seed-averaged one gets the hierarchical interval of
    :func:`_average_seeds`. Proxy rows (method ``probe``) are left out: they are no BASE results."""
    rows, shots = per_seed(source, sl)
    if shots is None:
        return rows[CELL + CARRIED + ["value", "ci_low", "ci_high", "n"]].assign(n_seeds=0), None
    return _average_seeds(rows), shots


def per_seed(source: Source, sl: Slice) -> tuple[pd.DataFrame, int | None]:
    """What :func:`comparable` averages: the rows of the slice (one state, its shots, one lr) with
    a row per fine-tuning seed, one (method, metric) per set; all the table's columns."""
    table = study_rows(load_table(source))
    table = one_state(one_method(table, resolve_method(table, sl).ft_method), sl.ft_fraction, sl.variant)
    if table.empty:
        return table, None
    formats = sorted(table["format"].unique())
    if sl.fmt not in formats:
        raise DataError(f"format {sl.fmt!r} is not in the results table (present: {', '.join(formats)})")
    present = sorted(int(s) for s in table["shots"].unique())
    shots = default_shots(table) if sl.shots is None else sl.shots
    if shots not in present:
        raise DataError(f"shots {shots} is not in the results table (present: {', '.join(map(str, present))})")
    rows = _one_lr(table[table["shots"] == shots], sl.lr)
    return _one_method_metric(rows), shots


def one_method(table: pd.DataFrame, ft_method: str | None) -> pd.DataFrame:
    """BASE rows and the fine-tuned rows of one method (all of them for None)."""
    if ft_method is None:
        return table
    return table[(table["train_task"] == BASE) | (table["ft_method"] == ft_method)]


def one_state(table: pd.DataFrame, ft_fraction: float, variant: str) -> pd.DataFrame:
    """BASE rows and the fine-tuned rows of one model state. A state the table's fine-tuned rows
    do not have is an error naming those it has."""
    ft = table["train_task"] != BASE
    hits = ft & np.isclose(table["ft_fraction"].astype(float), ft_fraction, rtol=0.0, atol=1e-9) & (
        table["variant"] == variant)
    if ft.any() and not hits.any():
        have = ", ".join(f"{v}@{f:g}" for v, f in sorted(set(zip(table.loc[ft, "variant"],
                                                                  table.loc[ft, "ft_fraction"].astype(float)))))
        raise DataError(f"no fine-tuned rows at ft_fraction {ft_fraction:g} with variant {variant!r} "
                        f"(present, variant@fraction: {have})")
    return table[~ft | hits]


def _one_lr(rows: pd.DataFrame, override: Mapping[str, float]) -> pd.DataFrame:
    ft = rows["train_task"] != BASE
    keep = ~ft | rows["selected"]
    for task, lr in override.items():
        mine = rows["train_task"] == task
        if not mine.any():
            raise DataError(f"--lr {task}={lr:g}: no fine-tuned rows for task {task!r}")
        hits = mine & np.isclose(rows["lr"].astype(float), lr, rtol=1e-9, atol=0.0)
        if not hits.any():
            have = ", ".join(f"{v:g}" for v in sorted(rows.loc[mine, "lr"].dropna().unique()))
            raise DataError(f"--lr {task}={lr:g}: task {task!r} has no rows at that learning rate "
                            f"(present: {have or 'none recorded'})")
        keep = (keep & ~mine) | hits
    chosen = rows[keep]
    lrs = chosen[chosen["train_task"] != BASE].groupby(
        CELL + ["seed"], dropna=False)["lr"].nunique(dropna=False)
    if (lrs > 1).any():
        where = lrs[lrs > 1].index[0]
        raise DataError(f"several learning rates are selected for checkpoint {where[0]!r}, task {where[1]!r} "
                        f"(eval set {where[2]!r}); pass --lr {where[1]}=VALUE to choose one")
    return chosen


def _average_seeds(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per cell, the mean over its seeds. A single seed keeps its evaluation CI and n.
    Several seeds get the normal interval mean +- Z sqrt(sd^2 / S + mean se^2) of the hierarchical
    model (seeds drawn, then the examples every seed scored): the seed variance shrinks with S, the
    example noise, shared by the seeds, does not. The seeds' n stays only beside such an interval,
    since an se from n alone would leave the seed variance out."""
    grouped = rows.assign(_se2=cell_se(rows) ** 2).groupby(CELL, dropna=False, sort=False)
    cells = grouped[CARRIED].first()
    cells["value"] = grouped["value"].mean()
    cells["n_seeds"] = grouped["value"].size()
    se = np.sqrt(grouped["value"].var(ddof=1) / cells["n_seeds"] + grouped["_se2"].agg(lambda v: v.mean(skipna=False)))
    single = cells["n_seeds"] == 1
    cells["ci_low"] = grouped["ci_low"].first().where(single, cells["value"] - Z * se)
    cells["ci_high"] = grouped["ci_high"].first().where(single, cells["value"] + Z * se)
    cells["n"] = grouped["n"].first().where(single | se.notna())
    return cells.reset_index()


def cell_se(cells: pd.DataFrame) -> pd.Series:
    """Each cell's standard error: from its CI (width / 3.92), else from its example count
    (sqrt(p (1 - p) / n), an upper bound for a metric in [0, 1]); NaN with neither."""
    by_ci = se_from_ci(cells["ci_low"].astype(float), cells["ci_high"].astype(float))
    by_n = pd.Series([se_from_n(p, n) if np.isfinite(n) else np.nan
                      for p, n in zip(cells["value"].astype(float), cells["n"].astype(float))], index=cells.index)
    return by_ci.where(by_ci.notna(), by_n)


def _one_method_metric(cells: pd.DataFrame) -> pd.DataFrame:
    """Per eval set, the rows of one method and metric: the study's own choices first (each task
    type's default method and judged metric), a method or metric no task type declares last."""
    def rank(values: pd.Series, order: list[str]) -> pd.Series:
        return values.map(lambda v: order.index(v) if v in order else len(order))

    combos = cells[["eval_set", "method", "metric"]].drop_duplicates()
    combos = combos.assign(_m=rank(combos["method"], preferred_methods()), _k=rank(combos["metric"], all_metrics()))
    best = combos.sort_values(["eval_set", "_m", "method", "_k", "metric"]).drop_duplicates("eval_set")
    return cells.merge(best[["eval_set", "method", "metric"]], on=["eval_set", "method", "metric"])


def checkpoint_order(frame: pd.DataFrame) -> list[str]:
    """Checkpoints by step; an unknown step sorts last, since the usual unnamed one is the final
    ("main") checkpoint."""
    steps = frame.groupby("checkpoint", sort=False)["step"].first().astype(float)
    known = steps.dropna()
    return sorted(known.index, key=lambda c: (known[c], c)) + sorted(steps.index[steps.isna()])


def own_sets(cells: pd.DataFrame) -> pd.Series:
    """Fine-tuned rows on the training task's own in-domain sets. Instruction tuning has no task
    of its own: its evaluation is the multiple-choice suite."""
    ft = cells["train_task"] != BASE
    own = (cells["eval_task"] == cells["train_task"]) & (cells["domain"] == "in")
    suite = (cells["train_task"] == INSTRUCT_TRAIN_TASK) & (cells["task_type"] == "multiple_choice")
    return ft & (own | suite)


def task_types(cells: pd.DataFrame) -> dict[str, str]:
    """Each task's type, read from the rows of its own eval sets."""
    own = cells.drop_duplicates(["eval_task", "task_type"])
    return dict(zip(own["eval_task"], own["task_type"]))


def sort_by_checkpoint(frame: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    """Sort by the ``first`` columns, then by checkpoint in pre-training order."""
    rank = {c: i for i, c in enumerate(checkpoint_order(frame))}
    return (frame.assign(_rank=frame["checkpoint"].map(rank)).sort_values(first + ["_rank"], kind="stable")
            .drop(columns="_rank").reset_index(drop=True))
