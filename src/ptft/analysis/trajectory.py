"""Trajectory: the BASE metric of every eval set against the pre-training step (paper Fig. 2)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.slices import BASE, Slice, comparable, sort_by_checkpoint
from ptft.analysis.table import Source

TITLE = "BASE metric over pre-training"
EMPTY = "no BASE rows in the chosen format and shots"
COLUMNS = ["checkpoint", "step", "eval_set", "eval_task", "task_type", "domain", "format", "shots", "method",
           "metric", "value", "ci_low", "ci_high", "n"]


def trajectory(table: Source, sl: Slice = Slice()) -> pd.DataFrame:
    """One row per (eval set, checkpoint): the BASE value with its evaluation CI."""
    cells, _ = comparable(table, sl)
    base = cells[(cells["train_task"] == BASE) & (cells["format"] == sl.fmt)]
    return sort_by_checkpoint(base[COLUMNS], ["task_type", "eval_set"])


def figure(frame: pd.DataFrame) -> Figure:
    types = sorted(frame["task_type"].unique())
    fig, axes = plots.panels(len(types), TITLE)
    axis = plots.StepAxis(frame)
    for ax, task_type in zip(axes, types):
        part = frame[frame["task_type"] == task_type]
        plots.draw_lines(ax, part, axis, "value", ["eval_set", "domain"], lo="ci_low", hi="ci_high",
                         label=lambda key: f"{key[0]} ({key[1]}-domain)")
        ax.set_title(task_type)
        plots.finish(ax, ylabel=" / ".join(sorted(part["metric"].unique())), axis=axis)
    return fig


def reading(frame: pd.DataFrame) -> str:
    rise = rises(frame)
    if rise.empty:
        return "Only one checkpoint per eval set: no trajectory to read."
    top = rise.idxmax()
    return (f"From the first to the last checkpoint the BASE metric changes by {rise.mean():+.3f} on average "
            f"over {len(rise)} eval set(s) (largest: {top} {rise[top]:+.3f}; smallest: {rise.idxmin()} "
            f"{rise.min():+.3f}).")


def rises(frame: pd.DataFrame) -> pd.Series:
    """Last minus first checkpoint's value per eval set (sets seen at one checkpoint only are left out);
    ``frame`` is sorted by checkpoint within each set, as :func:`trajectory` returns it."""
    ends = frame.groupby("eval_set")["value"].agg(["first", "last", "size"])
    ends = ends[ends["size"] > 1]
    return (ends["last"] - ends["first"]).rename("rise")
