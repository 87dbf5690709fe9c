"""The forgetting law: Kalajdzievski's shifted power law fitted to the cross-task change along
fine-tuning. Points made from known parameters must give those parameters back."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ptft.analysis import forgetting_law
from ptft.analysis.api import analyze, compute
from ptft.analysis.forgetting_law import law

STEPS = (5, 10, 20, 40, 80, 160, 320, 640)
BETA, RHO = 0.8, 1.7
# per checkpoint: change_inf (%), scale, N0 (steps); c2 forgets less in the limit
TRUE = {"c1": (-40.0, 30.0, 30.0), "c2": (-15.0, 12.0, 60.0)}
BASE_SUMM = 0.40


def law_rows(make: SimpleNamespace, steps=STEPS, ci: float = 0.0, truth=TRUE) -> pd.DataFrame:
    """nli fine-tuned at each checkpoint, evaluated on summ_test (its cross-task set) after each of
    ``steps``: FT = BASE (1 + change / 100), the change from the law."""
    rows = [make.row(c, "", s, v, ci=ci) for c in truth for s, v in (("nli_val", 0.5), ("summ_test", BASE_SUMM))]
    for checkpoint, (change_inf, scale, n0) in truth.items():
        change = law(np.array(steps), change_inf, scale, n0, BETA, RHO)
        for step, c in zip(steps, change):
            fraction = step / steps[-1]
            rows.append(make.row(checkpoint, "nli", "summ_test", BASE_SUMM * (1 + c / 100), ci=ci,
                                 ft_fraction=fraction if fraction < 1 else None, ft_step=step))
            rows.append(make.row(checkpoint, "nli", "nli_val", 0.7, ci=ci,
                                 ft_fraction=fraction if fraction < 1 else None, ft_step=step))
    return make.frame(rows)


def test_known_parameters_are_recovered_from_noiseless_points(make: SimpleNamespace) -> None:
    fits, points = forgetting_law.forgetting_law(law_rows(make))
    assert list(fits.columns) == forgetting_law.COLUMNS and fits["checkpoint"].tolist() == ["c1", "c2"]
    for row in fits.itertuples():
        change_inf, scale, n0 = TRUE[row.checkpoint]
        np.testing.assert_allclose([row.change_inf, row.scale, row.n0, row.beta, row.rho],
                                   [change_inf, scale, n0, BETA, RHO], rtol=1e-5)
        # values without error: every bootstrap replicate is the same fit
        np.testing.assert_allclose([row.change_inf_ci_low, row.change_inf_ci_high], [change_inf] * 2, rtol=1e-5)
        assert (row.n_points, row.first_ft_step, row.last_ft_step, row.n_sets) == (8, 5, 640, 1)
        assert row.rmse < 1e-6 and row.r2 == pytest.approx(1.0)
    # the last observed change of c1, by hand: -40 + 30 ((1 + (30/640)^0.8)^1.7 - 1)
    expected = -40 + 30 * ((1 + (30 / 640) ** 0.8) ** 1.7 - 1)
    assert fits["change_last"].iloc[0] == pytest.approx(expected, rel=1e-9)
    assert points["ft_step"].tolist() == list(STEPS) * 2
    np.testing.assert_allclose(points["fitted"], points["cross_task_percent"], atol=1e-6)
    reading = forgetting_law.reading(fits)
    assert reading.startswith("nli: beta 0.80 (95% CI [0.80, 0.80]), rho 1.70 (95% CI [1.70, 1.70])")
    assert "tends to -40.0 % (95% CI [-40.0, -40.0]) at c1 and -15.0 % (95% CI [-15.0, -15.0]) at c2" in reading
    assert reading.endswith("more pre-training, less forgetting in the limit.")


def test_intervals_come_from_the_values_errors(make: SimpleNamespace) -> None:
    fits, _ = forgetting_law.forgetting_law(law_rows(make, ci=0.01), seed=3)
    again, _ = forgetting_law.forgetting_law(law_rows(make, ci=0.01), seed=3)
    pd.testing.assert_frame_equal(fits, again)
    for column in ("change_inf", "n0", "beta", "rho"):
        assert (fits[f"{column}_ci_low"] < fits[column]).all() and (fits[column] < fits[f"{column}_ci_high"]).all()
    # an error of 0.01 on values of 0.4 is 2.5 % of the change ratio per point: the limits of the
    # two checkpoints (25 points apart) stay apart
    assert fits["change_inf_ci_high"].iloc[0] < fits["change_inf_ci_low"].iloc[1]


def test_runs_with_fewer_than_four_points_give_no_data(make: SimpleNamespace) -> None:
    fits, points = forgetting_law.forgetting_law(law_rows(make, steps=(160, 320, 640)))
    assert fits.empty and points.empty and list(fits.columns) == forgetting_law.COLUMNS
    results = compute(law_rows(make, steps=(160, 320, 640)))
    assert results.reading("forgetting_law") == f"No data: {forgetting_law.EMPTY}."


def test_the_analysis_is_written_with_its_points(make: SimpleNamespace, tmp_path) -> None:
    frames = analyze(law_rows(make), tmp_path)
    assert len(frames["forgetting_law"]) == 2 and len(frames["forgetting_law_points"]) == 16
    assert pd.read_csv(tmp_path / "forgetting_law_points.csv")["ft_step"].tolist() == list(STEPS) * 2
    assert (tmp_path / "forgetting_law.png").is_file()
    assert "- **forgetting_law**: nli: beta 0.80" in (tmp_path / "summary.md").read_text()


def test_an_exponent_at_the_edge_of_its_range_is_named(make: SimpleNamespace) -> None:
    fits, _ = forgetting_law.forgetting_law(law_rows(make))
    assert "search range" not in forgetting_law.reading(fits)
    pinned = fits.assign(beta=forgetting_law.EXPONENT_BOUNDS[1])
    assert ("(beta at the edge of the search range: these points do not fix the curve's shape)."
            in forgetting_law.reading(pinned))


def test_a_run_with_too_few_points_is_left_out_of_its_tasks_fit(make: SimpleNamespace) -> None:
    three = law_rows(make, steps=(160, 320, 640))
    table = pd.concat([law_rows(make, truth={"c1": TRUE["c1"]}), three[three["checkpoint"] == "c2"]])
    fits, points = forgetting_law.forgetting_law(table)
    # c1's eight points alone (8 > 3 + 2 parameters) give its parameters back; c2's three stay out
    assert fits["checkpoint"].tolist() == ["c1"] and set(points["checkpoint"]) == {"c1"}
    np.testing.assert_allclose(fits[["change_inf", "scale", "n0", "beta", "rho"]].iloc[0],
                               [*TRUE["c1"], BETA, RHO], rtol=1e-5)


def test_a_base_drawn_below_the_guard_gives_no_ratio() -> None:
    # the bootstrap redraws BASE: a draw below eps must leave its set out of the point's mean, and
    # a point with no set left out of the run, not put a ratio of thousands of % into the fit
    sets = pd.DataFrame({"checkpoint": ["c1"] * 4, "train_task": ["nli"] * 4, "ft_step": [10, 10, 20, 20],
                         "eval_set": ["a", "b", "a", "b"]})
    base = np.array([0.5, 0.0004, 0.5, 0.0004])
    ft = np.array([0.25, 0.2, 0.4, 0.2])
    ((steps, change),) = forgetting_law._curves(sets, base, ft, eps=1e-3)
    np.testing.assert_allclose(steps, [10, 20])
    np.testing.assert_allclose(change, [-50.0, -20.0])
    ((steps, change),) = forgetting_law._curves(sets, np.array([0.5, 0.5, 0.0, 0.0004]), ft, eps=1e-3)
    np.testing.assert_allclose(steps, [10])
    np.testing.assert_allclose(change, [(-50.0 - 60.0) / 2])


def test_only_the_chosen_fine_tuning_methods_points_are_fitted(make: SimpleNamespace) -> None:
    # a LoRA run evaluated at a step full fine-tuning never was: no point of the full runs' fit
    lora = make.frame([make.row("c1", "nli", s, 0.1, ci=0.0, ft_fraction=0.3, ft_step=99)
                       for s in ("summ_test", "nli_val")]).assign(ft_method="lora")
    fits, points = forgetting_law.forgetting_law(pd.concat([law_rows(make), lora], ignore_index=True))
    assert 99 not in points["ft_step"].tolist()
    np.testing.assert_allclose(fits["change_inf"], [TRUE["c1"][0], TRUE["c2"][0]], rtol=1e-5)
