"""Shared machinery of the Hub tasks (``hub_*.py``): read a split, check each row, sub-sample.

A split comes from ``datasets.load_dataset(hub_id, config, split=split)`` or, when
``LoadRequest.data_dir`` is set, from a local file in the Hub schema::

    <data_dir>/<folder>/<split>.jsonl    (or .json, .csv, .parquet; the first that exists, in that order)

``<folder>`` is the dataset's folder name given in each task module (e.g. ``glue_mnli``). Columns
are the Hub dataset's columns (same names, labels as the Hub's integer class ids). Nested columns
(ARC's ``choices``, HellaSwag's ``endings``) are lists/dicts in JSON/JSONL/Parquet; in CSV they are
JSON-encoded strings.

Nothing here imports ``datasets`` or touches the network before a Hub split is asked for.

Sub-sampling works on row indices (the Hub path selects only the chosen rows, so a 393k-row MNLI
train split is never converted whole); a row's index in its split is its identity: uids are
``<dataset>:<split>:<index>`` and errors name that index. Only the rows a request uses are checked.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ptft.tasks.base import Example, LoadRequest, TaskData, TaskDataError
from ptft.tasks.splits import stable_unit, subsample

log = logging.getLogger("ptft.tasks")

LOCAL_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
DEV_FRACTION = 0.05  # share of a train split carved off as dev when the dataset has no spare split


@dataclass(frozen=True)
class HubSource:
    """Where a dataset lives: the Hub id + config, and the local folder name under ``data_dir``."""

    folder: str
    hub_id: str
    config: str | None = None

    def describe(self) -> str:
        return self.hub_id + (f" ({self.config})" if self.config else "")


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
        return TaskDataError(
            f"dataset {self.dataset!r}, split {self.split!r}, {self.place}, field {field!r}: {problem}")

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


# --------------------------------------------------------------------------------------- reading

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


class SplitRows:
    """A split's rows by index: a list (local file) or a ``datasets.Dataset`` (Hub)."""

    def __init__(self, rows: Any, where: str):
        self._rows, self.where = rows, where

    def __len__(self) -> int:
        return len(self._rows)

    def place(self, index: int) -> str | None:
        return self._rows.place(index) if isinstance(self._rows, LocalRows) else None

    def take(self, indices: Sequence[int]) -> list[dict]:
        if isinstance(self._rows, list):
            return [self._rows[i] for i in indices]
        if not indices:
            return []
        return self._rows.select(list(indices)).to_list()


def _local_file(source: HubSource, split: str, data_dir: str) -> Path:
    folder = Path(data_dir) / source.folder
    for suffix in LOCAL_SUFFIXES:
        path = folder / f"{split}{suffix}"
        if path.exists():
            return path
    raise TaskDataError(
        f"dataset {source.folder!r}, split {split!r}: no local file {folder}/{split}"
        f"{{{','.join(LOCAL_SUFFIXES)}}} (data_dir={data_dir!r}); write the {source.describe()} rows "
        "there in the Hub schema, or leave data_dir unset to use the Hub")


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


@functools.lru_cache(maxsize=64)
def _read_local_cached(path: str, mtime: float) -> LocalRows:
    return read_local(Path(path))


@functools.lru_cache(maxsize=32)
def _hub_split(hub_id: str, config: str | None, split: str):
    import datasets  # only when a Hub split is really asked for

    return datasets.load_dataset(hub_id, config, split=split)


def open_split(source: HubSource, split: str, data_dir: str | None) -> SplitRows:
    if data_dir is not None:
        path = _local_file(source, split, data_dir)
        rows = _read_local_cached(str(path), path.stat().st_mtime)
        where = str(path)
    else:
        try:
            rows = _hub_split(source.hub_id, source.config, split)
        except Exception as err:  # network / unknown split: say what to do offline
            raise TaskDataError(
                f"dataset {source.describe()}, split {split!r}: could not load from the Hub ({err}); "
                f"offline, set data_dir and put the rows in <data_dir>/{source.folder}/{split}.jsonl") from err
        where = f"{source.describe()} [{split}]"
    if len(rows) == 0:
        raise TaskDataError(f"dataset {source.folder!r}, split {split!r}: no rows ({where})")
    return SplitRows(rows, where)


