"""How localised the fine-tuned skill is (grafting, Panigrahi et al. 2023): per checkpoint and share
s of the change grafted onto BASE (variants ``graft<s>pct``, the magnitude mask of
``ptft.evaluation.grafting``), the share of the fine-tuning change on each scope that the graft
reproduces:

    share = sum over the scope's sets of (graft - BASE) / sum of (FT - BASE)

``in-domain``: the training task's own in-domain sets, so the share of the gain; ``cross-task``:
the other tasks' in-domain sets, so the share of the forgetting (of the change, where it is a
gain). 1 means the top s % of the change carries all of it, 0 none of it. Per training task and
pooled over them (``train_task`` empty). A scope whose fine-tuning change is below ``eps`` per set,
or whose change's own interval (``ft_ci_low``, ``ft_ci_high``) holds 0, has no share: a ratio over a
change not shown to differ from 0 has no bounded interval (Fieller), and its point value says nothing.

The interval draws every value (BASE, FT, graft, each set) from a normal with its own standard
error (from its CI or its example count) and takes the percentiles of the ratio: it ignores that
the three are scored on the same examples, which makes it wider, not narrower, than the paired one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.changes import PAIR, RATIO_EPS
from ptft.analysis.slices import BASE, Slice, cell_se, comparable, own_sets, sort_by_checkpoint
from ptft.analysis.stats import LEVEL, N_BOOT
from ptft.analysis.table import Source, load_table
from ptft.analysis.text import ci, num, which_higher
from ptft.grid import INSTRUCT_TRAIN_TASK, UNEDITED, graft_percent

TITLE = "Grafting: the share of the fine-tuning change that its top s % by magnitude carries"
EMPTY = "no grafted rows (grafting.enabled must be on)"
SCOPES = {"in-domain": "share of the in-domain gain", "cross-task": "share of the cross-task change"}
COLUMNS = ["train_task", "scope", "checkpoint", "step", "top_percent", "share", "ci_low", "ci_high", "graft_change",
           "ft_change", "ft_ci_low", "ft_ci_high", "n"]


def grafts(table: Source) -> list[str]:
    """The graft variants of the table's fine-tuned rows, by their percent."""
    frame = load_table(table)
    present = {v for v in frame.loc[frame["train_task"] != BASE, "variant"] if graft_percent(v) is not None}
    return sorted(present, key=graft_percent)


def grafting(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS) -> pd.DataFrame:
    """One row per (training task or all of them, scope, checkpoint, percent); see the module's
    docstring. ``sl.variant`` is ignored: every graft is compared with the model as trained."""
    frame = load_table(table)
    variants = grafts(frame)
    if not variants:
        return pd.DataFrame(columns=COLUMNS)
    trained, _ = comparable(frame, replace(sl, variant=UNEDITED))
    trained = trained[trained["format"] == sl.fmt]
    base = trained[trained["train_task"] == BASE]
    ft = trained[_scope(trained) != ""].assign(scope=lambda t: _scope(t))
    merged = ft.merge(base[PAIR + ["value", "ci_low", "ci_high", "n"]], on=PAIR, suffixes=("", "_base"))
    out = []
    for name in variants:
        grafted, _ = comparable(frame, replace(sl, variant=name))
        grafted = grafted[grafted["train_task"] != BASE]
        rows = merged.merge(grafted[PAIR + ["train_task", "value", "ci_low", "ci_high", "n"]],
                            on=PAIR + ["train_task"], suffixes=("", "_graft"))
        for by in (["train_task", "scope", "checkpoint"], ["scope", "checkpoint"]):
            for key, g in rows.groupby(by, sort=False):
                where = dict(zip(by, key), train_task=g["train_task"].iloc[0] if "train_task" in by else "")
                out.append(where | dict(step=g["step"].iloc[0], top_percent=graft_percent(name),
                                        **_share(g, eps, seed)))
    result = pd.DataFrame(out, columns=COLUMNS)
    return sort_by_checkpoint(result, ["scope", "train_task", "top_percent"])


def _scope(cells: pd.DataFrame) -> pd.Series:
    """Each fine-tuned row's scope ('' for rows in neither, BASE's among them)."""
    ft = (cells["train_task"] != BASE) & (cells["train_task"] != INSTRUCT_TRAIN_TASK)
    cross = ft & (cells["eval_task"] != cells["train_task"]) & (cells["domain"] == "in")
    return pd.Series(np.where(own_sets(cells) & ft, "in-domain", np.where(cross, "cross-task", "")),
                     index=cells.index)


