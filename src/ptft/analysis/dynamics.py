"""Fine-tuning dynamics: learning and forgetting along one training run (``finetune.eval_at``).

For each checkpoint and training task evaluated at several fractions of its fine-tuning steps:
the in-domain gain, the cross-task change (the MRC's ratio, in its direction: the training task's
type to the other type) and the out-of-domain change at each point, each as :mod:`gain` and
:mod:`forgetting` define them for the final model; and the fine-tuning step at which the in-domain
gain first reaches 90 % of its final value (does a more pre-trained checkpoint learn sooner?).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.changes import RATIO_EPS, paired
from ptft.analysis.forgetting import mrc_ratios
from ptft.analysis.slices import BASE, Slice, checkpoint_order, comparable, own_sets
from ptft.analysis.table import Source, load_table
from ptft.analysis.text import num, percent
from ptft.grid import INSTRUCT_TRAIN_TASK

TITLE = "Fine-tuning dynamics: learning and forgetting during fine-tuning"
EMPTY = ("no fine-tuning run evaluated before its end (set finetune.eval_at, e.g. [0.25, 0.5, 1.0], "
         "to evaluate each run during its training)")
REACHED = 0.9
COLUMNS = ["checkpoint", "step", "train_task", "ft_fraction", "ft_step", "in_domain_gain", "n_in_domain",
           "direction", "cross_task_percent", "n_cross_task", "ood_percent", "n_ood",
           "reach_90_fraction", "reach_90_step"]


def dynamics(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS) -> pd.DataFrame:
    """One row per (checkpoint, train task, fraction of the fine-tuning steps), for the runs
    evaluated at two or more points (the slice's fraction does not apply: every point is used).
    ``in_domain_gain``: mean FT - BASE over the task's own in-domain sets; ``cross_task_percent``:
    mean change ratio (%) on the other task type's in-domain sets (the MRC's ratios, ``direction``
    as there); ``ood_percent``: mean change ratio (%) on the task's out-of-domain sets; ``n_*`` the
    sets averaged. ``reach_90_fraction`` / ``reach_90_step``: the first point whose gain is at least
    90 % of the final (fraction 1) gain, the same on every row of the run; empty when the final gain
    is not positive (nothing learned to reach). Seeds are averaged, as everywhere."""
    table = load_table(table)
    ft = ((table["train_task"] != BASE) & (table["train_task"] != INSTRUCT_TRAIN_TASK)
          & (table["variant"] == sl.variant))
    fractions = sorted(table.loc[ft, "ft_fraction"].dropna().unique())
    if len(fractions) < 2 or 1.0 not in fractions:
        return pd.DataFrame(columns=COLUMNS)
    ft_steps = (table[ft].groupby(["checkpoint", "train_task", "ft_fraction"])["ft_step"]
                .agg(lambda s: s.dropna().iloc[0] if s.notna().any() else pd.NA))
    parts = [_at(table, replace(sl, ft_fraction=float(f)), eps).assign(ft_fraction=float(f)) for f in fractions]
    rows = pd.concat(parts, ignore_index=True)
    points = rows.groupby(["checkpoint", "train_task"])["ft_fraction"].transform("nunique")
    rows = rows[points >= 2]
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows["ft_step"] = [ft_steps.get((c, t, f), pd.NA) for c, t, f in
                       zip(rows["checkpoint"], rows["train_task"], rows["ft_fraction"])]
    rows["ft_step"] = rows["ft_step"].astype("Int64")
    reach = {key: _reach(run) for key, run in rows.groupby(["checkpoint", "train_task"])}
    rows["reach_90_fraction"] = [reach[c, t][0] for c, t in zip(rows["checkpoint"], rows["train_task"])]
    rows["reach_90_step"] = pd.array([reach[c, t][1] for c, t in zip(rows["checkpoint"], rows["train_task"])],
                                     dtype="Int64")
    rank = {c: i for i, c in enumerate(checkpoint_order(rows))}
    rows = rows.assign(_rank=rows["checkpoint"].map(rank)).sort_values(["train_task", "_rank", "ft_fraction"])
    return rows[COLUMNS].reset_index(drop=True)


def _at(table: pd.DataFrame, sl: Slice, eps: float) -> pd.DataFrame:
    """The three measures of every (checkpoint, train task) at the slice's fraction."""
    cells, _ = comparable(table, sl)
    cells = cells[(cells["format"] == sl.fmt) & (cells["train_task"] != INSTRUCT_TRAIN_TASK)]
    own = paired(cells, own_sets(cells), eps)
    ood = paired(cells, (cells["train_task"] != BASE) & (cells["domain"] == "out")
                 & (cells["eval_task"] == cells["train_task"]), eps)
    cross = mrc_ratios(table, sl, eps=eps)
    keys = ["checkpoint", "train_task"]
    out = own.groupby(keys).agg(step=("step", "first"), in_domain_gain=("raw_change", "mean"),
                                n_in_domain=("raw_change", "size"))
    out = out.join(cross.groupby(keys).agg(direction=("direction", "first"),
                                           cross_task_percent=("change_ratio", lambda r: 100 * r.mean()),
                                           n_cross_task=("change_ratio", "count")), how="outer")
    out = out.join(ood.groupby(keys).agg(ood_percent=("change_ratio", lambda r: 100 * r.mean()),
                                         n_ood=("change_ratio", "count")), how="outer")
    out = out.reset_index()
    for col in ("n_in_domain", "n_cross_task", "n_ood"):
        out[col] = out[col].fillna(0).astype(int)
    out["direction"] = out["direction"].astype(object).where(out["direction"].notna(), "")
    return out


