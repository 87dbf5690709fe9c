"""An analysis is one registry entry: added to `ANALYSES`, it is computed, written (CSV, figure)
and read in summary.md with nothing else to change (the report walks the same registry)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from ptft.analysis import plots
from ptft.analysis.api import ANALYSES, Analysis, Inputs, analyze, compute


def _base_per_checkpoint(i: Inputs) -> dict[str, pd.DataFrame]:
    base = i.table[(i.table["train_task"] == "") & (i.table["eval_set"] == "nli_val")
                   & (i.table["format"] == i.slice.fmt) & (i.table["shots"] == 4)]
    return {"base_nli": base[["checkpoint", "value"]].sort_values("checkpoint").reset_index(drop=True)}


def _figure(frame: pd.DataFrame):
    fig, (ax,) = plots.panels(1, "BASE nli_val per checkpoint")
    ax.plot(frame["checkpoint"], frame["value"])
    return fig


EXAMPLE = Analysis(
    "BASE nli_val per checkpoint", "no BASE row of nli_val", _figure,
    reading=lambda frame: f"BASE nli_val ends at {frame['value'].iloc[-1]:.2f}.",
    compute=_base_per_checkpoint, heading="BASE on nli_val",
    summary=lambda results: [f"- {r.checkpoint}: {r.value:.2f}" for r in results.frames["base_nli"].itertuples()])


def test_an_analysis_added_to_the_registry_is_computed_written_and_summarised(
        tmp_path, make: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ANALYSES, "base_nli", EXAMPLE)
    table = make.frame(make.headline_rows())
    frames = analyze(table, tmp_path)
    # the hand-made table's BASE nli_val: .40, .50, .60 at c1, c2, c3 (tests/analysis/conftest.py)
    assert frames["base_nli"]["value"].round(2).tolist() == [0.40, 0.50, 0.60]
    written = pd.read_csv(tmp_path / "base_nli.csv")
    assert written["checkpoint"].tolist() == ["c1", "c2", "c3"]
    assert (tmp_path / "base_nli.png").is_file() and b"<svg" in (tmp_path / "base_nli.svg").read_bytes()[:1000]
    summary = (tmp_path / "summary.md").read_text()
    assert "## BASE on nli_val\n\nBASE nli_val ends at 0.60.\n\n- c1: 0.40\n- c2: 0.50\n- c3: 0.60" in summary
    assert "- **base_nli**: BASE nli_val ends at 0.60." in summary
    # without data it says why, as every analysis does
    empty = compute(table[table["eval_set"] != "nli_val"])
    assert empty.reading("base_nli") == "No data: no BASE row of nli_val."
