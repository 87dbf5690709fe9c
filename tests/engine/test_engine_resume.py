"""Resume, incremental reruns, determinism and learning-rate selection on a real small study."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from ptft.engine.status import grid_status
from ptft.engine.study import run_study
from ptft.store import ResultsStore, results_frame

from engine_helpers import KEYS, assert_same_numbers, assert_same_run


def store_of(run_dir: Path) -> ResultsStore:
    return ResultsStore(run_dir / "results.sqlite")


def test_reference_run_is_complete_with_a_log_per_cell(reference_run) -> None:
    run = reference_run.run_dir
    with store_of(run) as store:
        cells = store.cells()
        assert (cells.status == "done").all() and len(cells) == 8
        assert store.count("results") == len(reference_run.frame) == 8
        runs = store.frame("runs")
    assert list(runs.outcome) == ["finished"]
    for cell_id in cells.cell_id:
        text = (run / "logs" / f"{cell_id}.log").read_text()
        assert f"cell {cell_id}" in text and "done in" in text
    assert reference_run.frame.selected.all()  # one learning rate: it is the selected one
    assert not (run / "models").exists()  # keep_weights is false: no weights left on disk


def test_same_study_twice_gives_the_same_numbers(reference_run, tmp_path: Path) -> None:
    again = run_study(reference_run.config, run_dir=tmp_path / "again", progress=False)
    assert again.ran == 8 and not again.failed
    assert_same_run(tmp_path / "again", reference_run)


def test_rerun_of_a_finished_study_runs_nothing(reference_run, tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    result = run_study(reference_run.config, run_dir=run, progress=False)
    assert (result.ran, result.skipped, result.failed) == (0, 8, [])
    assert_same_numbers(results_frame(run), reference_run.frame)


def test_changing_one_tasks_eval_size_reruns_only_its_cells(reference_run, small_config_factory,
                                                            tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    tasks = [{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16},
             {"name": "social_qg", "n_train": 16, "n_dev": 4, "n_eval": 6}]
    result = run_study(small_config_factory(tasks=tasks), run_dir=run, progress=False)
    ran = {c.label for c in result.cells if c.cell_id not in set(json.loads(
        (reference_run.run_dir / "cells.json").read_text()))}
    assert result.ran == 4 and result.skipped == 4 and not result.failed
    assert ran == {"BASE step8 social_qg", "BASE step60 social_qg",
                   "FT step8 social_qg lr=0.001 seed=0", "FT step60 social_qg lr=0.001 seed=0"}
    df = results_frame(run)
    assert len(df) == 8 and not df.duplicated(KEYS).any()
    assert set(df[df.eval_task == "social_qg"].n) == {6}
    vitaminc = df[df.eval_task == "sentiment"]
    assert_same_numbers(vitaminc, reference_run.frame[reference_run.frame.eval_task == "sentiment"])
    # the old config's rows stay in the store, not in the export; going back reruns nothing
    back = run_study(reference_run.config, run_dir=run, progress=False)
    assert back.ran == 0 and back.skipped == 8
    assert_same_numbers(results_frame(run), reference_run.frame)


def test_adding_a_learning_rate_runs_only_its_cells_and_selects_on_dev_loss(reference_run, small_config_factory,
                                                                            tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    config = small_config_factory(**{"finetune.learning_rates": [0.001, 0.02]})
    result = run_study(config, run_dir=run, progress=False)
    assert result.ran == 4 and result.skipped == 8 and not result.failed
    assert {c.lr for c in result.cells if c.kind == "finetune" and c.cell_id not in
            json.loads((reference_run.run_dir / "cells.json").read_text())} == {0.02}
    with store_of(run) as store:
        trainings = store.frame("trainings")
        selections = store.frame("selections")
    assert len(trainings) == 8 and len(selections) == 4  # 2 checkpoints x 2 tasks x 1 seed
    for sel in selections.itertuples():
        group = trainings[(trainings.checkpoint == sel.checkpoint) & (trainings.train_task == sel.train_task)]
        assert sorted(group.lr) == [0.001, 0.02]
        best = group.loc[group.dev_loss.idxmin()]
        assert sel.lr == best.lr and sel.dev_score == best.dev_loss and sel.criterion == "dev_loss"
        assert json.loads(sel.candidates) == {f"{lr:g}": loss for lr, loss in zip(group.lr, group.dev_loss)}
    df = results_frame(run)
    ft = df[df.train_task != ""]
    assert len(ft) == 8 and (df[df.train_task == ""].selected).all()
    picked = ft[ft.selected].groupby(["checkpoint", "train_task", "seed", "eval_set", "metric"]).lr.agg(list)
    assert len(picked) == 4 and all(len(v) == 1 for v in picked)  # exactly one lr selected per group
    for (ck, task, _seed, _set, _metric), (lr,) in picked.items():
        assert lr == selections[(selections.checkpoint == ck) & (selections.train_task == task)].lr.item()
    assert set(ft.lr) == {0.001, 0.02}  # the other rate's results are exported too, not selected


def test_selection_by_dev_metric(reference_run, small_config_factory, tmp_path: Path) -> None:
    run = reference_run.copy_to(tmp_path / "run")
    config = small_config_factory(**{"finetune.learning_rates": [0.001, 0.02], "finetune.selection_metric": "metric"})
    result = run_study(config, run_dir=run, progress=False)
    assert result.ran == 8 and not result.failed  # the FT cells: they now also score the dev split
    with store_of(run) as store:
        trainings = store.frame("trainings").set_index("cell_id").loc[
            [c.cell_id for c in result.cells if c.kind == "finetune"]]
        selections = store.frame("selections")
    assert trainings.dev_metric.notna().all() and (selections.criterion == "dev_metric").all()
    for sel in selections.itertuples():
        group = trainings[(trainings.checkpoint == sel.checkpoint) & (trainings.train_task == sel.train_task)]
        top = group.dev_metric.max()
        assert sel.dev_score == top and sel.lr == group[np.isclose(group.dev_metric, top)].lr.min()


def test_sigterm_stops_the_run_cleanly(reference_run, tmp_path: Path) -> None:
    """A scheduler's SIGTERM ends the run like Ctrl-C: the cell in flight goes back to pending,
    the run is recorded as interrupted, the lock is released; the next run completes the study."""
    run = tmp_path / "run"
    stop = threading.Event()

    def terminate_after_the_first_cell() -> None:
        # on the first finished cell, not after a fixed delay: a fast machine finishes the study
        # before any delay that is safe on a slow one
        while not stop.wait(0.02):
            try:
                with store_of(run) as store:
                    if (store.cells().status == "done").any():
                        os.kill(os.getpid(), signal.SIGTERM)
                        return
            except Exception:  # noqa: BLE001 - the store is not there yet, or is being written
                continue

    watcher = threading.Thread(target=terminate_after_the_first_cell, daemon=True)
    watcher.start()
    try:
        with pytest.raises(SystemExit):
            run_study(reference_run.config, run_dir=run, progress=False)
    finally:
        stop.set()
        watcher.join()
    with store_of(run) as store:
        cells = store.cells()
        runs = store.frame("runs")
    assert runs.outcome.tolist() == ["interrupted"] and not (cells.status == "running").any()
    status = grid_status(run)
    assert status.driver is None and status.counts["done"] < 8 and status.counts["running"] == 0
    result = run_study(reference_run.config, run_dir=run, progress=False)
    assert result.ran == 8 - status.counts["done"] and not result.failed
    assert_same_run(run, reference_run)
