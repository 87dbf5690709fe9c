"""The grafting analysis on the headline table of conftest.py plus grafted rows whose shares are
worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ptft.analysis import grafting
from ptft.analysis.api import compute

# grafted values at c1, c2, c3 (BASE and FT: conftest.py's headline table)
GRAFT_1PCT = {("nli", "nli_val"): (0.55, 0.65, 0.75),      # gain .30 .30 .30, graft .15 .15 .15: 0.5
              ("summ", "summ_test"): (0.05, 0.20, 0.40),   # gain .20 .20 .30, graft .05 .10 .30
              ("nli", "summ_test"): (0.00, 0.08, 0.06),    # change 0 -.05 -.08, graft 0 -.02 -.04
              ("summ", "nli_val"): (0.38, 0.50, 0.63),     # change -.04 0 +.06, graft -.02 0 +.03
              ("nli", "nli_ood"): (0.9, 0.9, 0.9),         # out of domain: in neither scope
              ("summ", "summ_ood"): (0.9, 0.9, 0.9)}


def with_grafts(make: SimpleNamespace) -> pd.DataFrame:
    rows = make.headline_rows()
    grafted = [make.row(c, task, eval_set, v, variant="graft1pct")
               for (task, eval_set), values in GRAFT_1PCT.items() for c, v in zip(("c1", "c2", "c3"), values)]
    everything = [dict(r, variant="graft100pct") for r in rows if r["train_task"]]
    table = make.frame(rows + grafted + everything)
    return table.assign(variant=table["variant"].fillna("none"))


def shares(frame: pd.DataFrame, task: str, scope: str, percent: float) -> list[float]:
    mine = frame[(frame["train_task"] == task) & (frame["scope"] == scope) & (frame["top_percent"] == percent)]
    return mine.set_index("checkpoint")["share"].reindex(["c1", "c2", "c3"]).tolist()


def test_shares_of_the_gain_and_of_the_cross_task_change(make: SimpleNamespace) -> None:
    frame = grafting.grafting(with_grafts(make))
    assert list(frame.columns) == grafting.COLUMNS
    assert shares(frame, "nli", "in-domain", 1) == pytest.approx([0.5, 0.5, 0.5])
    assert shares(frame, "summ", "in-domain", 1) == pytest.approx([0.25, 0.5, 1.0])
    # pooled: (.15 + .05) / (.30 + .20) at c1, (.15 + .30) / (.30 + .30) at c3
    assert shares(frame, "", "in-domain", 1) == pytest.approx([0.4, 0.5, 0.75])
    # nli's cross-task change at c1 and summ's at c2 are 0: no share. nli's -.05 and -.08 at c2 and c3
    # are on summ_test, whose BASE has a CI of +-.10: their intervals (+-.10) hold 0, so no share either;
    # summ's -.04 and +.06 on nli_val (CIs +-.02 on both sides: +-.028) have one.
    assert shares(frame, "nli", "cross-task", 1) == pytest.approx([np.nan] * 3, nan_ok=True)
    assert shares(frame, "summ", "cross-task", 1) == pytest.approx([0.5, np.nan, 0.5], nan_ok=True)
    # pooled, -.04, -.05 and -.02 over 2 sets, each with nli's wide interval in it
    assert shares(frame, "", "cross-task", 1) == pytest.approx([np.nan] * 3, nan_ok=True)
    # the whole change is the fine-tuned model: a share of 1 wherever one is defined
    whole = frame[(frame["top_percent"] == 100) & frame["share"].notna()]
    assert len(whole) == 11 and np.allclose(whole["share"], 1.0)
    assert ((whole["ci_low"] < 1) & (whole["ci_high"] > 1)).all()
    at = frame[(frame["train_task"] == "") & (frame["top_percent"] == 1) & (frame["checkpoint"] == "c3")]
    assert at.set_index("scope")["ft_change"].to_dict() == pytest.approx({"in-domain": 0.30, "cross-task": -0.01})
    assert (at["n"] == 2).all()
    # the change's own interval, per set: pooled cross-task at c3, -.01 +- 1.96 x sqrt(.051^2 + 3 x .0102^2) / 2
    cross = at.set_index("scope").loc["cross-task"]
    assert (cross["ft_ci_high"] - cross["ft_ci_low"]) / 2 == pytest.approx(1.96 * np.sqrt(
        (0.10 / 1.96) ** 2 + 3 * (0.02 / 1.96) ** 2) / 2, rel=0.05)
    assert cross["ft_ci_low"] < 0 < cross["ft_ci_high"]


def test_the_interval_reflects_the_scores_own_uncertainty(make: SimpleNamespace) -> None:
    """The pooled in-domain share at c1 is (g1 - b1 + g2 - b2) / (f1 - b1 + f2 - b2) = .2 / .5 over
    nli_val and summ_test. Every value's CI is +-.02 (se s = .02 / 1.96) but BASE's summ_test, +-.10
    (se S): by the delta method var(share) = (var(num) + r^2 var(den) - 2 r cov(num, den)) / den^2 with
    var(num) = var(den) = 3 s^2 + S^2 and cov = s^2 + S^2 (the shared BASE values)."""
    frame = grafting.grafting(with_grafts(make), seed=3)
    row = frame[(frame["train_task"] == "") & (frame["scope"] == "in-domain") & (frame["top_percent"] == 1)
                & (frame["checkpoint"] == "c1")].iloc[0]
    s, big = 0.02 / 1.959964, 0.10 / 1.959964
    r, den = 0.4, 0.5
    sd = np.sqrt((3 * s**2 + big**2) * (1 + r**2) - 2 * r * (s**2 + big**2)) / den
    assert row["share"] == pytest.approx(r) and sd == pytest.approx(0.0697, abs=1e-4)
    # the interval's width is the delta method's within 10 % (a ratio's skew moves its ends by a few
    # hundredths); drawing BASE apart for numerator and denominator would make it 1.25 times wider
    assert (row["ci_high"] - row["ci_low"]) / (2 * 1.959964) == pytest.approx(sd, rel=0.1)
    assert row["ci_low"] < r < row["ci_high"]


def test_reading_and_the_analyses_registry(make: SimpleNamespace) -> None:
    table = with_grafts(make)
    text = grafting.reading(grafting.grafting(table.query("variant != 'graft100pct'")))
    # pooled in-domain shares at 1 %: 0.4 at c1, 0.75 at c3, with intervals about +-0.14 apart
    assert text.startswith("At c3, grafting the top 1 % of the change carries 0.75 of the in-domain gain "
                           "(+0.300 per set)")
    assert "against 0.40 at c1" in text and "more pre-training, a more localised skill" in text
    assert "cross-task" not in text  # no pooled cross-task change shown to differ from 0 (see above)
    # without nli, the pooled cross-task change is summ's on nli_val: +.06 at c3, half of it grafted
    summ = grafting.reading(grafting.grafting(table.query("variant != 'graft100pct' and train_task != 'nli'")))
    assert "it carries 0.50" in summ and "of the cross-task change (+0.060 per set)" in summ
    both = grafting.reading(grafting.grafting(table))
    assert both.startswith("At c3, grafting the top 1, 100 % of the change carries 0.75, 1.00 of the in-domain gain")
    results = compute(table)
    assert not results.frames["grafting"].empty
    # the methods analysis leaves the grafts to this one
    assert set(results.frames["methods"]["variant"]) == {"none"}


def test_a_table_without_grafts_has_no_rows(table: pd.DataFrame) -> None:
    assert grafting.grafting(table).empty
