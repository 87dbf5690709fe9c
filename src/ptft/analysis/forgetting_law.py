"""Forgetting along fine-tuning as a curve: Kalajdzievski's shifted power law (arXiv 2401.05605),
fitted to the cross-task change at the points of ``finetune.eval_at``.

Kalajdzievski writes the forgetting after N fine-tuning steps with P tuned parameters as

    F(P, N) = s - c [(a / P)^alpha + (b / N)^beta]^rho

One fine-tuning method fixes P, so along one run, with k = (a / P)^alpha,

    F(N) = F_inf - C ([1 + (N0 / N)^beta]^rho - 1),   F_inf = s - c k^rho,  C = c k^rho,  N0 = b k^(-1 / beta)

F_inf is what the run tends to with more steps, N0 the step count at which the step term equals the
parameter term (where the curve bends), C the size of the approach. ptft fits the cross-task change
(the MRC's change ratio, in percent, averaged over the sets of the run's cross-task pairs; negative
is forgetting, so the change is -F) as ``change(N) = change_inf + C ([1 + (N0 / N)^beta]^rho - 1)``,
change_inf = -F_inf, C > 0 when the change falls with the steps. Kalajdzievski finds the exponents consistent across datasets, and a run has
a handful of points, so per training task beta and rho are shared by the checkpoints' runs and
change_inf, C and N0 are each run's: the scale parameters carry how forgetting moves with
pre-training, under one shape. change_inf and C enter linearly and are solved exactly for each
(N0, beta, rho) (variable projection); the rest by least squares from a grid of starts.

Intervals: a parametric bootstrap redraws every set's value from a normal with its standard error
(BASE once per replicate, shared by every point of a run, as the same checkpoint is BASE at each),
recomputes the points and refits; percentiles of ``N_FIT_BOOT`` replicates. The points of one run
are scored on the same examples, which the draws ignore: the intervals are wider, not narrower,
than a paired bootstrap's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.optimize import least_squares

from ptft.analysis import plots
from ptft.analysis.changes import RATIO_EPS
from ptft.analysis.forgetting import mrc_ratios
from ptft.analysis.slices import BASE, CELL, Slice, cell_se, checkpoint_order, comparable, resolve_method
from ptft.analysis.stats import LEVEL
from ptft.analysis.table import Source, load_table
from ptft.analysis.text import ci, num, which_higher
from ptft.grid import INSTRUCT_TRAIN_TASK

TITLE = "Forgetting law: the cross-task change along fine-tuning, fitted with a shifted power law"
# a run's three own parameters need a fourth point to leave a residual
MIN_POINTS = 4
EMPTY = (f"no training task with runs evaluated at {MIN_POINTS} or more points on a cross-task pair and more "
         "points than parameters (3 per run, 2 shared: 6 for one checkpoint, 9 for two, 12 for three); set "
         "finetune.eval_at to several fractions, e.g. the tiny-forgetting preset's eight")
N_FIT_BOOT = 200
RUN = ["checkpoint", "train_task"]
COLUMNS = ["train_task", "checkpoint", "step", "n_points", "first_ft_step", "last_ft_step", "n_sets",
           "change_inf", "change_inf_ci_low", "change_inf_ci_high", "scale", "scale_ci_low", "scale_ci_high",
           "n0", "n0_ci_low", "n0_ci_high", "beta", "beta_ci_low", "beta_ci_high", "rho", "rho_ci_low",
           "rho_ci_high", "rmse", "r2", "change_last"]
POINT_COLUMNS = ["train_task", "checkpoint", "step", "ft_fraction", "ft_step", "cross_task_percent", "fitted"]
# exponents beyond these bounds describe a step, not a curve; within them, and N0 within N0_REACH
# of the steps, the bend stays finite in float64 for runs spanning up to 1e10 steps
EXPONENT_BOUNDS = (0.05, 5.0)
# N0 within this factor of the observed steps; beyond, the curve is a straight line on the points
N0_REACH = 1e2


def law(n: np.ndarray, change_inf: float, scale: float, n0: float, beta: float, rho: float) -> np.ndarray:
    """The run's change after ``n`` steps (see the module's docstring)."""
    return change_inf + scale * _bend(np.asarray(n, dtype=float), n0, beta, rho)


def _bend(n: np.ndarray, n0: float, beta: float, rho: float) -> np.ndarray:
    """[1 + (N0 / N)^beta]^rho - 1, through logs: (N0 / N)^beta spans many decades."""
    return np.expm1(rho * np.log1p(np.exp(beta * (np.log(n0) - np.log(n)))))


@dataclass(frozen=True)
class Fit:
    """One training task's fit: per run (in ``runs`` order) change_inf, scale and N0; shared exponents."""

    change_inf: np.ndarray
    scale: np.ndarray
    n0: np.ndarray
    beta: float
    rho: float
    rmse: float
    # the share of each run's variation around its own mean that the fit explains, pooled over runs
    r2: float

    def vector(self) -> np.ndarray:
        return np.concatenate([self.change_inf, self.scale, self.n0, [self.beta, self.rho]])


