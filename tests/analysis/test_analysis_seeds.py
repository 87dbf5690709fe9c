"""The seeds analysis on hand-made tables of known components: a checkpoint effect plus a seed
effect with chosen variances, and the same without any checkpoint effect; and the hierarchical
bootstrap against the plain paired one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ptft.analysis import seeds
from ptft.analysis.stats import Z
from ptft.evaluation.stats import paired_bootstrap

SE = 0.01  # each seed's evaluation CI is value ± Z * SE: an example-sampling variance of 1e-4
SEED_EFFECT = {0: +0.02, 1: -0.02}  # a within-checkpoint variance of 8e-4 (ddof 1)


def table(make: SimpleNamespace, checkpoint_means: dict[str, float]) -> pd.DataFrame:
    rows = []
    for ck, mean in checkpoint_means.items():
        rows += [make.row(ck, "", "nli_val", 0.40), make.row(ck, "", "summ_test", 0.20)]
        for s, effect in SEED_EFFECT.items():
            rows.append(dict(make.row(ck, "nli", "nli_val", mean + effect, ci=Z * SE), seed=s))
            rows.append(dict(make.row(ck, "nli", "summ_test", 0.20 + effect, ci=Z * SE), seed=s))
    return make.frame(rows)


def kind(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[frame["kind"] == name].reset_index(drop=True)


def test_a_checkpoint_effect_and_a_seed_effect(make: SimpleNamespace) -> None:
    frame = seeds.seeds(table(make, {"c1": 0.4, "c2": 0.5, "c3": 0.6}))
    assert list(frame.columns) == seeds.COLUMNS
    var = kind(frame, "variance").set_index("eval_set")
    # W = 8e-4 is all seed (the seeds share their examples; without per-example scores no unshared
    # example noise is taken off), e = 1e-4; B = var(.4, .5, .6) = 1e-2: checkpoint 1e-2 - 8e-4 / 2
    np.testing.assert_allclose(var.loc["nli_val", ["checkpoint_share", "seed_share", "example_share"]].astype(float),
                               [0.0096 / 0.0105, 0.0008 / 0.0105, 0.0001 / 0.0105], rtol=1e-9)
    # summ_test is the same at every checkpoint: no checkpoint share
    np.testing.assert_allclose(var.loc["summ_test", ["checkpoint_share", "seed_share", "example_share"]].astype(float),
                               [0.0, 8 / 9, 1 / 9], rtol=1e-9, atol=1e-12)
    assert (var["ci_source"] == seeds.FROM_CIS).all()
    cells = kind(frame, "cell")
    c1 = cells[(cells["checkpoint"] == "c1") & (cells["eval_set"] == "nli_val")].iloc[0]
    se = np.sqrt(0.0008 / 2 + SE ** 2)  # no per-example scores: sd^2 / S + example se^2
    assert c1["n_seeds"] == 2 and c1["ci_source"] == seeds.FROM_CIS
    np.testing.assert_allclose([c1["mean"], c1["sd"], c1["example_se"], c1["gain"], c1["ci_low"], c1["ci_high"]],
                               [0.40, np.sqrt(0.0008), SE, 0.0, -Z * se, Z * se], atol=1e-12)
    (cmp,) = kind(frame, "comparison").itertuples()
    assert (cmp.checkpoint, cmp.eval_set) == ("c1->c3", "nli_val") and cmp.exceeds
    np.testing.assert_allclose([cmp.diff, cmp.seed_spread], [0.2, Z * np.sqrt(0.0008)], rtol=1e-9)
    (mrc,) = kind(frame, "mrc").itertuples()
    half = 100 * Z * np.sqrt(3 * (se / 0.20) ** 2) / 3  # three ratios 0 ± se / BASE
    assert mrc.direction == "classification->generation" and mrc.ci_source == seeds.FROM_CIS
    np.testing.assert_allclose([mrc.mean, mrc.ci_low, mrc.ci_high], [0.0, -half, half], atol=1e-9)
    reading = seeds.reading(frame)
    assert reading.startswith(f"2 seeds per run, mean sd over seeds {np.sqrt(0.0008):.3f}")
    assert "nli on nli_val c1->c3: +0.200 exceeds the seed spread" in reading
    assert "checkpoints 46 %, seeds 48 %, examples 6 %" in reading  # means of (91.4, 0), (7.6, 88.9), (1.0, 11.1)


def test_no_checkpoint_effect_gives_no_checkpoint_share(make: SimpleNamespace) -> None:
    frame = seeds.seeds(table(make, {"c1": 0.5, "c2": 0.5, "c3": 0.5}))
    shares = kind(frame, "variance")[["checkpoint_share", "seed_share", "example_share"]].astype(float)
    np.testing.assert_allclose(shares.to_numpy(), [[0.0, 8 / 9, 1 / 9]] * 2, atol=1e-12)
    (cmp,) = kind(frame, "comparison").itertuples()
    assert cmp.diff == pytest.approx(0.0, abs=1e-12) and not cmp.exceeds
    assert "within the seed spread" in seeds.reading(frame)


def test_one_seed_gives_no_data(make: SimpleNamespace) -> None:
    assert seeds.seeds(make.frame(make.headline_rows())).empty


def test_hierarchical_bootstrap_is_the_plain_one_for_one_seed_and_wider_when_seeds_disagree() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(60)
    ft = base + 0.1 + 0.05 * rng.standard_normal(60)
    plain = paired_bootstrap(ft, base, seed=5)[1:]
    one = seeds.hierarchical_bootstrap(ft[None], base, seed=5)
    assert tuple(np.quantile(one, [0.025, 0.975])) == plain
    # identical seeds are one seed
    np.testing.assert_allclose(seeds.hierarchical_bootstrap(np.stack([ft] * 3), base, seed=5), one, rtol=1e-12)
    disagreeing = np.stack([ft - 0.08, ft, ft + 0.08])
    low, high = np.quantile(seeds.hierarchical_bootstrap(disagreeing, base, seed=5), [0.025, 0.975])
    plain_low, plain_high = paired_bootstrap(disagreeing.mean(axis=0), base, seed=5)[1:]
    assert high - low > 1.5 * (plain_high - plain_low)


def test_the_interval_uses_the_per_example_scores_of_the_selected_rate_and_method(make: SimpleNamespace) -> None:
    """A study has per-example scores for every learning rate and method it trained; the
    hierarchical interval of a cell must resample those of the rows it describes (the selected
    rate of the slice's method), never another model's that shares its checkpoint, task and seed."""
    n = 50
    base = np.r_[np.ones(n // 2), np.zeros(n // 2)]  # BASE accuracy 0.5 on 50 examples
    models = {("full", 0.1): 0.7, ("full", 0.2): 0.2, ("lora", 0.1): 0.95}  # accuracy of each model's seeds
    rows, examples = [make.row("c1", "", "nli_val", 0.5)], []
    examples.append(dict(checkpoint="c1", train_task="", ft_method="", lr=None, seed=None, vals=list(base)))
    for (method, lr), accuracy in models.items():
        for s in (0, 1):
            vals = (np.arange(n) < round(accuracy * n) + s).astype(float)  # the seeds differ by one example
            rows.append(dict(make.row("c1", "nli", "nli_val", vals.mean(), lr=lr, selected=lr == 0.1), seed=s,
                             ft_method=method))
            examples.append(dict(checkpoint="c1", train_task="nli", ft_method=method, lr=lr, seed=s, vals=list(vals)))
    unit = dict(variant="none", ft_fraction=1.0, eval_set="nli_val", format="default", shots=4, method="tokenprob",
                metric="accuracy")
    frame = seeds.seeds(make.frame(rows), examples=pd.DataFrame([e | unit for e in examples]))
    (cell,) = kind(frame, "cell").itertuples()
    assert cell.ci_source == seeds.HIERARCHICAL and cell.gain == pytest.approx(0.21)
    assert cell.ci_low < 0.21 < cell.ci_high and cell.ci_high - cell.ci_low < 0.3


def test_a_seed_effect_on_a_shared_eval_set_is_recovered() -> None:
    """4 checkpoints x 5 seeds x 500 examples that every seed scores: score = checkpoint mean + seed
    effect (sd 0.01, variance 1e-4) + example difficulty (sd 0.45, shared) + seed x example noise
    (sd 0.05). Every difference between seeds of a checkpoint is the seed's; the example-sampling
    variance of a value (about 4e-4) is four times the seed variance, so subtracting it from the
    within-checkpoint variance (as if the seeds had examples of their own) zeroes the seed share.
    Over 300 replicates the mean estimated seed variance must be 1e-4 within 3 standard errors of
    that mean."""
    rng = np.random.default_rng(0)
    n_rep, n_ck, n_seeds, n = 300, 4, 5, 500
    means = np.array([0.40, 0.45, 0.50, 0.55])
    seed_var = 1e-4
    scores = (means[None, :, None, None] + np.sqrt(seed_var) * rng.standard_normal((n_rep, n_ck, n_seeds, 1))
              + 0.45 * rng.standard_normal((n_rep, 1, 1, n)) + 0.05 * rng.standard_normal((n_rep, n_ck, n_seeds, n)))
    values = scores.mean(axis=3)
    se = scores.std(axis=3, ddof=1) / np.sqrt(n)
    checkpoints = np.repeat(np.arange(n_ck), n_seeds)
    estimates, naive = [], []
    for r in range(n_rep):
        frame = pd.DataFrame({"checkpoint": checkpoints, "value": values[r].ravel(), "se": se[r].ravel()})
        unshared = float(np.mean([seeds.unshared_noise(scores[r, c]) for c in range(n_ck)]))
        parts = seeds.components(frame, unshared)
        estimates.append(parts["seed"])
        naive.append(max(0.0, parts["seed"] + unshared - parts["example"]))
    estimates = np.array(estimates)
    assert abs(estimates.mean() - seed_var) < 3 * estimates.std(ddof=1) / np.sqrt(n_rep)
    assert np.mean(estimates == 0) < 0.05
    assert np.mean(np.array(naive) == 0) > 0.8  # the old subtraction of the example variance


def test_the_seed_share_is_net_of_the_unshared_example_noise(make: SimpleNamespace) -> None:
    """Per-example scores: at each checkpoint seed 1 scores seed 0's examples plus 0.05 (its seed
    effect), plus 0.04 on the first half and minus 0.04 on the second (seed x example noise). Seed
    0's scores rise by 0.1 per checkpoint. By hand, on 4 examples: the residuals are +-0.02, their
    square sum 8 x 4e-4 over (2 - 1)(4 - 1) gives 1.067e-3, over 4 examples 2.67e-4 of unshared
    noise. W = 0.05^2 / 2 = 1.25e-3, so seed = 1.25e-3 - 2.67e-4; B = var(.525, .625) = 5e-3, so
    checkpoint = 5e-3 - W / 2."""
    base = np.array([0.2, 0.4, 0.6, 0.8])
    rows, examples = [], []
    for i, ck in enumerate(("c1", "c2")):
        rows.append(make.row(ck, "", "nli_val", 0.5))
        examples.append(dict(checkpoint=ck, train_task="", ft_method="", lr=None, seed=None, vals=list(base)))
        zero = base + 0.1 * i
        for s, vals in enumerate((zero, zero + 0.05 + np.array([0.04, 0.04, -0.04, -0.04]))):
            rows.append(dict(make.row(ck, "nli", "nli_val", vals.mean()), seed=s))
            examples.append(dict(checkpoint=ck, train_task="nli", ft_method="full", lr=2e-6, seed=s, vals=list(vals)))
    assert seeds.unshared_noise(np.stack([base, base + np.array([0.04, 0.04, -0.04, -0.04])])) == pytest.approx(
        8 * 4e-4 / 3 / 4)
    unit = dict(variant="none", ft_fraction=1.0, eval_set="nli_val", format="default", shots=4, method="tokenprob",
                metric="accuracy")
    frame = seeds.seeds(make.frame(rows), examples=pd.DataFrame([e | unit for e in examples]))
    (var,) = kind(frame, "variance").itertuples()
    # e: the SE of the rows' CIs (0.02 / Z) squared
    e, checkpoint, seed = (0.02 / Z) ** 2, 0.005 - 0.00125 / 2, 0.00125 - 8 * 4e-4 / 3 / 4
    assert var.ci_source == seeds.PER_EXAMPLE
    np.testing.assert_allclose([var.checkpoint_share, var.seed_share, var.example_share],
                               np.array([checkpoint, seed, e]) / (checkpoint + seed + e), rtol=1e-9)
