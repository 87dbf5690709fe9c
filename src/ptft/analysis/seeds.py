"""Training randomness: how much of the fine-tuned metric is the seed, and which differences
between checkpoints are bigger than what another seed would give.

Rows of the slice (one state, one lr, one method and metric per set) with one row per
fine-tuning seed (``finetune.seeds``; a seed changes the data order, dropout and initialisation
only: the demonstrations and evaluation examples are the study's). Four kinds of rows:

- ``cell`` per checkpoint x train task x eval set: the mean and standard deviation over seeds,
  the example-sampling standard error (from each seed's evaluation CI, width / 3.92, root mean
  square over seeds), the gain FT - BASE and its 95 % interval from a hierarchical bootstrap
  (seeds, then examples) on the per-example scores, or without them (a bare table) from the cell
  CIs: se^2 = sd^2 / S + example se^2;
- ``variance`` per train task x eval set: the variance of the FT metric over (checkpoint, seed)
  split by the method of moments into a checkpoint share, a seed share and the example-sampling
  share (see :func:`components`);
- ``mrc`` per direction: the MRC (mean change ratio on the other type's in-domain sets, %) with
  the hierarchical interval;
- ``comparison`` per train task x own in-domain set: the FT metric at the last checkpoint minus
  the first, the seed spread of that difference (1.96 x sqrt(sd_a^2/S_a + sd_b^2/S_b)) and whether
  the difference exceeds it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.changes import RATIO_EPS
from ptft.analysis.forgetting import CROSS_TYPES
from ptft.analysis.slices import BASE, Slice, checkpoint_order, per_seed, task_types
from ptft.analysis.stats import LEVEL, Z, se_from_ci
from ptft.analysis.table import Source
from ptft.analysis.text import num, percent
from ptft.grid import INSTRUCT_TRAIN_TASK, store_path
from ptft.store import ResultsStore

TITLE = "Fine-tuning seeds: spread, variance shares and seed-aware intervals"
EMPTY = ("one fine-tuning seed per run, so no seed spread to measure (set finetune.seeds, e.g. [0, 1, 2]; "
         "each seed is another fine-tuning run)")
N_BOOT = 1000
COLUMNS = ["kind", "checkpoint", "train_task", "eval_set", "direction", "n_seeds", "mean", "sd", "example_se",
           "base", "gain", "ci_low", "ci_high", "ci_source", "checkpoint_share", "seed_share", "example_share",
           "diff", "seed_spread", "exceeds"]
UNIT = ["eval_set", "format", "shots", "method", "metric"]
HIERARCHICAL = "hierarchical bootstrap"
FROM_CIS = "cell CIs (no per-example scores)"
PER_EXAMPLE = "per-example scores"


def hierarchical_bootstrap(ft: np.ndarray, base: np.ndarray, seed: int = 0, n_boot: int = N_BOOT) -> np.ndarray:
    """Resampled means of FT - BASE: per replicate the examples are drawn once (the eval set is one
    sample, scored by every seed and by BASE), then ``S`` seeds with replacement among the rows of
    ``ft`` (seeds x examples). With one seed (or identical seeds) this is the plain paired bootstrap
    with the same ``seed``: the example draws come first and are the same."""
    ft = np.atleast_2d(np.asarray(ft, dtype=float))
    base = np.asarray(base, dtype=float)
    n_seeds, n = ft.shape
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    picks = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    per_seed_means = np.stack([(row - base)[idx].mean(axis=1) for row in ft])  # seeds x replicates
    return per_seed_means[picks.T, np.arange(n_boot)].mean(axis=0)


def unshared_noise(scores: np.ndarray) -> float:
    """The part of the example noise that differs between seeds scored on one eval set (seeds x
    examples): the residual mean square of a two-way layout without replication (seed and example
    effects removed), divided by the number of examples. The variance over seeds of their means
    holds it besides the seed variance. Needs two seeds and two examples."""
    x = np.asarray(scores, dtype=float)
    n_seeds, n = x.shape
    residual = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    return float((residual ** 2).sum() / ((n_seeds - 1) * (n - 1)) / n)


def components(values: pd.DataFrame, unshared: float = 0.0) -> dict:
    """Variance components of ``value`` over (checkpoint, seed), with per-row example standard
    errors ``se``, by the method of moments. Every seed and checkpoint scores the same eval set, so
    the example-sampling noise is shared: it is e = mean se^2 and reaches neither of the two
    variances below. The within-checkpoint variance W (mean over checkpoints of the variance over
    seeds) has expectation seed + ``unshared`` (:func:`unshared_noise`; 0 when unknown, which leaves
    that noise in the seed component); the variance B of the checkpoint means has expectation
    checkpoint + W / S. Seed = max(0, W - unshared), checkpoint = max(0, B - W / S). Needs two
    checkpoints and a checkpoint with two seeds."""
    by = values.groupby("checkpoint")["value"]
    multi = by.size() >= 2
    if multi.sum() < 1 or by.ngroups < 2:
        return {}
    within = float(by.var(ddof=1)[multi].mean())
    return dict(checkpoint=max(0.0, float(by.mean().var(ddof=1)) - within / float(by.size().mean())),
                seed=max(0.0, within - unshared),
                example=float(np.nanmean(values["se"] ** 2)) if values["se"].notna().any() else 0.0)


def seeds(table: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS,
          examples: pd.DataFrame | None = None) -> pd.DataFrame:
    """The four kinds of rows of the module docstring; empty when no run has two seeds.
    ``examples`` (:meth:`ptft.store.ResultsStore.example_scores`) gives the per-example scores;
    without them the intervals come from the cell CIs."""
    rows, _ = per_seed(table, sl)
    rows = rows[rows["format"] == sl.fmt] if not rows.empty else rows
    ft = rows[(rows["train_task"] != BASE) & (rows["train_task"] != INSTRUCT_TRAIN_TASK)]
    if ft.empty or ft.groupby(["checkpoint", "train_task"] + UNIT)["seed"].nunique().max() < 2:
        return pd.DataFrame(columns=COLUMNS)
    rows = rows.assign(se=se_from_ci(rows["ci_low"].astype(float), rows["ci_high"].astype(float)))
    ft = rows.loc[ft.index]
    base = rows[rows["train_task"] == BASE].set_index(["checkpoint"] + UNIT)
    scores = _scores(examples, sl)
    cells, replicates, unshared = [], {}, {}
    for i, (key, group) in enumerate(ft.groupby(["checkpoint", "train_task"] + UNIT, sort=False)):
        checkpoint, task, eval_set = key[0], key[1], key[2]
        b_key = (checkpoint, *key[2:])
        b = base.loc[b_key] if b_key in base.index else None
        b_value = float(b["value"]) if b is not None else np.nan
        row = dict(kind="cell", checkpoint=checkpoint, train_task=task, eval_set=eval_set, n_seeds=len(group),
                   mean=group["value"].mean(), sd=group["value"].std(ddof=1),
                   example_se=float(np.sqrt(np.nanmean(group["se"] ** 2))) if group["se"].notna().any() else np.nan,
                   base=b_value, gain=group["value"].mean() - b_value)
        ft_vals = [scores.get((checkpoint, task, r.ft_method, _rate(r.lr), int(r.seed), *key[2:]))
                   for r in group.itertuples()]
        base_vals = scores.get((checkpoint, BASE, "", None, None, *key[2:]))
        if len(group) >= 2:
            known = all(v is not None and len(v) == len(ft_vals[0]) >= 2 for v in ft_vals)
            unshared.setdefault((task, eval_set), []).append(unshared_noise(np.array(ft_vals)) if known else None)
        if base_vals is not None and all(v is not None and len(v) == len(base_vals) for v in ft_vals):
            reps = hierarchical_bootstrap(np.array(ft_vals), np.array(base_vals), seed=seed + i)
            row.update(ci_low=float(np.quantile(reps, (1 - LEVEL) / 2)),
                       ci_high=float(np.quantile(reps, (1 + LEVEL) / 2)), ci_source=HIERARCHICAL)
            if abs(b_value) >= eps:
                replicates[key] = reps / np.mean(base_vals)
        else:
            se = float(np.sqrt(row["sd"] ** 2 / len(group) + row["example_se"] ** 2))
            row.update(ci_low=row["gain"] - Z * se, ci_high=row["gain"] + Z * se, ci_source=FROM_CIS)
            if abs(b_value) >= eps:
                replicates[key] = (row["gain"] / b_value, se / abs(b_value))
        cells.append(row)
    out = pd.DataFrame(cells, columns=COLUMNS)
    parts = [out, _variance(ft, unshared), _mrc(out, replicates, rows), _comparisons(out, rows)]
    return pd.concat([p for p in parts if not p.empty], ignore_index=True)[COLUMNS]


def _scores(examples: pd.DataFrame | None, sl: Slice) -> dict:
    if examples is None or examples.empty:
        return {}
    mine = examples[(examples["variant"] == sl.variant)
                    & ((examples["train_task"] == BASE) | np.isclose(examples["ft_fraction"], sl.ft_fraction))]
    # keyed by the whole model (method and learning rate included: a study has scores for every one)
    return {(r.checkpoint, r.train_task, r.ft_method, _rate(r.lr), None if r.train_task == BASE else int(r.seed),
             r.eval_set, r.format, int(r.shots), r.method, r.metric): r.vals for r in mine.itertuples()}


def _rate(lr) -> float | None:
    """A learning rate as a key: the table's and the store's copies of one rate compare equal."""
    return None if lr is None or pd.isna(lr) else float(f"{float(lr):.12g}")


def _variance(ft: pd.DataFrame, unshared: dict) -> pd.DataFrame:
    """Shares of :func:`components` per (task, eval set). The seed component is net of the unshared
    example noise where every checkpoint with two seeds has per-example scores (``ci_source`` says
    which)."""
    out = []
    for (task, eval_set), group in ft.groupby(["train_task", "eval_set"], sort=False):
        noise = unshared.get((task, eval_set), [])
        known = bool(noise) and all(v is not None for v in noise)
        parts = components(group, float(np.mean(noise)) if known else 0.0)
        total = sum(parts.values())
        if total > 0:
            out.append(dict(kind="variance", checkpoint="", train_task=task, eval_set=eval_set,
                            n_seeds=int(group.groupby("checkpoint")["seed"].nunique().min()),
                            ci_source=PER_EXAMPLE if known else FROM_CIS,
                            **{f"{k}_share": v / total for k, v in parts.items()}))
    return pd.DataFrame(out, columns=COLUMNS)


def _mrc(cells: pd.DataFrame, replicates: dict, rows: pd.DataFrame) -> pd.DataFrame:
    """Per direction the mean change ratio (%) over its cells, the interval from the cells'
    hierarchical replicates averaged replicate by replicate (or, from cell CIs, a normal interval)."""
    types = task_types(rows)
    out = []
    for direction in (f"{a}->{b}" for a in CROSS_TYPES for b in CROSS_TYPES if a != b):
        src, dst = direction.split("->")
        keys = [k for k in replicates if types.get(k[1]) == src and types.get(_eval_task(rows, k[2])) == dst
                and _domain(rows, k[2]) == "in"]
        if not keys:
            continue
        if all(isinstance(replicates[k], np.ndarray) for k in keys):
            reps = 100 * np.mean([replicates[k] for k in keys], axis=0)
            mean = float(100 * np.mean([np.mean(replicates[k]) for k in keys]))
            low, high = np.quantile(reps, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            source = HIERARCHICAL
        else:
            ratios = [replicates[k] if isinstance(replicates[k], tuple) else
                      (float(np.mean(replicates[k])), float(np.std(replicates[k]))) for k in keys]
            mean = 100 * float(np.mean([r for r, _ in ratios]))
            half = 100 * Z * float(np.sqrt(sum(s ** 2 for _, s in ratios))) / len(ratios)
            low, high, source = mean - half, mean + half, FROM_CIS
        out.append(dict(kind="mrc", checkpoint="", train_task="", eval_set="", direction=direction, mean=mean,
                        ci_low=float(low), ci_high=float(high), ci_source=source,
                        n_seeds=int(cells["n_seeds"].min())))
    return pd.DataFrame(out, columns=COLUMNS)


def _eval_task(rows: pd.DataFrame, eval_set: str) -> str:
    return rows.loc[rows["eval_set"] == eval_set, "eval_task"].iloc[0]


def _domain(rows: pd.DataFrame, eval_set: str) -> str:
    return rows.loc[rows["eval_set"] == eval_set, "domain"].iloc[0]


def _comparisons(cells: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    order = checkpoint_order(rows)
    out = []
    own = cells[[_eval_task(rows, s) == t and _domain(rows, s) == "in"
                 for s, t in zip(cells["eval_set"], cells["train_task"])]]
    for (task, eval_set), group in own.groupby(["train_task", "eval_set"], sort=False):
        group = group.set_index("checkpoint").loc[[c for c in order if c in set(group["checkpoint"])]]
        if len(group) < 2:
            continue
        first, last = group.iloc[0], group.iloc[-1]
        spread = Z * float(np.sqrt(first["sd"] ** 2 / first["n_seeds"] + last["sd"] ** 2 / last["n_seeds"]))
        diff = float(last["mean"] - first["mean"])
        out.append(dict(kind="comparison", checkpoint=f"{group.index[0]}->{group.index[-1]}", train_task=task,
                        eval_set=eval_set, n_seeds=int(min(first["n_seeds"], last["n_seeds"])), diff=diff,
                        seed_spread=spread, exceeds=bool(abs(diff) > spread) if np.isfinite(spread) else pd.NA))
    return pd.DataFrame(out, columns=COLUMNS)


def load_examples(source: Source) -> pd.DataFrame | None:
    """The per-example scores of a run directory's store; None for a table (a file or a DataFrame)."""
    if isinstance(source, pd.DataFrame) or not Path(source).is_dir() or not store_path(source).is_file():
        return None
    with ResultsStore(store_path(source)) as store:
        return store.example_scores()


