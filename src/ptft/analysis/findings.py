"""The study's four findings as verdicts, defined in docs/method.md ("The four findings as verdicts").

Each finding is a statistic with a 95 % interval and a verdict: ``supported`` (the interval lies
on the claimed side of the threshold), ``contradicted`` (on the other side), ``inconclusive`` (it
contains the threshold) or ``untestable`` (the table cannot give the statistic or its interval;
the evidence says why). The same code applies to every table; nothing here depends on a run.

Findings 1, 2 and 4 combine cell values, and their intervals are normal ones built from each
cell's standard error (its evaluation CI, else its example count). Finding 3 is the MRC analysis'
own bootstrap interval.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.changes import RATIO_EPS
from ptft.analysis.forgetting import DIRECTIONS, mrc, mrc_ratios, mrc_totals
from ptft.analysis.formats import format_sensitivity
from ptft.analysis.gain import gain
from ptft.analysis.groups import FINETUNING, PRETRAINING, groups
from ptft.analysis.slices import (BASE, CELL, Slice, cell_se, checkpoint_order, comparable, own_sets,
                                  sort_by_checkpoint)
from ptft.analysis.stats import Z
from ptft.analysis.table import Source, load_table
from ptft.analysis.text import ci, num, percent

TITLE = "The study's four findings"
EMPTY = "never empty: a finding the table cannot test is reported as untestable"
COLUMNS = ["finding", "statistic", "value", "ci_low", "ci_high", "verdict", "evidence"]
DETAIL_COLUMNS = ["finding", "quantity", "group", "checkpoint", "step", "train_task", "eval_set", "value",
                  "ci_low", "ci_high"]
SUPPORTED, CONTRADICTED, INCONCLUSIVE, UNTESTABLE = "supported", "contradicted", "inconclusive", "untestable"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, UNTESTABLE)
# "Far smaller" in finding 3: generation fine-tuning may cost classification at most this share of
# what classification fine-tuning costs generation. Fixed a priori (docs/method.md).
FAR_SMALLER = 0.25
CLAIMS = {
    1: "latent gains: the fine-tuned metric rises with pre-training on the sets learned in fine-tuning",
    2: "two groups: sets learned in fine-tuning gain more from it than sets learned in pre-training",
    3: "forgetting is asymmetric: classification fine-tuning hurts generation, not the reverse",
    4: "format sensitivity after fine-tuning falls with pre-training",
}
STATISTICS = {
    1: "mean FT rise (last - first checkpoint) on the sets learned in fine-tuning",
    2: "mean gain, sets learned in fine-tuning minus sets learned in pre-training",
    3: "MRC classification->generation (%)",
    4: "mean FT spread across formats, late minus early checkpoints",
}
SHORT = {1: "latent gains", 2: "two groups", 3: "asymmetric forgetting", 4: "format sensitivity"}
# The analysis whose figure and table show each finding's data in full.
BEHIND = {1: "trajectory", 2: "groups", 3: "mrc", 4: "format_sensitivity"}
NO_INTERVAL = "no interval: some cells have neither ci_low/ci_high nor n (a table published without them)"


@dataclass(frozen=True)
class Finding:
    finding: int
    value: float
    ci_low: float
    ci_high: float
    verdict: str
    evidence: str

    @property
    def statistic(self) -> str:
        return STATISTICS[self.finding]

    def row(self) -> dict:
        return dict(finding=self.finding, statistic=self.statistic, value=self.value, ci_low=self.ci_low,
                    ci_high=self.ci_high, verdict=self.verdict, evidence=self.evidence)


def verdict(low: float, high: float, *, above: bool) -> str:
    """``supported`` when [low, high] lies strictly on the claimed side of 0 (above it when
    ``above``), ``contradicted`` when strictly on the other side, else ``inconclusive``;
    ``untestable`` without an interval."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return UNTESTABLE
    if low > 0:
        return SUPPORTED if above else CONTRADICTED
    if high < 0:
        return CONTRADICTED if above else SUPPORTED
    return INCONCLUSIVE


def findings(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS) -> pd.DataFrame:
    """The four findings' rows (``COLUMNS``), in order."""
    return evaluate(table, sl, seed=seed, eps=eps)[0]


