"""Multiple choice: the choice with the highest log-likelihood (``acc``) or the highest
log-likelihood per character (``acc_norm``), as lm-evaluation-harness scores them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ptft.task_types.base import Scored, ScoringRequest, TaskType

if TYPE_CHECKING:
    from ptft.evaluation.evaluator import Evaluator
    from ptft.tasks.base import Example


def score(evaluator: Evaluator, request: ScoringRequest) -> Scored:
    return "loglik", *evaluator.score_choices(request.examples, request.prompts, request.notes)


def check_example(example: Example, labels: Sequence[str]) -> str | None:
    return None if example.target in example.choices else f"answer {example.target!r} is not among its choices"


# ``accuracy`` (= ``acc``) lets ``out.metrics[task.metric]`` work for every task type
MULTIPLE_CHOICE = TaskType("multiple_choice", ("loglik",), score, metrics=("acc", "acc_norm", "accuracy"),
                           metric="accuracy", aliases=(("accuracy", "acc"),), check_example=check_example)
