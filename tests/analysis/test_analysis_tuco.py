"""The TuCo analysis on the headline table of conftest.py plus TuCo rows worked out by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from ptft.analysis import tuco
from ptft.analysis.api import compute

TUCO = {("nli", "nli_val"): (0.30, 0.20, 0.10), ("nli", "nli_ood"): (0.25, 0.20, 0.15),
        ("nli", "summ_test"): (0.10, 0.20, 0.30),   # cross-task change 0 -.05 -.08: rho -1
        ("summ", "summ_test"): (0.50, 0.40, 0.30), ("summ", "summ_ood"): (0.40, 0.40, 0.40),
        ("summ", "nli_val"): (0.30, 0.10, 0.20)}    # cross-task change -.04 0 +.06: rho -0.5
SE = 0.02 / 1.959964


def with_tuco(make: SimpleNamespace) -> pd.DataFrame:
    rows = make.headline_rows()
    # the TuCo rows of the scoring method of each set (the study's conftest methods)
    extra = [make.row(c, task, eval_set, v, metric="tuco")
             for (task, eval_set), values in TUCO.items() for c, v in zip(("c1", "c2", "c3"), values)]
    table = make.frame(rows + extra)
    return table.assign(variant=table["variant"].fillna("none"))


def value(frame: pd.DataFrame, task: str, measure: str, checkpoint: str) -> pd.Series:
    return frame[(frame["train_task"] == task) & (frame["measure"] == measure)
                 & (frame["checkpoint"] == checkpoint)].iloc[0]


def test_scopes_and_their_difference(make: SimpleNamespace) -> None:
    frame = tuco.tuco(with_tuco(make))
    assert list(frame.columns) == tuco.COLUMNS
    assert value(frame, "nli", "in-domain", "c1")["value"] == pytest.approx(0.30)
    assert value(frame, "nli", "out-of-domain", "c3")["value"] == pytest.approx(0.15)
    assert value(frame, "summ", "cross-task", "c2")["value"] == pytest.approx(0.10)
    diff = value(frame, "nli", "in-domain - cross-task", "c1")
    assert diff["value"] == pytest.approx(0.20)
    assert diff["ci_high"] - diff["value"] == pytest.approx(1.959964 * math.hypot(SE, SE))
    # pooled: the mean of the two tasks' sets, se sqrt(2 s^2) / 2
    pooled = value(frame, "", "in-domain", "c1")
    assert pooled["value"] == pytest.approx(0.40) and pooled["n"] == 2
    assert pooled["ci_high"] - pooled["value"] == pytest.approx(1.959964 * math.sqrt(2) * SE / 2)


def test_tuco_against_forgetting_is_a_rank_correlation(make: SimpleNamespace) -> None:
    frame = tuco.tuco(with_tuco(make))
    rho = frame[frame["measure"] == "forgetting"].set_index("train_task")
    assert rho.loc["nli", "value"] == pytest.approx(-1.0) and rho.loc["summ", "value"] == pytest.approx(-0.5)
    # pooled over the six points, ranks with ties worked out by hand: -10 / sqrt(16 * 17)
    assert rho.loc["", "value"] == pytest.approx(-10 / math.sqrt(16 * 17)) and rho.loc["", "n"] == 6
    assert rho.loc["", "ci_low"] <= rho.loc["", "value"] <= rho.loc["", "ci_high"]


def test_reading_registry_and_the_other_analyses_ignore_tuco_rows(make: SimpleNamespace) -> None:
    table = with_tuco(make)
    text = tuco.reading(tuco.tuco(table))
    assert text.startswith("At c3, TuCo is in-domain 0.200, out-of-domain 0.275, cross-task 0.250")
    assert "Spearman's rho of TuCo with the cross-task change -0.61" in text
    with_rows, without = compute(table), compute(make.frame(make.headline_rows()))
    assert not with_rows.frames["tuco"].empty and without.frames["tuco"].empty
    for name in ("gain", "mrc", "findings"):
        pd.testing.assert_frame_equal(with_rows.frames[name], without.frames[name])
