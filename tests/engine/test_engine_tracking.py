"""Experiment tracking: a small study with ``tracking: {tensorboard: true}`` writes trl's training
curves and ptft's evaluation metrics and headline numbers to TensorBoard event files, read back
here with TensorBoard's own EventAccumulator (offline, no server)."""

from __future__ import annotations

import pandas as pd
import pytest

from ptft.api import export, run
from ptft.engine.summary import summary_table
from ptft.errors import ConfigError

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of every event file under ``folder``: tag -> [(step, value)] in write order."""
    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        acc = event_accumulator.EventAccumulator(str(events), size_guidance={event_accumulator.SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


@pytest.fixture(scope="module")
def tracked_run(small_config_factory, tmp_path_factory):
    config = small_config_factory(tasks=[{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16}],
                                  **{"tracking.tensorboard": True})
    run_dir = tmp_path_factory.mktemp("tracked")
    outcome = run(config, run_dir=run_dir, progress=False)
    assert outcome.failed == []
    return config, run_dir


def test_training_curves_come_through_trls_report_to(tracked_run):
    config, run_dir = tracked_run
    folders = sorted((run_dir / "tensorboard" / "train").iterdir())
    (seed,) = config.finetune.seeds
    assert [f.name for f in folders] == sorted(f"FT_step{s}_sentiment_lr=0.001_seed={seed}"
                                               for s in config.checkpoints.local.steps)
    for folder in folders:
        scalars = _scalars(folder)
        # 32 examples, batch 8, 1 epoch: 4 optimizer steps; trl logs every 5 steps, so the loss
        # appears once, at the end of training, with the dev loss after it
        assert {"train/train_loss", "eval/loss"} <= set(scalars)
        ((step, _),) = scalars["train/train_loss"]
        assert step == 4


def test_every_metric_and_headline_number_is_logged_over_the_pretraining_step(tracked_run):
    config, run_dir = tracked_run
    scalars = _scalars(run_dir / "tensorboard" / "study")
    table = pd.read_csv(export(run_dir)).fillna({"train_task": ""})
    assert len(table) == 4  # BASE and FT at two checkpoints, one eval set
    for row in table.itertuples():
        if row.train_task:
            tag = f"ft/{row.train_task}/{row.eval_set}/{row.format}.{row.shots}shot.{row.method}/{row.metric}/" \
                  f"lr{row.lr:g}.seed{int(row.seed)}"
        else:
            tag = f"base/{row.eval_set}/{row.format}.{row.shots}shot.{row.method}/{row.metric}"
        assert (row.step, pytest.approx(row.value, abs=1e-7)) in [(s, v) for s, v in scalars[tag]]
    headline = summary_table(run_dir)
    for column in headline.columns:
        logged = dict(scalars[f"summary/{column}"])
        assert {int(s): pytest.approx(v, abs=1e-7) for (s, _), v in headline[column].items()} == logged


def test_tracking_is_off_by_default_and_refused_without_its_package(small_config_factory, tmp_path, monkeypatch):
    config = small_config_factory()
    assert not config.tracking.tensorboard and config.tracking.wandb is None
    import importlib.util

    real = importlib.util.find_spec
    installed = object()  # what find_spec gives for a package that is there
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: installed if name == "wandb" else real(name, *a))
    wandb_config = small_config_factory(**{"tracking.wandb": {"project": "p", "mode": "offline"}})
    assert wandb_config.tracking.wandb.mode == "offline"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match="tracking.wandb: the wandb package is not installed"):
        small_config_factory(**{"tracking.wandb": {"project": "p", "mode": "offline"}})


def test_every_model_state_and_method_has_a_tag_of_its_own() -> None:
    from dataclasses import replace

    from ptft.grid import EvalUnit, ModelKey, ModelState, ResultRow
    from ptft.tracking import metric_tag

    model = ModelKey("step8", 8, "nli", "full", 1e-3, 0)
    row = ResultRow("m", model, EvalUnit("nli", "nli_val", "default", 0, "tokenprob"), "classification", "in",
                    "accuracy", 0.5, 0.4, 0.6, 10)
    lora, hft = replace(model, ft_method="lora"), replace(model, ft_method="hft")
    tags = [metric_tag(r) for r in (row, replace(row, model=lora), replace(row, state=ModelState(ft_fraction=0.5)),
                                    replace(row, state=ModelState("lines")),
                                    replace(row, model=hft, state=ModelState("lines")))]
    assert tags == ["ft/nli/nli_val/default.0shot.tokenprob/accuracy/lr0.001.seed0",
                    "ft/nli/nli_val/default.0shot.tokenprob/accuracy/lr0.001.seed0.lora",
                    "ft/nli/nli_val/default.0shot.tokenprob/accuracy/lr0.001.seed0.ft0.5",
                    "ft/nli/nli_val/default.0shot.tokenprob/accuracy/lr0.001.seed0.lines",
                    "ft/nli/nli_val/default.0shot.tokenprob/accuracy/lr0.001.seed0.hft.lines"]
