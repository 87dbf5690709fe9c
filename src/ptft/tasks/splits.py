"""Deterministic, disjoint splits and seeded sub-sampling.

Three steps, kept apart on purpose:

1. **Assignment** (no seed): every item goes to ``train``, ``dev`` or ``test`` by a stable hash of
   its *group key* (``sha256(salt | key)`` mapped to [0, 1) and compared with cumulative
   fractions). The same item always lands in the same split, on every machine and in every
   process, whatever the seed or the requested sizes; items that share a group key (the same
   paragraph, the same Wikipedia page) share a split, so near-duplicates cannot straddle train and
   test.
2. **Carving** (no seed): a source that has no spare split gives a fraction of its train rows to
   dev by a stable hash of the row index (:func:`carve`).
3. **Sub-sampling** (seeded): each split is cut to the requested size with
   ``random.Random(f"{seed}:{name}")``. Samples are *nested*: with one seed, the first 100 items
   are part of the first 200, so raising a size only adds items. The chosen items keep the pool's
   order.
"""

from __future__ import annotations

import functools
import hashlib
import random
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

from ptft.errors import DataError

T = TypeVar("T")

SPLITS = ("train", "dev", "test")

# Fractions by pool size: big pools give most to train; small pools keep enough to score.
BIG = {"train": 0.8, "dev": 0.1, "test": 0.1}
SMALL = {"train": 0.7, "dev": 0.1, "test": 0.2}
# Multiple-choice / eval-first pools: train only supplies few-shot demonstrations.
EVAL_FIRST = {"train": 0.2, "dev": 0.1, "test": 0.7}


def stable_unit(key: str, salt: str = "") -> float:
    """A number in [0, 1) that depends only on ``salt`` and ``key``."""
    digest = hashlib.sha256(f"{salt}|{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _check_fractions(fractions: Mapping[str, float]) -> None:
    unknown = set(fractions) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split name(s) {sorted(unknown)}; use {SPLITS}")
    total = sum(fractions.values())
    if any(f < 0 for f in fractions.values()) or abs(total - 1.0) > 1e-9:
        raise ValueError(f"split fractions must be >= 0 and sum to 1, got {dict(fractions)}")


def assign(key: str, fractions: Mapping[str, float] = BIG, salt: str = "") -> str:
    """The split (``train``/``dev``/``test``) of the item with group key ``key``."""
    _check_fractions(fractions)
    u = stable_unit(key, salt)
    acc = 0.0
    last = ""
    for name in SPLITS:
        frac = fractions.get(name, 0.0)
        if frac <= 0:
            continue
        acc += frac
        last = name
        if u < acc:
            return name
    return last  # float round-off at the top end


def split_items(
    items: Iterable[T],
    key: Callable[[T], str],
    fractions: Mapping[str, float] = BIG,
    salt: str = "",
) -> dict[str, list[T]]:
    """Partition ``items`` into ``train``/``dev``/``test`` by their group keys (order kept)."""
    _check_fractions(fractions)
    out: dict[str, list[T]] = {name: [] for name in SPLITS}
    for item in items:
        out[assign(key(item), fractions, salt)].append(item)
    return out


def subsample(rows: Sequence[T], n: int | None, seed: int, name: str = "") -> list[T]:
    """At most ``n`` rows chosen with ``random.Random(f"{seed}:{name}")``, in the pool's order.

    ``n=None`` (or ``n >= len(rows)``) keeps every row. Nested: a smaller ``n`` with the same
    seed and name picks a subset of a larger one."""
    if n is None or n >= len(rows):
        return list(rows)
    if n < 0:
        raise DataError(f"sample {name!r}: size must be >= 0, got {n}")
    order = list(range(len(rows)))
    random.Random(f"{seed}:{name}").shuffle(order)
    return [rows[i] for i in sorted(order[:n])]


@functools.lru_cache(maxsize=32)
def carve(total: int, fraction: float, salt: str, part: str) -> tuple[int, ...]:
    """The row indices of the ``train`` or ``dev`` part of a split of ``total`` rows: dev = rows
    whose hash falls below ``fraction``; a tiny split whose hashes all miss still gives its
    lowest-hash row to dev (and keeps the rest for train)."""
    if part not in ("train", "dev"):
        raise ValueError(f"carve: part must be 'train' or 'dev', got {part!r}")
    units = [stable_unit(str(i), salt) for i in range(total)]
    in_dev = [u < fraction for u in units]
    if total >= 2 and not any(in_dev):
        in_dev[min(range(total), key=units.__getitem__)] = True
    return tuple(i for i in range(total) if in_dev[i] == (part == "dev"))