def fit(runs: list[tuple[np.ndarray, np.ndarray]], start: Fit | None = None) -> Fit:
    """Least-squares fit of ``law`` to each run's (steps, change) with shared beta and rho. From
    ``start`` alone when given (the bootstrap's refits), else the best of a grid of starts."""
    lows = [np.log(steps.min() / N0_REACH) for steps, _ in runs]
    highs = [np.log(steps.max() * N0_REACH) for steps, _ in runs]
    lower = np.array(lows + [np.log(EXPONENT_BOUNDS[0])] * 2)
    upper = np.array(highs + [np.log(EXPONENT_BOUNDS[1])] * 2)

    def linear(theta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each run's (change_inf, scale) by least squares, and its residuals, at these (N0, beta, rho)."""
        beta, rho = np.exp(theta[-2:])
        out = []
        for (steps, change), log_n0 in zip(runs, theta[:-2]):
            bend = _bend(steps, np.exp(log_n0), beta, rho)
            # the bend spans many decades over the bounds: scaled to at most 1, the system stays conditioned
            size = np.abs(bend).max() or 1.0
            coef = np.linalg.lstsq(np.column_stack([np.ones_like(steps), bend / size]), change, rcond=None)[0]
            coef = np.array([coef[0], coef[1] / size])
            out.append((coef, coef[0] + coef[1] * bend - change))
        return out

    def residuals(theta: np.ndarray) -> np.ndarray:
        return np.concatenate([r for _, r in linear(theta)])

    if start is not None:
        starts = [np.concatenate([np.log(start.n0), np.log([start.beta, start.rho])])]
    else:
        mids = [np.log(np.median(steps)) for steps, _ in runs]
        starts = [np.array(mids + [np.log(b), np.log(r)]) for b, r in itertools.product((0.5, 1.0, 2.0), repeat=2)]
    best = min((least_squares(residuals, np.clip(s, lower, upper), bounds=(lower, upper), x_scale=1.0)
                for s in starts), key=lambda r: r.cost)
    coefs = [c for c, _ in linear(best.x)]
    n_points = sum(len(steps) for steps, _ in runs)
    spread = sum(float(((change - change.mean()) ** 2).sum()) for _, change in runs)
    return Fit(change_inf=np.array([c[0] for c in coefs]), scale=np.array([c[1] for c in coefs]),
               n0=np.exp(best.x[:-2]), beta=float(np.exp(best.x[-2])), rho=float(np.exp(best.x[-1])),
               rmse=float(np.sqrt(2 * best.cost / n_points)), r2=1 - 2 * best.cost / spread if spread else np.nan)


def points(table: Source, sl: Slice = Slice(), *, eps: float = RATIO_EPS) -> pd.DataFrame:
    """Every cross-task pair's set at every point of every run: BASE and FT values with their
    standard errors, the run's fine-tuning step and fraction; sets whose |BASE| < eps left out. A
    value with no standard error (no CI and no example count) enters the bootstrap as exact."""
    table = load_table(table)
    sl = resolve_method(table, sl)
    ft = ((table["train_task"] != BASE) & (table["train_task"] != INSTRUCT_TRAIN_TASK)
          & (table["variant"] == sl.variant) & (table["ft_method"] == sl.ft_method) & table["ft_step"].notna())
    ft_steps = table[ft].groupby(RUN + ["ft_fraction"])["ft_step"].first()
    parts = []
    for fraction in sorted(table.loc[ft, "ft_fraction"].dropna().unique()):
        at = replace(sl, ft_fraction=float(fraction))
        cells, _ = comparable(table, at)
        cells = cells.assign(se=cell_se(cells))
        ratios = mrc_ratios(table, at, eps=eps)
        ratios = ratios[ratios["change_ratio"].notna()]
        ft_se = cells[CELL + ["se"]].rename(columns={"se": "ft_se"})
        base_se = cells.loc[cells["train_task"] == BASE, CELL + ["se"]].drop(columns="train_task")
        rows = (ratios.merge(ft_se, on=CELL).merge(base_se.rename(columns={"se": "base_se"}),
                                                   on=[c for c in CELL if c != "train_task"]))
        parts.append(rows.assign(ft_fraction=float(fraction)))
    columns = RUN + ["step", "eval_set", "ft_fraction", "ft_step", "base", "base_se", "ft", "ft_se"]
    if not parts:
        return pd.DataFrame(columns=columns)
    rows = pd.concat(parts, ignore_index=True)
    rows["ft_step"] = [ft_steps.get((c, t, f), np.nan) for c, t, f in
                       zip(rows["checkpoint"], rows["train_task"], rows["ft_fraction"])]
    rows = rows[rows["ft_step"].notna()]
    for col in ("base_se", "ft_se"):
        rows[col] = rows[col].fillna(0.0)
    return rows[columns].reset_index(drop=True)


def _curves(sets: pd.DataFrame, base: np.ndarray, ft: np.ndarray, eps: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each run's (steps, mean change ratio in %) from per-set values (aligned with ``sets``); a set
    whose (redrawn) |BASE| < eps has no ratio, and a point without any is left out."""
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(np.abs(base) < eps, np.nan, 100 * (ft - base) / base)
    frame = sets[RUN + ["ft_step"]].assign(change=change)
    means = frame.groupby(RUN + ["ft_step"], sort=False)["change"].mean().reset_index().dropna()
    return [(g["ft_step"].to_numpy(dtype=float), g["change"].to_numpy(dtype=float))
            for _, g in means.groupby(RUN, sort=False)]


def forgetting_law(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per training task, the fit over its runs with at least ``MIN_POINTS`` distinct steps: one row
    per run (``COLUMNS``; beta and rho the task's, on each of its rows) and every point with its fitted
    value (``POINT_COLUMNS``). A task whose points do not outnumber its parameters is left out."""
    sets = points(table, sl, eps=eps)
    fits, curves = [], []
    for task, mine in sets.groupby("train_task", sort=True):
        n_steps = mine.groupby("checkpoint")["ft_step"].transform("nunique")
        mine = mine[n_steps >= MIN_POINTS]
        order = checkpoint_order(mine)
        mine = mine.assign(_rank=mine["checkpoint"].map({c: i for i, c in enumerate(order)}))
        mine = (mine.sort_values(["_rank", "ft_step", "eval_set"], kind="stable").drop(columns="_rank")
                .reset_index(drop=True))
        runs = _curves(mine, mine["base"].to_numpy(dtype=float), mine["ft"].to_numpy(dtype=float), eps)
        if not runs or sum(len(s) for s, _ in runs) <= 3 * len(runs) + 2:
            continue
        best = fit(runs)
        boot = _bootstrap(mine, best, seed, eps)
        fits.append(_rows(task, mine, order, runs, best, boot))
        curves.append(_fitted(task, mine, runs, best))
    if not fits:
        return pd.DataFrame(columns=COLUMNS), pd.DataFrame(columns=POINT_COLUMNS)
    return (pd.concat(fits, ignore_index=True)[COLUMNS],
            pd.concat(curves, ignore_index=True)[POINT_COLUMNS])


def _bootstrap(sets: pd.DataFrame, best: Fit, seed: int, eps: float) -> np.ndarray:
    """``N_FIT_BOOT`` refits on redrawn values, one row of ``Fit.vector`` each; a replicate that
    leaves a run without a point (every BASE redrawn below eps) is not refitted."""
    rng = np.random.default_rng(seed)
    # one BASE draw per (run's checkpoint, set) per replicate, shared by the run's points
    base_key = sets["checkpoint"] + "\t" + sets["eval_set"]
    codes, uniques = pd.factorize(base_key)
    base_values = sets.groupby(codes)["base"].first().to_numpy(dtype=float)
    base_se = sets.groupby(codes)["base_se"].first().to_numpy(dtype=float)
    ft, ft_se = sets["ft"].to_numpy(dtype=float), sets["ft_se"].to_numpy(dtype=float)
    out = []
    for _ in range(N_FIT_BOOT):
        base = (base_values + base_se * rng.standard_normal(len(uniques)))[codes]
        drawn = ft + ft_se * rng.standard_normal(len(ft))
        runs = _curves(sets, base, drawn, eps)
        if len(runs) == len(best.n0):
            out.append(fit(runs, start=best).vector())
    return np.array(out)


def _rows(task: str, sets: pd.DataFrame, order: list[str], runs: list, best: Fit, boot: np.ndarray) -> pd.DataFrame:
    k = len(runs)
    quantiles = [(1 - LEVEL) / 2, (1 + LEVEL) / 2]
    low, high = np.quantile(boot, quantiles, axis=0)
    steps = sets.groupby("checkpoint")["step"].first()
    n_sets = sets.groupby("checkpoint")["eval_set"].nunique()
    rows = []
    for i, checkpoint in enumerate(order):
        run_steps, change = runs[i]
        rows.append(dict(
            train_task=task, checkpoint=checkpoint, step=steps[checkpoint], n_points=len(run_steps),
            first_ft_step=int(run_steps.min()), last_ft_step=int(run_steps.max()), n_sets=int(n_sets[checkpoint]),
            change_inf=best.change_inf[i], change_inf_ci_low=low[i], change_inf_ci_high=high[i],
            scale=best.scale[i], scale_ci_low=low[k + i], scale_ci_high=high[k + i],
            n0=best.n0[i], n0_ci_low=low[2 * k + i], n0_ci_high=high[2 * k + i],
            beta=best.beta, beta_ci_low=low[3 * k], beta_ci_high=high[3 * k],
            rho=best.rho, rho_ci_low=low[3 * k + 1], rho_ci_high=high[3 * k + 1],
            rmse=best.rmse, r2=best.r2, change_last=float(change[np.argmax(run_steps)])))
    return pd.DataFrame(rows)


def _fitted(task: str, sets: pd.DataFrame, runs: list, best: Fit) -> pd.DataFrame:
    keys = sets.drop_duplicates(RUN + ["ft_step"])
    out = []
    for i, ((checkpoint, _), g) in enumerate(keys.groupby(RUN, sort=False)):
        run_steps, change = runs[i]
        fitted = law(run_steps, best.change_inf[i], best.scale[i], best.n0[i], best.beta, best.rho)
        out.append(pd.DataFrame(dict(train_task=task, checkpoint=checkpoint, step=g["step"].iloc[0],
                                     ft_fraction=g["ft_fraction"].to_numpy(), ft_step=run_steps,
                                     cross_task_percent=change, fitted=fitted)))
    return pd.concat(out, ignore_index=True)


def figure(frame: pd.DataFrame, detail: pd.DataFrame) -> Figure:
    """Per training task: each checkpoint's points and its fitted curve against the fine-tuning step (log)."""
    tasks = list(frame["train_task"].unique())
    fig, axes = plots.panels(len(tasks), TITLE, width=5.5)
    for ax, task in zip(axes, tasks):
        mine = frame[frame["train_task"] == task]
        for i, row in enumerate(mine.itertuples()):
            pts = detail[(detail["train_task"] == task) & (detail["checkpoint"] == row.checkpoint)]
            style = plots.style(i)
            ax.plot(pts["ft_step"], pts["cross_task_percent"], linestyle="none", marker=style["marker"],
                    color=style["color"], label=f"{row.checkpoint}: {num(row.change_inf, '+.1f')} % at the limit")
            grid = np.geomspace(pts["ft_step"].min(), pts["ft_step"].max(), 100)
            ax.plot(grid, law(grid, row.change_inf, row.scale, row.n0, row.beta, row.rho), color=style["color"],
                    linestyle=style["linestyle"])
        ax.set_xscale("log")
        ax.set_xlabel(f"fine-tuning step ({task}; beta {mine['beta'].iloc[0]:.2g}, rho {mine['rho'].iloc[0]:.2g})")
        plots.finish(ax, ylabel="cross-task change ratio (%)", zero=True)
    return fig


def reading(frame: pd.DataFrame) -> str:
    """Per training task: the shared exponents, and the change the runs tend to at the first and
    last checkpoint (does more pre-training forget less?)."""
    parts = []
    for task, mine in frame.groupby("train_task", sort=False):
        first, last = mine.iloc[0], mine.iloc[-1]
        text = (f"{task}: beta {num(first['beta'], '.2f')} ({ci(first['beta_ci_low'], first['beta_ci_high'], '.2f')}), "
                f"rho {num(first['rho'], '.2f')} ({ci(first['rho_ci_low'], first['rho_ci_high'], '.2f')}), fit rmse "
                f"{num(first['rmse'], '.2f')} points, R² {num(first['r2'], '.2f')}; the cross-task change tends to "
                f"{num(first['change_inf'], '+.1f')} % "
                f"({ci(first['change_inf_ci_low'], first['change_inf_ci_high'], '+.1f')}) at {first['checkpoint']}")
        if len(mine) > 1:
            text += (f" and {num(last['change_inf'], '+.1f')} % "
                     f"({ci(last['change_inf_ci_low'], last['change_inf_ci_high'], '+.1f')}) at {last['checkpoint']}")
            text += ": " + which_higher((last["change_inf_ci_low"], last["change_inf_ci_high"]),
                                        (first["change_inf_ci_low"], first["change_inf_ci_high"]),
                                        "more pre-training, less forgetting in the limit",
                                        "more pre-training, more forgetting in the limit")
        pinned = [name for name in ("beta", "rho") if _at_bound(first[name])]
        if pinned:
            text += (f" ({' and '.join(pinned)} at the edge of the search range: these points do not fix the "
                     "curve's shape)")
        parts.append(text)
    return "; ".join(parts) + "."


def _at_bound(exponent: float) -> bool:
    return any(np.isclose(exponent, bound, rtol=1e-3) for bound in EXPONENT_BOUNDS)
