"""Weight-space lenses per fine-tuning method, training task and checkpoint: how far, in how many
directions and with how many intruder dimensions fine-tuning moved the weights (definitions:
docs/method.md, "Weight-space lenses").

Reads the weights table (``ptft.store.WEIGHTS_COLUMNS``, one row per matrix of each fine-tuned
model) that `ptft export` writes beside the results table. Per (method, task, part, checkpoint), over
the matrices of the models at their selected learning rate: the mean relative change, effective
rank and intruder count per matrix (CI resampling matrices), and the intruders per model (the
sum over its matrices, mean over models, CI resampling models). ``part`` is ``blocks`` (the
transformer blocks' projections) or ``embeddings`` (embedding and untied head matrices), kept
apart because their shapes and roles differ.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.methods import DEFAULT_METHOD
from ptft.analysis.slices import sort_by_checkpoint
from ptft.analysis.stats import bootstrap_mean
from ptft.analysis.table import Source, load_side_table
from ptft.analysis.text import ci, num
from ptft.store import WEIGHTS_COLUMNS, weights_path

TITLE = "Weight-space lenses per method: relative change, effective rank, intruder dimensions"
EMPTY = "no weights table (ptft export writes NAME.weights.csv beside the results; lenses.enabled must be on)"
MEASURES = {
    "relative_change": "relative change ||dW|| / ||W0|| per matrix",
    "effective_rank": "effective rank of dW per matrix",
    "intruders": "intruder dimensions per matrix",
    "intruders_per_model": "intruder dimensions per model",
}
REQUIRED = ("checkpoint", "step", "train_task", "name", "layer", "relative_change", "effective_rank", "intruders")
MODEL = ["checkpoint", "train_task", "ft_method", "lr", "seed"]
COLUMNS = ["method", "train_task", "part", "measure", "checkpoint", "step", "value", "ci_low", "ci_high", "n"]


def load_weights(source: Source | None) -> pd.DataFrame:
    """The weights table of a run directory (its store), of a results file (``NAME.weights.EXT``
    beside it), or a DataFrame; an empty table when there is none."""
    return load_side_table(source, "weights", weights_path, WEIGHTS_COLUMNS, REQUIRED)


def weights(table: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """One row per (method, train task, part, measure, checkpoint); see the module's docstring."""
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    t = table.copy()
    if "selected" in t.columns:
        t = t[t["selected"].astype(str).str.lower().isin(["true", "1", "1.0"])]
    t["method"] = (t["ft_method"].map(lambda v: "" if pd.isna(v) else str(v)).replace("", DEFAULT_METHOD)
                   if "ft_method" in t.columns else DEFAULT_METHOD)
    t["part"] = t["layer"].map(lambda layer: "blocks" if layer > 0 else "embeddings")
    out = []
    for (method, task, part, checkpoint), g in t.groupby(["method", "train_task", "part", "checkpoint"], sort=False):
        where = dict(method=method, train_task=task, part=part, checkpoint=checkpoint, step=g["step"].iloc[0])
        for measure in ("relative_change", "effective_rank", "intruders"):
            est = bootstrap_mean(g[measure].to_numpy(dtype=float), seed=seed)
            out.append(dict(where, measure=measure, value=est.mean, ci_low=est.ci_low, ci_high=est.ci_high, n=est.n))
        per_model = g.groupby([c for c in MODEL if c in g.columns], dropna=False)["intruders"].sum()
        est = bootstrap_mean(per_model.to_numpy(dtype=float), seed=seed)
        out.append(dict(where, measure="intruders_per_model", value=est.mean, ci_low=est.ci_low, ci_high=est.ci_high,
                        n=est.n))
    frame = pd.DataFrame(out, columns=COLUMNS)
    frame = frame.assign(_m=frame["measure"].map(list(MEASURES).index))
    return sort_by_checkpoint(frame, ["part", "_m", "method", "train_task"]).drop(columns="_m")


def figure(frame: pd.DataFrame) -> Figure:
    blocks = frame[frame["part"] == "blocks"]
    shown = blocks if not blocks.empty else frame
    measures = ["relative_change", "effective_rank", "intruders_per_model"]
    fig, axes = plots.panels(len(measures), TITLE + (" (block matrices)" if not blocks.empty else ""), width=5.0)
    axis = plots.StepAxis(shown)
    for ax, measure in zip(axes, measures):
        plots.draw_lines(ax, shown[shown["measure"] == measure], axis, "value", ["method", "train_task"],
                         lo="ci_low", hi="ci_high")
        plots.finish(ax, ylabel=MEASURES[measure], axis=axis)
    return fig


def headlines(frame: pd.DataFrame) -> list[str]:
    """Per method, over the block matrices: each measure's mean over checkpoints and training tasks
    (summary.md)."""
    blocks = frame[frame["part"] == "blocks"]
    lines = []
    for method, mine in blocks.groupby("method", sort=True):
        means = mine.groupby("measure")["value"].mean()
        lines.append(f"{method}: relative change {num(means.get('relative_change'), '.3g')}, effective rank "
                     f"{num(means.get('effective_rank'), '.1f')}, {num(means.get('intruders'), '.2f')} intruder "
                     f"dimensions per matrix ({num(means.get('intruders_per_model'), '.1f')} per model), mean over "
                     f"{mine['checkpoint'].nunique()} checkpoints and {mine['train_task'].nunique()} task(s)")
    return lines


def reading(frame: pd.DataFrame) -> str:
    """The block matrices at the last checkpoint: each method's relative change, rank and intruders
    per training task."""
    blocks = frame[frame["part"] == "blocks"]
    shown = blocks if not blocks.empty else frame
    last = sort_by_checkpoint(shown, [])["checkpoint"].iloc[-1]
    at = shown[shown["checkpoint"] == last]
    parts = []
    several = at["train_task"].nunique() > 1
    for (method, task), mine in at.groupby(["method", "train_task"], sort=True):
        v = mine.set_index("measure")
        rank = v.loc["effective_rank"]
        who = f"{method} on {task}" if several else method
        parts.append(f"{who} moves its matrices by {num(v.loc['relative_change', 'value'], '.3g')} of their norm "
                     f"with effective rank {num(rank['value'], '.1f')} ({ci(rank['ci_low'], rank['ci_high'], '.1f')})"
                     f" and {num(v.loc['intruders_per_model', 'value'], '.1f')} intruder dimensions per model")
    return f"At {last}: " + "; ".join(parts) + "."
