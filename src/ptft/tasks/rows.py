"""The row layer every task source shares: checked access to one source row, the one form of a
row error, and reading local files.

BIG-bench files (:mod:`ptft.tasks.bbutil`), Hub datasets and their local copies
(:mod:`ptft.tasks.hubutil`) and user task files (:mod:`ptft.tasks.yaml_task`) all name a bad row
the same way: ``dataset 'D', split 'S', row N, field 'F': problem`` (a local file names the line
an editor shows instead of the row index). Dev carving and seeded sub-sampling are in
:mod:`ptft.tasks.splits`.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ptft.tasks.base import Example, TaskDataError

LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


def row_error(dataset: str, split: str, row: int | str, field_name: str, problem: str) -> TaskDataError:
    """The error for one bad field of one row; ``row`` is its index or where an editor shows it."""
    place = f"row {row}" if isinstance(row, int) else row
    return TaskDataError(f"dataset {dataset!r}, split {split!r}, {place}, field {field_name!r}: {problem}")


class Skip(Exception):
    """Raised by a row converter to drop a row on purpose; the reason is counted and reported."""


class Row:
    """One source row with checked accessors; every error names dataset, split, row and field."""

    def __init__(self, data: Mapping[str, Any], dataset: str, split: str, index: int,
                 locate: Callable[[int], str | None] | None = None):
        self.data, self.dataset, self.split, self.index = data, dataset, split, index
        self.locate = locate  # index -> where an editor shows the row (local files)

    @property
    def place(self) -> str:
        return (self.locate(self.index) if self.locate else None) or f"row {self.index}"

    def error(self, field: str, problem: str) -> TaskDataError:
        return row_error(self.dataset, self.split, self.place, field, problem)

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise self.error(key, f"missing (the row has {sorted(self.data)})")
        value = self.data[key]
        if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
            value = value.item()  # numpy scalar (parquet) -> Python bool/int/float/str
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise self.error(key, "missing (null)")
        return value

    def text(self, key: str, *, allow_empty: bool = False) -> str:
        """The text as the data gives it (surrounding whitespace kept); whitespace only is empty."""
        value = self.raw(key)
        if not isinstance(value, str):
            raise self.error(key, f"expected text, got {type(value).__name__} {value!r}")
        if not value.strip() and not allow_empty:
            raise self.error(key, "empty")
        return value

    def nested(self, key: str) -> Any:
        """A list/dict column; a JSON-encoded string (CSV files) is decoded."""
        value = self.raw(key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise self.error(key, "expected a list/dict (JSON-encoded in CSV files)") from None
        if hasattr(value, "tolist"):  # numpy arrays from parquet
            value = value.tolist()
        if isinstance(value, dict):
            value = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in value.items()}
        return value

    def text_list(self, key: str) -> list[str]:
        value = self.nested(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of texts, got {value!r}")
        return value

    def label(self, key: str, mapping: Mapping[int, str]) -> str:
        """A class id mapped to its label word; -1 (hidden test labels) and unknown ids refused."""
        value = self.raw(key)
        if isinstance(value, bool):
            raise self.error(key, f"expected a class id, got {value!r}")
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise self.error(key, f"expected a class id, got {value!r}") from None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if value == -1:
            raise self.error(key, "label -1: this split's labels are hidden (a GLUE-style test split); "
                                  "it cannot be scored, use a labelled validation split")
        if value not in mapping:
            raise self.error(key, f"unknown label {value!r}; expected one of {sorted(mapping)}")
        return mapping[value]

    def uid(self) -> str:
        return f"{self.dataset}:{self.split}:{self.index}"


def convert_rows(records: Sequence[Any], indices: Sequence[int], dataset: str, split: str,
                 convert: Callable[[Row], Example],
                 locate: Callable[[int], str | None] | None = None) -> tuple[list[Example], Counter]:
    """``records`` (the rows at ``indices`` of a split) as examples, and the rows the converter
    dropped on purpose (:class:`Skip`), counted by reason."""
    out: list[Example] = []
    skips: Counter = Counter()
    for index, data in zip(indices, records):
        row = Row(data, dataset, split, index, locate)
        if not isinstance(data, dict):
            raise TaskDataError(f"dataset {dataset!r}, split {split!r}, {row.place}: not a record")
        try:
            out.append(convert(row))
        except Skip as why:
            skips[str(why)] += 1
    return out, skips


class LocalRows(list):
    """The rows of a local file, each of which can say where it is as an editor shows it: the
    1-based line of a JSON/JSONL record or of a CSV record (line 1 being the header)."""

    def __init__(self, rows: list, path: Path):
        super().__init__(rows)
        self.path = path
        self._lines: list[int] | None = None

    def place(self, index: int) -> str:
        if self._lines is None:  # only when a message needs it: the file is read again
            self._lines = _record_lines(self.path)
            if len(self._lines) != len(self):
                self._lines = []
        if not self._lines:
            return f"{self.path.name} record {index + 1}"
        header = " (line 1 is the header)" if self.path.suffix == ".csv" else ""
        return f"{self.path.name} line {self._lines[index]}{header}"


def _record_lines(path: Path) -> list[int]:
    """The 1-based line on which each record of a local file starts ([] when unknown)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    if path.suffix == ".csv":
        import csv
        import io

        reader = csv.reader(io.StringIO(text, newline=""))
        starts, end = [], 0
        for record in reader:
            if record:  # pandas skips blank lines too
                starts.append(end + 1)
            end = reader.line_num
        return starts[1:]
    if path.suffix == ".json" and text.lstrip().startswith("["):
        decoder, skip = json.JSONDecoder(), re.compile(r"[\s,]*")
        at, line, counted, starts = text.index("[") + 1, 1, 0, []
        while True:
            at = skip.match(text, at).end()
            if at >= len(text) or text[at] == "]":
                return starts
            line += text.count("\n", counted, at)
            counted = at
            starts.append(line)
            try:
                _, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                return []
    if path.suffix in (".jsonl", ".json"):
        return [n for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    return []


def read_local(path: Path) -> LocalRows:
    return LocalRows(_read_rows(path), path)


def _read_rows(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        rows = []
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise TaskDataError(f"{path}: line {lineno} is not valid JSON ({err.msg})") from None
        return rows
    if path.suffix == ".json":
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            try:  # JSON lines in a .json file
                return [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError as err:
                raise TaskDataError(f"{path}: not valid JSON or JSON lines ({err.msg})") from None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            data = data["data"]
        if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
            keys = list(data)  # column-oriented {"col": [...], ...}
            data = [dict(zip(keys, vals)) for vals in zip(*data.values())]
        if not isinstance(data, list):
            raise TaskDataError(f"{path}: expected a list of rows")
        return data
    if path.suffix == ".csv":
        import pandas as pd

        return pd.read_csv(path, keep_default_na=False, na_values=[""]).to_dict(orient="records")
    if path.suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    raise TaskDataError(f"{path}: unsupported file type {path.suffix!r}; use {LOCAL_SUFFIXES}")


