"""The task types, each declared once: its scoring methods, default method, metrics and scorer.

The evaluator, the study's grid, config validation, ``ptft eval`` and the run summary ask this
registry, so a new task type is one :func:`register_task_type` call. The module imports no torch:
config validation and ``ptft plan`` read it; a scorer receives the
:class:`~ptft.evaluation.evaluator.Evaluator` that calls it and uses its scoring primitives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    from ptft.evaluation.evaluator import Evaluator
    from ptft.tasks.base import Example, PromptFormat, Task


@dataclass(frozen=True)
class ScoringRequest:
    """One example set to score, its prompts rendered (demonstrations included)."""

    task: Task
    eval_set: str
    examples: Sequence[Example]
    prompts: list[str]
    fmt: PromptFormat
    method: str
    notes: list[str]


# (the method that actually scored, per-example scores by metric, one predictions row per example)
Scored = tuple[str, dict[str, Any], list[dict]]
Scorer = Callable[["Evaluator", ScoringRequest], Scored]


@dataclass(frozen=True)
class TaskType:
    name: str
    methods: tuple[str, ...]
    scorer: Scorer
    # every metric the scorer reports
    metrics: tuple[str, ...]
    # the metric a task of this type is judged by (learning-rate selection, the run summary)
    metric: str
    # (alias, metric it repeats): reported so that one metric name works across types, not printed twice
    aliases: tuple[tuple[str, str], ...] = ()
    # a task of this type must declare its label words
    needs_labels: bool = False

    def __post_init__(self) -> None:
        if not self.methods:
            raise ValueError(f"task type {self.name!r}: declare at least one scoring method")
        if self.metric not in self.metrics:
            raise ValueError(f"task type {self.name!r}: metric {self.metric!r} is not one of {list(self.metrics)}")

    @property
    def default_method(self) -> str:
        return self.methods[0]

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        """The judged metric and, where it is an alias, the metric it repeats."""
        return (self.metric, *(source for alias, source in self.aliases if alias == self.metric))

    @property
    def printed_metrics(self) -> tuple[str, ...]:
        aliases = {alias for alias, _ in self.aliases}
        return tuple(m for m in self.metrics if m not in aliases)

    def study_methods(self, configured: Sequence[str]) -> list[str]:
        """The methods a study scores this type with: those of ``evaluation.methods`` that are
        this type's, in the config's order, else its default."""
        return [m for m in configured if m in self.methods] or [self.default_method]


def _score_classification(evaluator: Evaluator, request: ScoringRequest) -> Scored:
    labels = tuple(request.task.labels_for(request.eval_set))
    if request.method == "free":
        return "free", *evaluator.score_free_answers(request.examples, request.prompts, labels, request.fmt,
                                                     request.notes)
    return evaluator.score_labels(request.examples, request.prompts, labels, request.method, request.notes)


def _score_generation(evaluator: Evaluator, request: ScoringRequest) -> Scored:
    return "greedy", *evaluator.score_generations(request.examples, request.prompts, request.fmt,
                                                  request.task.max_new_tokens, request.notes)


def _score_multiple_choice(evaluator: Evaluator, request: ScoringRequest) -> Scored:
    return "loglik", *evaluator.score_choices(request.examples, request.prompts, request.notes)


TASK_TYPES: dict[str, TaskType] = {}


def register_task_type(task_type: TaskType) -> TaskType:
    if task_type.name in TASK_TYPES:
        raise ValueError(f"task type {task_type.name!r} is already registered")
    TASK_TYPES[task_type.name] = task_type
    return task_type


def get_task_type(name: str) -> TaskType:
    try:
        return TASK_TYPES[name]
    except KeyError:
        raise KeyError(f"unknown task type {name!r}; the task types are {', '.join(TASK_TYPES)}") from None


def all_methods() -> list[str]:
    """Every registered scoring method, each once, in registration order."""
    return list(dict.fromkeys(m for t in TASK_TYPES.values() for m in t.methods))


def headline_metrics() -> list[str]:
    return list(dict.fromkeys(m for t in TASK_TYPES.values() for m in t.headline_metrics))


# tokenprob: the paper's; constrained: full label sequences; free: greedy answer matched to a label
register_task_type(TaskType("classification", ("tokenprob", "constrained", "free"), _score_classification,
                            metrics=("accuracy",), metric="accuracy", needs_labels=True))
register_task_type(TaskType("generation", ("greedy",), _score_generation, metrics=("rougeL",), metric="rougeL"))
# ``accuracy`` (= ``acc``) lets ``out.metrics[task.metric]`` work for every task type
register_task_type(TaskType("multiple_choice", ("loglik",), _score_multiple_choice,
                            metrics=("acc", "acc_norm", "accuracy"), metric="accuracy",
                            aliases=(("accuracy", "acc"),)))
