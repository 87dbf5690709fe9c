"""Where fine-tuning changes the representations (linear CKA with BASE, per layer; definitions:
docs/method.md, "CKA").

Reads the layers table (``ptft.store.LAYERS_COLUMNS``) that `ptft export` writes beside the
results table, rows of measure ``cka`` at the selected learning rate, seeds averaged. Per
(training task or '' pooled, scope, checkpoint, layer): the mean change 1 - CKA over the scope's
sets (``in-domain``: the task's own in-domain sets; ``cross-task``: the other tasks' in-domain
sets) with a bootstrap CI resampling those sets (none with one set). Two summaries answer the
lens's questions, per (training task or pooled, scope, checkpoint):

- ``depth``: the least-squares slope of 1 - CKA against the block's relative depth (0 the first
  block, 1 the last), CI resampling the sets: positive when the change grows with depth,
  the premise of LiNeS;
- ``mean``: 1 - CKA averaged over the layers, which the reading follows along pre-training.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.slices import BASE, sort_by_checkpoint
from ptft.analysis.stats import LEVEL, N_BOOT, cluster_bootstrap_mean
from ptft.analysis.table import Source, load_side_table
from ptft.analysis.text import ci, num
from ptft.grid import FULL, INSTRUCT_TRAIN_TASK
from ptft.store import LAYERS_COLUMNS, layers_path

TITLE = "Representation change 1 - CKA(FT, BASE) per layer"
EMPTY = "no layers table with CKA rows (ptft export writes NAME.layers.csv beside the results; cka.enabled)"
REQUIRED = ("checkpoint", "step", "train_task", "eval_task", "eval_set", "domain", "layer", "measure", "value")
MEASURE = "cka"
COLUMNS = ["ft_method", "train_task", "scope", "measure", "checkpoint", "step", "layer", "value", "ci_low", "ci_high",
           "n"]


def load_layers(source: Source | None) -> pd.DataFrame:
    """The layers table of a run directory (its store), of a results file (``NAME.layers.EXT``
    beside it), or a DataFrame of that layout (a results table given as a DataFrame has none beside
    it: empty)."""
    if isinstance(source, pd.DataFrame) and "layer" not in source.columns:
        return pd.DataFrame(columns=LAYERS_COLUMNS)
    return load_side_table(source, "layers", layers_path, LAYERS_COLUMNS, REQUIRED)


def cka(table: pd.DataFrame, *, fmt: str = "default", ft_method: str | None = None, seed: int = 0) -> pd.DataFrame:
    """Rows per (train task or '' pooled, scope, checkpoint): ``measure`` ``change`` per layer, then
    ``depth`` and ``mean`` (no layer); see the module's docstring. One fine-tuning method:
    ``ft_method``, else full fine-tuning where the table has it, else the first."""
    t = table[(table["measure"] == MEASURE) & (table["train_task"].fillna("") != BASE)
              & (table["train_task"] != INSTRUCT_TRAIN_TASK) & (table["domain"] == "in")]
    methods = sorted(set(t["ft_method"].fillna("").replace("", FULL)), key=lambda m: (m != FULL, m))
    method = ft_method or (methods[0] if methods else FULL)
    t = t[t["ft_method"].fillna("").replace("", FULL) == method]
    if "format" in t.columns:
        t = t[t["format"] == fmt]
    if "selected" in t.columns:
        t = t[t["selected"].astype(str).str.lower().isin(["true", "1", "1.0"])]
    if t.empty:
        return pd.DataFrame(columns=COLUMNS)
    # a set without variance (one prompt, one cue) has no CKA: left out of every mean alike
    t = t[t["value"].notna()]
    t = t.assign(scope=np.where(t["eval_task"] == t["train_task"], "in-domain", "cross-task"),
                 change=1 - t["value"].astype(float))
    # one value per (model, set, layer): seeds and shot counts averaged
    t = t.groupby(["train_task", "scope", "checkpoint", "eval_set", "layer"], as_index=False).agg(
        step=("step", "first"), change=("change", "mean"))
    first, last = t["layer"].min(), t["layer"].max()
    t = t.assign(depth=(t["layer"] - first) / (last - first) if last > first else 0.0)
    out = []
    for by in (["train_task", "scope", "checkpoint"], ["scope", "checkpoint"]):
        for key, g in t.groupby(by, sort=False):
            where = dict(zip(by, key), ft_method=method,
                         train_task=g["train_task"].iloc[0] if "train_task" in by else "", step=g["step"].iloc[0])
            for layer, part in g.groupby("layer"):
                # pooled over tasks, one set's rows (one per task) are drawn together
                est = cluster_bootstrap_mean(part["change"].to_numpy(float), part["eval_set"].to_numpy(), seed=seed)
                out.append(dict(where, measure="change", layer=int(layer), value=est.mean, ci_low=est.ci_low,
                                ci_high=est.ci_high, n=est.n))
            out += _summaries(where, g, seed)
    frame = pd.DataFrame(out, columns=COLUMNS)
    return sort_by_checkpoint(frame, ["scope", "train_task", "measure", "layer"])


def _summaries(where: dict, g: pd.DataFrame, seed: int) -> list[dict]:
    """The depth slope and the mean over layers, each with a CI resampling the group's sets."""
    sets = {name: part for name, part in g.groupby("eval_set")}

    def stats(names) -> tuple[float, float]:
        rows = pd.concat([sets[n] for n in names])
        slope = np.polyfit(rows["depth"], rows["change"], 1)[0] if rows["depth"].nunique() > 1 else np.nan
        return float(slope), float(rows["change"].mean())

    slope, mean = stats(list(sets))
    low = high = (np.nan, np.nan)
    names = list(sets)
    if len(names) > 1:
        rng = np.random.default_rng(seed)
        draws = np.array([stats(rng.choice(names, len(names))) for _ in range(N_BOOT // 10)])
        low, high = np.quantile(draws, (1 - LEVEL) / 2, axis=0), np.quantile(draws, (1 + LEVEL) / 2, axis=0)
    return [dict(where, measure=name, layer=np.nan, value=value, ci_low=float(lo), ci_high=float(hi), n=len(names))
            for name, value, lo, hi in (("depth", slope, low[0], high[0]), ("mean", mean, low[1], high[1]))]


def figure(frame: pd.DataFrame) -> Figure:
    """Pooled over training tasks, per scope: 1 - CKA against the layer, a line per checkpoint."""
    pooled = frame[(frame["train_task"] == "") & (frame["measure"] == "change")]
    scopes = [s for s in ("in-domain", "cross-task") if (pooled["scope"] == s).any()]
    fig, axes = plots.panels(len(scopes), TITLE, width=5.5, sharey=True)
    order = {c: i for i, c in enumerate(sort_by_checkpoint(pooled, [])["checkpoint"].unique())}
    for ax, scope in zip(axes, scopes):
        mine = pooled[pooled["scope"] == scope]
        for checkpoint, g in sorted(mine.groupby("checkpoint"), key=lambda kv: order[kv[0]]):
            g = g.assign(layer=g["layer"].astype(int)).sort_values("layer")
            yerr = np.vstack([g["value"] - g["ci_low"], g["ci_high"] - g["value"]])
            ax.errorbar(g["layer"], g["value"], yerr=None if np.isnan(yerr).all() else yerr, capsize=3,
                        label=checkpoint, **plots.style(order[checkpoint]))
        ax.set_xlabel("block")
        ax.set_title(scope)
        plots.finish(ax, ylabel="1 - CKA(FT, BASE), last token", zero=True)
    return fig


def reading(frame: pd.DataFrame) -> str:
    """The pooled in-domain depth slope at the last checkpoint, and the mean change at the first
    and last checkpoint."""
    pooled = frame[(frame["train_task"] == "") & (frame["scope"] == "in-domain")]
    if pooled.empty:
        pooled = frame[frame["train_task"] == ""]
    at = sort_by_checkpoint(pooled[pooled["measure"] == "mean"], [])
    first, last = at.iloc[0], at.iloc[-1]
    slope = pooled[(pooled["measure"] == "depth") & (pooled["checkpoint"] == last["checkpoint"])].iloc[0]
    where = ("grows with depth" if slope["ci_low"] > 0 else "shrinks with depth" if slope["ci_high"] < 0
             else "has no depth trend the interval shows" if np.isfinite(slope["ci_low"]) else "has a depth slope")
    text = (f"At {last['checkpoint']}, the {last['scope']} change 1 - CKA {where}: slope "
            f"{num(slope['value'], '+.3f')} per unit depth ({ci(slope['ci_low'], slope['ci_high'])}); mean over "
            f"layers {num(last['value'], '.3f')}")
    if len(at) > 1:
        text += f" against {num(first['value'], '.3f')} at {first['checkpoint']}"
    return text + "."