def evaluate(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The findings' rows and the detail behind them (``DETAIL_COLUMNS``: every value that enters
    a statistic, with its 95 % interval), for findings_detail.csv and the figure."""
    table = load_table(table)
    cells, _ = comparable(table, sl)
    cells = cells.assign(se=cell_se(cells))
    grouped = groups(table, sl, seed=seed, eps=eps)
    parts = [
        _latent_gains(cells, grouped, sl),
        _two_groups(cells, grouped, gain(table, sl, seed=seed, eps=eps)),
        _asymmetric_forgetting(cells, mrc(table, sl, seed=seed, eps=eps), mrc_ratios(table, sl, eps=eps)),
        _format_sensitivity(cells, format_sensitivity(table, sl, seed=seed)),
    ]
    rows = pd.DataFrame([f.row() for f, _ in parts], columns=COLUMNS)
    details = [d for _, d in parts if not d.empty]
    detail = pd.concat(details, ignore_index=True)[DETAIL_COLUMNS] if details else pd.DataFrame(columns=DETAIL_COLUMNS)
    return rows, detail


def _normal(value: float, variance: float) -> tuple[float, float]:
    if not np.isfinite(variance):
        return np.nan, np.nan
    half = Z * float(np.sqrt(variance))
    return value - half, value + half


def _untestable(finding: int, why: str) -> tuple[Finding, pd.DataFrame]:
    return Finding(finding, np.nan, np.nan, np.nan, UNTESTABLE, why), pd.DataFrame(columns=DETAIL_COLUMNS)


def _tested(finding: int, value: float, variance: float, above: bool, evidence: str,
            detail: pd.DataFrame) -> tuple[Finding, pd.DataFrame]:
    low, high = _normal(value, variance)
    if not np.isfinite(low):
        return Finding(finding, value, low, high, UNTESTABLE, f"{NO_INTERVAL}; {evidence}"), detail
    return Finding(finding, value, low, high, verdict(low, high, above=above), evidence), detail


def _table_gap(cells: pd.DataFrame, *, base: bool = True) -> str | None:
    """Why a table without BASE rows or with fewer than two checkpoints cannot test a finding."""
    if cells.empty:
        return "the results table is empty"
    if base and not (cells["train_task"] == BASE).any():
        return "no BASE rows: nothing to compare the fine-tuned models with"
    if cells["checkpoint"].nunique() < 2:
        return f"one checkpoint only ({cells['checkpoint'].iloc[0]}): no pre-training axis"
    return None


def _detail(finding: int, quantity: str, frame: pd.DataFrame, value: str, se: str, group: str | pd.Series = ""
            ) -> pd.DataFrame:
    out = pd.DataFrame({
        "finding": finding, "quantity": quantity, "group": group, "checkpoint": frame["checkpoint"],
        "step": frame["step"], "train_task": frame["train_task"], "eval_set": frame["eval_set"],
        "value": frame[value].astype(float)})
    half = Z * frame[se].astype(float)
    return out.assign(ci_low=out["value"] - half, ci_high=out["value"] + half)[DETAIL_COLUMNS]


def _groups_gap(cells: pd.DataFrame, grouped: pd.DataFrame) -> str | None:
    """Why the groups of findings 1 and 2 are unknown: a table gap, or a set whose BASE rise has no
    interval (the groups analysis then puts it in the fine-tuning group by default)."""
    gap = _table_gap(cells)
    if gap:
        return gap
    blind = grouped.loc[(grouped["eval_set"] != "") & (grouped["ci_source"] == "none"), "eval_set"].tolist()
    if blind:
        return f"{NO_INTERVAL}: the BASE rise of {', '.join(blind)} has no interval, so its group is unknown"
    return None


def _latent_gains(cells: pd.DataFrame, grouped: pd.DataFrame, sl: Slice) -> tuple[Finding, pd.DataFrame]:
    gap = _groups_gap(cells, grouped)
    if gap:
        return _untestable(1, gap)
    sets = grouped.loc[(grouped["eval_set"] != "") & (grouped["group"] == FINETUNING), "eval_set"].tolist()
    if not sets:
        learned = grouped.loc[grouped["eval_set"] != "", "eval_set"].tolist()
        return _untestable(1, "no in-domain set is learned in fine-tuning (BASE rises clearly on every one: "
                              f"{', '.join(learned) or 'none with BASE at two checkpoints'})")
    ft = cells[own_sets(cells) & (cells["format"] == sl.fmt) & cells["eval_set"].isin(sets)]
    rises, variance, names, series = [], 0.0, [], []
    for (task, eval_set), g in ft.groupby(["train_task", "eval_set"], sort=True):
        g = sort_by_checkpoint(g, [])
        if len(g) < 2:
            continue
        first, last = g.iloc[0], g.iloc[-1]
        rises.append(last["value"] - first["value"])
        variance += first["se"] ** 2 + last["se"] ** 2
        names.append(f"{task}/{eval_set} {num(first['value'], '.3f')} at {first['checkpoint']} -> "
                     f"{num(last['value'], '.3f')} at {last['checkpoint']}")
        series.append(g)
    if not rises:
        return _untestable(1, f"no fine-tuned series at two checkpoints on the sets learned in fine-tuning "
                              f"({', '.join(sets)})")
    value = float(np.mean(rises))
    detail = _detail(1, "ft", pd.concat(series), "value", "se")
    return _tested(1, value, variance / len(rises) ** 2, True, "FT " + "; ".join(names), detail)


def _two_groups(cells: pd.DataFrame, grouped: pd.DataFrame, gains: pd.DataFrame) -> tuple[Finding, pd.DataFrame]:
    gap = _groups_gap(cells, grouped)
    if gap:
        return _untestable(2, gap)
    membership = grouped[grouped["eval_set"] != ""].set_index("eval_set")["group"]
    rows = gains[(gains["eval_set"] != "") & gains["eval_set"].isin(membership.index)]
    if rows.empty:
        return _untestable(2, "no fine-tuned rows on in-domain sets with BASE at two checkpoints: no gains")
    se = cells.set_index(CELL)["se"]
    ft_se = se.reindex(pd.MultiIndex.from_frame(rows[CELL])).to_numpy()
    base_se = se.reindex(pd.MultiIndex.from_frame(rows[CELL].assign(train_task=BASE))).to_numpy()
    rows = rows.assign(group=rows["eval_set"].map(membership), se=np.hypot(ft_se, base_se))
    means, variances, texts = {}, {}, []
    for group in (FINETUNING, PRETRAINING):
        mine = rows[rows["group"] == group]
        if mine.empty:
            sets = ", ".join(f"{s} ({g})" for s, g in membership.sort_index().items())
            return _untestable(2, f"no set learned in {group} with fine-tuning gains (in-domain sets, learned in: "
                                  f"{sets})")
        per_set = mine.groupby("eval_set").agg(gain=("raw_change", "mean"),
                                               var=("se", lambda s: (s ** 2).sum(skipna=False)),
                                               m=("se", "size"))
        means[group] = float(per_set["gain"].mean())
        variances[group] = float((per_set["var"] / per_set["m"] ** 2).sum(skipna=False) / len(per_set) ** 2)
        texts.append(f"learned in {group}: " + ", ".join(f"{s} {num(g)}" for s, g in per_set["gain"].items()))
    value = means[FINETUNING] - means[PRETRAINING]
    detail = _detail(2, "gain", rows, "raw_change", "se", rows["group"])
    order = checkpoint_order(rows)
    evidence = (f"mean gain per set over {len(order)} checkpoints ({order[0]} to {order[-1]}): " + "; ".join(texts))
    return _tested(2, value, variances[FINETUNING] + variances[PRETRAINING], True, evidence, detail)


def _asymmetric_forgetting(cells: pd.DataFrame, frame: pd.DataFrame, ratios: pd.DataFrame
                           ) -> tuple[Finding, pd.DataFrame]:
    if cells.empty or not (cells["train_task"] == BASE).any():
        return _untestable(3, _table_gap(cells) or "no BASE rows")
    totals = mrc_totals(frame).set_index("direction")
    cg, gc = DIRECTIONS
    for direction in DIRECTIONS:
        if direction not in totals.index:
            trained, scored = direction.split("->")
            return _untestable(3, f"no {direction} ratios: needs a {trained} training task evaluated on a {scored} "
                                  "task's in-domain set, with BASE rows")
        if not np.isfinite(totals.loc[direction, "ci_low"]):
            left_out = int(totals.loc[direction, "n_excluded"])
            return _untestable(3, f"{direction}: {int(totals.loc[direction, 'n'])} ratio(s)"
                                  + (f" ({left_out} more left out: |BASE| below the ratio guard)" if left_out else "")
                                  + ", too few for an interval")
    c, g = totals.loc[cg], totals.loc[gc]
    bound = FAR_SMALLER * c["mrc_percent"]
    if c["ci_low"] > 0 or (bound < 0 and g["ci_high"] < bound):
        result = CONTRADICTED
    elif c["ci_high"] < 0 and (g["ci_high"] >= 0 or g["ci_low"] >= bound):
        result = SUPPORTED
    else:
        result = INCONCLUSIVE
    pairs = frame[frame["train_task"] != ""]
    order = checkpoint_order(ratios)
    evidence = f"over {len(order)} checkpoint(s) ({order[0]} to {order[-1]}): " + "; ".join(
        f"{d} {percent(r['mrc_percent'])} ({ci(r['ci_low'], r['ci_high'], '+.1f')}, n={int(r['n'])} ratios over "
        + ", ".join(f"{p.train_task}->{p.eval_set}" for p in pairs[pairs["direction"] == d].itertuples()) + ")"
        for d, r in ((cg, c), (gc, g))) + f"; far-smaller bound {FAR_SMALLER:g} x MRC_cg = {percent(bound)}"
    detail = pd.DataFrame([dict(finding=3, quantity="mrc_percent", group=d, checkpoint="", step=pd.NA,
                                train_task=r.train_task, eval_set=r.eval_set, value=r.mrc_percent, ci_low=r.ci_low,
                                ci_high=r.ci_high) for d, r in zip(frame["direction"], frame.itertuples())]
                          + [dict(finding=3, quantity="far_smaller_bound", group=gc, checkpoint="", step=pd.NA,
                                  train_task="", eval_set="", value=bound, ci_low=np.nan, ci_high=np.nan)],
                          columns=DETAIL_COLUMNS)
    return Finding(3, float(c["mrc_percent"]), float(c["ci_low"]), float(c["ci_high"]), result, evidence), detail


def _format_sensitivity(cells: pd.DataFrame, frame: pd.DataFrame) -> tuple[Finding, pd.DataFrame]:
    gap = _table_gap(cells, base=False)
    if gap:
        return _untestable(4, gap)
    spreads = frame[(frame["model"] == "FT") & (frame["eval_set"] != "")] if not frame.empty else frame
    if spreads.empty:
        ft_formats = sorted(cells.loc[cells["train_task"] != BASE, "format"].unique())
        return _untestable(4, "no fine-tuned model scored in two or more formats on its own task's sets "
                              f"(formats present: {', '.join(ft_formats) or 'no fine-tuned rows'})")
    key = ["checkpoint", "train_task", "eval_set", "method", "metric"]
    ft = cells[own_sets(cells)]
    ends = [ft.loc[ft.groupby(key)[["value"]].idxmax()["value"]], ft.loc[ft.groupby(key)[["value"]].idxmin()["value"]]]
    se = np.hypot(*(e.set_index(key)["se"].reindex(pd.MultiIndex.from_frame(spreads[key])).to_numpy() for e in ends))
    spreads = spreads.assign(se=se)
    order = checkpoint_order(spreads)
    half = len(order) // 2
    if half < 1:
        return _untestable(4, f"fine-tuned spreads at one checkpoint only ({order[0]})")
    early, late = order[:half], order[len(order) - half:]
    part = {name: spreads[spreads["checkpoint"].isin(cps)] for name, cps in (("early", early), ("late", late))}
    value = float(part["late"]["spread"].mean() - part["early"]["spread"].mean())
    # skipna=False: one cell without a standard error leaves the statistic without an interval.
    variance = sum(float((p["se"] ** 2).sum(skipna=False)) / len(p) ** 2 for p in part.values())
    group = spreads["checkpoint"].map({**{c: "early" for c in early}, **{c: "late" for c in late}}).fillna("")
    detail = _detail(4, "spread", spreads, "spread", "se", group)
    names = sorted(spreads["eval_set"].unique())
    evidence = (f"FT spread over {len(names)} set(s) ({', '.join(names)}): "
                f"early {', '.join(early)} {num(part['early']['spread'].mean(), '.3f')}, "
                f"late {', '.join(late)} {num(part['late']['spread'].mean(), '.3f')}")
    return _tested(4, value, variance, False, evidence, detail)


def reading(frame: pd.DataFrame) -> str:
    def numbers(r) -> str:
        return r.evidence if r.verdict == UNTESTABLE else f"{num(r.value, '+.3g')}, {ci(r.ci_low, r.ci_high, '+.3g')}"

    return " ".join(f"Finding {r.finding}: {r.verdict} ({numbers(r)})." for r in frame.itertuples())


def verdict_line(row: pd.Series) -> str:
    """One finding as a line of plain text, for the terminal."""
    number = int(row["finding"])
    numbers = row["evidence"] if row["verdict"] == UNTESTABLE else \
        f"{num(row['value'], '+.3g')} {ci(row['ci_low'], row['ci_high'], '+.3g')}"
    return f"finding {number} ({SHORT[number]}): {row['verdict']}, {numbers}"


def headline(row: pd.Series) -> str:
    """One finding as a line of markdown: the claim, the verdict, the statistic and its interval."""
    number = int(row["finding"])
    return (f"{number}. {CLAIMS[number]}: **{row['verdict']}**. {row['statistic']} = {num(row['value'], '+.3g')} "
            f"({ci(row['ci_low'], row['ci_high'], '+.3g')}). Evidence: {row['evidence']}.")


def figure(frame: pd.DataFrame, detail: pd.DataFrame) -> Figure:
    """Four panels, one per finding, each with the values its statistic is made of."""
    fig = Figure(figsize=(13.0, 9.0), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    fig.suptitle(TITLE)
    verdicts = frame.set_index("finding")
    drawers = {1: _panel_latent, 2: _panel_groups, 3: _panel_mrc, 4: _panel_formats}
    for ax, (number, draw) in zip(axes, drawers.items()):
        row = verdicts.loc[number]
        ax.set_title(f"{number}. {SHORT[number]}: {row['verdict']}\n{num(row['value'], '+.3g')} "
                     f"({ci(row['ci_low'], row['ci_high'], '+.3g')})", fontsize="medium")
        mine = detail[detail["finding"] == number]
        if mine.empty:
            ax.text(0.5, 0.5, textwrap.fill(row["evidence"], 60), ha="center", va="center", fontsize="small",
                    transform=ax.transAxes)
            ax.set_axis_off()
            continue
        draw(ax, mine)
    return fig


def _panel_latent(ax, detail: pd.DataFrame) -> None:
    axis = plots.StepAxis(detail)
    plots.draw_lines(ax, detail, axis, "value", ["train_task", "eval_set"], lo="ci_low", hi="ci_high")
    plots.finish(ax, ylabel="FT metric on sets learned in fine-tuning", axis=axis)


def _panel_groups(ax, detail: pd.DataFrame) -> None:
    axis = plots.StepAxis(detail)
    means = (detail.groupby(["group", "checkpoint"], sort=False)
             .agg(value=("value", "mean"), step=("step", "first")).reset_index())
    plots.draw_lines(ax, means.assign(group="learned in " + means["group"]), axis, "value", ["group"])
    plots.finish(ax, ylabel="mean gain FT - BASE", zero=True, axis=axis)


def _panel_mrc(ax, detail: pd.DataFrame) -> None:
    totals = detail[(detail["quantity"] == "mrc_percent") & (detail["train_task"] == "")]
    y = np.arange(len(totals))[::-1]
    for i, (yi, r) in enumerate(zip(y, totals.itertuples())):
        look = plots.style(i)
        ax.errorbar([r.value], [yi], xerr=[[r.value - r.ci_low], [r.ci_high - r.value]], marker=look["marker"],
                    color=look["color"], markersize=9, capsize=4, linestyle="none")
    ax.set_yticks(y, totals["group"].tolist())
    bound = detail.loc[detail["quantity"] == "far_smaller_bound", "value"]
    ax.axvline(0, color="0.5", linewidth=0.8)
    if not bound.empty:
        ax.axvline(float(bound.iloc[0]), color="0.3", linestyle="--", linewidth=1,
                   label=f"{FAR_SMALLER:g} x MRC classification->generation")
        ax.legend(fontsize="small")
    ax.set_ylim(-0.7, len(totals) - 0.3)
    ax.set_xlabel("MRC (%), 95% bootstrap CI")
    ax.grid(True, axis="x", color="0.9")


def _panel_formats(ax, detail: pd.DataFrame) -> None:
    axis = plots.StepAxis(detail)
    plots.draw_lines(ax, detail, axis, "value", ["train_task", "eval_set"])
    means = (detail.groupby("checkpoint", sort=False).agg(value=("value", "mean"), step=("step", "first"),
                                                        group=("group", "first")).reset_index())
    plots.draw_lines(ax, means.assign(_all="mean over sets"), axis, "value", ["_all"], mean=True)
    # A wide translucent line per checkpoint rather than a span: a half may hold one checkpoint.
    for half, color in (("early", "tab:blue"), ("late", "tab:orange")):
        for i, x in enumerate(axis.positions(means.loc[means["group"] == half, "checkpoint"])):
            ax.axvline(x, color=color, alpha=0.2, linewidth=10, label=f"{half} half" if i == 0 else None)
    plots.finish(ax, ylabel="FT spread across formats (max - min)", axis=axis)
