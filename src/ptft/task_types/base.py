"""What a task type is: its scoring methods, metrics, scorer and the check of each example.

Imports no torch: config validation and ``ptft plan`` read the types; a scorer receives the
:class:`~ptft.evaluation.evaluator.Evaluator` that calls it and uses its scoring primitives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
# (an example, the label words of its split) -> what is wrong with it for this type, or None
ExampleCheck = Callable[["Example", Sequence[str]], "str | None"]


def no_check(example: Example, labels: Sequence[str]) -> str | None:
    return None


@dataclass(frozen=True)
class TaskType:
    name: str
    methods: tuple[str, ...]
    scorer: Scorer
    # every metric the scorer reports
    metrics: tuple[str, ...]
    # the metric a task of this type is judged by (learning-rate selection, the run summary, the
    # analyses' headline numbers)
    metric: str
    # (alias, metric it repeats): reported so that one metric name works across types, not printed twice
    aliases: tuple[tuple[str, str], ...] = ()
    # a task of this type must declare its label words
    needs_labels: bool = False
    # what the type requires of each example of a task's data (checked when the data is loaded)
    check_example: ExampleCheck = no_check

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
