"""Could we have predicted it? How well each proxy measured before fine-tuning orders the
checkpoints by their fine-tuned result, and whether the last checkpoint fine-tunes worse than an
earlier one (catastrophic overtraining). Definitions: docs/method.md, "Predicting fine-tuning from
proxies".

Proxies per (checkpoint, eval set): ``base`` (the few-shot BASE metric of the slice, always
there) and the proxy rows of the table (method ``probe``): model-level ones (eval_set '') apply to
every eval set, per-set ones (``gold_loglik``) to their set, at the slice's shots (else the
largest shots they were measured at). Targets: ``ft``, the fine-tuned metric on the training
task's own in-domain set, and ``gain`` = FT - BASE. Instruction tuning has no task of its own and
is left out of the prediction (it is in overtraining.csv).
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import optimize, stats

from ptft.analysis import plots
from ptft.analysis.stats import LEVEL, se_from_ci
from ptft.analysis.slices import (BASE, Slice, cell_se, checkpoint_order, comparable, ft_methods,
                                  own_sets)
from ptft.analysis.table import Source, is_proxy, load_table, study_rows
from ptft.analysis.text import num
from ptft.grid import INSTRUCT_TRAIN_TASK

TITLE = "Could we have predicted it? Proxies before fine-tuning vs the fine-tuned metric"
EMPTY = "no checkpoint has both a proxy and a fine-tuned result on its training task's own in-domain set"
COLUMNS = ["eval_set", "proxy", "target", "n_checkpoints", "spearman", "kendall", "pairwise_accuracy",
           "ci_low", "ci_high", "spearman_ci_low", "spearman_ci_high", "kendall_ci_low", "kendall_ci_high"]
# ``*_se``: the standard errors of the values, from their CIs (else the example count for FT and BASE)
POINT_COLUMNS = ["train_task", "eval_set", "checkpoint", "step", "proxy", "proxy_value", "ft", "gain",
                 "proxy_se", "ft_se", "base_se"]
TARGETS = ("ft", "gain")
# +1: a higher value predicts a better fine-tuned model; -1: a lower one (losses, sensitivity).
# A proxy not listed here (an imported one) counts as higher-is-better. The representation geometry
# is oriented as its authors read it (more directions in use: a higher RankMe, a slower decay, a
# lower alpha-ReQ); the pairwise accuracy says whether it predicts, below 0.5 the other way round.
ORIENTATION = {"base": 1, "gold_loglik": 1, "heldout_loss": -1, "sensitivity": -1, "rankme": 1, "alpha_req": -1}
N_BOOT = 1000
# Values are compared after rounding to this many decimals: FT - BASE of two equal gains differs
# in the last bits (0.7 - 0.4 != 0.8 - 0.5), and such a difference is a tie, not an ordering.
DECIMALS = 12
# the method column of a table with several fine-tuning methods (see _per_method)
METHOD_COLUMNS = ("ft_method",)

OVERTRAINING_TITLE = "Catastrophic overtraining: the last checkpoint against the earlier ones"
OVERTRAINING_EMPTY = "no training task has fine-tuned results at two or more checkpoints"
OVERTRAINING_COLUMNS = ["train_task", "scope", "eval_set", "metric", "n_checkpoints", "last_checkpoint", "last_value",
                        "best_checkpoint", "best_value", "shortfall", "z", "critical_z", "threshold", "overtrained"]
FAMILIAR, OTHER = "familiar", "other"
# One-sided, the upper tail a 95 % interval leaves out: the rate of false alarms on a series that
# does not decline, whatever its length.
ALPHA = (1 - LEVEL) / 2
# Gauss-Hermite nodes and weights for an expectation over a standard normal (decline_critical)
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(96)
_WEIGHTS = _WEIGHTS / np.sqrt(2 * np.pi)


def orientation(proxy: str) -> int:
    return ORIENTATION.get(proxy, 1)


def _methods(frame: pd.DataFrame) -> list[str]:
    return [c for c in METHOD_COLUMNS if c in frame.columns]


def pair_scores(proxy: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Matrix of pair outcomes: 1 where the proxy orders checkpoints i and j as the target does,
    0 where it reverses them, 1/2 where either ties."""
    dp = np.sign(proxy[:, None] - proxy[None, :])
    dt = np.sign(target[:, None] - target[None, :])
    return np.where((dp == 0) | (dt == 0), 0.5, (dp == dt).astype(float))


