"""The fine-tuning contribution to each answer (TuCo, ``ptft.evaluation.tuco``) per eval set: rows of
metric ``tuco``, the mean over a set's prompts with its bootstrap CI.

Per training task (and pooled over them, ``train_task`` empty) and checkpoint, three scopes: the
task's own in-domain sets, its out-of-domain sets and the other tasks' in-domain sets (cross-task);
a scope's value is the mean of its sets' TuCo, its interval mean +- 1.96 sqrt(sum se^2) / k over
its k sets. Two comparisons answer the lens's questions:

- ``in-domain - cross-task``: is fine-tuning's share of the answer larger on what it was trained
  for? The difference of the two scopes, its se from both (the sets are scored by one model, so
  this ignores their covariance);
- ``forgetting``: is TuCo larger where forgetting is larger? Spearman's correlation, over every
  (training task, cross-task set, checkpoint), between TuCo and the change FT - BASE of the set's
  judged metric, with a percentile-bootstrap CI resampling those points. A negative correlation
  means: the more fine-tuning contributes to the answer, the more the score drops.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from ptft.analysis import plots
from ptft.analysis.changes import PAIR
from ptft.analysis.slices import BASE, Slice, cell_se, comparable, own_sets, sort_by_checkpoint
from ptft.analysis.stats import LEVEL, N_BOOT, Z
from ptft.analysis.table import Source, load_table
from ptft.analysis.text import ci, num
from ptft.grid import INSTRUCT_TRAIN_TASK, TUCO_METRIC

TITLE = "TuCo: the fine-tuning contribution to the answers, per scope"
EMPTY = "no TuCo rows (tuco.enabled must be on, with fine-tuned models)"
SCOPES = ("in-domain", "out-of-domain", "cross-task")
DIFFERENCE = "in-domain - cross-task"
FORGETTING = "forgetting"
COLUMNS = ["train_task", "measure", "checkpoint", "step", "value", "ci_low", "ci_high", "n"]


def tuco(table: Source, sl: Slice = Slice(), *, seed: int = 0) -> pd.DataFrame:
    """Rows per (train task or '' pooled, measure, checkpoint): each scope's mean TuCo and the
    in-domain minus cross-task difference; then one ``forgetting`` row (checkpoint '' : every
    checkpoint) per train task and pooled. See the module's docstring."""
    frame = load_table(table)
    is_tuco = frame["metric"] == TUCO_METRIC
    if not is_tuco.any():
        return pd.DataFrame(columns=COLUMNS)
    cells, _ = comparable(frame[is_tuco], sl)
    cells = cells[(cells["format"] == sl.fmt) & (cells["train_task"] != BASE)
                  & (cells["train_task"] != INSTRUCT_TRAIN_TASK)]
    cells = cells.assign(scope=_scopes(cells), se=cell_se(cells))
    out = []
    for by in (["train_task", "checkpoint"], ["checkpoint"]):
        for key, g in cells.groupby(by, sort=False):
            where = dict(zip(by, key), train_task=g["train_task"].iloc[0] if "train_task" in by else "",
                         step=g["step"].iloc[0])
            means = {}
            for scope, part in g.groupby("scope"):
                means[scope] = (part["value"].mean(), np.sqrt((part["se"] ** 2).sum()) / len(part), len(part))
                out.append(_row(where, scope, *means[scope]))
            if "in-domain" in means and "cross-task" in means:
                (a, sa, na), (b, sb, nb) = means["in-domain"], means["cross-task"]
                out.append(_row(where, DIFFERENCE, a - b, np.hypot(sa, sb), na + nb))
    out += _forgetting(frame, cells[cells["scope"] == "cross-task"], sl, seed)
    result = pd.DataFrame(out, columns=COLUMNS)
    order = {m: i for i, m in enumerate((*SCOPES, DIFFERENCE, FORGETTING))}
    result = result.assign(_m=result["measure"].map(order))
    return sort_by_checkpoint(result, ["_m", "train_task"]).drop(columns="_m")


def _scopes(cells: pd.DataFrame) -> pd.Series:
    own = cells["eval_task"] == cells["train_task"]
    return pd.Series(np.where(own_sets(cells), "in-domain", np.where(own, "out-of-domain", "cross-task")),
                     index=cells.index).where(own | (cells["domain"] == "in"))


