"""The methods analysis (learning vs forgetting per fine-tuning method and variant) and the
weights analysis, on hand-built tables with every number worked out by hand (the headline table
of conftest.py: its gains, MRCs and out-of-domain changes are listed there)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from ptft.analysis import lenses, methods
from ptft.analysis.api import analyze

CHECKPOINTS = ["c1", "c2", "c3"]


def values(frame: pd.DataFrame, method: str, measure: str) -> list[float]:
    mine = frame[(frame["method"] == method) & (frame["measure"] == measure)]
    return mine.set_index("checkpoint")["value"].reindex(CHECKPOINTS).tolist()


def with_methods(make: SimpleNamespace, with_lora: bool = True) -> pd.DataFrame:
    """The headline table as full fine-tuning, plus a LoRA copy that learns nli less (nli_val
    .50 .60 .70 after fine-tuning) and forgets nothing out of domain (nli_ood at BASE's .50), and
    a LiNeS-edited full model that learns summ less (summ_test .10 .20 .30)."""
    rows = make.headline_rows()
    full = [dict(r, ft_method="full" if r["train_task"] else "") for r in rows]
    lora = [dict(r, ft_method="lora") for r in rows if r["train_task"] and with_lora]
    for r in lora:
        if r["eval_set"] == "nli_val" and r["train_task"] == "nli":
            r["value"] = round(r["value"] - 0.2, 2)
        if r["eval_set"] == "nli_ood":
            r["value"] = 0.50
    lines = [dict(r, ft_method="full", variant="lines") for r in rows if r["train_task"]]
    for r in lines:
        if r["eval_set"] == "summ_test" and r["train_task"] == "summ":
            r["value"] = round(r["value"] - 0.1, 2)
    table = pd.DataFrame(full + lora + lines)
    table["variant"] = table["variant"].fillna("none")
    return table


def test_a_table_without_ft_method_is_full_fine_tuning(table: pd.DataFrame) -> None:
    frame = methods.methods(table)
    # the distractors' LiNeS-edited nli models (nli_val .04 each) are a variant of their own; the
    # models half way through training are no method's final model
    assert set(frame["method"]) == {"full", "full+lines"} and list(frame.columns) == methods.COLUMNS
    assert values(frame, "full+lines", "gain") == pytest.approx([-0.36, -0.46, -0.56])
    # gain: nli +.30 +.30 +.30, summ +.20 +.20 +.30 -> means .25 .25 .30
    assert values(frame, "full", "gain") == pytest.approx([0.25, 0.25, 0.30])
    # MRC classification->generation: nli on summ_test: c1 guarded out (BASE 0), -50 %, -80 %
    c2g = values(frame, "full", "mrc classification->generation")
    assert pd.isna(c2g[0]) and c2g[1:] == pytest.approx([-50.0, -80.0])
    # generation->classification: summ on nli_val (.36 .50 .66 vs .40 .50 .60): -10 %, 0 %, +10 %
    assert values(frame, "full", "mrc generation->classification") == pytest.approx([-10.0, 0.0, 10.0])
    # OOD: nli_ood +10 +20 -10 %, summ_ood +10 -10 0 % -> means +10 +5 -5 %
    assert values(frame, "full", "ood") == pytest.approx([10.0, 5.0, -5.0])


def test_methods_and_variants_are_compared_with_the_same_base(make: SimpleNamespace) -> None:
    frame = methods.methods(with_methods(make))
    assert sorted(frame["method"].unique()) == ["full", "full+lines", "lora"]
    assert values(frame, "full", "gain") == pytest.approx([0.25, 0.25, 0.30])
    # LoRA: nli gains .10 each, summ as full -> .15 .15 .20; out of domain nli_ood 0 -> +5 -5 0 %
    assert values(frame, "lora", "gain") == pytest.approx([0.15, 0.15, 0.20])
    assert values(frame, "lora", "ood") == pytest.approx([5.0, -5.0, 0.0])
    # LiNeS-edited full: summ gains .10 .10 .20 -> (.30 + summ) / 2 = .20 .20 .25
    assert values(frame, "full+lines", "gain") == pytest.approx([0.20, 0.20, 0.25])
    lines = frame[frame["method"] == "full+lines"]
    assert set(lines["variant"]) == {"lines"} and set(lines["ft_method"]) == {"full"}
    assert methods.reading(frame).startswith("At c3: full learns most (+0.300")
    assert any(line.startswith("lora: gain +0.167") for line in methods.headlines(frame))


def weights_table() -> pd.DataFrame:
    """Two methods at two checkpoints, one model each, two block matrices and an embedding."""
    rows = []
    for method, ck, step, block, embed in (
            ("full", "c1", 1000, [(0.02, 40, 0), (0.04, 60, 0)], (0.01, 90, 0)),
            ("full", "c2", 2000, [(0.01, 30, 0), (0.03, 50, 1)], (0.01, 80, 0)),
            ("lora", "c1", 1000, [(0.01, 4, 2), (0.01, 6, 3)], (0.00, 0, 0)),
            ("lora", "c2", 2000, [(0.02, 8, 1), (0.02, 8, 1)], (0.00, 0, 0))):
        for layer, (rel, rank, intr) in enumerate([embed] + block):
            rows.append(dict(checkpoint=ck, step=step, train_task="nli", lr=1e-4, seed=0, ft_method=method,
                             name=f"m{layer}", module="x", layer=layer, rows=8, cols=8, relative_change=rel,
                             effective_rank=rank, intruders=intr, intruder_k=10, intruder_epsilon=0.5,
                             selected=True))
    rows.append(dict(rows[1], lr=1e-3, relative_change=9.0, selected=False))  # not the selected lr
    return pd.DataFrame(rows)


def test_weights_keep_training_tasks_apart() -> None:
    """A second task whose LoRA models moved far more: its own rows, and the reading names both."""
    table = weights_table()
    summ = table[table["ft_method"] == "lora"].assign(train_task="summ", relative_change=0.5)
    frame = lenses.weights(pd.concat([table, summ], ignore_index=True))
    change = frame[(frame["part"] == "blocks") & (frame["measure"] == "relative_change") & (frame["checkpoint"] == "c2")]
    assert change.set_index(["method", "train_task"])["value"].to_dict() == pytest.approx(
        {("full", "nli"): 0.02, ("lora", "nli"): 0.02, ("lora", "summ"): 0.5})
    reading = lenses.reading(frame)
    assert "lora on summ moves its matrices by 0.5 of their norm" in reading and "full on nli" in reading
    # (0.01 + 0.02 + 0.5 + 0.5) / 4 over (checkpoint, task)
    assert any(line.startswith("lora: relative change 0.258") and line.endswith("2 checkpoints and 2 task(s)")
               for line in lenses.headlines(frame))


def test_weights_per_method_and_checkpoint() -> None:
    frame = lenses.weights(weights_table())
    blocks = frame[frame["part"] == "blocks"]

    def at(method, measure):
        mine = blocks[(blocks["method"] == method) & (blocks["measure"] == measure)]
        return mine.set_index("checkpoint")["value"].reindex(["c1", "c2"]).tolist()

    assert at("full", "relative_change") == pytest.approx([0.03, 0.02])
    assert at("full", "effective_rank") == pytest.approx([50, 40])
    assert at("lora", "effective_rank") == pytest.approx([5, 8])
    assert at("lora", "intruders") == pytest.approx([2.5, 1.0])
    assert at("lora", "intruders_per_model") == pytest.approx([5, 2])
    assert at("full", "intruders_per_model") == pytest.approx([0, 1])
    embeddings = frame[(frame["part"] == "embeddings") & (frame["measure"] == "effective_rank")]
    assert embeddings.set_index(["method", "checkpoint"])["value"].to_dict() == {
        ("full", "c1"): 90, ("full", "c2"): 80, ("lora", "c1"): 0, ("lora", "c2"): 0}
    assert set(frame["train_task"]) == {"nli"}
    assert lenses.reading(frame) == (
        "At c2: full moves its matrices by 0.02 of their norm with effective rank 40.0 (95% CI [30.0, 50.0]) "
        "and 1.0 intruder dimensions per model; lora moves its matrices by 0.02 of their norm with effective "
        "rank 8.0 (95% CI [8.0, 8.0]) and 2.0 intruder dimensions per model.")


def test_analyze_writes_methods_and_weights(make: SimpleNamespace, tmp_path) -> None:
    table = with_methods(make)
    frames = analyze(table, tmp_path, weights=weights_table())
    # every other analysis reads full fine-tuning's rows unless told otherwise
    assert "fine-tuning method full" in (tmp_path / "summary.md").read_text().splitlines()[2]
    assert frames["gain"].equals(analyze(with_methods(make, with_lora=False), tmp_path / "full")["gain"])
    for name in ("methods", "weights"):
        assert {f"{name}.{ext}" for ext in ("csv", "png", "svg")} <= {p.name for p in tmp_path.iterdir()}
        assert not frames[name].empty
    summary = (tmp_path / "summary.md").read_text()
    assert "## Per fine-tuning method" in summary and "- full+lines: gain +0.217" in summary
    assert "- lora: relative change" in summary
    # without a weights table the analysis says why it has no data
    analyze(make.frame(make.headline_rows()), tmp_path / "bare")
    assert f"No data: {lenses.EMPTY}." in (tmp_path / "bare" / "summary.md").read_text()
