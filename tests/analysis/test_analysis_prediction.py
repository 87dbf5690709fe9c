"""Prediction of fine-tuned results from proxies, and catastrophic overtraining, on the hand-made
table of conftest.py plus proxy rows (method ``probe``), every value worked out by hand.

Proxies added, per checkpoint c1, c2, c3:
    heldout_loss (model level)   5.0   4.0   3.0   lower is better: orders like FT on nli_val
    sensitivity (model level)    0.1   0.2   0.3   lower is better: the reverse of FT on nli_val
    gold_loglik nli_val 4-shot  -2.0  -1.5  -1.0   (a 0-shot distractor -1, -2, -3 is not read)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptft.analysis import prediction
from ptft.analysis.api import analyze, compute
from ptft.analysis.gain import gain
from ptft.analysis.slices import Slice
from ptft.analysis.table import load_table
from ptft.analysis.trajectory import trajectory
from ptft.errors import DataError

CKPTS = ("c1", "c2", "c3")


def proxy(make, checkpoint: str, metric: str, value: float, eval_set: str = "", shots: int = 0) -> dict:
    r = make.row(checkpoint, "", "nli_val", value, shots=shots, method="probe", metric=metric, ci=None)
    if not eval_set:
        r.update(eval_set="", eval_task="pretrain_heldout", task_type="", domain="")
    return r


def proxy_rows(make) -> list[dict]:
    rows = []
    for c, loss, sens, ll, distractor in zip(CKPTS, (5.0, 4.0, 3.0), (0.1, 0.2, 0.3), (-2.0, -1.5, -1.0),
                                             (-1.0, -2.0, -3.0)):
        rows += [proxy(make, c, "heldout_loss", loss), proxy(make, c, "sensitivity", sens),
                 proxy(make, c, "gold_loglik", ll, "nli_val", 4), proxy(make, c, "gold_loglik", distractor, "nli_val", 0)]
    return rows


@pytest.fixture
def with_proxies(table, make):
    return make.frame(table.to_dict("records") + proxy_rows(make))


def result(rows, eval_set: str, proxy_name: str, target: str):
    hit = rows[(rows["eval_set"] == eval_set) & (rows["proxy"] == proxy_name) & (rows["target"] == target)]
    assert len(hit) == 1
    return hit.iloc[0]


def test_pairwise_accuracy_counts_ties_as_half_and_reversals_as_zero() -> None:
    assert prediction.pairwise_accuracy([1, 2, 3], [10, 20, 30]) == 1.0
    assert prediction.pairwise_accuracy([3, 2, 1], [10, 20, 30]) == 0.0
    # pairs (1,2): proxy tie 0.5; (1,3): agree 1; (2,3): agree 1 -> 2.5 / 3
    assert prediction.pairwise_accuracy([1, 1, 2], [1, 2, 3]) == pytest.approx(2.5 / 3)
    # a tie in the target counts a half too: (1,2) 0.5, (1,3) 0 (reversed), (2,3) 0 -> 0.5 / 3
    assert prediction.pairwise_accuracy([1, 2, 3], [5, 5, 1]) == pytest.approx(0.5 / 3)
    assert math.isnan(prediction.pairwise_accuracy([1], [1]))


def test_bootstrap_interval_is_seeded_and_degenerate_for_a_perfect_proxy() -> None:
    def pairwise(proxy, target, seed):
        return prediction.ordering_intervals(np.array(proxy, float), np.array(target, float), seed)

    perfect = pairwise([1, 2, 3, 4], [1, 2, 3, 4], seed=0)
    assert perfect == {"pairwise_accuracy": (1.0, 1.0), "kendall": (1.0, 1.0), "spearman": (1.0, 1.0)}
    assert pairwise([4, 3, 2, 1], [1, 2, 3, 4], seed=0)["pairwise_accuracy"] == (0.0, 0.0)
    a = pairwise([1, 3, 2, 4, 6, 5], [1, 2, 3, 4, 5, 6], seed=3)
    assert a == pairwise([1, 3, 2, 4, 6, 5], [1, 2, 3, 4, 5, 6], seed=3)
    low, high = a["pairwise_accuracy"]
    assert 0.0 <= low <= prediction.pairwise_accuracy([1, 3, 2, 4, 6, 5], [1, 2, 3, 4, 5, 6]) <= high <= 1.0
    # without ties tau-b is 2 x accuracy - 1, replicate by replicate
    assert a["kendall"] == pytest.approx((2 * low - 1, 2 * high - 1))


def test_the_interval_carries_the_evaluation_noise() -> None:
    """Three checkpoints in perfect order, .50 .51 .52, resampled as they are: [1, 1] whatever their
    noise. Each fine-tuned value with a standard error of .05 makes the order of the series a coin
    toss in many replicates, and every interval must reach down to chance or below."""
    proxy, target, se = np.array([1.0, 2.0, 3.0]), np.array([0.50, 0.51, 0.52]), np.full(3, 0.05)
    exact = prediction.ordering_intervals(proxy, target, seed=0)
    assert exact["pairwise_accuracy"] == (1.0, 1.0)
    noisy = prediction.ordering_intervals(proxy, prediction.noisy(target, se, np.random.default_rng(0)), seed=0)
    assert noisy["pairwise_accuracy"][0] <= 0.5 and noisy["pairwise_accuracy"][1] == 1.0
    assert noisy["kendall"][0] <= 0.0 and noisy["spearman"][0] <= 0.0
    # a zero standard error adds nothing
    still = prediction.ordering_intervals(proxy, prediction.noisy(target, np.zeros(3), np.random.default_rng(0)), 0)
    assert still == exact


def test_prediction_values_by_hand(with_proxies) -> None:
    rows, points = prediction.evaluate(with_proxies, Slice(), seed=0)
    assert list(rows.columns) == prediction.COLUMNS
    # every in-domain own set (nli_val for nli, summ_test for summ) x proxy x target
    assert set(zip(rows["eval_set"], rows["proxy"])) == {
        ("nli_val", "base"), ("nli_val", "heldout_loss"), ("nli_val", "sensitivity"), ("nli_val", "gold_loglik"),
        ("summ_test", "base"), ("summ_test", "heldout_loss"), ("summ_test", "sensitivity")}
    assert len(rows) == 14
    # BASE ranking = FT ranking on nli_val (.4 .5 .6 vs .7 .8 .9)
    base = result(rows, "nli_val", "base", "ft")
    assert (base.n_checkpoints, base.spearman, base.kendall, base.pairwise_accuracy) == (3, 1.0, 1.0, 1.0)
    assert (base.ci_low, base.ci_high) == (1.0, 1.0)
    # lower loss = better: oriented, it predicts perfectly; sensitivity rises as FT rises: reversed
    assert result(rows, "nli_val", "heldout_loss", "ft").pairwise_accuracy == 1.0
    sens = result(rows, "nli_val", "sensitivity", "ft")
    assert (sens.spearman, sens.kendall, sens.pairwise_accuracy, sens.ci_low, sens.ci_high) == (-1, -1, 0, 0, 0)
    assert result(rows, "nli_val", "gold_loglik", "ft").pairwise_accuracy == 1.0  # the 4-shot rows, not 0-shot
    # gain on nli_val is .3 at every checkpoint: all pairs tie, correlations undefined
    flat = result(rows, "nli_val", "base", "gain")
    assert flat.pairwise_accuracy == 0.5 and np.isnan(flat.spearman) and np.isnan(flat.kendall)
    # summ_test: BASE 0 .1 .1 vs FT .2 .3 .4: pairs 1, 1, tie 0.5; tau-b 2/sqrt(6); rho 1.5/sqrt(3)
    summ = result(rows, "summ_test", "base", "ft")
    assert summ.pairwise_accuracy == pytest.approx(2.5 / 3)
    assert summ.kendall == pytest.approx(2 / math.sqrt(6))
    assert summ.spearman == pytest.approx(1.5 / math.sqrt(3))
    assert summ.ci_low <= summ.pairwise_accuracy <= summ.ci_high
    # gain .2 .2 .3 against BASE 0 .1 .1: tie .5, agree 1, tie .5
    assert result(rows, "summ_test", "base", "gain").pairwise_accuracy == pytest.approx(2 / 3)
    assert len(points) == 3 * 7


def test_base_proxy_needs_nothing_but_base_and_ft_rows(table) -> None:
    rows, _ = prediction.evaluate(table, Slice(), seed=0)
    assert set(rows["proxy"]) == {"base"}
    assert result(rows, "nli_val", "base", "ft").pairwise_accuracy == 1.0


def test_picks_name_the_best_checkpoint_and_who_found_it(with_proxies) -> None:
    rows, points = prediction.evaluate(with_proxies, Slice(), seed=0)
    chosen = prediction.picks(points, rows).set_index(["eval_set", "proxy"])
    assert chosen.loc[("nli_val", "base"), "best_checkpoints"] == "c3"
    assert chosen.loc[("nli_val", "heldout_loss"), "picks_best"]
    assert chosen.loc[("nli_val", "sensitivity"), "picked_checkpoint"] == "c1"
    lines = prediction.predicted_section(points, rows)
    nli = next(line for line in lines if line.startswith("- nli (nli_val)"))
    assert "best checkpoint to fine-tune is c3" in nli and "sensitivity" not in nli
    assert "3 checkpoints give 3 pairs" in nli


def test_a_fine_tuned_metric_that_ties_has_no_best_checkpoint(make) -> None:
    rows = make.series("", "nli_val", (0.4, 0.5, 0.6)) + make.series("nli", "nli_val", (0.5, 0.5, 0.5))
    rows_, points = prediction.evaluate(make.frame(rows), Slice(), seed=0)
    assert prediction.picks(points, rows_).loc[0, "best_checkpoints"] == "c1 c2 c3"
    assert prediction.predicted_section(points, rows_) == [
        "- nli (nli_val): the fine-tuned metric ties at its best at c1, c2, c3: no single checkpoint to pick."]


def test_proxy_rows_change_no_other_analysis(table, with_proxies) -> None:
    for fn in (gain, lambda t, sl: trajectory(t, sl)):
        assert fn(table, Slice()).equals(fn(with_proxies, Slice()))


def test_model_level_proxies_may_lack_type_and_domain_but_results_may_not(make, with_proxies, tmp_path) -> None:
    assert len(load_table(with_proxies)) == len(with_proxies)
    csv = tmp_path / "table.csv"  # blank cells in a file read back as the empty strings they were
    with_proxies.to_csv(csv, index=False)
    assert prediction.evaluate(csv)[0].equals(prediction.evaluate(with_proxies)[0])
    bad = make.row("c1", "", "nli_val", 0.5)
    bad.update(domain="")
    with pytest.raises(DataError, match="unknown domain ''"):
        load_table(make.frame([bad]))


def test_overtraining_by_hand(make) -> None:
    """FT nli on nli_val .70 .90 .80 with CI half-width .02 (se .04/3.92): against c2, Z = .1 /
    (sqrt 2 se) = 6.93; two earlier checkpoints with equal errors give Dunnett's one-sided 2.5 %
    critical value 2.2121 (1.96 for one), so the threshold is 2.2121 sqrt(2) se. Other tasks: nli
    on summ_test falls .30 .20 .05 (a decline), summ on nli_val stays at .50 (none)."""
    rows = (make.series("", "nli_val", (0.4, 0.5, 0.6)) + make.series("nli", "nli_val", (0.70, 0.90, 0.80))
            + make.series("", "summ_test", (0.1, 0.1, 0.1)) + make.series("summ", "summ_test", (0.3, 0.4, 0.35),
                                                                         ci=0.1)
            + make.series("nli", "summ_test", (0.30, 0.20, 0.05)) + make.series("summ", "nli_val", (0.5, 0.5, 0.5)))
    frame = prediction.overtraining(make.frame(rows))
    assert frame[["train_task", "scope", "eval_set"]].values.tolist() == [
        ["nli", "familiar", "nli_val"], ["nli", "other", "summ_test"], ["summ", "familiar", "summ_test"],
        ["summ", "other", "nli_val"]]
    frame = frame.set_index(["train_task", "scope"])
    se = 0.04 / (2 * 1.959964)
    nli = frame.loc[("nli", "familiar")]
    assert (nli.last_checkpoint, nli.best_checkpoint) == ("c3", "c2")
    assert nli.shortfall == pytest.approx(0.1) and nli.z == pytest.approx(0.1 / (math.sqrt(2) * se))
    assert nli.critical_z == pytest.approx(2.2121, abs=1e-4)
    assert nli.threshold == pytest.approx(nli.critical_z * math.sqrt(2) * se)
    assert bool(nli.overtrained)
    # summ: shortfall .05 against 2.2121 sqrt(2) .1/1.96 = .160: not significant
    assert frame.loc[("summ", "familiar"), "threshold"] == pytest.approx(2.2121 * math.sqrt(2) * 0.1 / 1.959964,
                                                                        rel=1e-4)
    assert not frame.loc[("summ", "familiar"), "overtrained"]
    assert frame.loc[("nli", "other"), "best_checkpoint"] == "c1" and frame.loc[("nli", "other"), "overtrained"]
    assert not frame.loc[("summ", "other"), "overtrained"]
    reading = prediction.overtraining_reading(frame.reset_index())
    assert reading.startswith("Decline on the familiar task in 1 of 2 pair(s): nli (nli_val) at c3 is 0.100 below c2")
    assert "Decline on other tasks in 1 of 2 pair(s): nli (summ_test) at c3 is 0.250 below c1" in reading


@pytest.mark.parametrize("k", [3, 5, 10])
def test_overtraining_holds_its_false_alarm_rate_at_any_length(k: int) -> None:
    """Null series: k checkpoints with the same true value, each measured with its own standard
    error (0.01 to 0.03) and normal noise. Comparing the last with the best earlier one at 1.96 fired
    4.5 %, 7.8 % and 13.5 % of the time at 3, 5 and 10 checkpoints; the max-statistic test must stay
    at its one-sided 2.5 %: within 3 binomial standard deviations over 3000 series (1.65 to 3.35 %)."""
    rng = np.random.default_rng(k)
    se = rng.uniform(0.01, 0.03, k)
    n = 3000
    series = 0.6 + se * rng.standard_normal((n, k))
    flags = [z > c for _, z, c in (prediction.decline_test(v, se) for v in series)]
    band = 3 * math.sqrt(0.025 * 0.975 / n)
    assert abs(np.mean(flags) - 0.025) < band
    naive = np.mean([(v[:-1].max() - v[-1]) > 1.96 * math.hypot(se[np.argmax(v[:-1])], se[-1]) for v in series])
    assert naive > 0.025 + band  # what the old rule did


def test_analyze_writes_prediction_and_overtraining(with_proxies, tmp_path) -> None:
    analyze(with_proxies, tmp_path)
    import pandas as pd

    written = pd.read_csv(tmp_path / "prediction.csv")
    assert list(written.columns) == prediction.COLUMNS
    for name in ("prediction.png", "prediction.svg", "overtraining.csv", "overtraining.png"):
        assert (tmp_path / name).is_file()
    summary = (tmp_path / "summary.md").read_text()
    assert "## Could we have predicted it?" in summary and "Overtraining: " in summary
    assert compute(with_proxies).reading("prediction").startswith("Ordering checkpoints")
