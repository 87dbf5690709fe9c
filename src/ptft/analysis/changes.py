"""FT - BASE changes: pairing, the guarded change ratio, and means with bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptft.analysis.slices import BASE, sort_by_checkpoint
from ptft.analysis.stats import bootstrap_mean

# A BASE value this close to 0 makes (FT - BASE) / BASE meaningless; such ratios are counted, not used.
RATIO_EPS = 1e-3

PAIR = ["checkpoint", "eval_set", "format", "shots", "method", "metric"]
CHANGE_COLUMNS = ["checkpoint", "step", "train_task", "eval_set", "eval_task", "task_type", "domain", "format",
                  "shots", "method", "metric", "base", "ft", "raw_change", "change_ratio", "ci_low", "ci_high",
                  "n", "n_excluded"]


def paired(cells: pd.DataFrame, mask: pd.Series, eps: float = RATIO_EPS) -> pd.DataFrame:
    """The fine-tuned cells under ``mask`` with their BASE value, raw change FT - BASE and change
    ratio (FT - BASE) / BASE.

    A row whose |BASE| < eps has ``n_excluded`` 1 and no ratio; every mean of ratios reports how
    many it left out. ``ci_low``/``ci_high`` are empty here: they belong to the means."""
    base = cells.loc[cells["train_task"] == BASE, PAIR + ["value"]].rename(columns={"value": "base"})
    out = cells[mask].rename(columns={"value": "ft"}).merge(base, on=PAIR, how="inner")
    out["raw_change"] = out["ft"] - out["base"]
    excluded = out["base"].abs() < eps
    out["change_ratio"] = (out["raw_change"] / out["base"]).where(~excluded)
    out["n_excluded"] = excluded.astype(int)
    out["n"] = 1
    out["ci_low"] = out["ci_high"] = np.nan
    return sort_by_checkpoint(out[CHANGE_COLUMNS], ["train_task", "eval_set"])


def unpaired_count(cells: pd.DataFrame) -> int:
    """Fine-tuned cells with no BASE row to compare against (left out of every comparison)."""
    base = cells.loc[cells["train_task"] == BASE, PAIR].drop_duplicates()
    ft = cells.loc[cells["train_task"] != BASE, PAIR]
    return int(len(ft) - len(ft.merge(base, on=PAIR, how="inner")))


def mean_rows(rows: pd.DataFrame, by: list[str], ci_of: str, seed: int) -> pd.DataFrame:
    """One row per ``by`` group (all rows when ``by`` is empty) in the layout of ``rows``, with
    empty train_task/eval_set: the means of raw_change and change_ratio, a percentile-bootstrap
    CI (resampling the group's rows) on ``ci_of``, ``n`` the values averaged for ``ci_of`` and
    ``n_excluded`` the ratios left out."""
    groups = rows.groupby(by, sort=False) if by else [((), rows)]  # a list `by` gives tuple keys
    out = []
    for key, g in groups:
        est = bootstrap_mean(g[ci_of].dropna().to_numpy(), seed=seed)
        row = {"train_task": "", "eval_set": "", **dict(zip(by, key))}
        if "checkpoint" in by:
            row["step"] = g["step"].iloc[0]
        row.update(raw_change=g["raw_change"].mean(), change_ratio=g["change_ratio"].mean(),
                   ci_low=est.ci_low, ci_high=est.ci_high, n=est.n, n_excluded=int(g["n_excluded"].sum()))
        out.append(row)
    return pd.DataFrame(out, columns=rows.columns).astype(rows.dtypes.to_dict())
