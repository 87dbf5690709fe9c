"""Format sensitivity (finding 4): how much the metric moves across prompt formats, BASE vs FT
(paper Fig. 5)."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.slices import BASE, Slice, comparable, own_sets, sort_by_checkpoint
from ptft.analysis.stats import bootstrap_mean
from ptft.analysis.table import Source
from ptft.analysis.text import num

TITLE = "Format sensitivity: spread of the metric across prompt formats"
EMPTY = "no eval set was scored in two or more formats"
COLUMNS = ["checkpoint", "step", "model", "train_task", "eval_set", "method", "metric", "n_formats", "formats",
           "spread", "std", "ci_low", "ci_high", "n"]
MODELS = ("BASE", "FT")


def format_sensitivity(table: Source, sl: Slice = Slice(), *, seed: int = 0) -> pd.DataFrame:
    """One row per (checkpoint, model, eval set) scored in at least two formats: ``spread`` =
    max - min and ``std`` (sample standard deviation) of the metric across the formats present.
    BASE covers every in-domain set; FT the training task's own in-domain sets. Then one row per
    (checkpoint, model) with empty eval_set: the mean spread with a bootstrap CI resampling the
    sets, the mean std, and ``n`` sets. The slice's format does not apply: all formats are used."""
    cells, _ = comparable(table, sl)
    base = (cells["train_task"] == BASE) & (cells["domain"] == "in")
    chosen = cells[base | own_sets(cells)].assign(model=lambda d: d["train_task"].map(lambda t: "FT" if t else "BASE"))
    rows = (chosen.groupby(["checkpoint", "model", "train_task", "eval_set", "method", "metric"], sort=False)
            .agg(step=("step", "first"), n_formats=("format", "nunique"),
                 formats=("format", lambda f: ",".join(sorted(f))),
                 spread=("value", lambda v: v.max() - v.min()), std=("value", "std"))
            .reset_index())
    # Nullable integers: the mean rows below have no format count.
    rows = (rows[rows["n_formats"] >= 2].astype({"n_formats": "Int64"})
            .assign(ci_low=float("nan"), ci_high=float("nan"), n=1)[COLUMNS])
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    means = []
    for (checkpoint, model), g in rows.groupby(["checkpoint", "model"], sort=False):
        est = bootstrap_mean(g["spread"].to_numpy(), seed=seed)
        means.append(dict(checkpoint=checkpoint, step=g["step"].iloc[0], model=model, train_task="", eval_set="",
                          spread=est.mean, std=g["std"].mean(), ci_low=est.ci_low, ci_high=est.ci_high, n=est.n))
    means = pd.DataFrame(means, columns=COLUMNS).astype(rows.dtypes.to_dict())
    return pd.concat([sort_by_checkpoint(rows, ["model", "train_task", "eval_set"]),
                      sort_by_checkpoint(means, ["model"])], ignore_index=True)


def figure(frame: pd.DataFrame) -> Figure:
    present = [m for m in MODELS if (frame["model"] == m).any()]
    fig, axes = plots.panels(len(present), TITLE, sharey=True)
    axis = plots.StepAxis(frame)
    for ax, model in zip(axes, present):
        mine = frame[frame["model"] == model]
        plots.draw_lines(ax, mine[mine["eval_set"] != ""], axis, "spread", ["train_task", "eval_set"])
        plots.draw_lines(ax, mine[mine["eval_set"] == ""].assign(_all="mean over sets (95% CI)"), axis, "spread",
                         ["_all"], lo="ci_low", hi="ci_high", mean=True)
        ax.set_title(model)
        plots.finish(ax, ylabel="spread across formats (max - min)", axis=axis)
    return fig


def reading(frame: pd.DataFrame) -> str:
    means = frame[frame["eval_set"] == ""]
    parts = []
    for model in MODELS:
        mine = sort_by_checkpoint(means[means["model"] == model], [])
        if not mine.empty:
            first, last = mine.iloc[0], mine.iloc[-1]
            parts.append(f"{model} mean spread {num(first['spread'], '.3f')} at {first['checkpoint']} -> "
                         f"{num(last['spread'], '.3f')} at {last['checkpoint']}")
    return "Across formats: " + "; ".join(parts) + "."
