"""`ptft analyze`: every output file, the summary's headline numbers, and a table with no data."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from ptft.analysis.findings import COLUMNS, VERDICTS
from ptft.analysis.forgetting import MRC_COLUMNS
from ptft.cli import main

ANALYSES = ("findings", "trajectory", "gain", "groups", "mrc", "ood", "format_sensitivity", "prediction",
            "overtraining", "dynamics", "forgetting_law", "methods", "weights", "grafting", "tuco", "cka", "geometry", "seeds")


def outputs(out: Path) -> set[str]:
    return {p.name for p in out.iterdir()}


def test_analyze_writes_every_table_figure_and_summary(tmp_path: Path, table: pd.DataFrame,
                                                      capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "results.csv"
    table.to_csv(csv, index=False)
    out = tmp_path / "analysis"
    assert main(["analyze", str(csv), "--out", str(out), "--seed", "0"]) == 0
    # the terminal gets the four verdicts, one line each, after the line naming the outputs
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("wrote 22 tables") and len(printed) == 5
    assert printed[3] == "finding 3 (asymmetric forgetting): supported, -65 95% CI [-80, -50]"
    expected = {f"{name}.{ext}" for name in ANALYSES for ext in ("csv", "png", "svg")}
    assert expected | {"summary.md", "gain_slope.csv", "findings_detail.csv", "prediction_points.csv",
                       "forgetting_law_points.csv"} == outputs(out)
    assert all((out / f"{name}.png").read_bytes().startswith(b"\x89PNG") for name in ANALYSES)
    assert all(b"<svg" in (out / f"{name}.svg").read_bytes()[:1000] for name in ANALYSES)
    mrc = pd.read_csv(out / "mrc.csv", keep_default_na=False)
    assert list(mrc.columns) == MRC_COLUMNS
    found = pd.read_csv(out / "findings.csv")
    assert list(found.columns) == COLUMNS and found["finding"].tolist() == [1, 2, 3, 4]
    assert set(found["verdict"]) <= set(VERDICTS)
    summary = (out / "summary.md").read_text()
    # The summary opens with the four verdicts, before any analysis.
    assert summary.startswith("# Findings\n") and summary.index("4. format sensitivity") < summary.index("# Analyses")
    assert ("3. forgetting is asymmetric: classification fine-tuning hurts generation, not the reverse: "
            "**supported**") in summary
    assert "classification->generation: -65.0% (95% CI [-80.0, -50.0]), n=2 ratios" in summary
    assert "generation->classification: +0.0% (95% CI [-10.0, +10.0]), n=3 ratios" in summary
    assert "1 ratio(s) excluded because |BASE| < 0.001: nli -> summ_test (1)." in summary
    assert "Mean gain changes by +0.025 per 100k steps" in summary
    assert "| c3 | 201000 | 0.3 |" in summary  # mean gain per checkpoint
    assert "1 set(s) learned in pre-training (mean gain +0.300); 1 set(s) learned in fine-tuning" in summary


def test_analyze_with_no_data_for_most_analyses(tmp_path: Path, make: SimpleNamespace) -> None:
    # BASE only, one task, one format: a trajectory and nothing else.
    csv = tmp_path / "base.csv"
    make.frame(make.series("", "nli_val", (0.4, 0.5, 0.6))).to_csv(csv, index=False)
    out = tmp_path / "analysis"
    assert main(["analyze", str(csv), "--out", str(out)]) == 0
    assert {f"{name}.{ext}" for name in ANALYSES for ext in ("csv", "png", "svg")} <= outputs(out)
    mrc = pd.read_csv(out / "mrc.csv")
    assert mrc.empty and list(mrc.columns) == MRC_COLUMNS
    assert len(pd.read_csv(out / "trajectory.csv")) == 3
    summary = (out / "summary.md").read_text()
    assert "No data: no training task evaluated on an in-domain set of the other task type" in summary
    assert "**format_sensitivity**: No data: no eval set was scored in two or more formats." in summary
    assert "**dynamics**: No data: no fine-tuning run evaluated before its end" in summary
    assert "**seeds**: No data: one fine-tuning seed per run" in summary


def test_analyze_at_another_point_of_fine_tuning(tmp_path: Path, table: pd.DataFrame,
                                                 capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "results.csv"
    table.to_csv(csv, index=False)
    assert main(["analyze", str(csv), "--out", str(tmp_path / "half"), "--ft-fraction", "0.5"]) == 0
    gain = pd.read_csv(tmp_path / "half" / "gain.csv")
    # half way, nli's only fine-tuned in-domain value is 0.02 at every checkpoint (BASE .40 .50 .60)
    rows = gain[gain["eval_set"] == "nli_val"]
    assert rows["raw_change"].round(6).tolist() == [-0.38, -0.48, -0.58]
    assert "the fine-tuned models at 0.5 of their training steps" in (tmp_path / "half" / "summary.md").read_text()
    dynamics = pd.read_csv(tmp_path / "half" / "dynamics.csv")
    assert sorted(dynamics["ft_fraction"].unique()) == [0.5, 1.0]
    capsys.readouterr()
    assert main(["analyze", str(csv), "--out", str(tmp_path / "none"), "--ft-fraction", "0.25"]) == 2
    assert "no fine-tuned rows at ft_fraction 0.25" in capsys.readouterr().err


def test_analyze_lr_override_errors(tmp_path: Path, table: pd.DataFrame, capsys: pytest.CaptureFixture) -> None:
    csv = tmp_path / "results.csv"
    table.to_csv(csv, index=False)
    assert main(["analyze", str(csv), "--out", str(tmp_path / "a"), "--lr", "nli=1e-3"]) == 2
    assert "task 'nli' has no rows at that learning rate (present: 2e-07, 2e-06)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["analyze", str(csv), "--out", str(tmp_path / "a"), "--lr", "nli"])
    assert "expected TASK=VALUE" in capsys.readouterr().err
