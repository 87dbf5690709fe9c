"""Few-shot demonstrations: drawn once with a seed from the training split, never scored."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ptft.errors import DataError
from ptft.tasks.base import Example


class DemoError(DataError):
    """Demonstrations that would make an evaluation invalid (too few, or items of the scored set)."""


def select_demos(train_examples: Sequence[Example], k: int, seed: int) -> list[Example]:
    """``k`` distinct training examples drawn with ``seed``.

    The draw depends only on ``(len(train_examples), k, seed)`` and the order of the training
    split, so every checkpoint and every model of a study gets the very same demonstrations."""
    if k < 0:
        raise DemoError(f"the number of demonstrations must be >= 0, got {k}")
    if k == 0:
        return []
    if k > len(train_examples):
        raise DemoError(f"cannot draw {k} demonstrations from a training split of {len(train_examples)} examples")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(train_examples), size=k, replace=False)
    return [train_examples[int(i)] for i in idx]


def check_demos_not_scored(demos: Sequence[Example], examples: Sequence[Example], where: str = "") -> None:
    """Raise :class:`DemoError` when a demonstration is also an item of the scored set."""
    demo_ids = {d.uid for d in demos}
    overlap = sorted(demo_ids.intersection(ex.uid for ex in examples))
    if overlap:
        place = f" of {where}" if where else ""
        raise DemoError(
            f"{len(overlap)} demonstration(s) are items of the scored set{place} (e.g. {overlap[0]!r}); "
            "draw demonstrations from the training split with select_demos()"
        )
