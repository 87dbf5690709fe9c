"""Disk: kept fine-tuned weights are reused when only evaluation settings change; with
``keep_weights: false`` no weights stay on disk after a cell's evaluation."""

from __future__ import annotations

from pathlib import Path

from ptft.engine.study import run_study
from ptft.store import ResultsStore, results_frame

ONE_TASK = [{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 16}]


def trainings(run: Path):
    with ResultsStore(run / "results.sqlite") as store:
        return store.frame("trainings").set_index("cell_id"), store.cells().set_index("cell_id")


def test_kept_weights_are_reused_for_new_evaluation_settings_and_deleted_when_not_kept(
        small_config_factory, tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = run_study(small_config_factory(tasks=ONE_TASK, **{"finetune.keep_weights": True}), run_dir=run,
                      progress=False)
    assert first.ran == 4 and not first.failed
    ft = [c for c in first.cells if c.kind == "finetune"]
    kept = sorted(p.name for p in (run / "models").iterdir())
    assert kept == sorted(c.training_hash for c in ft)  # one folder per fine-tuned model, nothing else
    assert all((run / "models" / h / "model.safetensors").exists() for h in kept)
    before = results_frame(run)
    train_before, _ = trainings(run)

    # an evaluation-only change: every cell reruns, but the fine-tuned weights are loaded, not retrained
    second = run_study(small_config_factory(tasks=ONE_TASK, **{"finetune.keep_weights": True,
                                                               "evaluation.n_bootstrap": 50}),
                       run_dir=run, progress=False)
    assert second.ran == 4 and second.skipped == 0
    train_after, cells = trainings(run)
    for c in second.cells:
        if c.kind != "finetune":
            continue
        assert c.training_hash in kept
        assert train_after.loc[c.cell_id, "reused"] == 1
        assert "reused kept fine-tuned weights" in cells.loc[c.cell_id, "notes"]
        old = train_before[train_before.model_id == c.model_id].iloc[0]
        assert train_after.loc[c.cell_id, "dev_loss"] == old.dev_loss  # the figures of the original training
    after = results_frame(run)
    # the same model gives the same predictions (only the bootstrap CIs changed)
    assert after.sort_values(["checkpoint", "train_task"]).value.tolist() == \
           before.sort_values(["checkpoint", "train_task"]).value.tolist()

    # keep_weights false: the reused weights are deleted once the cell's evaluation is done
    third = run_study(small_config_factory(tasks=ONE_TASK, **{"evaluation.n_bootstrap": 60}), run_dir=run,
                      progress=False)
    assert third.ran == 4 and not third.failed
    assert not any((run / "models").iterdir())
    _, cells = trainings(run)
    assert all("deleted weights" in cells.loc[c.cell_id, "notes"] for c in third.cells if c.kind == "finetune")


def test_kept_weights_computed_with_other_numerics_are_trained_again(small_config_factory, tmp_path: Path) -> None:
    """A worker on another kind of machine may have kept weights before the driver refused its
    cell: they record their numerics, and a cell computing otherwise trains again instead of
    carrying those numbers into this machine's results."""
    import json

    run = tmp_path / "run"
    keep = {"finetune.keep_weights": True}
    first = run_study(small_config_factory(tasks=ONE_TASK, **keep), run_dir=run, progress=False)
    assert not first.failed
    before = results_frame(run)
    folders = sorted((run / "models").iterdir())
    assert folders and all("numerics" in json.loads((f / "ptft_training.json").read_text()) for f in folders)
    foreign = folders[0] / "ptft_training.json"
    figures = json.loads(foreign.read_text())
    foreign.write_text(json.dumps(figures | {"numerics": "torch 0.0, CPU kernels of another machine"}))

    again = run_study(small_config_factory(tasks=ONE_TASK, **keep, **{"evaluation.n_bootstrap": 50}), run_dir=run,
                      progress=False)
    assert not again.failed
    train_after, cells = trainings(run)
    retrained = [c for c in again.cells if c.kind == "finetune" and c.training_hash == folders[0].name]
    others = [c for c in again.cells if c.kind == "finetune" and c.training_hash != folders[0].name]
    assert len(retrained) == 1 and others
    assert train_after.loc[retrained[0].cell_id, "reused"] == 0
    assert "computed with other numerics" in cells.loc[retrained[0].cell_id, "notes"]
    assert all(train_after.loc[c.cell_id, "reused"] == 1 for c in others)
    # trained again on this machine: its own numerics, and the same numbers as the first run
    assert json.loads(foreign.read_text())["numerics"] == figures["numerics"]
    after = results_frame(run)
    key = ["checkpoint", "train_task", "eval_set", "format", "method", "metric"]
    assert after.sort_values(key).value.tolist() == before.sort_values(key).value.tolist()
