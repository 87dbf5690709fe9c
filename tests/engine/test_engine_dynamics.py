"""Evaluation during fine-tuning (``finetune.eval_at``) in a real study: the intermediate points
are stored at the right steps, beside a final model whose numbers are those of a study without them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ptft.engine.study import run_study
from ptft.store import ResultsStore, results_frame

from engine_helpers import assert_same_numbers, predictions, trainings


def test_intermediate_points_are_stored_and_leave_the_final_model_as_it_was(reference_run, small_config_factory,
                                                                           tmp_path: Path) -> None:
    config = small_config_factory(**{"finetune.eval_at": [0.25, 0.5, 1.0]})
    run = tmp_path / "run"
    result = run_study(config, run_dir=run, progress=False)
    assert not result.failed and result.ran == 8
    frame = results_frame(run)
    ft = frame[frame["train_task"] != ""]
    # sentiment trains 32 examples in batches of 8 (4 steps), social_qg 16 (2 steps): 0.25 and 0.5
    # of 2 steps both fall on step 1, where the model is evaluated once, as point 0.25
    points = {(task, f, int(s)) for task, f, s in zip(ft["train_task"], ft["ft_fraction"], ft["ft_step"])}
    assert points == {("sentiment", 0.25, 1), ("sentiment", 0.5, 2), ("sentiment", 1.0, 4),
                      ("social_qg", 0.25, 1), ("social_qg", 1.0, 2)}
    n_points = {"sentiment": 3, "social_qg": 2}
    reference_ft = reference_run.frame[reference_run.frame["train_task"] != ""]
    assert len(ft) == sum(n_points[task] for task in reference_ft["train_task"])
    # the final model's numbers, and the training's, are bit for bit those of the run without them
    final = frame[frame["ft_fraction"].isna() | (frame["ft_fraction"] == 1.0)]
    assert_same_numbers(final, reference_run.frame)
    pd.testing.assert_frame_equal(final.reset_index(drop=True), reference_run.frame, check_exact=True)
    pd.testing.assert_frame_equal(trainings(run), trainings(reference_run.run_dir), check_exact=True)
    reference_predictions = predictions(reference_run.run_dir)
    mine = predictions(run)
    assert {k: v for k, v in mine.items() if k in reference_predictions} == reference_predictions
    ft_files = [k for k in reference_predictions if k.startswith("finetune__")]
    assert sorted(set(mine) - set(reference_predictions)) == sorted(
        k.replace(".jsonl", f".ft{f}.jsonl") for k in ft_files
        for f in (("0.25", "0.5") if "__sentiment__" in k else ("0.25",)))
    # every point has its per-example scores and its comparison with BASE
    with ResultsStore(run / "results.sqlite") as store:
        comparisons = store.frame("comparisons")
        cells = store.frame("cells")
        states = [sorted(s.ft_fraction for s in store.scores(c)) for c in cells.loc[cells["kind"] == "finetune",
                                                                                      "cell_id"]]
    assert sorted(states) == [[0.25, 0.5, 1.0]] * 2 + [[0.25, 1.0]] * 2
    assert sorted(comparisons["ft_fraction"].unique()) == [0.25, 0.5, 1.0]
    sizes = comparisons.groupby("ft_fraction").size()
    assert sizes[0.25] == sizes[1.0] == 2 * sizes[0.5]
    rerun = run_study(config, run_dir=run, progress=False)
    assert (rerun.ran, rerun.skipped) == (0, 8)


def test_a_second_seed_changes_the_training_and_nothing_it_is_evaluated_on(reference_run, small_config_factory,
                                                                          tmp_path: Path) -> None:
    """finetune.seeds orders the batches (and draws dropout) of a run; the demonstrations, the
    sub-sampled splits and the evaluation examples are the study's (``seed``), the same for every
    fine-tuning seed. The seed-0 cells of the reference are reused as they are."""
    run = reference_run.copy_to(tmp_path / "run")
    result = run_study(small_config_factory(**{"finetune.seeds": [0, 1]}), run_dir=run, progress=False)
    assert (result.ran, result.skipped, result.failed) == (4, 8, [])
    losses = trainings(run).set_index("model_id")
    files = predictions(run)
    compared = 0
    for name, rows in files.items():
        if "seed1" not in name:
            continue
        twin = files[name.replace("seed1", "seed0")]
        assert [(r["uid"], r["demo_uids"], r["prompt"]) for r in rows] == \
            [(r["uid"], r["demo_uids"], r["prompt"]) for r in twin]
        model = name.split("/")[0].replace("__", "/")
        assert losses.loc[model, "train_loss"] != losses.loc[model.replace("seed1", "seed0"), "train_loss"]
        compared += 1
    assert compared == 4
    # the run directory has the per-example scores: the seeds analysis bootstraps seeds, then examples
    from ptft.analysis import seeds

    frame = seeds.seeds(run, examples=seeds.load_examples(run))
    cells = frame[frame["kind"] == "cell"]
    assert len(cells) == 4 and (cells["n_seeds"] == 2).all() and (cells["ci_source"] == seeds.HIERARCHICAL).all()
    assert (cells["ci_low"] <= cells["gain"]).all() and (cells["gain"] <= cells["ci_high"]).all()
    bare = seeds.seeds(results_frame(run))
    assert (bare.loc[bare["kind"] == "cell", "ci_source"] == seeds.FROM_CIS).all()
