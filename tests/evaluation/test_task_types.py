"""A task type is one module and one registry entry: a fourth one, registered here and nowhere else,
is accepted by task definitions and their data checks, config validation, the study's grid, the
evaluator, `ptft eval`'s checks and the results table."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from ptft import api
from ptft.analysis.table import load_table
from ptft.config import load_config
from ptft.engine.cells import eval_units
from ptft.errors import ConfigError
from ptft.evaluation import EvaluationError, Evaluator
from ptft.task_types import TASK_TYPES, TaskType, headline_metrics, preferred_methods, register_task_type
from ptft.tasks.base import LoadRequest, Task, TaskDataError, validate_task_data


def _score_cloze(evaluator, request):
    """Multiple-choice items judged by length-normalised log-likelihood alone."""
    scores, predictions = evaluator.score_choices(request.examples, request.prompts, request.notes)
    return "loglik_norm", {"acc_norm": scores["acc_norm"]}, predictions


def _distinct_choices(example, labels):
    return None if len(set(example.choices)) == len(example.choices) else "its choices repeat"


@pytest.fixture
def cloze():
    kind = register_task_type(TaskType("cloze", ("loglik_norm",), _score_cloze, metrics=("acc_norm",),
                                       metric="acc_norm", check_example=_distinct_choices))
    yield kind
    del TASK_TYPES["cloze"]


def _study(tmp_path, methods: str):
    path = tmp_path / "study.yaml"
    path.write_text(f"tasks: [{{name: sentiment}}]\nevaluation: {{methods: {methods}}}\n")
    return path


def test_an_unregistered_type_is_refused(tmp_path, toys):
    mc, _ = toys.mc()
    with pytest.raises(ValueError, match="unknown task type 'cloze'"):
        Task("toy_cloze", "cloze", mc.formats, mc.eval_sets, loader=mc.loader)
    with pytest.raises(ConfigError, match=r"evaluation.methods\[1\]: expected one of .*got 'loglik_norm'"):
        load_config(_study(tmp_path, "[tokenprob, loglik_norm]"))


def test_a_registered_fourth_type_is_accepted_everywhere(cloze, tmp_path, tiny_lm, toys):
    mc, data = toys.mc(n_eval=8)
    task = Task("toy_cloze", "cloze", mc.formats, mc.eval_sets, loader=mc.loader)
    assert task.metric == "acc_norm" and "acc_norm" in headline_metrics()
    # its check of each example runs when the data is loaded
    task.load(LoadRequest(None, seed=0))
    twice = dataclasses.replace(data.train[0], choices=data.train[0].choices[:1] * 2)
    bad = dataclasses.replace(data, train=[data.train[1], twice])
    with pytest.raises(TaskDataError, match=r"split 'train', row 1 \(mctrain0\): its choices repeat"):
        validate_task_data(task, bad)

    config = load_config(_study(tmp_path, "[tokenprob, loglik_norm]"))
    units = eval_units(config, {"toy_cloze": "cloze", "sentiment": "classification"},
                       {"toy_cloze": [("test", "in")], "sentiment": [("vitaminc", "in")]},
                       ["toy_cloze", "sentiment"])
    assert {u.eval_task: u.method for u in units if u.format == "default"} == {
        "toy_cloze": "loglik_norm", "sentiment": "tokenprob"}

    model, tokenizer = tiny_lm
    rows = data.eval["test"]
    out = Evaluator(model, tokenizer).evaluate(task, "test", rows, "default", [], seed=1)
    reference = Evaluator(model, tokenizer).evaluate(mc, "test", rows, "default", [], "loglik", seed=1)
    assert out.method_used == "loglik_norm" and list(out.metrics) == ["acc_norm"]
    assert out.metrics["acc_norm"] == reference.metrics["acc_norm"]

    # the results table takes its rows, and the analyses pick its method and metric
    row = {"checkpoint": "c1", "step": 1, "train_task": "", "eval_set": "test", "eval_task": "toy_cloze",
           "task_type": "cloze", "domain": "in", "format": "default", "shots": 0, "value": 0.5}
    table = load_table(pd.DataFrame([{**row, "method": "loglik", "metric": "acc"},
                                     {**row, "method": "loglik_norm", "metric": "acc_norm"}]))
    assert table["task_type"].tolist() == ["cloze", "cloze"]
    assert preferred_methods().index("loglik_norm") < len(preferred_methods())

    result = api.eval(model, task, tokenizer=tokenizer, out=tmp_path / "cloze.jsonl")
    assert result.method == "loglik_norm" and list(result.printed_metrics) == ["acc_norm"]
    with pytest.raises(EvaluationError, match="is cloze: method must be one of loglik_norm, not 'loglik'"):
        api.eval(model, task, tokenizer=tokenizer, method="loglik")
