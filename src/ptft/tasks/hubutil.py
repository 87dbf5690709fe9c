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
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ptft.tasks.base import DataSource, EvalSet, Example, LoadRequest, TaskData, TaskDataError
from ptft.tasks.rows import LOCAL_SUFFIXES, LocalRows, Row, convert_rows, read_local
from ptft.tasks.splits import carve, subsample

log = logging.getLogger("ptft.tasks")

DEV_FRACTION = 0.05  # share of a train split carved off as dev when the dataset has no spare split


@dataclass(frozen=True)
class HubSource:
    """Where a dataset lives: the Hub id + config, and the local folder name under ``data_dir``."""

    folder: str
    hub_id: str
    config: str | None = None

    def describe(self) -> str:
        return self.hub_id + (f" ({self.config})" if self.config else "")


# --------------------------------------------------------------------------------------- reading

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
        except Exception as err:  # network / unknown split: say what to do offline, in one line
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            raise TaskDataError(
                f"dataset {source.describe()}, split {split!r}: could not load from the Hub ({reason}); "
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


@dataclass(frozen=True)
class EvalSplit(SplitSpec):
    """A split scored as an eval set: ``name`` is the eval set's name, ``labels`` its own label set
    (None: the task's)."""

    domain: str = "in"
    labels: tuple[str, ...] | None = None


def _indices(spec: SplitSpec, total: int) -> list[int]:
    if spec.part == "all":
        return list(range(total))
    return list(carve(total, DEV_FRACTION, f"{spec.source.folder}:{spec.split}", spec.part))


def load_split(spec: SplitSpec, n: int | None, seed: int, data_dir: str | None,
               role: str, skipped: dict[str, dict[str, int]]) -> list[Example]:
    """The ``role`` (train, dev or the eval-set name) names the sample and the skip report."""
    rows = open_split(spec.source, spec.split, data_dir)
    chosen = subsample(_indices(spec, len(rows)), n, seed, role)
    out, skips = convert_rows(rows.take(chosen), chosen, spec.name, spec.split, spec.convert, rows.place)
    if skips:
        log.warning("dataset %s, split %s: skipped %d row(s) on purpose: %s", spec.name, spec.split,
                    sum(skips.values()), dict(skips))
        skipped[role] = dict(skips)
    if not out:
        raise TaskDataError(f"dataset {spec.name!r}, split {spec.split!r}: no usable rows ({rows.where})")
    return out


def hub_source(train: SplitSpec, dev: SplitSpec, evals: Sequence[EvalSplit]) -> DataSource:
    """A task's data over Hub/local splits: train and dev sub-sampled by n_train/n_dev, every eval
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

    return DataSource(tuple(EvalSet(e.name, e.domain, e.labels) for e in evals), load)
