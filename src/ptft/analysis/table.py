"""Load and validate the long-format results table (``ptft.store.EXPORT_COLUMNS``).

Every analysis reads the table through :func:`load_table`, so a bad file fails here with one clear
message (which file, which column, which row) instead of as a wrong number further down.
Rows are counted from 1 in messages, header excluded; for a CSV file the message also gives the line
an editor shows (row 1 is line 2, after the header).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ptft.errors import DataError
from ptft.grid import FULL, PROBE_METHOD, RESULT_KEY, UNEDITED, store_path
from ptft.store import EXPORT_COLUMNS, ResultsStore
from ptft.task_types import TASK_TYPES

REQUIRED_COLUMNS = (
    "checkpoint", "step", "train_task", "eval_set", "eval_task", "task_type", "domain", "format",
    "shots", "metric", "value",
)
DOMAINS = ("in", "out")
STRING_COLUMNS = ("checkpoint", "train_task", "eval_set", "eval_task", "task_type", "domain", "format",
                  "method", "metric", "ft_method", "variant")
# Columns that must hold a number in every row, and those that may be empty.
NUMBER_COLUMNS = ("value", "shots")
OPTIONAL_NUMBER_COLUMNS = ("step", "lr", "seed", "ci_low", "ci_high", "n", "ft_step", "ft_fraction")
INTEGER_COLUMNS = ("step", "shots", "seed", "n", "ft_step")
# The model-state columns of schema 2 (a table from before them, or from elsewhere, may lack them):
# a blank variant is the unedited model, a fine-tuned row without a method or fraction is the
# final model of full fine-tuning, the study's only kind before them.

Source = str | Path | pd.DataFrame


def load_side_table(source: Source | None, what: str, beside: Callable[[Path], Path], columns: list[str],
                    required: tuple[str, ...]) -> pd.DataFrame:
    """A table `ptft export` writes beside the results (``what``: ``weights`` or ``layers``): from a
    run directory's store, from ``beside(results file)`` (or that file itself), or a DataFrame.
    An empty table (``columns``) when there is none; a DataError naming the file when a
    ``required`` column is missing."""
    if source is None:
        return pd.DataFrame(columns=columns)
    if isinstance(source, pd.DataFrame):
        frame, name = source, "<DataFrame>"
    else:
        path = Path(source)
        if path.is_dir() and store_path(path).is_file():
            with ResultsStore(store_path(path)) as store:
                return getattr(store, f"{what}_frame")()
        if not path.name.endswith((f".{what}.csv", f".{what}.parquet")):
            path = beside(path)
        if not path.is_file():
            return pd.DataFrame(columns=columns)
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        name = str(path)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(f"{what} table {name}: missing column {missing[0]!r} (required: {', '.join(required)})")
    return frame


def load_table(source: Source) -> pd.DataFrame:
    """The results table of a run directory, a CSV or Parquet file, or a DataFrame, validated.

    Returns the columns of ``EXPORT_COLUMNS`` in that order; optional columns absent from the
    source get their defaults (no lr/seed/CI/n/ft_step, method '', selected True, variant 'none';
    fine-tuned rows: ft_method 'full', ft_fraction 1.0; BASE rows keep both blank). Raises
    :class:`DataError` naming the source, the column and the first bad row."""
    raw, name = _read(source)
    return validate(raw, name)


def validate(raw: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise DataError(f"results table {name}: missing column {missing[0]!r} "
                        f"(required: {', '.join(REQUIRED_COLUMNS)})")
    df = raw.reset_index(drop=True).copy()
    for col in STRING_COLUMNS:
        df[col] = df[col].map(_as_text) if col in df.columns else ""
    for col in NUMBER_COLUMNS + OPTIONAL_NUMBER_COLUMNS:
        df[col] = _numbers(df[col] if col in df.columns else pd.Series(np.nan, index=df.index),
                           col, name, required=col in NUMBER_COLUMNS)
    df["selected"] = _flags(df["selected"], name) if "selected" in df.columns else True
    # a model-level proxy (held-out loss, sensitivity) belongs to no task: no type, no domain
    model_level = is_proxy(df) & (df["eval_set"] == "")
    _fill_model_state(df, name)
    for col, allowed in (("task_type", tuple(TASK_TYPES)), ("domain", DOMAINS)):
        _check_allowed(df[col].where(~model_level | (df[col] != ""), allowed[0]), col, allowed, name)
    _check_duplicates(df, name)
    return df[EXPORT_COLUMNS]


def is_proxy(table: pd.DataFrame) -> pd.Series:
    """Rows of probe cells (or imported proxies): method ``probe``. They are measurements of a
    checkpoint, not BASE results, though their train_task is empty too (docs/method.md)."""
    return table["method"] == PROBE_METHOD


def study_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The table without its proxy rows: what every analysis of BASE and fine-tuned results reads."""
    return table[~is_proxy(table)]
