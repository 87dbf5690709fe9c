"""Fine-tuning gain: what fine-tuning adds on the training task's own in-domain sets, per
checkpoint, and how that gain grows with pre-training (paper Fig. 3-4, Table 6)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.changes import RATIO_EPS, mean_rows, paired
from ptft.analysis.slices import Slice, comparable, own_sets, sort_by_checkpoint
from ptft.analysis.stats import ols_slope
from ptft.analysis.table import Source
from ptft.analysis.text import ci, num

TITLE = "Fine-tuning gain (FT - BASE) on the task's own in-domain sets"
EMPTY = "no fine-tuned rows on their own task's in-domain sets with a BASE row to compare"
# OLMo's Hub revisions name their tokens: "step18000-tokens75B".
TOKENS_IN_NAME = re.compile(r"tokens(\d+(?:\.\d+)?)([KMBT]?)", re.IGNORECASE)
TOKEN_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}


def gain(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS) -> pd.DataFrame:
    """One row per (checkpoint, train task, eval set) with base, ft, raw_change and change_ratio,
    followed by one row per checkpoint (empty train_task and eval_set): the mean raw change over
    that checkpoint's rows with a bootstrap CI resampling them, and the mean change ratio over the
    rows whose BASE is at least ``eps``."""
    cells, _ = comparable(table, sl)
    cells = cells[cells["format"] == sl.fmt]
    rows = paired(cells, own_sets(cells), eps)
    if rows.empty:
        return rows
    means = sort_by_checkpoint(mean_rows(rows, ["checkpoint"], "raw_change", seed), [])
    return pd.concat([rows, means], ignore_index=True)


def checkpoint_means(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["eval_set"] == "") & (frame["train_task"] == "")]


def step_unit(steps: np.ndarray) -> int:
    """The power of ten just below the series' range of steps: a slope "per 100 steps" for a
    series of a few hundred steps, "per 100k" for OLMo's 1k-738k, so that one unit is a sizeable
    part of the series and never many times its length."""
    span = float(np.ptp(steps)) if len(steps) else 0.0
    return int(10 ** np.floor(np.log10(span))) if span >= 1 else 1


def tokens_per_step(frame: pd.DataFrame) -> float:
    """Pre-training tokens per step, read from checkpoint names that carry them (median over the
    checkpoints with a positive step); NaN when none does."""
    ratios = []
    for name, step in frame.groupby("checkpoint")["step"].first().items():
        found = TOKENS_IN_NAME.search(str(name))
        if found and pd.notna(step) and step > 0:
            ratios.append(float(found.group(1)) * TOKEN_SCALE[found.group(2).upper()] / float(step))
    return float(np.median(ratios)) if ratios else float("nan")


def unit_text(steps_per_unit: float, tokens_per_unit: float = float("nan")) -> str:
    """ "100k steps", or "100k steps (~419B tokens)" when the tokens are known."""
    text = f"{plots.format_step(steps_per_unit)} steps"
    if np.isfinite(tokens_per_unit):
        text += f" (~{plots.format_count(tokens_per_unit)} tokens)"
    return text


def slope_caption(slope: pd.DataFrame) -> str:
    """What a :func:`gain_slope` row measures, with its unit."""
    fit = slope.iloc[0]
    return f"slope of the mean gain per {unit_text(fit['steps_per_unit'], fit['tokens_per_unit'])}"


def gain_slope(frame: pd.DataFrame) -> pd.DataFrame:
    """Least-squares slope of the per-checkpoint mean raw change against the step, per
    ``steps_per_unit`` steps (:func:`step_unit`; ``tokens_per_unit`` where checkpoint names give
    tokens), with its standard error and 95 % t-interval. Checkpoints without a step are left out
    and counted."""
    means = checkpoint_means(frame)
    known = means[means["step"].notna()]
    steps = known["step"].to_numpy(dtype=float)
    unit = step_unit(steps)
    fit = ols_slope(steps / unit, known["raw_change"].to_numpy(dtype=float))
    return pd.DataFrame([dict(slope=fit.slope, steps_per_unit=unit, tokens_per_unit=unit * tokens_per_step(known),
                              se=fit.se, ci_low=fit.ci_low, ci_high=fit.ci_high, n_checkpoints=fit.n,
                              n_without_step=len(means) - len(known))])


def figure(frame: pd.DataFrame) -> Figure:
    fig, (raw_ax, ratio_ax) = plots.panels(2, TITLE)
    axis = plots.StepAxis(frame)
    rows = frame[frame["eval_set"] != ""]
    means = checkpoint_means(frame)
    plots.draw_lines(raw_ax, rows, axis, "raw_change", ["train_task", "eval_set"])
    plots.draw_lines(raw_ax, means.assign(_all="mean over sets (95% CI)"), axis, "raw_change", ["_all"],
                     lo="ci_low", hi="ci_high", mean=True)
    fit = gain_slope(frame).iloc[0]
    if np.isfinite(fit["slope"]) and axis.by_step:
        known = means[means["step"].notna()]
        x = known["step"].to_numpy(dtype=float)
        y = known["raw_change"].to_numpy(dtype=float)
        # Many points, so that the straight fit is drawn right on a symlog axis too.
        grid = np.linspace(x.min(), x.max(), 200)
        raw_ax.plot(grid, y.mean() + fit["slope"] * (grid - x.mean()) / fit["steps_per_unit"], color="0.3",
                    linestyle=(0, (6, 2)), linewidth=1.5,
                    label=f"fit: {fit['slope']:+.3g} per {plots.format_step(fit['steps_per_unit'])} steps")
    plots.finish(raw_ax, ylabel="raw change (FT - BASE)", zero=True, axis=axis)
    ratios = rows.assign(change_ratio=100 * rows["change_ratio"])
    limits = plots.robust_limits(ratios["change_ratio"])
    plots.draw_lines(ratio_ax, plots.clip_to(ratios, ["change_ratio"], limits), axis, "change_ratio",
                     ["train_task", "eval_set"])
    plots.mark_clipped(ratio_ax, ratios, axis, "change_ratio", limits, "%")
    plots.finish(ratio_ax, ylabel="change ratio (FT - BASE) / BASE (%)", zero=True, axis=axis)
    return fig


def reading(frame: pd.DataFrame) -> str:
    means = sort_by_checkpoint(checkpoint_means(frame), [])
    first, last = means.iloc[0], means.iloc[-1]
    ends = f"mean raw change {num(first['raw_change'])} at {first['checkpoint']}"
    if len(means) > 1:
        ends += f" and {num(last['raw_change'])} at {last['checkpoint']}"
    fit = gain_slope(frame).iloc[0]
    if not np.isfinite(fit["slope"]):
        return f"Fine-tuning gain: {ends}; too few checkpoints with a step for a slope."
    spread = ci(fit["ci_low"], fit["ci_high"]) if np.isfinite(fit["se"]) else "no CI from two checkpoints"
    left_out = int(fit["n_without_step"])
    return (f"Mean gain changes by {num(fit['slope'])} per {unit_text(fit['steps_per_unit'], fit['tokens_per_unit'])} "
            f"({spread}, "
            f"{int(fit['n_checkpoints'])} checkpoints" + (f"; {left_out} without a step left out" if left_out else "")
            + f"); {ends}.")