def figure(frame: pd.DataFrame) -> Figure:
    fig, (spread_ax, share_ax) = plots.panels(2, TITLE, width=6.0)
    cells = frame[frame["kind"] == "cell"]
    labels = [f"{r.train_task} -> {r.eval_set} @ {r.checkpoint}" for r in cells.itertuples()]
    y = np.arange(len(cells))[::-1]
    spread_ax.errorbar(cells["mean"], y, xerr=Z * cells["sd"].fillna(0).to_numpy(dtype=float), linestyle="none",
                       marker="o", capsize=3, color=plots.style(0)["color"], label="mean ± 1.96 sd over seeds")
    spread_ax.set_yticks(y, labels, fontsize="small")
    spread_ax.set_xlabel("fine-tuned metric")
    spread_ax.legend(fontsize="small")
    spread_ax.grid(True, axis="x", color="0.9")
    shares = frame[frame["kind"] == "variance"]
    left = np.zeros(len(shares))
    ys = np.arange(len(shares))[::-1]
    for i, col in enumerate(("checkpoint_share", "seed_share", "example_share")):
        values = shares[col].to_numpy(dtype=float)
        share_ax.barh(ys, values, left=left, color=plots.style(i)["color"], label=col.replace("_", " "))
        left += values
    share_ax.set_yticks(ys, [f"{r.train_task} -> {r.eval_set}" for r in shares.itertuples()], fontsize="small")
    share_ax.set_xlim(0, 1)
    share_ax.set_xlabel("share of the variance of the fine-tuned metric")
    if len(shares):
        share_ax.legend(fontsize="small")
    return fig


