"""Learning vs forgetting per fine-tuning method (Biderman et al. 2024): per method, variant and
checkpoint, the in-domain gain (what fine-tuning learns) against the cross-task MRC in both
directions and the out-of-domain change (what it forgets), each with its bootstrap CI.

A method is a value of the table's ``ft_method`` column (a table without it was fine-tuned in
full: 'full'); a variant is the model as trained (``none``) or LiNeS-edited (``lines``), labelled
``full+lines``. Each (method, variant) is compared with the same BASE rows by the gain and
forgetting analyses themselves (``gain``, ``forgetting``), so the numbers are theirs.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import forgetting, gain, plots
from ptft.analysis.changes import RATIO_EPS
from ptft.analysis.slices import BASE, Slice, sort_by_checkpoint
from ptft.analysis.stats import bootstrap_mean
from ptft.analysis.table import Source, load_table
from ptft.analysis.text import ci, num, percent
from ptft.grid import FULL, graft_percent

TITLE = "Learning vs forgetting per fine-tuning method"
EMPTY = "no fine-tuned rows with a BASE row to compare"
DEFAULT_METHOD = FULL
# measure -> (what it is, its unit in the table)
MEASURES = {
    "gain": "in-domain gain FT - BASE (raw)",
    "mrc classification->generation": "MRC classification->generation (%)",
    "mrc generation->classification": "MRC generation->classification (%)",
    "ood": "out-of-domain change ratio (%)",
}
COLUMNS = ["method", "ft_method", "variant", "measure", "checkpoint", "step", "value", "ci_low", "ci_high", "n"]


def methods(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS) -> pd.DataFrame:
    """One row per (method label, measure, checkpoint); ``sl.variant`` and ``sl.ft_method`` are
    ignored (every method, and every variant the fine-tuned rows have at ``sl.ft_fraction``, is a
    method label of its own). Gain is the mean raw change over the task's own in-domain sets
    (CI resampling them), MRC and OOD the mean change ratio in percent (CI resampling the ratios
    of that checkpoint; a checkpoint whose every ratio was guarded out has no row)."""
    out = []
    for method, part in by_method(table).items():
        checked = load_table(part)
        # LiNeS edits the final model only: the variants at this slice's point of fine-tuning
        at_point = (checked["train_task"] != BASE) & ((checked["ft_fraction"] - sl.ft_fraction).abs() < 1e-9)
        # grafts have their own analysis (grafting.py): one label per share would crowd this one
        for variant in sorted(v for v in set(checked.loc[at_point, "variant"]) if graft_percent(v) is None):
            label = method if variant == "none" else f"{method}+{variant}"
            mine = replace(sl, variant=variant, ft_method=method)
            for r in gain.checkpoint_means(gain.gain(part, mine, seed=seed, eps=eps)).itertuples():
                out.append(_row(label, method, variant, "gain", r.checkpoint, r.step, r.raw_change, r.ci_low,
                                r.ci_high, r.n))
            ratios = forgetting.mrc_ratios(part, mine, eps=eps)
            for (direction, checkpoint), g in ratios.groupby(["direction", "checkpoint"], sort=False):
                est = bootstrap_mean(100 * g["change_ratio"].dropna().to_numpy(), seed=seed)
                if est.n:
                    out.append(_row(label, method, variant, f"mrc {direction}", checkpoint, g["step"].iloc[0],
                                    est.mean, est.ci_low, est.ci_high, est.n))
            ood = forgetting.ood(part, mine, seed=seed, eps=eps)
            if not ood.empty:
                for r in ood[(ood["eval_set"] == "") & (ood["checkpoint"] != "")].itertuples():
                    out.append(_row(label, method, variant, "ood", r.checkpoint, r.step, 100 * r.change_ratio,
                                    100 * r.ci_low, 100 * r.ci_high, r.n))
    frame = pd.DataFrame(out, columns=COLUMNS)
    if frame.empty:
        return frame
    frame = frame.assign(_m=frame["measure"].map(list(MEASURES).index))
    return sort_by_checkpoint(frame, ["_m", "method"]).drop(columns="_m")


def by_method(table: Source) -> dict[str, pd.DataFrame]:
    """The table split by ``ft_method`` ('full' where the column is absent or blank), each part
    with every BASE row (BASE is not fine-tuned by any method)."""
    frame = table if isinstance(table, pd.DataFrame) else load_table(table)
    if "ft_method" not in frame.columns:
        return {DEFAULT_METHOD: frame}
    is_base = frame["train_task"].map(_text) == BASE
    method = frame["ft_method"].map(_text).replace("", DEFAULT_METHOD)
    return {m: pd.concat([frame[is_base], frame[~is_base & (method == m)]]) for m in sorted(method[~is_base].unique())}


def _text(value) -> str:
    return "" if pd.isna(value) else str(value)


def _row(label, method, variant, measure, checkpoint, step, value, low, high, n) -> dict:
    return dict(method=label, ft_method=method, variant=variant, measure=measure, checkpoint=checkpoint, step=step,
                value=float(value), ci_low=float(low), ci_high=float(high), n=int(n))


def figure(frame: pd.DataFrame) -> Figure:
    present = [m for m in MEASURES if (frame["measure"] == m).any()]
    fig, axes = plots.panels(len(present), TITLE, width=5.0)
    axis = plots.StepAxis(frame)
    for ax, measure in zip(axes, present):
        plots.draw_lines(ax, frame[frame["measure"] == measure], axis, "value", ["method"], lo="ci_low",
                         hi="ci_high")
        plots.finish(ax, ylabel=MEASURES[measure], zero=True, axis=axis)
    return fig


def headlines(frame: pd.DataFrame) -> list[str]:
    """Per method: each measure averaged over checkpoints, one line (summary.md)."""
    lines = []
    for method, mine in frame.groupby("method", sort=True):
        parts = []
        for measure in MEASURES:
            values = mine.loc[mine["measure"] == measure, "value"]
            if values.empty:
                continue
            mean = float(values.mean())
            parts.append(f"{measure} {num(mean) if measure == 'gain' else percent(mean)}")
        lines.append(f"{method}: " + ", ".join(parts) + f" (mean over {mine['checkpoint'].nunique()} checkpoints)")
    return lines


def reading(frame: pd.DataFrame) -> str:
    """Which method learns most and which forgets least at the last checkpoint they share."""
    last = sort_by_checkpoint(frame, [])["checkpoint"].iloc[-1]
    at = frame[frame["checkpoint"] == last]
    parts = []
    learned = at[at["measure"] == "gain"]
    if not learned.empty:
        best = learned.loc[learned["value"].idxmax()]
        parts.append(f"{best['method']} learns most ({num(best['value'])}, {ci(best['ci_low'], best['ci_high'])})")
    forgot = at[at["measure"] != "gain"]
    if not forgot.empty:
        mean = forgot.groupby("method")["value"].mean()
        parts.append(f"{mean.idxmax()} forgets least (mean of its MRC and out-of-domain changes "
                     f"{percent(mean.max())})")
    if len(frame["method"].unique()) < 2:
        parts.append("one method only: nothing to compare")
    return f"At {last}: " + "; ".join(parts) + "."
