"""Deterministic hash splits and seeded, nested sub-sampling."""

import subprocess
import sys

import pytest

from ptft.errors import DataError
from ptft.tasks.splits import BIG, SMALL, assign, carve, split_items, stable_unit, subsample


def test_stable_unit_is_fixed_across_processes():
    # a hash that depended on PYTHONHASHSEED would differ between these two interpreters
    code = "from ptft.tasks.splits import stable_unit; print(repr(stable_unit('abc', 'salt')))"
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env={"PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert outs == {repr(stable_unit("abc", "salt"))}
    assert 0.0 <= stable_unit("abc", "salt") < 1.0
    assert stable_unit("abc", "salt") != stable_unit("abc", "other")


def test_split_fractions_roughly_respected_and_disjoint():
    items = [f"item{i}" for i in range(20000)]
    parts = split_items(items, key=lambda s: s, fractions=BIG, salt="t")
    sizes = {k: len(v) for k, v in parts.items()}
    assert sum(sizes.values()) == 20000
    assert 0.78 < sizes["train"] / 20000 < 0.82
    assert 0.08 < sizes["dev"] / 20000 < 0.12
    assert set(parts["train"]).isdisjoint(parts["dev"])
    assert set(parts["train"]).isdisjoint(parts["test"])
    assert set(parts["dev"]).isdisjoint(parts["test"])
    # order of the pool is kept inside each split
    assert parts["train"] == sorted(parts["train"], key=items.index)


def test_group_key_keeps_groups_together():
    items = [(f"group{i % 50}", i) for i in range(1000)]
    parts = split_items(items, key=lambda p: p[0], fractions=SMALL, salt="g")
    where = {}
    for split, rows in parts.items():
        for g, _ in rows:
            assert where.setdefault(g, split) == split


def test_assign_does_not_depend_on_other_items():
    a = assign("x42", BIG, "s")
    parts = split_items(["x42"] + [f"y{i}" for i in range(100)], key=lambda s: s, fractions=BIG, salt="s")
    assert "x42" in parts[a]


def test_bad_fractions_refused():
    with pytest.raises(ValueError):
        assign("x", {"train": 0.5, "dev": 0.1, "test": 0.1})
    with pytest.raises(ValueError):
        assign("x", {"train": 0.9, "valid": 0.1})


def test_subsample_seeded_nested_and_ordered():
    rows = list(range(1000))
    a = subsample(rows, 100, seed=0, name="train")
    assert a == subsample(rows, 100, seed=0, name="train")
    assert a != subsample(rows, 100, seed=1, name="train")
    assert a != subsample(rows, 100, seed=0, name="dev")
    assert len(a) == 100 and len(set(a)) == 100
    assert a == sorted(a)
    big = subsample(rows, 300, seed=0, name="train")
    assert set(a) <= set(big)
    assert subsample(rows, None, seed=0) == rows
    assert subsample(rows, 5000, seed=0) == rows
    with pytest.raises(ValueError):
        subsample(rows, -1, seed=0)


def test_carve_dev_from_train_is_disjoint_stable_and_never_empty():
    train, dev = carve(1000, 0.05, "d:train", "train"), carve(1000, 0.05, "d:train", "dev")
    assert sorted(train + dev) == list(range(1000)) and not set(train) & set(dev)
    assert 20 < len(dev) < 80 and dev == carve(1000, 0.05, "d:train", "dev")
    assert len(carve(3, 0.0001, "tiny", "dev")) == 1 and len(carve(3, 0.0001, "tiny", "train")) == 2
    with pytest.raises(ValueError, match="part"):
        carve(3, 0.1, "x", "test")


def test_negative_sample_size_is_a_data_error():
    with pytest.raises(DataError, match="'dev': size must be >= 0"):
        subsample([1, 2], -1, 0, "dev")