def _share(rows: pd.DataFrame, eps: float, seed: int) -> dict:
    def values(suffix: str) -> tuple[np.ndarray, np.ndarray]:
        part = rows[[f"value{suffix}", f"ci_low{suffix}", f"ci_high{suffix}", f"n{suffix}"]]
        part.columns = ["value", "ci_low", "ci_high", "n"]
        return part["value"].to_numpy(dtype=float), cell_se(part).fillna(0.0).to_numpy(dtype=float)

    (b, b_se), (f, f_se), (g, g_se) = values("_base"), values(""), values("_graft")
    ft_change, graft_change = float((f - b).sum()), float((g - b).sum())
    rng = np.random.default_rng(seed)

    def draw(v: np.ndarray, se: np.ndarray) -> np.ndarray:
        return v + se * rng.standard_normal((N_BOOT, len(v)))

    quantiles = [(1 - LEVEL) / 2, (1 + LEVEL) / 2]
    db = draw(b, b_se)
    numerator, denominator = (draw(g, g_se) - db).sum(1), (draw(f, f_se) - db).sum(1)
    ft_low, ft_high = np.quantile(denominator, quantiles) / len(rows)
    out = dict(graft_change=graft_change / len(rows), ft_change=ft_change / len(rows), ft_ci_low=float(ft_low),
               ft_ci_high=float(ft_high), n=len(rows))
    if abs(ft_change) < eps * len(rows) or ft_low <= 0 <= ft_high:
        return out | dict(share=np.nan, ci_low=np.nan, ci_high=np.nan)
    low, high = np.quantile(numerator / denominator, quantiles)
    return out | dict(share=graft_change / ft_change, ci_low=float(low), ci_high=float(high))


def figure(frame: pd.DataFrame) -> Figure:
    """Per scope, the pooled share against the grafted percent (log scale), a line per checkpoint."""
    pooled = frame[frame["train_task"] == ""]
    scopes = [s for s in SCOPES if (pooled["scope"] == s).any()]
    fig, axes = plots.panels(len(scopes), TITLE, width=5.5)
    order = {c: i for i, c in enumerate(sort_by_checkpoint(pooled, [])["checkpoint"].unique())}
    for ax, scope in zip(axes, scopes):
        mine = pooled[pooled["scope"] == scope]
        for checkpoint, g in sorted(mine.groupby("checkpoint"), key=lambda kv: order[kv[0]]):
            g = g.sort_values("top_percent")
            x = g["top_percent"].where(g["top_percent"] > 0, np.nan)
            ax.errorbar(x, g["share"], yerr=np.vstack([g["share"] - g["ci_low"], g["ci_high"] - g["share"]]),
                        capsize=3, label=checkpoint, **plots.style(order[checkpoint]))
        ax.set_xscale("log")
        ax.set_xlabel("top s % of the change grafted onto BASE")
        ax.axhline(1, color="0.5", linewidth=0.8, linestyle="--", zorder=0)
        plots.finish(ax, ylabel=SCOPES[scope], zero=True)
    return fig


def reading(frame: pd.DataFrame) -> str:
    """Pooled over training tasks, at the last checkpoint: the in-domain share of every graft; then
    the largest graft's share at the first and last checkpoint (does the skill sit in fewer weights
    after more pre-training?) and its share of the cross-task change."""
    pooled = frame[frame["train_task"] == ""]
    inside = sort_by_checkpoint(pooled[(pooled["scope"] == "in-domain") & pooled["share"].notna()], [])
    if inside.empty:
        return "No in-domain gain large enough to share out."
    last, first = inside["checkpoint"].iloc[-1], inside["checkpoint"].iloc[0]
    at = inside[inside["checkpoint"] == last].sort_values("top_percent")
    top = at.iloc[-1]
    text = (f"At {last}, grafting the top {', '.join(f'{p:g}' for p in at['top_percent'])} % of the change carries "
            f"{', '.join(num(v, '.2f') for v in at['share'])} of the in-domain gain "
            f"({num(top['ft_change'], '+.3f')} per set); the top {top['top_percent']:g} % "
            f"{ci(top['ci_low'], top['ci_high'], '.2f')}")
    then = inside[(inside["checkpoint"] == first) & (inside["top_percent"] == top["top_percent"])]
    if first != last and not then.empty:
        t = then.iloc[0]
        text += f", against {num(t['share'], '.2f')} at {first} ({ci(t['ci_low'], t['ci_high'], '.2f')})"
        text += ": " + which_higher((top["ci_low"], top["ci_high"]), (t["ci_low"], t["ci_high"]),
                                    "more pre-training, a more localised skill",
                                    "more pre-training, a less localised skill", "change in localisation")
    cross = pooled[(pooled["scope"] == "cross-task") & pooled["share"].notna() & (pooled["checkpoint"] == last)
                   & (pooled["top_percent"] == top["top_percent"])]
    if not cross.empty:
        c = cross.iloc[0]
        text += (f"; it carries {num(c['share'], '.2f')} ({ci(c['ci_low'], c['ci_high'], '.2f')}) of the cross-task "
                 f"change ({num(c['ft_change'], '+.3f')} per set)")
    return text + "."
