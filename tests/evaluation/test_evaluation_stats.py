import time

import numpy as np
import pytest

from ptft.evaluation import MetricValue, bootstrap_ci, metric_value, paired_bootstrap


def test_bootstrap_is_deterministic_per_seed():
    values = np.random.default_rng(0).random(200)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)
    low, high = bootstrap_ci(values, seed=3)
    assert low < values.mean() < high


def test_bootstrap_coverage_is_about_95_percent():
    rng = np.random.default_rng(1)
    hits = 0
    trials = 300
    for t in range(trials):
        sample = rng.random(150) < 0.3  # Bernoulli(0.3), true mean 0.3
        low, high = bootstrap_ci(sample, seed=t, n_boot=500)
        hits += low <= 0.3 <= high
    assert 0.89 <= hits / trials <= 0.99


def test_bootstrap_edge_cases():
    assert bootstrap_ci([0.5], seed=0) == (0.5, 0.5)
    assert all(np.isnan(bootstrap_ci([], seed=0)))
    with pytest.raises(ValueError):
        bootstrap_ci(np.zeros((2, 2)), seed=0)


def test_bootstrap_is_vectorised():
    values = np.random.default_rng(0).random(300)
    bootstrap_ci(values, seed=0)
    start = time.perf_counter()
    for _ in range(10):
        bootstrap_ci(values, seed=0, n_boot=1000)
    # milliseconds each; a generous bound so that a busy machine never fails it
    assert (time.perf_counter() - start) / 10 < 0.25


def test_paired_bootstrap():
    rng = np.random.default_rng(2)
    base = rng.random(300)
    ft = base + 0.05 + rng.normal(0, 0.01, 300)
    mean, low, high = paired_bootstrap(ft, base, seed=0)
    assert mean == pytest.approx(float((ft - base).mean()))
    assert low < mean < high and low > 0.04 and high < 0.06
    # pairing matters: the unpaired interval of the same difference is far wider
    ua, ub = bootstrap_ci(ft, seed=0), bootstrap_ci(base, seed=1)
    assert (high - low) < 0.5 * ((ua[1] - ua[0]) + (ub[1] - ub[0]))
    assert paired_bootstrap(base, base, seed=0) == (0.0, 0.0, 0.0)
    assert paired_bootstrap(ft, base, seed=5) == paired_bootstrap(ft, base, seed=5)
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1], seed=0)


def test_metric_value():
    mv = metric_value([1, 0, 1, 1], seed=0)
    assert isinstance(mv, MetricValue)
    assert mv.value == 0.75 and mv.n == 4 and mv.ci_low <= 0.75 <= mv.ci_high
    assert mv.to_dict()["n"] == 4
