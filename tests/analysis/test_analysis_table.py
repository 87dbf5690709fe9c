"""load_table: every way a results table can be wrong is named in the error."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pandas as pd
import pytest

from ptft.analysis import load_table
from ptft.errors import DataError
from ptft.store import EXPORT_COLUMNS


@pytest.fixture
def csv(tmp_path: Path, table: pd.DataFrame) -> Path:
    path = tmp_path / "results.csv"
    table.to_csv(path, index=False)
    return path


def rewrite(path: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    change(pd.read_csv(path, dtype=str)).to_csv(path, index=False)


def test_csv_round_trip_normalises_types(csv: Path, table: pd.DataFrame) -> None:
    loaded = load_table(csv)
    assert list(loaded.columns) == EXPORT_COLUMNS
    assert len(loaded) == len(table)
    base = loaded[loaded["checkpoint"].eq("c1") & loaded["eval_set"].eq("nli_val") & loaded["format"].eq("default")
                  & loaded["shots"].eq(4) & loaded["method"].eq("tokenprob") & loaded["train_task"].eq("")]
    # The empty train_task of BASE rows comes back from CSV as NaN; it must be '' again.
    assert len(base) == 1 and base["value"].iloc[0] == 0.40 and base["step"].iloc[0] == 1000
    unselected = loaded["lr"].eq(2e-7) & loaded["train_task"].eq("nli")
    assert unselected.sum() == 3 and not loaded["selected"][unselected].any() and loaded["selected"][~unselected].all()


def test_optional_columns_get_defaults(table: pd.DataFrame) -> None:
    loaded = load_table(table.drop(columns=["lr", "seed", "method", "ci_low", "ci_high", "n", "selected"])
                        .drop_duplicates(["checkpoint", "train_task", "eval_set", "format", "shots"]))
    assert (loaded["method"] == "").all() and loaded["selected"].all()
    assert loaded["lr"].isna().all() and loaded["ci_low"].isna().all()


def test_parquet(tmp_path: Path, table: pd.DataFrame) -> None:
    path = tmp_path / "results.parquet"
    table.to_parquet(path)
    assert len(load_table(path)) == len(table)


def test_missing_column_names_it_and_the_file(csv: Path) -> None:
    rewrite(csv, lambda df: df.drop(columns=["domain"]))
    with pytest.raises(DataError, match=r"results\.csv: missing column 'domain'"):
        load_table(csv)


@pytest.mark.parametrize("column, bad, expected", [
    ("value", "abc", r"column 'value' must hold a number, found 'abc' at row 3"),
    ("shots", "four", r"column 'shots' must hold an integer, found 'four' at row 3"),
    ("shots", "4.5", r"column 'shots' must hold an integer, found '4.5' at row 3"),
    ("step", "1k", r"column 'step' must hold an integer, found '1k' at row 3"),
    ("value", "", r"column 'value' must hold a number, found an empty cell at row 3"),
])
def test_non_numeric_names_column_and_row(csv: Path, column: str, bad: str, expected: str) -> None:
    rewrite(csv, lambda df: df.assign(**{column: df[column].where(df.index != 2, bad)}))
    with pytest.raises(DataError, match=expected):
        load_table(csv)


def test_empty_step_is_allowed(table: pd.DataFrame) -> None:
    loaded = load_table(table.assign(step=None))
    assert loaded["step"].isna().all()


@pytest.mark.parametrize("column, bad", [("task_type", "regression"), ("domain", "sideways")])
def test_unknown_category(table: pd.DataFrame, column: str, bad: str) -> None:
    broken = table.copy()
    broken.loc[4, column] = bad
    with pytest.raises(DataError, match=rf"unknown {column} '{bad}' at row 5"):
        load_table(broken)


def test_duplicate_key_is_shown(make: SimpleNamespace) -> None:
    rows = make.headline_rows()
    doubled = make.frame(rows + [dict(rows[1], value=0.99)])
    with pytest.raises(DataError, match=r"duplicate key \(checkpoint='c2', train_task='', ft_method='', lr='', seed='', "
                                        r"variant='none', ft_fraction='', eval_set='nli_val', format='default', shots='4', method='tokenprob', "
                                        rf"metric='accuracy'\) at rows 2, {len(rows) + 1}"):
        load_table(doubled)


def test_same_key_at_another_lr_is_not_a_duplicate(table: pd.DataFrame) -> None:
    loaded = load_table(table)
    assert (loaded["lr"].eq(2e-7) & loaded["train_task"].eq("nli")).sum() == 3


def test_missing_run_and_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no results.sqlite"):
        load_table(tmp_path)
    assert not (tmp_path / "results.sqlite").exists()
    with pytest.raises(DataError, match="no such file"):
        load_table(tmp_path / "nope.csv")


def test_a_table_without_model_state_columns_is_the_final_full_fine_tuning(make: SimpleNamespace) -> None:
    old = make.frame(make.headline_rows()).drop(columns=["ft_method", "variant", "ft_step", "ft_fraction"])
    loaded = load_table(old)
    ft = loaded["train_task"] != ""
    assert list(loaded.columns) == EXPORT_COLUMNS
    assert (loaded["variant"] == "none").all() and loaded["ft_step"].isna().all()
    assert (loaded.loc[ft, "ft_method"] == "full").all() and (loaded.loc[~ft, "ft_method"] == "").all()
    assert (loaded.loc[ft, "ft_fraction"] == 1.0).all() and loaded.loc[~ft, "ft_fraction"].isna().all()


def test_points_of_one_training_are_not_duplicates(make: SimpleNamespace) -> None:
    final = make.row("c1", "nli", "nli_val", 0.7)
    half = make.row("c1", "nli", "nli_val", 0.6, ft_fraction=0.5, ft_step=4)
    loaded = load_table(make.frame([final, half]))
    assert loaded["ft_fraction"].tolist() == [1.0, 0.5] and loaded["ft_step"].tolist()[1] == 4


@pytest.mark.parametrize("bad", ["0", "1.5", "-0.25"])
def test_ft_fraction_outside_zero_one(make: SimpleNamespace, bad: str) -> None:
    rows = make.frame([make.row("c1", "nli", "nli_val", 0.7)]).astype({"ft_fraction": object})
    rows.loc[0, "ft_fraction"] = bad
    with pytest.raises(DataError, match=rf"column 'ft_fraction' must lie in \(0, 1\], found {float(bad):g} at row 1"):
        load_table(rows)


def test_a_fraction_the_table_lacks_is_named_with_those_it_has(table: pd.DataFrame) -> None:
    from ptft.analysis.slices import Slice, comparable

    with pytest.raises(DataError, match=r"no fine-tuned rows at ft_fraction 0.25 with variant 'none' "
                                        r"\(present, variant@fraction: lines@1, none@0.5, none@1\)"):
        comparable(table, Slice(ft_fraction=0.25))
    half, _ = comparable(table, Slice(ft_fraction=0.5))
    ft = half[half["train_task"] != ""]
    # the half-way rows of nli (0.02 on nli_val, 0.03 on nli_ood) and BASE's rows, nothing else
    assert sorted(zip(ft["eval_set"], ft["value"])) == [("nli_ood", 0.03)] * 3 + [("nli_val", 0.02)] * 3
    assert set(half["train_task"]) == {"", "nli"}
