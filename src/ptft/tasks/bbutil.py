"""Shared helpers of the BIG-bench tasks (``bigbench_*.py``), for users who hold the archive.

``bigbench==1.0.0`` is no longer served by the package index: these tasks read the user's copy
(:func:`ptft.sources.bigbench_archive`), and a study that names one without it is refused before
it starts. A BIG-bench file is parsed once per process (``functools.lru_cache``); each task module
turns its rows into :class:`Example` objects split into a *pool* (:mod:`ptft.tasks.pools`).

Data problems raise :class:`TaskDataError` (:func:`ptft.tasks.rows.row_error`) naming the dataset, the split (``all`` for a file that
has not been split yet), the row index in the file and the field. Rows that a task drops on
purpose (e.g. a summary that is empty) are counted, logged and reported in ``TaskData.notes``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Sequence

from ptft import sources
from ptft.tasks.base import DataSource, TaskDataError
from ptft.tasks.pools import OutOfDomain, Pool, pooled_source
from ptft.tasks.rows import row_error



BENCHMARK_TASKS = "bigbench/benchmark_tasks"
_NEEDED: set[str] = set()


def need(*relpaths: str) -> None:
    """Declare the BIG-bench files a task module reads (at import; reads nothing). The first
    load that misses the cache extracts all declared files in one pass over the 358 MB sdist
    instead of one pass per file."""
    _NEEDED.update(relpaths)


def _ensure_extracted(relpath: str) -> None:
    root = sources.cache_dir() / "files" / f"{sources.BIGBENCH.package}-{sources.BIGBENCH.version}"
    if sources.usable(root / BENCHMARK_TASKS / relpath):
        return
    wanted = sorted(_NEEDED - {relpath})
    # the others are checked when they are used; here they only join the one pass over the archive
    missing = [relpath] + [p for p in wanted if not (root / BENCHMARK_TASKS / p).exists()]
    sources.extracted_many(sources.BIGBENCH, [f"{BENCHMARK_TASKS}/{p}" for p in missing])


def check_declared() -> list[str]:
    """Every declared BIG-bench file checked against its checksum and extracted again if damaged,
    whatever this process has parsed already (``ptft prepare``); returns the files checked."""
    root = sources.cache_dir() / "files" / f"{sources.BIGBENCH.package}-{sources.BIGBENCH.version}"
    members = [f"{BENCHMARK_TASKS}/{p}" for p in sorted(_NEEDED)]
    missing = [m for m in members if not sources.usable(root / m)]
    if missing:
        sources.extracted_many(sources.BIGBENCH, missing)
    return members


@functools.lru_cache(maxsize=None)
def bigbench_json(relpath: str) -> dict:
    """A BIG-bench JSON file (path under ``bigbench/benchmark_tasks``), parsed once per process."""
    _ensure_extracted(relpath)
    return sources.bigbench_task(relpath)


def bigbench_examples(relpath: str) -> list[dict]:
    data = bigbench_json(relpath)
    rows = data.get("examples")
    if not isinstance(rows, list) or not rows:
        raise TaskDataError(f"BIG-bench file {relpath!r} has no 'examples' list")
    return rows


def text_field(row: Mapping[str, Any], key: str, dataset: str, split: str, index: int) -> str:
    """``row[key]`` as a stripped non-empty string, or a TaskDataError naming the place."""
    if key not in row or row[key] is None:
        raise row_error(dataset, split, index, key, "missing")
    value = row[key]
    if not isinstance(value, str):
        raise row_error(dataset, split, index, key, f"expected text, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise row_error(dataset, split, index, key, "empty")
    return value


def gold_choice(row: Mapping[str, Any], dataset: str, split: str, index: int) -> tuple[str, list[str]]:
    """The single correct key of ``target_scores`` and all keys (in file order, stripped)."""
    scores = row.get("target_scores")
    if not isinstance(scores, dict) or not scores:
        raise row_error(dataset, split, index, "target_scores", "missing or empty")
    best = max(scores.values())
    gold = [k for k, v in scores.items() if v == best]
    if best <= 0 or len(gold) != 1:
        raise row_error(dataset, split, index, "target_scores",
                        f"needs exactly one correct choice, got scores {scores}")
    return gold[0].strip(), [k.strip() for k in scores]


def map_label(raw: str, mapping: Mapping[str, str], dataset: str, split: str, index: int,
              field_name: str = "target_scores") -> str:
    try:
        return mapping[raw]
    except KeyError:
        raise row_error(dataset, split, index, field_name,
                        f"unknown label {raw!r}; expected one of {sorted(mapping)}") from None


def bigbench_source(name: str, pool: Callable[[str], Pool], out_domain: Sequence[OutOfDomain] = (),
                    normalize_whitespace: bool = True) -> DataSource:
    """A task's data from BIG-bench files (:func:`ptft.tasks.pools.pooled_source`), refused before a
    study starts when the user has no copy of the archive.

    ``normalize_whitespace`` on by default, as ptft always did for BIG-bench (exported values
    unchanged)."""
    return pooled_source(name, pool, out_domain, normalize_whitespace, requires=sources.require_bigbench)
