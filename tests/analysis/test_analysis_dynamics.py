"""The dynamics analysis on a hand-made table of one training run per checkpoint evaluated at
three points, every value worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from ptft.analysis import dynamics

FRACTIONS = ((0.25, 10), (0.5, 20), (1.0, 40))


def run(make: SimpleNamespace, checkpoint: str, eval_set: str, values: tuple[float, float, float]) -> list[dict]:
    return [make.row(checkpoint, "nli", eval_set, v, ft_fraction=f if f < 1 else None, ft_step=s)
            for v, (f, s) in zip(values, FRACTIONS)]


@pytest.fixture
def table(make: SimpleNamespace) -> pd.DataFrame:
    rows = [make.row(c, "", s, v) for c, s, v in (("c1", "nli_val", 0.40), ("c2", "nli_val", 0.50),
                                                  ("c1", "summ_test", 0.10), ("c2", "summ_test", 0.10),
                                                  ("c1", "nli_ood", 0.50), ("c2", "nli_ood", 0.50))]
    rows += run(make, "c1", "nli_val", (0.45, 0.60, 0.70)) + run(make, "c2", "nli_val", (0.75, 0.78, 0.80))
    rows += run(make, "c1", "summ_test", (0.10, 0.08, 0.05)) + run(make, "c2", "summ_test", (0.10, 0.09, 0.09))
    rows += run(make, "c1", "nli_ood", (0.50, 0.55, 0.60)) + run(make, "c2", "nli_ood", (0.50, 0.50, 0.45))
    # summ is evaluated at its end only: no dynamics of its own
    rows += [make.row("c1", "summ", "summ_test", 0.3), make.row("c2", "summ", "summ_test", 0.4)]
    return make.frame(rows)


def test_each_point_of_each_run(table: pd.DataFrame) -> None:
    frame = dynamics.dynamics(table)
    assert list(frame.columns) == dynamics.COLUMNS and set(frame["train_task"]) == {"nli"}
    assert frame[["checkpoint", "ft_fraction"]].values.tolist() == [
        ["c1", 0.25], ["c1", 0.5], ["c1", 1.0], ["c2", 0.25], ["c2", 0.5], ["c2", 1.0]]
    assert frame["ft_step"].tolist() == [10, 20, 40] * 2
    np.testing.assert_allclose(frame["in_domain_gain"], [0.05, 0.20, 0.30, 0.25, 0.28, 0.30], atol=1e-12)
    np.testing.assert_allclose(frame["cross_task_percent"], [0, -20, -50, 0, -10, -10], atol=1e-9)
    np.testing.assert_allclose(frame["ood_percent"], [0, 10, 20, 0, 0, -10], atol=1e-9)
    assert set(frame["direction"]) == {"classification->generation"}
    assert (frame[["n_in_domain", "n_cross_task", "n_ood"]] == 1).all().all()
    # 90 % of the final 0.30 is 0.27: c1 gets there at its end, c2 half way (0.28)
    assert frame["reach_90_fraction"].tolist() == [1.0] * 3 + [0.5] * 3
    assert frame["reach_90_step"].tolist() == [40] * 3 + [20] * 3
    reading = dynamics.reading(frame)
    assert "nli: 90 % of the final in-domain gain reached by c1 at step 40 (1), c2 at step 20 (0.5)" in reading
    assert "mean cross-task change +0.0% at the first point (0.25) and -30.0% at the end" in reading


def test_a_run_that_learned_nothing_reaches_no_step(make: SimpleNamespace) -> None:
    rows = [make.row("c1", "", "nli_val", 0.5)] + run(make, "c1", "nli_val", (0.45, 0.40, 0.50))
    frame = dynamics.dynamics(make.frame(rows))
    assert frame["reach_90_fraction"].isna().all() and frame["reach_90_step"].isna().all()
    assert "c1 never (final gain not positive)" in dynamics.reading(frame)


def test_final_models_only_give_no_data(make: SimpleNamespace) -> None:
    final_only = make.frame(make.headline_rows())
    assert dynamics.dynamics(final_only).empty
    assert list(dynamics.dynamics(final_only).columns) == dynamics.COLUMNS
