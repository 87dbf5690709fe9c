"""Learned in pre-training vs learned in fine-tuning (finding 2).

An in-domain eval set is *learned in pre-training* when its BASE metric rises clearly over the
checkpoints: rise = BASE at the last checkpoint - BASE at the first, and the rise's 95 % CI lies
above 0. Otherwise it is *learned in fine-tuning*.

The rise's CI is a normal interval, rise +/- 1.96 * sqrt(se_first^2 + se_last^2). Each
endpoint's standard error comes from its evaluation CI (width / 3.92) when both endpoints have
one, else from its example count n as sqrt(p (1 - p) / n) -- exact for accuracy and an upper
bound for any metric in [0, 1] such as Rouge-L. Treating the two endpoints as independent is
conservative: they are scored on the same examples, which correlates them positively and makes
the true interval narrower. Sets with neither CI nor n get no CI, hence the fine-tuning group
(``ci_source`` "none" says so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.changes import RATIO_EPS
from ptft.analysis.gain import gain
from ptft.analysis.slices import Slice
from ptft.analysis.stats import Z, se_from_ci, se_from_n
from ptft.analysis.table import Source
from ptft.analysis.text import num
from ptft.analysis.trajectory import trajectory

TITLE = "Learned in pre-training vs learned in fine-tuning"
EMPTY = "no in-domain eval set has BASE rows at two or more checkpoints"
PRETRAINING = "pre-training"
FINETUNING = "fine-tuning"
COLUMNS = ["group", "eval_set", "eval_task", "task_type", "method", "metric", "first_checkpoint", "last_checkpoint",
           "base_first", "base_last", "rise", "ci_low", "ci_high", "ci_source", "mean_gain", "mean_change_ratio", "n"]


def groups(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS) -> pd.DataFrame:
    """One row per in-domain eval set (rise, its CI, the group, and the set's mean raw change and
    mean change ratio after fine-tuning over checkpoints and training tasks, ``n`` gain rows),
    then one row per group with an empty eval_set: the mean of its sets' mean gains, ``n`` sets."""
    traj = trajectory(table, sl)
    traj = traj[traj["domain"] == "in"]
    g = gain(table, sl, seed=seed, eps=eps)
    g = g[g["eval_set"] != ""]
    rows = []
    for eval_set, t in traj.groupby("eval_set", sort=True):
        if len(t) < 2:
            continue
        first, last = t.iloc[0], t.iloc[-1]
        rise = last["value"] - first["value"]
        se, source = _endpoint_se(first, last)
        low, high = rise - Z * se, rise + Z * se
        mine = g[g["eval_set"] == eval_set]
        rows.append(dict(
            group=PRETRAINING if rise > 0 and low > 0 else FINETUNING, eval_set=eval_set,
            eval_task=first["eval_task"], task_type=first["task_type"], method=first["method"],
            metric=first["metric"], first_checkpoint=first["checkpoint"], last_checkpoint=last["checkpoint"],
            base_first=first["value"], base_last=last["value"], rise=rise, ci_low=low, ci_high=high,
            ci_source=source, mean_gain=mine["raw_change"].mean(), mean_change_ratio=mine["change_ratio"].mean(),
            n=len(mine)))
    sets = pd.DataFrame(rows, columns=COLUMNS)
    if sets.empty:
        return sets
    totals = (sets.groupby("group", sort=True)
              .agg(mean_gain=("mean_gain", "mean"), mean_change_ratio=("mean_change_ratio", "mean"),
                   n=("eval_set", "size"))
              .reset_index().assign(eval_set=""))
    return pd.concat([sets.sort_values(["group", "eval_set"]), totals], ignore_index=True)[COLUMNS]


def _endpoint_se(first: pd.Series, last: pd.Series) -> tuple[float, str]:
    ends = (first, last)
    if all(pd.notna(e["ci_low"]) and pd.notna(e["ci_high"]) for e in ends):
        return float(np.hypot(*(se_from_ci(e["ci_low"], e["ci_high"]) for e in ends))), "ci"
    if all(pd.notna(e["n"]) for e in ends):
        se = np.hypot(*(se_from_n(e["value"], e["n"]) for e in ends))
        if np.isfinite(se):
            return float(se), "n"
    return np.nan, "none"


def group_totals(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["eval_set"] == ""].set_index("group")


def figure(frame: pd.DataFrame) -> Figure:
    fig, (ax,) = plots.panels(1, TITLE, width=7.0)
    sets = frame[frame["eval_set"] != ""]
    for i, (group, part) in enumerate(sets.groupby("group", sort=True)):
        look = plots.style(i)
        ax.errorbar(part["rise"], part["mean_gain"],
                    xerr=np.vstack([part["rise"] - part["ci_low"], part["ci_high"] - part["rise"]]).astype(float),
                    linestyle="none", marker=look["marker"], color=look["color"], markersize=7, capsize=3,
                    label=f"learned in {group}")
        for _, row in part.iterrows():
            ax.annotate(row["eval_set"], (row["rise"], row["mean_gain"]), textcoords="offset points",
                        xytext=(4, 4), fontsize="small")
    ax.axvline(0, color="0.5", linewidth=0.8, zorder=0)
    ax.set_xlabel("BASE rise, last - first checkpoint (95% CI)")
    plots.finish(ax, ylabel="mean fine-tuning gain (FT - BASE)", zero=True)
    return fig


def reading(frame: pd.DataFrame) -> str:
    totals = group_totals(frame)
    parts = []
    for group in (PRETRAINING, FINETUNING):
        if group in totals.index:
            row = totals.loc[group]
            parts.append(f"{int(row['n'])} set(s) learned in {group} (mean gain {num(row['mean_gain'])})")
        else:
            parts.append(f"no set learned in {group}")
    return "; ".join(parts) + "."
