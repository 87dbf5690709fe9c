"""An lm-evaluation-harness task as an evaluation-only task of a study: BASE cells score it at every
checkpoint and fine-tuned models score it cross-task, with ptft's demos, CIs and store."""

from __future__ import annotations

import pandas as pd
import pytest

from ptft.api import export, run
from ptft.errors import ConfigError
from lm_eval_tasks import write_lm_eval_task

pytest.importorskip("lm_eval")


def _task_file(folder) -> str:
    def rows(split, n):
        return [{"prompt": f"Question: what does the river {split} {i} do?\nAnswer:",
                 "choices": ["it flows", "it sings", "it votes"], "gold": i % 3} for i in range(n)]

    return str(write_lm_eval_task(folder, "ptft_study_mc", rows("test", 10), rows("train", 4)))


def test_a_study_scores_an_lm_eval_task(small_config_factory, tmp_path):
    name = f"lm-eval:{_task_file(tmp_path)}"
    config = small_config_factory(
        tasks=[{"name": "sentiment", "n_train": 32, "n_dev": 8, "n_eval": 8},
               {"name": name, "train": False, "formats": ["default"], "n_eval": 6}],
        **{"evaluation.cross_task": True})
    outcome = run(config, run_dir=tmp_path / "run", progress=False)
    assert outcome.failed == []
    table = pd.read_csv(export(tmp_path / "run")).fillna({"train_task": ""})
    mine = table[table["eval_task"] == name]
    # BASE and the FT model of sentiment at both checkpoints; acc, acc_norm and the alias
    # accuracy (= acc) of every multiple-choice set; 6 items each
    assert len(mine) == 2 * 2 * 3 and set(mine["metric"]) == {"acc", "acc_norm", "accuracy"}
    assert set(mine["method"]) == {"loglik"} and set(mine["n"]) == {6} and set(mine["shots"]) == {1}
    assert set(mine["train_task"]) == {"", "sentiment"} and set(mine["format"]) == {"default"}
    assert ((mine["ci_low"] <= mine["value"]) & (mine["value"] <= mine["ci_high"])).all()


def test_an_lm_eval_task_is_evaluation_only(small_config_factory, tmp_path):
    with pytest.raises(ConfigError, match=r"tasks\[0\]\.train: .* evaluation only; set train: false"):
        small_config_factory(tasks=[{"name": f"lm-eval:{_task_file(tmp_path)}"}])
