"""Shared helpers of the offline BIG-bench tasks (``bigbench_*.py``).

A BIG-bench file is parsed once per process (``functools.lru_cache``); each task module turns
its rows into :class:`Example` objects and assigns them to train/dev/test by a stable hash
(:mod:`ptft.tasks.splits`), a *pool* that :func:`bigbench_source` caches; a :class:`LoadRequest`
only sub-samples the cached pool, so loading the same task again (another checkpoint, another seed) costs
milliseconds.

Data problems raise :class:`TaskDataError` (:func:`ptft.tasks.rows.row_error`) naming the dataset, the split (``all`` for a file that
has not been split yet), the row index in the file and the field. Rows that a task drops on
purpose (e.g. a summary that is empty) are counted, logged and reported in ``TaskData.notes``.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ptft import sources
from ptft.tasks.base import DataSource, EvalSet, Example, LoadRequest, TaskData, TaskDataError
from ptft.tasks.rows import row_error
from ptft.tasks.splits import split_items, subsample

log = logging.getLogger("ptft.tasks")


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


@dataclass
class Pool:
    """A dataset's examples already split (train/dev/test), plus what was skipped and why."""

    name: str
    splits: dict[str, list[Example]]
    skipped: Counter = field(default_factory=Counter)

    def sizes(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.splits.items()}


def make_pool(
    examples: Sequence[tuple[str, Example]],
    fractions: Mapping[str, float],
    salt: str,
    skipped: Counter | None = None,
) -> Pool:
    """Split ``(group_key, example)`` pairs by their group key; uids must be unique."""
    seen: set[str] = set()
    for _, ex in examples:
        if ex.uid in seen:
            raise TaskDataError(f"dataset {salt!r}: duplicate uid {ex.uid!r}")
        seen.add(ex.uid)
    parts = split_items(examples, key=lambda pair: pair[0], fractions=fractions, salt=salt)
    return Pool(salt, {k: [ex for _, ex in v] for k, v in parts.items()}, skipped or Counter())


def log_skipped(dataset: str, skipped: Counter) -> None:
    if skipped:
        log.warning("dataset %s: skipped %d row(s) on purpose: %s", dataset, sum(skipped.values()),
                    dict(skipped))


def assemble(
    request: LoadRequest,
    pool: Pool,
    out_domain: Mapping[str, list[Example]],
    out_skipped: Mapping[str, Counter],
) -> TaskData:
    """Sub-sample a task's splits for ``request``.

    ``pool`` gives train, dev and the in-domain eval set of its name (its ``test`` split); each
    out-of-domain set is a whole separate dataset (eval only)."""
    seed = request.seed
    train = subsample(pool.splits["train"], request.n_train, seed, "train")
    dev = subsample(pool.splits["dev"], request.n_dev, seed, "dev")
    evals = {pool.name: subsample(pool.splits["test"], request.n_eval, seed, pool.name)}
    pool_sizes: dict[str, dict[str, int]] = {pool.name: pool.sizes()}
    skipped: dict[str, dict[str, int]] = {}
    if pool.skipped:
        skipped[pool.name] = dict(pool.skipped)
    for name, rows in out_domain.items():
        evals[name] = subsample(rows, request.n_eval, seed, name)
        pool_sizes[name] = {"test": len(rows)}
    for name, counts in out_skipped.items():
        if counts:
            skipped[name] = dict(counts)
    notes: dict[str, Any] = {"pool_sizes": pool_sizes}
    if skipped:
        notes["skipped"] = skipped
    return TaskData(train=train, dev=dev, eval=evals, notes=notes)


@dataclass(frozen=True)
class OutOfDomain:
    """An out-of-domain eval set, a whole other file (eval only): ``rows(name)`` gives its
    examples, or its examples and the rows skipped on purpose."""

    name: str
    rows: Callable[[str], list[Example] | tuple[list[Example], Counter]]
    labels: tuple[str, ...] | None = None


def bigbench_source(name: str, pool: Callable[[str], Pool], out_domain: Sequence[OutOfDomain] = (),
                    normalize_whitespace: bool = True) -> DataSource:
    """A task's data from BIG-bench files: ``pool(name)`` gives train, dev and the in-domain eval
    set ``name``. Each file is converted once per process; a request only sub-samples.

    ``normalize_whitespace`` on by default, as ptft always did for BIG-bench (exported values
    unchanged)."""
    pool_of = functools.lru_cache(maxsize=1)(functools.partial(pool, name))
    sets = {o.name: functools.lru_cache(maxsize=1)(functools.partial(o.rows, o.name)) for o in out_domain}

    def load(request: LoadRequest) -> TaskData:
        rows: dict[str, list[Example]] = {}
        skipped: dict[str, Counter] = {}
        for set_name, convert in sets.items():
            got = convert()
            rows[set_name], skipped[set_name] = got if isinstance(got, tuple) else (got, Counter())
        return assemble(request, pool_of(), rows, skipped)

    return DataSource((EvalSet(name, "in"), *(EvalSet(o.name, "out", o.labels) for o in out_domain)), load,
                      normalize_whitespace)
