"""A task type is one registry entry: a fourth one, registered here and nowhere else, is accepted by
task definitions, config validation, the study's grid, the evaluator and `ptft eval`'s checks."""

from __future__ import annotations

import pytest

from ptft import api
from ptft.config import load_config
from ptft.engine.cells import eval_units
from ptft.errors import ConfigError
from ptft.evaluation import EvaluationError, Evaluator
from ptft.task_types import TASK_TYPES, TaskType, headline_metrics, register_task_type
from ptft.tasks.base import Task


def _score_cloze(evaluator, request):
    """Multiple-choice items judged by length-normalised log-likelihood alone."""
    scores, predictions = evaluator.score_choices(request.examples, request.prompts, request.notes)
    return "loglik_norm", {"acc_norm": scores["acc_norm"]}, predictions


@pytest.fixture
def cloze():
    kind = register_task_type(TaskType("cloze", ("loglik_norm",), _score_cloze, metrics=("acc_norm",),
                                       metric="acc_norm"))
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

    result = api.eval(model, task, tokenizer=tokenizer, out=tmp_path / "cloze.jsonl")
    assert result.method == "loglik_norm" and list(result.printed_metrics) == ["acc_norm"]
    with pytest.raises(EvaluationError, match="is cloze: method must be one of loglik_norm, not 'loglik'"):
        api.eval(model, task, tokenizer=tokenizer, method="loglik")
