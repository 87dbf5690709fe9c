"""Every analysis on the hand-made table of conftest.py, against numbers worked out by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ptft.analysis import Slice, format_sensitivity, gain, gain_slope, groups, mrc, ood, trajectory
from ptft.analysis.forgetting import MRC_COLUMNS
from ptft.analysis.stats import bootstrap_mean, cluster_bootstrap_mean, ols_slope
from ptft.errors import DataError

approx = pytest.approx


def values(df: pd.DataFrame, column: str) -> list[float]:
    return df[column].astype(float).tolist()


def test_trajectory_uses_base_default_format_largest_shots_preferred_method(table: pd.DataFrame) -> None:
    t = trajectory(table)
    assert len(t) == 12 and set(t["shots"]) == {4} and set(t["format"]) == {"default"}
    nli = t[t["eval_set"] == "nli_val"]
    # Not the 0-shot 0.9 nor the constrained 0.99: 4-shot TokenProb, in checkpoint order.
    assert nli["checkpoint"].tolist() == ["c1", "c2", "c3"]
    assert values(nli, "value") == approx([0.40, 0.50, 0.60])
    assert values(nli, "ci_low") == approx([0.38, 0.48, 0.58])
    zero_shot = trajectory(table, Slice(shots=0))
    assert values(zero_shot, "value") == approx([0.9, 0.9, 0.9])


def test_gain_rows_means_and_ratio_guard(table: pd.DataFrame) -> None:
    g = gain(table)
    rows = g[g["eval_set"] != ""].set_index(["train_task", "eval_set", "checkpoint"])
    assert values(rows.loc[("nli", "nli_val")], "raw_change") == approx([0.30, 0.30, 0.30])
    assert values(rows.loc[("summ", "summ_test")], "raw_change") == approx([0.20, 0.20, 0.30])
    summ = rows.loc[("summ", "summ_test")]
    # BASE summ_test is 0 at c1: no ratio there, and the row says it was excluded.
    assert math.isnan(summ.loc["c1", "change_ratio"]) and summ.loc["c1", "n_excluded"] == 1
    assert values(summ, "change_ratio")[1:] == approx([2.0, 3.0])
    assert set(rows.index.get_level_values("eval_set")) == {"nli_val", "summ_test"}  # own in-domain sets only
    means = g[g["eval_set"] == ""]
    assert means["checkpoint"].tolist() == ["c1", "c2", "c3"]
    assert values(means, "raw_change") == approx([0.25, 0.25, 0.30])
    assert values(means, "change_ratio") == approx([0.75, (0.6 + 2.0) / 2, (0.5 + 3.0) / 2])
    assert means["n_excluded"].tolist() == [1, 0, 0]
    # Bootstrap over two cells: the CI spans exactly the two values.
    assert values(means, "ci_low") == approx([0.20, 0.20, 0.30])
    assert values(means, "ci_high") == approx([0.30, 0.30, 0.30])


def test_gain_slope_by_hand(table: pd.DataFrame) -> None:
    # x = steps / 100k = 0.01, 1.01, 2.01 (dx = -1, 0, 1); y = 0.25, 0.25, 0.30.
    # slope = Sxy / Sxx = 0.05 / 2; residuals 1/120, -1/60, 1/120 -> SSR = 1/2400; se = sqrt(SSR / 1 / 2).
    s = gain_slope(gain(table)).iloc[0]
    se = math.sqrt(1 / 2400 / 2)
    assert s["steps_per_unit"] == 100_000 and s["slope"] == approx(0.025)
    assert s["se"] == approx(se)
    assert s["ci_high"] - s["slope"] == approx(stats.t.ppf(0.975, 1) * se)
    assert s["n_checkpoints"] == 3 and s["n_without_step"] == 0


def test_lr_override_and_its_errors(table: pd.DataFrame) -> None:
    g = gain(table, Slice(lr={"nli": 2e-7}))
    nli = g[(g["train_task"] == "nli")]
    assert values(nli, "raw_change") == approx([0.05, 0.05, 0.05])  # .45 .55 .65 against .40 .50 .60
    with pytest.raises(DataError, match=r"--lr nli=0\.1: task 'nli' has no rows at that learning rate "
                                        r"\(present: 2e-07, 2e-06\)"):
        gain(table, Slice(lr={"nli": 0.1}))
    with pytest.raises(DataError, match="no fine-tuned rows for task 'xsum'"):
        gain(table, Slice(lr={"xsum": 2e-6}))


def test_two_selected_learning_rates_are_refused(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"several learning rates .* task 'nli' .* pass --lr nli=VALUE"):
        gain(table.drop(columns=["selected"]))


def test_unknown_format_or_shots_is_refused(table: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"format 'instruct' is not in the results table \(present: default, io\)"):
        gain(table, Slice(fmt="instruct"))
    with pytest.raises(DataError, match=r"shots 8 is not in the results table \(present: 0, 4\)"):
        gain(table, Slice(shots=8))


def test_seeds_are_averaged(table: pd.DataFrame, make: SimpleNamespace) -> None:
    extra = [dict(r, seed=1, value=r["value"] + 0.1) for r in make.series("nli", "nli_val", (0.70, 0.80, 0.90))]
    g = gain(pd.concat([table, make.frame(extra)], ignore_index=True))
    assert values(g[g["train_task"] == "nli"], "raw_change") == approx([0.35, 0.35, 0.35])


def test_groups_by_hand(table: pd.DataFrame) -> None:
    g = groups(table).set_index(["group", "eval_set"])
    z = stats.norm.ppf(0.975)
    nli = g.loc[("pre-training", "nli_val")]
    # Endpoint CIs +/- 0.02: se = 0.04 / (2 z) each, rise se = sqrt(2) times that.
    half = z * math.hypot(0.04 / (2 * z), 0.04 / (2 * z))
    assert nli["rise"] == approx(0.2) and nli["ci_low"] == approx(0.2 - half) and nli["ci_source"] == "ci"
    assert nli["mean_gain"] == approx(0.30) and nli["n"] == 3
    summ = g.loc[("fine-tuning", "summ_test")]
    # Rise 0.1 but endpoint CIs +/- 0.10: the interval reaches below 0.
    assert summ["rise"] == approx(0.1) and summ["ci_low"] == approx(0.1 - z * math.hypot(0.2 / (2 * z), 0.2 / (2 * z)))
    assert summ["ci_low"] < 0 and summ["mean_gain"] == approx(0.7 / 3)
    assert g.loc[("pre-training", ""), "mean_gain"] == approx(0.30)
    assert g.loc[("fine-tuning", ""), "mean_gain"] == approx(0.7 / 3)
    assert "nli_ood" not in g.index.get_level_values("eval_set")  # in-domain sets only


def test_groups_ci_from_n_when_no_ci(make: SimpleNamespace) -> None:
    rows = [make.row("c1", "", "nli_val", 0.5, ci=None, n=100), make.row("c3", "", "nli_val", 0.6, ci=None, n=100)]
    g = groups(make.frame(rows)).iloc[0]
    se = math.hypot(math.sqrt(0.25 / 100), math.sqrt(0.24 / 100))
    assert g["ci_source"] == "n" and g["ci_high"] == approx(0.1 + stats.norm.ppf(0.975) * se)
    assert g["group"] == "fine-tuning"  # 0.1 +/- 0.137 includes 0


def test_mrc_by_hand(table: pd.DataFrame) -> None:
    m = mrc(table)
    assert list(m.columns) == MRC_COLUMNS
    expected = pd.DataFrame([
        # nli on summ_test: c1 BASE 0 -> excluded; c2 (.05-.1)/.1 = -50 %; c3 (.02-.1)/.1 = -80 %.
        ("classification->generation", "", "", -65.0, -80.0, -50.0, 2, 1),
        ("classification->generation", "nli", "summ_test", -65.0, -80.0, -50.0, 2, 1),
        # summ on nli_val: (.36-.4)/.4 = -10 %, 0 %, (.66-.6)/.6 = +10 %.
        ("generation->classification", "", "", 0.0, -10.0, 10.0, 3, 0),
        ("generation->classification", "summ", "nli_val", 0.0, -10.0, 10.0, 3, 0),
    ], columns=MRC_COLUMNS)
    pd.testing.assert_frame_equal(m.reset_index(drop=True), expected, check_dtype=False, atol=1e-9)
    pd.testing.assert_frame_equal(mrc(table), m)  # seeded


def test_mrc_leaves_instruction_tuning_and_multiple_choice_out(table: pd.DataFrame, make: SimpleNamespace) -> None:
    series = make.series
    it = (series("", "arc", (0.30, 0.30, 0.30)) + series("instruct", "arc", (0.40, 0.40, 0.40))
          + series("instruct", "nli_val", (0.10, 0.10, 0.10)) + series("instruct", "summ_test", (0.0, 0.0, 0.0))
          + series("nli", "arc", (0.10, 0.10, 0.10)) + series("summ", "arc", (0.10, 0.10, 0.10)))
    with_it = pd.concat([table, make.frame(it)], ignore_index=True)
    pd.testing.assert_frame_equal(mrc(with_it), mrc(table))
    g = gain(with_it)
    assert values(g[g["train_task"] == "instruct"], "raw_change") == approx([0.10, 0.10, 0.10])


def test_mrc_guard_threshold_is_a_parameter(table: pd.DataFrame) -> None:
    # With eps above 0.1 every summ_test BASE is guarded: no ratio is left in that direction.
    m = mrc(table, eps=0.2).set_index(["direction", "eval_set"])
    total = m.loc[("classification->generation", "")]
    assert total["n"] == 0 and total["n_excluded"] == 3 and math.isnan(total["mrc_percent"])


def test_ood_by_hand(table: pd.DataFrame) -> None:
    o = ood(table)
    rows = o[o["eval_set"] != ""].set_index(["train_task", "eval_set"])
    assert values(rows.loc[("nli", "nli_ood")], "change_ratio") == approx([0.1, 0.2, -0.1])
    assert values(rows.loc[("summ", "summ_ood")], "change_ratio") == approx([0.1, -0.1, 0.0])
    per_checkpoint = o[(o["eval_set"] == "") & (o["checkpoint"] != "")]
    assert values(per_checkpoint, "change_ratio") == approx([0.1, 0.05, -0.05])
    overall = o[o["checkpoint"] == ""].iloc[0]
    assert overall["change_ratio"] == approx(0.2 / 6) and overall["n"] == 6
    assert overall["ci_low"] < overall["change_ratio"] < overall["ci_high"]


def test_format_sensitivity_by_hand(table: pd.DataFrame, make: SimpleNamespace) -> None:
    f = format_sensitivity(table)
    sets = f[f["eval_set"] != ""].set_index(["model", "eval_set"])
    assert values(sets.loc[("BASE", "nli_val")], "spread") == approx([0.10, 0.05, 0.02])
    assert values(sets.loc[("FT", "summ_test")], "spread") == approx([0.10, 0.05, 0.02])
    assert values(sets.loc[("FT", "nli_val")], "std") == approx(list(np.array([0.2, 0.1, 0.05]) / math.sqrt(2)))
    means = f[f["eval_set"] == ""].set_index(["model", "checkpoint"])
    assert values(means.loc["BASE"], "spread") == approx([0.05, 0.045, 0.015])
    assert values(means.loc["FT"], "spread") == approx([0.15, 0.075, 0.035])
    assert format_sensitivity(make.frame(make.headline_rows())).empty  # one format: nothing to spread


def test_bootstrap_mean_percentiles_by_hand() -> None:
    # Resample means of [0, 0, 0, 1] take k/4 with k ~ Binomial(4, 1/4): P(0) = .32 > .025, and
    # P(k <= 2) = .95 < .975 < P(k <= 3) = .996, so the 95 % interval is [0, 0.75].
    est = bootstrap_mean([0.0, 0.0, 0.0, 1.0], seed=3)
    assert (est.mean, est.ci_low, est.ci_high, est.n) == (0.25, 0.0, 0.75, 4)
    assert math.isnan(bootstrap_mean([0.5]).ci_low) and bootstrap_mean([]).n == 0


def test_mrc_resamples_pairs_not_ratios(make: SimpleNamespace) -> None:
    """Two classification->generation pairs, each with the same ratio at all three checkpoints:
    nli on summ_test -80 %, nli on summ_ood (made in-domain here) -20 %. Resampled as six
    independent ratios the interval is narrow around -50 %; resampled by pair it is the mean of two
    drawn pairs: -80 (p 1/4), -50 (1/2) or -20 (1/4), so [-80, -20]."""
    rows = (make.series("", "summ_test", (0.5, 0.5, 0.5)) + make.series("nli", "summ_test", (0.1, 0.1, 0.1))
            + make.series("", "summ_ood", (0.5, 0.5, 0.5)) + make.series("nli", "summ_ood", (0.4, 0.4, 0.4))
            + make.series("", "nli_val", (0.5, 0.5, 0.5)) + make.series("nli", "nli_val", (0.9, 0.9, 0.9)))
    table = make.frame([dict(r, domain="in") for r in rows])
    total = mrc(table).iloc[0]
    assert (total["train_task"], total["n"]) == ("", 6)
    assert (total["mrc_percent"], total["ci_low"], total["ci_high"]) == approx((-50.0, -80.0, -20.0))
    independent = bootstrap_mean([-0.8] * 3 + [-0.2] * 3)
    assert independent.ci_low > -0.8 and independent.ci_high < -0.2
    # singleton clusters are the plain bootstrap
    assert cluster_bootstrap_mean([1.0, 2, 3, 10], [0, 1, 2, 3], seed=4) == bootstrap_mean([1.0, 2, 3, 10], seed=4)


def test_ols_slope_exact_line_and_two_points() -> None:
    exact = ols_slope(np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 3.0, 5.0, 7.0]))
    assert exact.slope == approx(2.0) and exact.se == approx(0.0, abs=1e-12)
    two = ols_slope(np.array([0.0, 2.0]), np.array([1.0, 2.0]))
    assert two.slope == approx(0.5) and math.isnan(two.se)
