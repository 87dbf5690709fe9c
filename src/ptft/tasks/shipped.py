"""Tasks over the data files shipped inside ptft (``ptft/data``; provenance in ``docs/data.md``).

Each shipped file keeps its upstream's own columns (a Hub dataset's, or the fields of the
original release), so a task converts its rows with the same :class:`~ptft.tasks.rows.Row`
converters as the Hub tasks and user files, and names a bad row the same way. The rows of one file
are converted once per process and split into a pool (:mod:`ptft.tasks.pools`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Mapping

from ptft import sources
from ptft.tasks.base import Example
from ptft.tasks.hubutil import Converter
from ptft.tasks.pools import OutOfDomain, Pool, log_skipped, make_pool
from ptft.tasks.rows import convert_rows
from ptft.tasks.splits import BIG

Keep = Callable[[Mapping[str, Any]], bool]


def shipped_examples(file: str, dataset: str, split: str, convert: Converter,
                     keep: Keep | None = None) -> tuple[list[Example], Counter]:
    """The examples of the shipped file ``<file>.jsonl.gz`` (the rows ``keep`` accepts), and the
    rows the converter dropped on purpose. A row's index in the file is its identity."""
    records = sources.shipped_rows(file)
    indices = [i for i, r in enumerate(records) if keep is None or keep(r)]
    out, skipped = convert_rows([records[i] for i in indices], indices, dataset, split, convert)
    log_skipped(dataset, skipped)
    return out, skipped


def shipped_pool(file: str, convert: Converter, group: Callable[[Example], str],
                 fractions: Mapping[str, float] = BIG, keep: Keep | None = None) -> Callable[[str], Pool]:
    """``pool(name)``: the file's examples split by ``group(example)`` (examples of one group share a split)."""
    def pool(name: str) -> Pool:
        rows, skipped = shipped_examples(file, name, "all", convert, keep)
        return make_pool([(group(ex), ex) for ex in rows], fractions, salt=name, skipped=skipped)

    return pool


def shipped_eval_set(name: str, file: str, convert: Converter, keep: Keep | None = None,
                     labels: tuple[str, ...] | None = None) -> OutOfDomain:
    """An out-of-domain eval set: the whole of a shipped file (or the rows ``keep`` accepts)."""
    return OutOfDomain(name, lambda set_name: shipped_examples(file, set_name, "test", convert, keep), labels)
