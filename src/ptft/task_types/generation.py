"""Generation: greedy decoding up to the task's ``max_new_tokens`` (stopping at a newline or the
format's next cue), scored by Rouge-L F against the reference."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptft.task_types.base import Scored, ScoringRequest, TaskType

if TYPE_CHECKING:
    from ptft.evaluation.evaluator import Evaluator


def score(evaluator: Evaluator, request: ScoringRequest) -> Scored:
    return "greedy", *evaluator.score_generations(request.examples, request.prompts, request.fmt,
                                                  request.task.max_new_tokens, request.notes)


GENERATION = TaskType("generation", ("greedy",), score, metrics=("rougeL",), metric="rougeL")