def pairwise_accuracy(proxy, target) -> float:
    """Share of checkpoint pairs ordered alike by the (oriented) proxy and the target."""
    p, t = np.asarray(proxy, float), np.asarray(target, float)
    if len(p) < 2:
        return np.nan
    return float(pair_scores(p, t)[np.triu_indices(len(p), 1)].mean())


def noisy(values: np.ndarray, se: np.ndarray, rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """``n_boot`` copies of a series (rows), each value moved by normal noise of its standard error:
    the evaluation noise a replicate of the series would carry. An unknown se adds none."""
    values, se = np.asarray(values, float), np.nan_to_num(np.asarray(se, float))
    return values + se * rng.standard_normal((n_boot, len(values)))


def ordering_intervals(proxy: np.ndarray, target: np.ndarray, seed: int, n_boot: int = N_BOOT
                       ) -> dict[str, tuple[float, float]]:
    """95 % percentile intervals of the pairwise accuracy, Kendall's tau-b and Spearman's rho.
    ``proxy`` and ``target`` are series over the same checkpoints, one per replicate (``n_boot``
    rows; see :func:`noisy`) or a single one for every replicate. Each replicate resamples *checkpoints* with
    replacement (one draw shared by proxy and target, a copy keeping its value). Pairwise accuracy
    and tau-b count the pairs of two distinct original checkpoints (a checkpoint paired with its
    own copy says nothing about an ordering); rho is that of the resampled series. A replicate
    with fewer than two distinct checkpoints, or a constant series, gives no value."""
    p, t = np.atleast_2d(np.asarray(proxy, float)), np.atleast_2d(np.asarray(target, float))
    k = p.shape[1]
    if k < 2:
        return {name: (np.nan, np.nan) for name in ("pairwise_accuracy", "kendall", "spearman")}
    p, t = np.broadcast_to(p, (n_boot, k)), np.broadcast_to(t, (n_boot, k))
    idx = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
    ps, ts = np.take_along_axis(p, idx, 1), np.take_along_axis(t, idx, 1)
    dp = np.sign(ps[:, :, None] - ps[:, None, :])
    dt = np.sign(ts[:, :, None] - ts[:, None, :])
    keep = np.triu(np.ones((k, k), bool), 1) & (idx[:, :, None] != idx[:, None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = np.where((dp == 0) | (dt == 0), 0.5, (dp == dt).astype(float))
        accuracy = (agree * keep).sum(axis=(1, 2)) / keep.sum(axis=(1, 2))
        kendall = (dp * dt * keep).sum(axis=(1, 2)) / np.sqrt((np.abs(dp) * keep).sum(axis=(1, 2))
                                                              * (np.abs(dt) * keep).sum(axis=(1, 2)))
        rp, rt = stats.rankdata(ps, axis=1), stats.rankdata(ts, axis=1)
        rp, rt = rp - rp.mean(axis=1, keepdims=True), rt - rt.mean(axis=1, keepdims=True)
        spearman = (rp * rt).sum(axis=1) / np.sqrt((rp ** 2).sum(axis=1) * (rt ** 2).sum(axis=1))

    def interval(values: np.ndarray) -> tuple[float, float]:
        values = values[np.isfinite(values)]
        if not values.size:
            return np.nan, np.nan
        low, high = np.percentile(values, [2.5, 97.5])
        return float(low), float(high)

    return {"pairwise_accuracy": interval(accuracy), "kendall": interval(kendall), "spearman": interval(spearman)}


def _correlation(fn, x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan  # undefined for a constant series
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(x, y).statistic)


def _per_method(table: pd.DataFrame, sl: Slice, compute) -> list[pd.DataFrame]:
    """``compute(table, slice)``'s frames for the slice's method; where the slice names none and
    the table's fine-tuned rows have several methods, for each method, concatenated, with the
    method as a first column (``ft_method``)."""
    methods = ft_methods(study_rows(table))
    if sl.ft_method is not None or len(methods) < 2:
        return list(compute(table, sl))
    parts = [compute(table, replace(sl, ft_method=m)) for m in methods]
    return [pd.concat([frames[i].assign(ft_method=m) for frames, m in zip(parts, methods)], ignore_index=True)
            .pipe(lambda f: f[["ft_method"] + [c for c in f.columns if c != "ft_method"]])
            for i in range(len(parts[0]))]


def _targets(cells: pd.DataFrame, sl: Slice) -> pd.DataFrame:
    """Per (train task, eval set, checkpoint): the fine-tuned metric on the task's own in-domain
    set, its BASE value and the gain, in the slice's format."""
    cells = cells[cells["format"] == sl.fmt]
    key = ["checkpoint", "eval_set", "format", "shots", "method", "metric"]
    cells = cells.assign(se=cell_se(cells))
    ft = cells[own_sets(cells) & (cells["train_task"] != INSTRUCT_TRAIN_TASK)]
    base = cells[cells["train_task"] == BASE][key + ["value", "se"]].rename(columns={"value": "base", "se": "base_se"})
    out = ft.merge(base, on=key, how="left").rename(columns={"value": "ft", "se": "ft_se"})
    out["gain"] = out["ft"] - out["base"]
    return out[["train_task", "eval_set", "checkpoint", "step", "ft", "base", "gain", "ft_se", "base_se"]]


def _proxy_values(table: pd.DataFrame, targets: pd.DataFrame, shots: int | None) -> pd.DataFrame:
    """(checkpoint, eval_set, proxy, proxy_value, proxy_se) for the targets' eval sets."""
    parts = [targets[["checkpoint", "eval_set", "base", "base_se"]].drop_duplicates(["checkpoint", "eval_set"])
             .rename(columns={"base": "proxy_value", "base_se": "proxy_se"}).assign(proxy="base")]
    rows = table[is_proxy(table)]
    rows = rows.assign(proxy_se=se_from_ci(rows["ci_low"].astype(float), rows["ci_high"].astype(float)))
    model_level = rows[rows["eval_set"] == ""]
    if not model_level.empty:
        sets = targets[["checkpoint", "eval_set"]].drop_duplicates()
        parts.append(model_level[["checkpoint", "metric", "value", "proxy_se"]]
                     .rename(columns={"metric": "proxy", "value": "proxy_value"}).merge(sets, on="checkpoint"))
    per_set = rows[rows["eval_set"] != ""]
    if not per_set.empty:
        at = per_set.groupby(["eval_set", "metric"])["shots"].transform(
            lambda s: shots if shots in set(s) else s.max())
        per_set = per_set[per_set["shots"] == at]
        parts.append(per_set[["checkpoint", "eval_set", "metric", "value", "proxy_se"]]
                     .rename(columns={"metric": "proxy", "value": "proxy_value"}))
    values = pd.concat(parts, ignore_index=True)
    return values[values["proxy_value"].notna()]


def evaluate(table: Source, sl: Slice = Slice(), *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """prediction.csv's rows (``COLUMNS``, after an ``ft_method`` column where the table has
    several fine-tuning methods and the slice names none: one set of rows per method) and the
    points behind them (``POINT_COLUMNS``: every checkpoint's proxy value and targets)."""
    return tuple(_per_method(load_table(table), sl, lambda t, s: _evaluate(t, s, seed)))


def _evaluate(table: pd.DataFrame, sl: Slice, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    cells, shots = comparable(table, sl)
    targets = _targets(cells, sl)
    if targets.empty:
        return pd.DataFrame(columns=COLUMNS), pd.DataFrame(columns=POINT_COLUMNS)
    points = targets.merge(_proxy_values(table, targets, shots), on=["checkpoint", "eval_set"])
    points = points[POINT_COLUMNS]
    rows = []
    for (*group, proxy), part in points.groupby(["eval_set", "proxy"], sort=True):
        for target in TARGETS:
            both = part[part[target].notna()]
            x = np.round(orientation(proxy) * both["proxy_value"].to_numpy(float), DECIMALS)
            y = np.round(both[target].to_numpy(float), DECIMALS)
            intervals = ordering_intervals(*_replicates(both, proxy, target, seed), seed)
            rows.append([*group, proxy, target, len(both), _correlation(stats.spearmanr, x, y),
                         _correlation(stats.kendalltau, x, y), pairwise_accuracy(x, y),
                         *intervals["pairwise_accuracy"], *intervals["spearman"], *intervals["kendall"]])
    return pd.DataFrame(rows, columns=COLUMNS), points.reset_index(drop=True)


def _replicates(points: pd.DataFrame, proxy: str, target: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Replicates of the (oriented) proxy and the target over the checkpoints of ``points``, each
    value moved by its evaluation noise (:func:`noisy`). FT and BASE are drawn once and the gain
    is their difference, so the ``base`` proxy and the ``gain`` target share BASE's noise."""
    rng = np.random.default_rng(seed)
    ft = noisy(points["ft"], points["ft_se"], rng)
    base = noisy(points["ft"] - points["gain"], points["base_se"], rng)
    value = base if proxy == "base" else noisy(points["proxy_value"], points["proxy_se"], rng)
    return (np.round(orientation(proxy) * value, DECIMALS),
            np.round(ft if target == "ft" else ft - base, DECIMALS))


def picks(points: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Per (train task, eval set) and proxy: the checkpoints the fine-tuned metric ranks first
    (``best_checkpoints``, several when they tie), the one the proxy would have picked (its
    oriented maximum; ties: the earlier checkpoint, cheaper to pre-train), whether it is among the
    best, and that proxy's pairwise accuracy on the ``ft`` target."""
    extra = _methods(points)
    acc = rows[rows["target"] == "ft"].set_index(extra + ["eval_set", "proxy"])["pairwise_accuracy"]
    out = []
    for key, part in points.groupby(extra + ["train_task", "eval_set", "proxy"], sort=True):
        *methods, task, eval_set, proxy = key
        order = {c: i for i, c in enumerate(checkpoint_order(part))}
        part = part.assign(_rank=part["checkpoint"].map(order)).sort_values("_rank")
        ft = part["ft"].round(DECIMALS)
        best = part.loc[ft == ft.max(), "checkpoint"].tolist()
        picked = part.loc[(orientation(proxy) * part["proxy_value"]).idxmax(), "checkpoint"]
        out.append([*methods, task, eval_set, proxy, " ".join(best), picked, picked in best,
                    acc.get((*methods, eval_set, proxy), np.nan), len(part)])
    return pd.DataFrame(out, columns=extra + ["train_task", "eval_set", "proxy", "best_checkpoints",
                                              "picked_checkpoint", "picks_best", "pairwise_accuracy",
                                              "n_checkpoints"])


def figure(rows: pd.DataFrame, points: pd.DataFrame) -> Figure:
    """A grid of panels, one row per (method, eval set), one column per proxy: the proxy's value
    against the fine-tuned metric, one labelled point per checkpoint."""
    by = _methods(points) + ["eval_set", "proxy"]
    sets = [tuple(key) for key in points[by[:-1]].drop_duplicates().sort_values(by[:-1]).itertuples(index=False)]
    proxies = sorted(points["proxy"].unique())
    fig = Figure(figsize=(3.6 * len(proxies), 3.2 * len(sets)), layout="constrained")
    grid = fig.subplots(len(sets), len(proxies), squeeze=False)
    fig.suptitle(TITLE)
    acc = rows[rows["target"] == "ft"].set_index(by)["pairwise_accuracy"]
    for axes, key in zip(grid, sets):
        for ax, proxy in zip(axes, proxies):
            part = points[(points[by[:-1]] == pd.Series(key, index=by[:-1])).all(axis=1) & (points["proxy"] == proxy)]
            if part.empty:
                ax.set_axis_off()
                continue
            ax.plot(part["proxy_value"], part["ft"], **(plots.style(0) | {"linestyle": "none"}))
            for c, x, y in zip(part["checkpoint"], part["proxy_value"], part["ft"]):
                ax.annotate(c, (x, y), fontsize="x-small", xytext=(3, 3), textcoords="offset points")
            direction = "lower is better" if orientation(proxy) < 0 else "higher is better"
            ax.set_xlabel(f"{proxy} ({direction})")
            ax.set_title(f"{' '.join(map(str, key))}: pairwise acc. {num(acc.get((*key, proxy), np.nan), '.2f')}",
                         fontsize="small")
            plots.finish(ax, ylabel="fine-tuned metric")
    return fig


def reading(rows: pd.DataFrame) -> str:
    ft = rows[(rows["target"] == "ft") & rows["pairwise_accuracy"].notna()]
    if ft.empty:
        return "Fewer than two checkpoints per eval set: no ordering to predict."
    means = ft.groupby("proxy")["pairwise_accuracy"].mean().sort_values(ascending=False)
    k = int(ft["n_checkpoints"].max())
    over = _methods(ft) + ["eval_set"]
    what = "eval set(s)" if len(over) == 1 else "(fine-tuning method, eval set) pairs"
    return (f"Ordering checkpoints by their fine-tuned metric, the best proxy is {means.index[0]} (mean pairwise "
            f"accuracy {means.iloc[0]:.2f} over {len(ft[over].drop_duplicates())} {what}; 0.5 is chance); "
            f"{', '.join(f'{p} {v:.2f}' for p, v in means.iloc[1:].items()) or 'no other proxy'}. "
            f"With {k} checkpoints there are only {k * (k - 1) // 2} pairs.")


def predicted_section(points: pd.DataFrame, rows: pd.DataFrame) -> list[str]:
    """The lines of "Could we have predicted it?" (summary.md and the report)."""
    if points.empty:
        return [f"No data: {EMPTY}."]
    lines = []
    chosen = picks(points, rows)
    for key, part in chosen.groupby(_methods(chosen) + ["train_task", "eval_set"], sort=True):
        *methods, task, eval_set = key
        k = int(part["n_checkpoints"].max())
        pairs = k * (k - 1) // 2
        best = part["best_checkpoints"].iloc[0].split()
        head = f"- {' '.join([task, *map(str, methods)])} ({eval_set}): "
        if len(best) > 1:
            lines.append(head + f"the fine-tuned metric ties at its best at {', '.join(best)}: no single "
                         "checkpoint to pick.")
            continue
        hits = part[part["picks_best"]]
        who = ", ".join(f"{r.proxy} (pairwise accuracy {num(r.pairwise_accuracy, '.2f')})"
                        for r in hits.itertuples()) or "no proxy"
        lines.append(head + f"the best checkpoint to fine-tune is {best[0]}; {who} would have picked it. "
                     f"{k} checkpoints give {pairs} pairs, so one pair moves the pairwise accuracy by "
                     f"{1 / max(pairs, 1):.2f}.")
    return lines


def decline_critical(se_earlier: np.ndarray, se_last: float, alpha: float = ALPHA) -> float:
    """The critical value c of the max-statistic test of :func:`decline_test`: P(max_j Z_j > c) =
    ``alpha`` when no checkpoint differs from the last, Z_j = (y_j - y_last) / sqrt(se_j^2 +
    se_last^2) with independent normal errors. Given the last value's error x se_last the Z_j are
    independent, so (Dunnett's many-to-one formula) P(max_j Z_j <= c) = E_x[prod_j Phi((c
    sqrt(se_j^2 + se_last^2) + se_last x) / se_j)], x standard normal; the expectation by
    Gauss-Hermite quadrature, c by root finding. One earlier checkpoint gives the normal quantile."""
    se = np.asarray(se_earlier, dtype=float)[:, None]
    scale = np.sqrt(se ** 2 + se_last ** 2)

    def below(c: float) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            inner = stats.norm.cdf((c * scale + se_last * _NODES) / se)
        return float(np.prod(inner, axis=0) @ _WEIGHTS)

    return float(optimize.brentq(lambda c: below(c) - (1 - alpha), -10.0, 10.0, xtol=1e-10))


def decline_test(values: np.ndarray, se: np.ndarray) -> tuple[int, float, float]:
    """Is the last of a series (checkpoints in pre-training order) below an earlier one by more
    than noise? Returns the earlier checkpoint with the largest Z_j (see :func:`decline_critical`;
    with equal errors the best one), that Z and the critical value; a decline when Z > c, a
    one-sided test at ``ALPHA`` whatever the number of earlier checkpoints. Unknown errors give
    the best earlier checkpoint with Z and c NaN."""
    values, se = np.asarray(values, dtype=float), np.asarray(se, dtype=float)
    if not np.isfinite(se).all():
        return int(np.argmax(values[:-1])), np.nan, np.nan
    # A zero-width interval (every resample alike, as for an accuracy of 1) is a value the data
    # know exactly; a floor far below any metric's resolution keeps the statistic finite.
    se = np.maximum(se, 1e-12)
    z = (values[:-1] - values[-1]) / np.sqrt(se[:-1] ** 2 + se[-1] ** 2)
    j = int(np.argmax(z))
    return j, float(z[j]), decline_critical(se[:-1], float(se[-1]))


def overtraining(table: Source, sl: Slice = Slice()) -> pd.DataFrame:
    """Per training task and eval set it was scored on, per fine-tuning method as :func:`evaluate`
    (an ``ft_method`` column first where there are several): whether the last checkpoint's
    fine-tuned metric is below an earlier checkpoint's by more than the noise, by
    :func:`decline_test`, each value's se from its CI (seed-averaged cells: over seeds and
    examples), else from its example count, as the findings do. ``scope`` ``familiar``: the task's
    own in-domain sets (instruction tuning: its suite); ``other``: every other set (the other tasks'
    in-domain sets, the task's out-of-domain sets). ``overtrained`` is empty where an se is
    unknown."""
    return _per_method(load_table(table), sl, lambda t, s: (_overtraining(t, s),))[0]


def _overtraining(table: pd.DataFrame, sl: Slice) -> pd.DataFrame:
    cells, _ = comparable(table, sl)
    cells = cells[(cells["format"] == sl.fmt) & (cells["train_task"] != BASE)]
    cells = cells.assign(se=cell_se(cells), scope=np.where(own_sets(cells), FAMILIAR, OTHER))
    out = []
    for (task, scope, eval_set), part in cells.groupby(["train_task", "scope", "eval_set"], sort=True):
        order = checkpoint_order(part)
        if len(order) < 2:
            continue
        part = part.set_index("checkpoint").loc[order]
        j, z, critical = decline_test(part["value"].to_numpy(), part["se"].to_numpy())
        last, earlier = part.iloc[-1], part.iloc[j]
        shortfall = float(earlier["value"] - last["value"])
        threshold = critical * float(np.hypot(earlier["se"], last["se"]))
        flag = pd.NA if np.isnan(z) else bool(z > critical)
        out.append([task, scope, eval_set, last["metric"], len(order), order[-1], float(last["value"]), order[j],
                    float(earlier["value"]), shortfall, z, critical, threshold, flag])
    frame = pd.DataFrame(out, columns=OVERTRAINING_COLUMNS)
    rank = frame["scope"].map({FAMILIAR: 0, OTHER: 1})
    return frame.assign(_rank=rank).sort_values(["train_task", "_rank", "eval_set"], kind="stable").drop(
        columns="_rank").reset_index(drop=True)


def overtraining_figure(frame: pd.DataFrame) -> Figure:
    fig, (ax,) = plots.panels(1, OVERTRAINING_TITLE, width=max(6.0, 1.2 * len(frame)))
    x = np.arange(len(frame))
    ax.bar(x - 0.2, frame["best_value"], 0.4, label="earlier checkpoint tested", color=plots.COLORS[0])
    ax.bar(x + 0.2, frame["last_value"], 0.4, yerr=frame["threshold"], label="last checkpoint (bar: threshold)",
           color=plots.COLORS[1], hatch="//")
    ax.set_xticks(x, [f"{_who(r)}\n{r.scope}: {r.eval_set}" for r in frame.itertuples()], fontsize="small")
    plots.finish(ax, ylabel="fine-tuned metric")
    return fig


def _who(row) -> str:
    """A row's training task, with its fine-tuning method where the frame has several."""
    method = getattr(row, "ft_method", None)
    return f"{row.train_task} {method}" if method else row.train_task


def overtraining_reading(frame: pd.DataFrame) -> str:
    """One sentence per scope: the familiar task (its own in-domain sets) and the other tasks."""
    parts = []
    for scope, what in ((FAMILIAR, "on the familiar task"), (OTHER, "on other tasks")):
        mine = frame[frame["scope"] == scope]
        if mine.empty:
            continue
        hit = mine[mine["overtrained"].fillna(False).astype(bool)]
        unknown = int(mine["overtrained"].isna().sum())
        tail = f" ({unknown} without an uncertainty to judge)" if unknown else ""
        if hit.empty:
            parts.append(f"No decline {what}: in none of {len(mine)} (task, eval set) pair(s) is the last "
                         f"checkpoint significantly below an earlier one{tail}.")
        else:
            parts.append(f"Decline {what} in {len(hit)} of {len(mine)} pair(s){tail}: " + "; ".join(
                f"{_who(r)} ({r.eval_set}) at {r.last_checkpoint} is {r.shortfall:.3f} below {r.best_checkpoint} "
                f"(threshold {r.threshold:.3f})" for r in hit.itertuples()) + ".")
    return " ".join(parts)
