"""Forgetting (finding 3): cross-task, as the mean ratio of change (MRC), and out-of-domain.

Both use the change ratio (Perf_FT^i(d) - Perf_BASE^i(d)) / Perf_BASE^i(d) at checkpoint i. A
BASE below ``eps`` gives no ratio; those rows are counted in ``n_excluded``, never dropped
unreported.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.changes import RATIO_EPS, mean_rows, paired
from ptft.analysis.slices import BASE, Slice, comparable, sort_by_checkpoint, task_types
from ptft.analysis.stats import Estimate, bootstrap_mean, cluster_bootstrap_mean
from ptft.analysis.table import Source
from ptft.analysis.text import ci, percent
from ptft.grid import INSTRUCT_TRAIN_TASK

MRC_TITLE = "Cross-task forgetting: mean ratio of change (MRC)"
MRC_EMPTY = "no training task evaluated on an in-domain set of the other task type (classification vs generation)"
OOD_TITLE = "Out-of-domain change after fine-tuning"
OOD_EMPTY = "no fine-tuned rows on their own task's out-of-domain sets with a BASE row to compare"
CROSS_TYPES = ("classification", "generation")
DIRECTIONS = ("classification->generation", "generation->classification")
MRC_COLUMNS = ["direction", "train_task", "eval_set", "mrc_percent", "ci_low", "ci_high", "n", "n_excluded"]


def mrc_ratios(table: Source, sl: Slice = Slice(), *, eps: float = RATIO_EPS) -> pd.DataFrame:
    """Every (training task t, eval set d, checkpoint) change ratio that enters the MRC: d is an
    in-domain set of its own task, and t's type and d's type are classification and generation
    in either order. Instruction tuning and multiple choice have no such counterpart and stay out.
    A training task's type is read from its own eval sets' rows; a task without any is left out."""
    cells, _ = comparable(table, sl)
    cells = cells[cells["format"] == sl.fmt]
    types = task_types(cells)
    train_type = cells["train_task"].map(types)
    mask = ((cells["train_task"] != BASE) & (cells["train_task"] != INSTRUCT_TRAIN_TASK)
            & (cells["domain"] == "in") & cells["task_type"].isin(CROSS_TYPES) & train_type.isin(CROSS_TYPES)
            & (train_type != cells["task_type"]))
    rows = paired(cells, mask, eps)
    return rows.assign(direction=[f"{types[t]}->{e}" for t, e in zip(rows["train_task"], rows["task_type"])])


def mrc(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS) -> pd.DataFrame:
    """Per direction: a total row (empty train_task and eval_set), the mean of all its (pair,
    checkpoint) ratios in percent with a percentile-bootstrap CI resampling pairs, each with all
    its ratios (:func:`cluster_bootstrap_mean`: the ratios of one pair across checkpoints are
    correlated); then one row per pair, the mean over its checkpoints with a CI resampling them.
    ``n`` ratios used, ``n_excluded`` guarded out."""
    ratios = mrc_ratios(table, sl, eps=eps)
    out = []
    for direction in DIRECTIONS:
        mine = ratios[ratios["direction"] == direction]
        if mine.empty:
            continue
        used = mine[mine["change_ratio"].notna()]
        est = cluster_bootstrap_mean(used["change_ratio"].to_numpy(), used["train_task"] + "\t" + used["eval_set"],
                                     seed=seed)
        out.append(_mrc_row(est, mine, direction, "", ""))
        for (task, eval_set), pair in mine.groupby(["train_task", "eval_set"], sort=True):
            est = bootstrap_mean(pair["change_ratio"].dropna().to_numpy(), seed=seed)
            out.append(_mrc_row(est, pair, direction, task, eval_set))
    return pd.DataFrame(out, columns=MRC_COLUMNS)


def _mrc_row(est: Estimate, ratios: pd.DataFrame, direction: str, task: str, eval_set: str) -> dict:
    return dict(direction=direction, train_task=task, eval_set=eval_set, mrc_percent=100 * est.mean,
                ci_low=100 * est.ci_low, ci_high=100 * est.ci_high, n=est.n,
                n_excluded=int(ratios["n_excluded"].sum()))


def mrc_totals(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["train_task"] == "") & (frame["eval_set"] == "")]


def mrc_figure(frame: pd.DataFrame) -> Figure:
    fig, (ax,) = plots.panels(1, MRC_TITLE, width=9.0, height=1.9 + 0.35 * len(frame))
    # Counts in the labels, so that a pair whose every ratio was guarded out shows why it has no dot.
    labels = [(f"{r.direction}: all pairs" if r.train_task == "" else f"{r.train_task} -> {r.eval_set}")
              + f" (n={r.n}" + (f", {r.n_excluded} excluded" if r.n_excluded else "") + ")"
              for r in frame.itertuples()]
    y = np.arange(len(frame))[::-1]
    limits = plots.robust_limits(frame["mrc_percent"])
    shown = plots.clip_to(frame, ["mrc_percent", "ci_low", "ci_high"], limits)
    for i, direction in enumerate(DIRECTIONS):
        mine = (frame["direction"] == direction).to_numpy()
        if not mine.any():
            continue
        total = mine & (frame["train_task"] == "").to_numpy()
        look = plots.style(i)
        for rows, size, fill in ((mine & ~total, 6, "none"), (total, 10, look["color"])):
            part = shown[rows]
            ax.errorbar(part["mrc_percent"], y[rows],
                        xerr=np.vstack([part["mrc_percent"] - part["ci_low"],
                                        part["ci_high"] - part["mrc_percent"]]).astype(float),
                        linestyle="none", marker=look["marker"], color=look["color"], markerfacecolor=fill,
                        markersize=size, capsize=3)
    ax.set_yticks(y, labels)
    plots.mark_off_axis(ax, y, frame["mrc_percent"].to_numpy(dtype=float), limits, "%", along="x")
    if limits is not None:
        ax.legend(fontsize="small")
    ax.axvline(0, color="0.5", linewidth=0.8, zorder=0)
    ax.set_xlabel("change ratio (FT - BASE) / BASE, mean over checkpoints (%)\nwith 95% bootstrap CI")
    ax.grid(True, axis="x", color="0.9")
    return fig


def mrc_reading(frame: pd.DataFrame) -> str:
    parts = [f"MRC {r.direction} = {percent(r.mrc_percent)} ({ci(r.ci_low, r.ci_high, '+.1f')}, n={r.n})"
             for r in mrc_totals(frame).itertuples()]
    excluded = int(mrc_totals(frame)["n_excluded"].sum())
    if excluded:
        parts.append(f"{excluded} ratio(s) excluded because BASE is near 0")
    return "; ".join(parts) + "."


def ood(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS) -> pd.DataFrame:
    """One row per (checkpoint, train task, OOD set of that task) with the change ratio; then one
    row per checkpoint (empty train_task and eval_set) with the mean ratio over its sets and a
    bootstrap CI resampling them; then one overall row (empty checkpoint too) over all rows."""
    cells, _ = comparable(table, sl)
    cells = cells[cells["format"] == sl.fmt]
    mask = (cells["train_task"] != BASE) & (cells["domain"] == "out") & (cells["eval_task"] == cells["train_task"])
    rows = paired(cells, mask, eps)
    if rows.empty:
        return rows
    per_checkpoint = sort_by_checkpoint(mean_rows(rows, ["checkpoint"], "change_ratio", seed), [])
    overall = mean_rows(rows, [], "change_ratio", seed).assign(checkpoint="")
    return pd.concat([rows, per_checkpoint, overall], ignore_index=True)


def ood_figure(frame: pd.DataFrame) -> Figure:
    fig, (ax,) = plots.panels(1, OOD_TITLE, width=7.0)
    percent = frame.assign(**{c: 100 * frame[c] for c in ("change_ratio", "ci_low", "ci_high")})
    percent = percent[percent["checkpoint"] != ""]
    axis = plots.StepAxis(percent)
    sets = percent[percent["eval_set"] != ""]
    limits = plots.robust_limits(sets["change_ratio"])
    plots.draw_lines(ax, plots.clip_to(sets, ["change_ratio"], limits), axis, "change_ratio", ["train_task", "eval_set"])
    means = percent[percent["eval_set"] == ""].assign(_all="mean over sets (95% CI)")
    plots.draw_lines(ax, plots.clip_to(means, ["change_ratio", "ci_low", "ci_high"], limits), axis, "change_ratio",
                     ["_all"], lo="ci_low", hi="ci_high", mean=True)
    plots.mark_clipped(ax, pd.concat([sets, means]), axis, "change_ratio", limits, "%")
    plots.finish(ax, ylabel="change ratio (FT - BASE) / BASE (%)", zero=True, axis=axis)
    return fig


def ood_reading(frame: pd.DataFrame) -> str:
    overall = frame[frame["checkpoint"] == ""].iloc[0]
    text = (f"Fine-tuning changes out-of-domain performance by {percent(100 * overall['change_ratio'])} "
            f"on average ({ci(100 * overall['ci_low'], 100 * overall['ci_high'], '+.1f')}, "
            f"n={int(overall['n'])} checkpoint-set pairs)")
    if overall["n_excluded"]:
        text += f"; {int(overall['n_excluded'])} ratio(s) excluded because BASE is near 0"
    return text + "."