def _reach(run: pd.DataFrame) -> tuple[float, object]:
    run = run.sort_values("ft_fraction")
    final = run.loc[run["ft_fraction"] == 1.0, "in_domain_gain"]
    if final.empty or not np.isfinite(final.iloc[0]) or final.iloc[0] <= 0:
        return np.nan, pd.NA
    hit = run[run["in_domain_gain"] >= REACHED * final.iloc[0]].iloc[0]
    return float(hit["ft_fraction"]), hit["ft_step"]


def figure(frame: pd.DataFrame) -> Figure:
    fig, axes = plots.panels(3, TITLE, width=5.0)
    measures = (("in_domain_gain", "in-domain gain (FT - BASE)"),
                ("cross_task_percent", "cross-task change ratio (%)"),
                ("ood_percent", "out-of-domain change ratio (%)"))
    for ax, (col, label) in zip(axes, measures):
        for i, ((task, ck), run) in enumerate(frame.groupby(["train_task", "checkpoint"], sort=False)):
            run = run[run[col].notna()]
            if not run.empty:
                ax.plot(run["ft_fraction"], run[col], label=f"{task} @ {ck}", **plots.style(i))
        ax.set_xlabel("fraction of the fine-tuning steps")
        plots.finish(ax, ylabel=label, zero=True)
    return fig


def reading(frame: pd.DataFrame) -> str:
    runs = frame.drop_duplicates(["train_task", "checkpoint"])
    parts = []
    for task, mine in runs.groupby("train_task", sort=False):
        reached = [f"{r.checkpoint} at step {r.reach_90_step} ({r.reach_90_fraction:g})" if pd.notna(r.reach_90_step)
                   else f"{r.checkpoint} never (final gain not positive)" for r in mine.itertuples()]
        parts.append(f"{task}: 90 % of the final in-domain gain reached by " + ", ".join(reached))
    first = frame[frame["ft_fraction"] == frame["ft_fraction"].min()]
    early = first["cross_task_percent"].mean()
    final = frame.loc[frame["ft_fraction"] == 1.0, "cross_task_percent"].mean()
    if np.isfinite(early) and np.isfinite(final):
        parts.append(f"mean cross-task change {percent(early)} at the first point "
                     f"({first['ft_fraction'].iloc[0]:g}) and {percent(final)} at the end")
    gain = frame.loc[frame["ft_fraction"] == 1.0, "in_domain_gain"].mean()
    return "; ".join(parts) + f" (mean final gain {num(gain)})."