def reading(frame: pd.DataFrame) -> str:
    cells = frame[frame["kind"] == "cell"]
    low, high = int(cells["n_seeds"].min()), int(cells["n_seeds"].max())
    parts = [f"{low if low == high else f'{low}-{high}'} seeds per run, mean sd over seeds "
             f"{num(cells['sd'].mean(), '.3f')}"]
    shares = frame[frame["kind"] == "variance"]
    if not shares.empty:
        parts.append(f"variance of the fine-tuned metric: checkpoints {100 * shares['checkpoint_share'].mean():.0f} %, "
                     f"seeds {100 * shares['seed_share'].mean():.0f} %, examples "
                     f"{100 * shares['example_share'].mean():.0f} % (mean over {len(shares)} sets)")
    for r in frame[frame["kind"] == "mrc"].itertuples():
        parts.append(f"MRC {r.direction} {percent(r.mean)} (seed-aware 95% CI [{r.ci_low:+.1f}, {r.ci_high:+.1f}])")
    for r in frame[frame["kind"] == "comparison"].itertuples():
        verdict = ("seed spread unknown" if pd.isna(r.exceeds) else
                   "exceeds the seed spread" if r.exceeds else "within the seed spread")
        parts.append(f"{r.train_task} on {r.eval_set} {r.checkpoint}: {num(r.diff)} {verdict} (±{r.seed_spread:.3f})")
    return "; ".join(parts) + "."