def _fill_model_state(df: pd.DataFrame, name: str) -> None:
    ft = df["train_task"] != ""
    df["variant"] = df["variant"].where(df["variant"] != "", UNEDITED)
    df["ft_method"] = df["ft_method"].where(~ft | (df["ft_method"] != ""), FULL).where(ft, "")
    df["ft_fraction"] = df["ft_fraction"].where(~ft | df["ft_fraction"].notna(), 1.0).where(ft)
    bad = ft & ~((df["ft_fraction"] > 0) & (df["ft_fraction"] <= 1))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"results table {name}: column 'ft_fraction' must lie in (0, 1], "
                        f"found {float(df['ft_fraction'].iloc[row]):g} at {_row(name, row)}")


def _read(source: Source) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        return source, "<DataFrame>"
    path = Path(source)
    if path.is_dir():
        db = store_path(path)
        # ResultsStore would create an empty database here; a missing one is a user error.
        if not db.is_file():
            raise DataError(f"run directory {path}: no results.sqlite (has the study run?)")
        with ResultsStore(db) as store:
            return store.export_frame(), str(db)
    if not path.is_file():
        raise DataError(f"results table {path}: no such file or directory")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise DataError(f"results table {path}: unknown file type {suffix!r} (expected .csv or .parquet, "
                        "or a run directory)")
    if path.stat().st_size == 0:
        raise DataError(f"results table {path}: the file is empty (0 bytes); write it again with "
                        "`ptft export RUN`, or give the run directory itself")
    try:
        if suffix == ".csv":
            # Read as text, with only a blank cell missing ('n/a', 'NA' and 'null' are values to
            # quote), so that error messages show the offending cell as written.
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""]), str(path)
        return pd.read_parquet(path), str(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise
        detail = " ".join(str(err).split())
        raise DataError(f"results table {path}: cannot be read as {suffix[1:]} ({detail})") from None


def _row(name: str, index: int) -> str:
    """Row ``index`` (0-based) as a user finds it: ``row 3`` (``row 3, line 4`` in a CSV file)."""
    return f"row {index + 1}, line {index + 2}" if name.lower().endswith(".csv") else f"row {index + 1}"


def _as_text(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    return str(value)


def _blank(series: pd.Series) -> pd.Series:
    return series.isna() | (series.astype(str).str.strip() == "")


def _missing(series: pd.Series) -> pd.Series:
    """Blank, or NaN written out (pandas and numpy write missing numbers as 'nan'): no number."""
    return _blank(series) | (series.astype(str).str.strip().str.lower() == "nan")


def _numbers(series: pd.Series, col: str, name: str, *, required: bool) -> pd.Series:
    blank = _missing(series)
    numbers = pd.to_numeric(series.where(~blank), errors="coerce")
    bad = numbers.isna() & ~blank
    if required:
        bad |= blank
    if col in INTEGER_COLUMNS:
        bad |= numbers.notna() & (numbers != numbers.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        shown = "an empty cell" if _blank(series).iloc[row] else repr(series.iloc[row])
        kind = "an integer" if col in INTEGER_COLUMNS else "a number"
        raise DataError(f"results table {name}: column {col!r} must hold {kind}, "
                        f"found {shown} at {_row(name, row)}")
    return numbers.astype("Int64") if col in INTEGER_COLUMNS else numbers.astype(float)


def _flags(series: pd.Series, name: str) -> pd.Series:
    words = series.map(lambda v: _as_text(v).strip().lower())
    truth = {"true": True, "1": True, "1.0": True, "yes": True, "": True,
             "false": False, "0": False, "0.0": False, "no": False}
    bad = ~words.isin(list(truth))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"results table {name}: column 'selected' must be true or false, "
                        f"found {series.iloc[row]!r} at {_row(name, row)}")
    return words.map(truth).astype(bool)


def _check_allowed(series: pd.Series, col: str, allowed: tuple[str, ...], name: str) -> None:
    bad = ~series.isin(allowed)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"results table {name}: unknown {col} {series.iloc[row]!r} at {_row(name, row)} "
                        f"(expected one of: {', '.join(allowed)})")


def _check_duplicates(df: pd.DataFrame, name: str) -> None:
    # Compare keys as text so that two empty lr/seed cells count as equal.
    keys = pd.Series(list(zip(*(df[k].map(_as_text) for k in RESULT_KEY))), index=df.index)
    dup = keys.duplicated(keep=False)
    if dup.any():
        first = int(np.flatnonzero(dup.to_numpy())[0])
        rows = np.flatnonzero((keys == keys.iloc[first]).to_numpy())
        key = ", ".join(f"{k}={_as_text(df[k].iloc[first])!r}" for k in RESULT_KEY)
        lines = f" (lines {', '.join(str(r + 2) for r in rows)})" if name.lower().endswith(".csv") else ""
        raise DataError(f"results table {name}: duplicate key ({key}) at rows "
                        f"{', '.join(str(r + 1) for r in rows)}{lines}")
