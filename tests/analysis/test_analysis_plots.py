"""The shared step axis: a scale that keeps checkpoints apart, and readable step labels."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from ptft.analysis import gain
from ptft.analysis.gain import figure as gain_figure
from ptft.analysis.gain import step_unit, tokens_per_step, unit_text
from ptft.analysis.forgetting import MRC_COLUMNS, mrc_figure
from ptft.analysis.plots import _best_scale, _spread_out, format_step, robust_limits


@pytest.mark.parametrize("steps, scale", [
    ([0, 1, 2, 4, 8, 64, 512, 1000, 10000, 143000], "symlog"),  # Pythia: log-spaced early steps
    ([1000, 18000, 342000, 424000, 505000, 592000, 738000], "square-root"),  # the paper's OLMo steps
    ([0, 1000, 2000, 3000], "linear"),
])
def test_scale_keeps_checkpoints_apart(steps: list[int], scale: str) -> None:
    assert _best_scale(Figure().subplots(), np.array(steps, dtype=float)) == scale


def test_step_labels() -> None:
    assert [format_step(v) for v in (0, 512, 18000, 738000, 1_500_000)] == ["0", "512", "18k", "738k", "1.5M"]
    # Crowded labels are dropped, never the first or the last checkpoint's.
    ticks = np.array([0.0, 1.0, 50.0, 97.0, 100.0])
    assert _spread_out(ticks, ticks).tolist() == [0.0, 50.0, 100.0]


@pytest.mark.parametrize("steps, unit", [
    ([8, 25, 80, 400], 100),  # the tiny demo: a slope per 100 steps, not per 100k
    ([3, 150], 100),
    ([1000, 2000], 1000),
    ([1000, 18000, 342000, 738000], 100_000),  # the paper's OLMo series keeps its per-100k unit
    ([0, 1000, 143000], 100_000),  # Pythia
    ([5000], 1),  # one checkpoint: no slope, any unit
])
def test_slope_unit_suits_the_series(steps: list[int], unit: int) -> None:
    assert step_unit(np.array(steps, dtype=float)) == unit


def test_tokens_from_checkpoint_names() -> None:
    frame = pd.DataFrame({"checkpoint": ["step1000-tokens4B", "step18000-tokens75B", "step30000-tokens126B", "main"],
                          "step": [1000, 18000, 30000, None]})
    assert tokens_per_step(frame) == pytest.approx(75e9 / 18000)  # median of 4.0M, 4.1667M, 4.2M
    assert np.isnan(tokens_per_step(frame.assign(checkpoint=["step1000", "step18000", "step30000", "main"])))
    assert unit_text(100_000, 100_000 * 4.1934e6) == "100k steps (~419B tokens)"
    assert unit_text(100) == "100 steps"


def test_robust_limits_leave_out_one_far_value() -> None:
    # Quartiles 10 and 27.5: the far-out fence is 27.5 + 3 x 17.5 = 80, so 6000 is off the axis; the
    # rest span [0 (zero is always shown), 30], padded by 8 % of 30.
    assert robust_limits([10, 10, 10, 6000, 20, 30]) == pytest.approx((-2.4, 32.4))
    assert robust_limits([10, 20, 30, 40]) is None  # nothing to clip


def test_change_ratio_panel_is_not_flattened_by_a_near_zero_base(make: SimpleNamespace) -> None:
    # summ_test's BASE is .005 at c1: FT .305 gives a ratio of +6,000 %; the others are +10 to +30 %.
    rows = (make.series("", "nli_val", (0.40, 0.50, 0.60)) + make.series("nli", "nli_val", (0.44, 0.55, 0.66))
            + make.series("", "summ_test", (0.005, 0.10, 0.10)) + make.series("summ", "summ_test", (0.305, 0.12, 0.13)))
    fig = gain_figure(gain(make.frame(rows)))
    ratio_ax = fig.axes[1]
    assert ratio_ax.get_ylim() == pytest.approx((-2.4, 32.4))
    assert [t.get_text() for t in ratio_ax.texts] == ["+6,000%"]


def test_mrc_axis_is_not_flattened_by_one_pair() -> None:
    # Means -63 (total), -60, -62, -65, -70 and one at +5,000 % (a BASE just above the guard):
    # quartiles -64.5 and -60.5, far-out fence -60.5 + 3 x 4 = -48.5; the axis spans [-70, 0] padded by 8 %.
    rows = [("classification->generation", "", "", -63.0, -70.0, -55.0, 16, 0)]
    rows += [("classification->generation", f"t{i}", "d", v, v - 5, v + 5, 4, 0)
             for i, v in enumerate((-60.0, -62.0, -65.0, -70.0))]
    rows += [("generation->classification", "", "", 5000.0, 10.0, 9000.0, 4, 0)]
    fig = mrc_figure(pd.DataFrame(rows, columns=MRC_COLUMNS))
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((-70 - 0.08 * 70, 0 + 0.08 * 70))
    assert [t.get_text() for t in ax.texts] == ["+5,000%"]
