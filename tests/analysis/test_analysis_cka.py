"""The CKA analysis on a layers table worked out by hand (two tasks, two checkpoints, three blocks), and
the per-block geometry of the checkpoints beside it."""

from __future__ import annotations

import pandas as pd
import pytest

from ptft.analysis import cka, geometry
from ptft.store import LAYERS_COLUMNS

# (train task, eval set) -> CKA at blocks 1, 2, 3 for c1 and c3
VALUES = {
    ("nli", "nli_val"): {"c1": (1.0, 0.9, 0.7), "c3": (1.0, 0.95, 0.9)},
    ("nli", "summ_test"): {"c1": (1.0, 0.95, 0.9), "c3": (1.0, 1.0, 1.0)},
    ("summ", "summ_test"): {"c1": (1.0, 0.8, 0.6), "c3": (1.0, 0.9, 0.8)},
    ("summ", "nli_val"): {"c1": (1.0, 1.0, 1.0), "c3": (1.0, 1.0, 0.9)},
}
STEPS = {"c1": 1000, "c3": 201000}


def layers_table() -> pd.DataFrame:
    rows = []
    for (task, eval_set), per in VALUES.items():
        for checkpoint, values in per.items():
            for layer, value in enumerate(values, start=1):
                rows.append(dict(checkpoint=checkpoint, step=STEPS[checkpoint], train_task=task, ft_method="full",
                                 lr=1e-3, seed=0, eval_task=eval_set.split("_")[0], eval_set=eval_set, domain="in",
                                 format="default", shots=4, layer=layer, measure="cka", value=value, n=50,
                                 selected=True))
    # an unselected learning rate and another format must be left out
    rows.append(dict(rows[1], lr=1e-4, value=0.0, selected=False))
    rows.append(dict(rows[1], format="io", value=0.0))
    return pd.DataFrame(rows, columns=LAYERS_COLUMNS)


def pick(frame, task, scope, measure, checkpoint):
    return frame[(frame["train_task"] == task) & (frame["scope"] == scope) & (frame["measure"] == measure)
                 & (frame["checkpoint"] == checkpoint)]


def test_change_per_layer_depth_slope_and_mean():
    frame = cka.cka(layers_table())
    assert list(frame.columns) == cka.COLUMNS and set(frame["ft_method"]) == {"full"}
    assert pick(frame, "nli", "in-domain", "change", "c1")["value"].tolist() == pytest.approx([0.0, 0.1, 0.3])
    # blocks 1, 2, 3 at depth 0, 0.5, 1: the least-squares slope of (0, .1, .3) is .3, of (0, .05, .1) .1
    assert pick(frame, "nli", "in-domain", "depth", "c1")["value"].item() == pytest.approx(0.3)
    assert pick(frame, "nli", "cross-task", "depth", "c1")["value"].item() == pytest.approx(0.1)
    assert pick(frame, "nli", "in-domain", "mean", "c3")["value"].item() == pytest.approx(0.05)
    # pooled over the two tasks' own sets: per layer the mean of (0, 0), (.1, .2), (.3, .4)
    pooled = pick(frame, "", "in-domain", "change", "c1")
    assert pooled["value"].tolist() == pytest.approx([0.0, 0.15, 0.35]) and (pooled["n"] == 2).all()
    assert pick(frame, "", "in-domain", "depth", "c1")["value"].item() == pytest.approx(0.35)
    assert pick(frame, "", "in-domain", "mean", "c1")["value"].item() == pytest.approx(1 / 6)
    one_set = pick(frame, "nli", "in-domain", "change", "c1")
    assert one_set["ci_low"].isna().all()  # one set: nothing to resample


def test_reading_follows_depth_and_pre_training():
    text = cka.reading(cka.cka(layers_table()))
    assert text.startswith("At c3, the in-domain change 1 - CKA grows with depth: slope +0.150")
    assert "mean over layers 0.075 against 0.167 at c1" in text


def test_a_table_without_cka_rows_has_no_rows():
    assert cka.cka(pd.DataFrame(columns=LAYERS_COLUMNS)).empty
    assert cka.load_layers(None).empty


def test_per_block_geometry_of_the_checkpoints():
    rows = [dict(checkpoint=c, step=STEPS[c], train_task="", ft_method="", lr=None, seed=None,
                 eval_task="pretrain_heldout", eval_set="", domain="", format="default", shots=0, layer=layer,
                 measure=measure, value=value, n=4096, selected=True)
            for c, ranks in (("c1", (3.0, 9.0, 5.0)), ("c3", (20.0, 60.0, 40.0)))
            for layer, value in enumerate(ranks, start=1)
            for measure, value in (("rankme", value), ("alpha_req", 10 / value))]
    table = pd.concat([layers_table(), pd.DataFrame(rows, columns=LAYERS_COLUMNS)])
    frame = geometry.geometry(table)
    assert list(frame.columns) == geometry.COLUMNS and len(frame) == 12  # 2 measures x 2 checkpoints x 3 blocks
    assert frame[(frame.measure == "alpha_req") & (frame.checkpoint == "c3")]["value"].tolist() == pytest.approx(
        [0.5, 1 / 6, 0.25])
    assert geometry.reading(frame) == ("RankMe of the last block is 40.0 at c3 against 5.0 at c1; at c3 it peaks "
                                       "at block 2 of 3 (60.0).")
    assert geometry.geometry(layers_table()).empty  # CKA rows are no geometry
