"""Classification: the model picks one of the task's label words; accuracy.

Methods: ``tokenprob`` (the paper's: one forward pass, the next-token log-probability of each
label's first token; falls back to ``constrained`` where first tokens cannot tell the labels
apart), ``constrained`` (the full label sequences' log-likelihoods) and ``free`` (a greedy answer
matched to a label).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ptft.task_types.base import Scored, ScoringRequest, TaskType

if TYPE_CHECKING:
    from ptft.evaluation.evaluator import Evaluator
    from ptft.tasks.base import Example


def score(evaluator: Evaluator, request: ScoringRequest) -> Scored:
    labels = tuple(request.task.labels_for(request.eval_set))
    if request.method == "free":
        return "free", *evaluator.score_free_answers(request.examples, request.prompts, labels, request.fmt,
                                                     request.notes)
    requests = evaluator.label_requests(request.examples, request.prompts, labels, request.notes)
    if request.method == "tokenprob":
        scored = evaluator.score_first_label_tokens(requests, request.notes)
        if scored is not None:
            return "tokenprob", *scored
    return "constrained", *evaluator.score_label_sequences(requests)


def check_example(example: Example, labels: Sequence[str]) -> str | None:
    return None if example.target in labels else f"label {example.target!r} is not one of {list(labels)}"


CLASSIFICATION = TaskType("classification", ("tokenprob", "constrained", "free"), score, metrics=("accuracy",),
                          metric="accuracy", needs_labels=True, check_example=check_example)