# ------------------------------------------------------------------------------------- assembling

Converter = Callable[[Row], Example]


@dataclass(frozen=True)
class SplitSpec:
    """One split a task uses: which source split, under which name, converted how.

    ``part``: ``"all"`` (whole split), or ``"train"``/``"dev"`` to carve ``DEV_FRACTION`` of the
    source split off as dev by a stable hash of the row index (disjoint from train)."""

    name: str
    source: HubSource
    split: str
    convert: Converter
    part: str = "all"


def _indices(spec: SplitSpec, total: int) -> list[int]:
    if spec.part == "all":
        return list(range(total))
    if spec.part not in ("train", "dev"):
        raise ValueError(f"SplitSpec.part must be 'all', 'train' or 'dev', got {spec.part!r}")
    return list(_carved(f"{spec.source.folder}:{spec.split}", total, spec.part == "dev"))


@functools.lru_cache(maxsize=32)
def _carved(salt: str, total: int, dev: bool) -> tuple[int, ...]:
    """Train or dev part of a split: dev = rows whose hash falls below DEV_FRACTION; a tiny split
    whose hashes all miss still gives its lowest-hash row to dev (and keeps the rest for train)."""
    units = [stable_unit(str(i), salt) for i in range(total)]
    in_dev = [u < DEV_FRACTION for u in units]
    if total >= 2 and not any(in_dev):
        in_dev[min(range(total), key=units.__getitem__)] = True
    return tuple(i for i in range(total) if in_dev[i] == dev)


def load_split(spec: SplitSpec, n: int | None, seed: int, data_dir: str | None,
               role: str, skipped: dict[str, dict[str, int]]) -> list[Example]:
    """The ``role`` (train, dev or the eval-set name) names the sample and the skip report."""
    rows = open_split(spec.source, spec.split, data_dir)
    chosen = subsample(_indices(spec, len(rows)), n, seed, role)
    out, skips = [], Counter()
    for index, data in zip(chosen, rows.take(chosen)):
        row = Row(data, spec.name, spec.split, index, rows.place)
        try:
            out.append(spec.convert(row))
        except Skip as why:
            skips[str(why)] += 1
    if skips:
        log.warning("dataset %s, split %s: skipped %d row(s) on purpose: %s", spec.name, spec.split,
                    sum(skips.values()), dict(skips))
        skipped[role] = dict(skips)
    if not out:
        raise TaskDataError(f"dataset {spec.name!r}, split {spec.split!r}: no usable rows ({rows.where})")
    return out


def hub_loader(train: SplitSpec, dev: SplitSpec, evals: Sequence[SplitSpec]) -> Callable[[LoadRequest], TaskData]:
    """A Task loader over Hub/local splits: train and dev sub-sampled by n_train/n_dev, every eval
    set by n_eval, all with ``request.seed``."""

    def load(request: LoadRequest) -> TaskData:
        skipped: dict[str, dict[str, int]] = {}
        d = request.data_dir
        data = TaskData(
            train=load_split(train, request.n_train, request.seed, d, "train", skipped),
            dev=load_split(dev, request.n_dev, request.seed, d, "dev", skipped),
            eval={s.name: load_split(s, request.n_eval, request.seed, d, s.name, skipped) for s in evals},
        )
        roles = (("train", train), ("dev", dev), *((e.name, e) for e in evals))
        data.notes["sources"] = {
            role: f"{s.source.describe()} [{s.split}]" + ("" if s.part == "all" else f" ({s.part} part)")
            for role, s in roles}
        if skipped:
            data.notes["skipped"] = skipped
        return data

    return load
