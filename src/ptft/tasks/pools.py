"""Datasets held whole in memory, split once into a *pool*, then sub-sampled per request.

The shipped tasks (:mod:`ptft.tasks.shipped`) and the BIG-bench tasks read files small enough to
convert whole: each file's rows become :class:`Example` objects once per process, assigned to
train/dev/test by a stable hash of a group key (:mod:`ptft.tasks.splits`; rows that share a key,
such as the questions of one paragraph, share a split). A :class:`LoadRequest` only sub-samples the
cached pool, so loading the same task again (another checkpoint, another seed) costs milliseconds.
Out-of-domain eval sets are whole other files (eval only).

Rows that a task drops on purpose (e.g. an empty sentence) are counted, logged and reported in
``TaskData.notes["skipped"]``.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ptft.tasks.base import DataSource, EvalSet, Example, LoadRequest, TaskData, TaskDataError
from ptft.tasks.splits import split_items, subsample

log = logging.getLogger("ptft.tasks")


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


def pooled_source(name: str, pool: Callable[[str], Pool], out_domain: Sequence[OutOfDomain] = (),
                  normalize_whitespace: bool = False, requires: Callable[[], None] | None = None) -> DataSource:
    """A task's data: ``pool(name)`` gives train, dev and the in-domain eval set ``name``; each
    out-of-domain set is converted by its ``rows``. Each is converted once per process; a request
    only sub-samples. ``requires`` raises when the data cannot be had (checked before a study starts)."""
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
                      normalize_whitespace, requires)
