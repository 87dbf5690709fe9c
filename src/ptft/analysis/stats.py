"""The few statistics the analyses share: seeded bootstraps of a mean (plain and by cluster), a
least-squares slope, and a standard error recovered from a reported CI."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
N_BOOT = 10_000
Z = float(stats.norm.ppf(0.5 + LEVEL / 2))


@dataclass(frozen=True)
class Estimate:
    mean: float
    ci_low: float
    ci_high: float
    n: int


def bootstrap_mean(values: np.ndarray | list[float], seed: int = 0, n_boot: int = N_BOOT) -> Estimate:
    """Mean with a percentile-bootstrap CI over the values. A fresh generator per call, so a
    number does not depend on what else was computed before it. Fewer than 2 values: no CI."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Estimate(np.nan, np.nan, np.nan, 0)
    if v.size < 2:
        return Estimate(float(v.mean()), np.nan, np.nan, 1)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Estimate(float(v.mean()), float(low), float(high), int(v.size))


def cluster_bootstrap_mean(values: np.ndarray | list[float], clusters: np.ndarray | list, seed: int = 0,
                           n_boot: int = N_BOOT) -> Estimate:
    """Mean of all values with a percentile-bootstrap CI that resamples clusters with replacement,
    each drawn cluster bringing all its values (the resample's mean is over them all). Values of
    one cluster are correlated, so drawing them as independent would understate the spread. One
    cluster leaves only its values to resample (:func:`bootstrap_mean`)."""
    v = np.asarray(values, dtype=float)
    labels, which = np.unique(np.asarray(clusters), return_inverse=True)
    if len(labels) < 2:
        return bootstrap_mean(v, seed, n_boot)
    sums, counts = np.bincount(which, weights=v), np.bincount(which)
    drawn = np.random.default_rng(seed).integers(0, len(labels), size=(n_boot, len(labels)))
    means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    low, high = np.quantile(means, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return Estimate(float(v.mean()), float(low), float(high), int(v.size))


@dataclass(frozen=True)
class Slope:
    slope: float
    se: float
    ci_low: float
    ci_high: float
    n: int


def ols_slope(x: np.ndarray, y: np.ndarray) -> Slope:
    """Least-squares slope of y on x with its standard error and t-based CI (n - 2 degrees of
    freedom). Two points give a slope but no error; fewer give nothing."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    if n < 2 or np.ptp(x) == 0:
        return Slope(np.nan, np.nan, np.nan, np.nan, n)
    dx = x - x.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (y - y.mean())) / sxx
    if n < 3:
        return Slope(slope, np.nan, np.nan, np.nan, n)
    resid = y - y.mean() - slope * dx
    se = float(np.sqrt(resid @ resid / (n - 2) / sxx))
    half = float(stats.t.ppf(0.5 + LEVEL / 2, n - 2)) * se
    return Slope(slope, se, slope - half, slope + half, n)


def se_from_ci(ci_low: float, ci_high: float) -> float:
    """Normal-approximation standard error from a 95 % CI's width (NaN if the CI is missing)."""
    return (ci_high - ci_low) / (2 * Z)


def se_from_n(p: float, n: float) -> float:
    """Upper bound on the standard error of a mean of n values in [0, 1] with mean p: such a
    variable's variance is at most p(1 - p), with equality for 0/1 accuracy."""
    return float(np.sqrt(p * (1 - p) / n)) if n and n > 0 and 0 <= p <= 1 else np.nan