def _row(where: dict, measure: str, value: float, se: float, n: int) -> dict:
    return dict(where, measure=measure, value=float(value), ci_low=float(value - Z * se) if np.isfinite(se) else np.nan,
                ci_high=float(value + Z * se) if np.isfinite(se) else np.nan, n=int(n))


def _forgetting(frame: pd.DataFrame, cross: pd.DataFrame, sl: Slice, seed: int) -> list[dict]:
    """Spearman's rho of TuCo against FT - BASE over the cross-task (task, set, checkpoint) points."""
    scores, _ = comparable(frame[frame["metric"] != TUCO_METRIC], sl)
    scores = scores[scores["format"] == sl.fmt]
    base = scores.loc[scores["train_task"] == BASE, PAIR[:3] + ["value"]].rename(columns={"value": "base"})
    ft = scores.loc[scores["train_task"] != BASE, PAIR[:3] + ["train_task", "value"]].rename(columns={"value": "ft"})
    points = cross.merge(ft.merge(base, on=PAIR[:3]), on=PAIR[:3] + ["train_task"])
    points = points.assign(change=points["ft"] - points["base"])
    out = []
    for task, g in [*points.groupby("train_task"), ("", points)]:
        if len(g) < 3:
            continue
        rho, low, high = _spearman(g["value"].to_numpy(float), g["change"].to_numpy(float), seed)
        out.append(dict(train_task=task, measure=FORGETTING, checkpoint="", step=np.nan, value=rho, ci_low=low,
                        ci_high=high, n=len(g)))
    return out


def _spearman(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, float, float]:
    rho = float(stats.spearmanr(x, y).statistic)
    draws = np.random.default_rng(seed).integers(0, len(x), size=(N_BOOT, len(x)))
    rx, ry = (stats.rankdata(v[draws], axis=1) for v in (x, y))
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (rx * ry).sum(1) / np.sqrt((rx**2).sum(1) * (ry**2).sum(1))
    boot = boot[np.isfinite(boot)]  # a resample of one repeated point has no rank order
    if not boot.size:
        return rho, np.nan, np.nan
    low, high = np.quantile(boot, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return rho, float(low), float(high)


def figure(frame: pd.DataFrame) -> Figure:
    """Pooled over training tasks: each scope's mean TuCo along the checkpoints."""
    pooled = frame[(frame["train_task"] == "") & frame["measure"].isin(SCOPES)]
    fig, (ax,) = plots.panels(1, TITLE, width=7.0)
    axis = plots.StepAxis(pooled)
    plots.draw_lines(ax, pooled, axis, "value", ["measure"], lo="ci_low", hi="ci_high")
    plots.finish(ax, ylabel="TuCo (mean over the scope's prompts)", axis=axis)
    return fig


def reading(frame: pd.DataFrame) -> str:
    pooled = frame[frame["train_task"] == ""]
    at_points = pooled[pooled["checkpoint"] != ""]
    parts = []
    if not at_points.empty:
        last = sort_by_checkpoint(at_points, [])["checkpoint"].iloc[-1]
        first = sort_by_checkpoint(at_points, [])["checkpoint"].iloc[0]
        now = at_points[at_points["checkpoint"] == last].set_index("measure")
        scopes = [f"{s} {num(now.loc[s, 'value'], '.3f')}" for s in SCOPES if s in now.index]
        parts.append(f"At {last}, TuCo is " + ", ".join(scopes))
        if DIFFERENCE in now.index:
            d = now.loc[DIFFERENCE]
            parts.append(f"in-domain minus cross-task {num(d['value'], '+.3f')} ({ci(d['ci_low'], d['ci_high'])})")
        then = at_points[(at_points["checkpoint"] == first) & (at_points["measure"] == "in-domain")]
        if first != last and not then.empty and "in-domain" in now.index:
            parts.append(f"in-domain {num(then['value'].iloc[0], '.3f')} at {first}")
    rho = pooled[pooled["measure"] == FORGETTING]
    if not rho.empty:
        r = rho.iloc[0]
        parts.append(f"Spearman's rho of TuCo with the cross-task change {num(r['value'], '+.2f')} "
                     f"({ci(r['ci_low'], r['ci_high'], '+.2f')}, {int(r['n'])} points)")
    return "; ".join(parts) + "."
