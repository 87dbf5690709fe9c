"""The shared step axis: a scale that keeps checkpoints apart, and readable step labels."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from ptft.analysis.plots import _best_scale, _spread_out, format_step


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
