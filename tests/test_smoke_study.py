"""The whole path on the `smoke` preset: pre-train, fine-tune, evaluate, store, resume, export."""

from __future__ import annotations

import pandas as pd
import pytest

from ptft.api import export, run
from ptft.cli import main as cli_main
from ptft.config import load_config
from ptft.store import EXPORT_COLUMNS


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("smoke")
    config = load_config("smoke")
    first = run(config, run_dir=run_dir, progress=False)
    return config, run_dir, first


def test_every_expected_cell_is_done_and_stored(smoke_run):
    config, run_dir, first = smoke_run
    assert first.failed == []
    n_ckpt = config.checkpoints.pretrain.num_checkpoints
    n_tasks = len(config.tasks)
    # pretrain; BASE per (checkpoint, eval task); FT per (checkpoint, training task)
    assert len(first.cells) == 1 + n_ckpt * n_tasks + n_ckpt * n_tasks
    assert first.ran == len(first.cells)
    df = pd.read_csv(export(run_dir))
    assert list(df.columns) == EXPORT_COLUMNS
    # in-domain sets only (out_of_domain: false): each model scores every task's in-domain set once
    assert len(df) == n_ckpt * (1 + n_tasks) * n_tasks
    assert set(df.checkpoint) == {f"step{s}" for s in (3, 150)}
    assert (run_dir / "checkpoints" / "step150" / "config.json").exists()
    assert (run_dir / "checkpoints" / "loss.csv").exists()


def test_metrics_are_in_range_with_their_intervals(smoke_run):
    config, run_dir, _ = smoke_run
    df = pd.read_csv(export(run_dir))
    assert df.value.between(0, 1).all()
    assert ((df.ci_low <= df.value + 1e-12) & (df.value <= df.ci_high + 1e-12)).all()
    n_eval = {t.name: t.n_eval for t in config.tasks}
    expected_n = df.eval_task.map({"sentiment": n_eval["sentiment"],
                                   "social_qg": n_eval["social_qg"]})
    assert (df.n == expected_n).all()
    assert set(df.metric) == {"accuracy", "rougeL"}
    assert set(df[df.task_type == "classification"].method) == {"tokenprob"}


def test_finetuning_beats_base_on_its_own_classification_task(smoke_run):
    _, run_dir, _ = smoke_run
    df = pd.read_csv(export(run_dir)).fillna({"train_task": ""})
    last = df[(df.step == df.step.max()) & (df.eval_set == "sentiment_movies")]
    base = last[last.train_task == ""].value.item()
    ft = last[last.train_task == "sentiment"].value.item()
    assert ft > base


def test_rerun_does_no_new_work(smoke_run):
    config, run_dir, first = smoke_run
    before = pd.read_csv(export(run_dir))
    again = run(config, run_dir=run_dir, progress=False)
    assert again.ran == 0 and again.skipped == len(first.cells)
    pd.testing.assert_frame_equal(before, pd.read_csv(export(run_dir)))


def test_moved_run_directory_resumes_with_nothing_to_do(smoke_run, tmp_path, monkeypatch):
    """A run directory moved elsewhere (here: copied) and resumed under a relative spelling of its
    new path finds every cell done, the pre-training included."""
    import shutil
    from pathlib import Path

    config, run_dir, first = smoke_run
    shutil.copytree(run_dir, tmp_path / "moved" / "smoke")
    monkeypatch.chdir(tmp_path)
    again = run(config, run_dir=Path("moved/smoke"), progress=False)
    assert again.ran == 0 and again.skipped == len(first.cells)
    pd.testing.assert_frame_equal(pd.read_csv(export(run_dir)), pd.read_csv(export(Path("moved/smoke"))))


def test_rows_carry_the_config_hash(smoke_run):
    from ptft.store import ResultsStore

    config, run_dir, _ = smoke_run
    with ResultsStore(run_dir / "results.sqlite") as store:
        assert set(store.frame("results").config_hash) == {config.hash()}


def test_predictions_are_kept_per_example(smoke_run):
    _, run_dir, _ = smoke_run
    files = sorted((run_dir / "predictions").rglob("*.jsonl"))
    assert files
    rows = pd.read_json(files[0], lines=True)
    assert {"uid", "target", "prediction"} <= set(rows.columns)


def test_corrupted_config_gives_the_documented_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\ntasks: [{name: sentiment}]\nfinetune: {epochs: three}\n")
    assert cli_main(["run", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: finetune.epochs: expected a number, got 'three'" in err
    assert not (tmp_path / "runs").exists()
