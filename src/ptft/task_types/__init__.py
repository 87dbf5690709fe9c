"""The task types, each one module of this package (its scoring methods, metrics, scorer and the
check of its examples) and one entry of the registry here.

The evaluator, the study's grid, task definitions and their data checks, config validation,
``ptft eval``, the run summary and the analyses ask this registry, so a new task type is one
module and one :func:`register_task_type` call (``BUILTIN`` below for ptft's own).
"""

from __future__ import annotations

from ptft.registry import Registry
from ptft.task_types.base import ExampleCheck, Scored, Scorer, ScoringRequest, TaskType
from ptft.task_types.classification import CLASSIFICATION
from ptft.task_types.generation import GENERATION
from ptft.task_types.multiple_choice import MULTIPLE_CHOICE

__all__ = ["TASK_TYPES", "ExampleCheck", "Scored", "Scorer", "ScoringRequest", "TaskType", "all_methods",
           "all_metrics", "get_task_type", "headline_metrics", "preferred_methods", "register_task_type"]

TASK_TYPES: Registry[TaskType] = Registry("task type")


def register_task_type(task_type: TaskType) -> TaskType:
    return TASK_TYPES.register(task_type.name, task_type)


def get_task_type(name: str) -> TaskType:
    return TASK_TYPES.lookup(name)


def all_methods() -> list[str]:
    """Every registered scoring method, each once, in registration order."""
    return list(dict.fromkeys(m for t in TASK_TYPES.values() for m in t.methods))


def preferred_methods() -> list[str]:
    """Every method, the types' defaults first (the study's own choices: the paper's TokenProb,
    greedy Rouge-L, log-likelihood accuracy): the order in which the analyses pick one."""
    return list(dict.fromkeys([t.default_method for t in TASK_TYPES.values()] + all_methods()))


def headline_metrics() -> list[str]:
    return list(dict.fromkeys(m for t in TASK_TYPES.values() for m in t.headline_metrics))


def all_metrics() -> list[str]:
    """Every reported metric, each once: the headline metrics first."""
    return list(dict.fromkeys(headline_metrics() + [m for t in TASK_TYPES.values() for m in t.metrics]))


BUILTIN = (CLASSIFICATION, GENERATION, MULTIPLE_CHOICE)
for _task_type in BUILTIN:
    register_task_type(_task_type)
