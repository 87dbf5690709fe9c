"""The task registry: the built-in task modules are listed here, each defining ``TASKS``.

A name given in a study config or on the command line is looked up here; a path to a YAML file
is loaded as a user-defined task (see :mod:`ptft.tasks.yaml_task`); ``lm-eval:NAME`` or
``lm-eval:PATH.yaml`` is an lm-evaluation-harness task (see :mod:`ptft.tasks.lm_eval_task`).

Registration is explicit so that no task can go missing unnoticed: a listed module must define a
non-empty ``TASKS`` tuple, and two tasks of one name are refused. Another package adds tasks by
an entry point in the ``ptft.tasks`` group naming a module (or object) with ``TASKS``; code
that builds tasks at run time calls :func:`register`.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from ptft.tasks.base import Task
from ptft.tasks.lm_eval_task import is_lm_eval_name, load_lm_eval_task
from ptft.tasks.yaml_task import load_yaml_task

BUILTIN_MODULES = (
    "ptft.tasks.bigbench_mc",
    "ptft.tasks.bigbench_multiemo_sentiment",
    "ptft.tasks.bigbench_same_speaker",
    "ptft.tasks.bigbench_socialiqa_qg",
    "ptft.tasks.bigbench_squad_qg",
    "ptft.tasks.bigbench_vitaminc_nli",
    "ptft.tasks.bigbench_xsum",
    "ptft.tasks.hub_mc",
    "ptft.tasks.hub_mnli",
    "ptft.tasks.hub_paws",
    "ptft.tasks.hub_socialiqa_qg",
    "ptft.tasks.hub_xsum",
    "ptft.tasks.mc_suite",
    "ptft.tasks.review_polarity",
    "ptft.tasks.sentiment",
    "ptft.tasks.social_qg",
    "ptft.tasks.squad_qg",
)
ENTRY_POINT_GROUP = "ptft.tasks"

_TASKS: dict[str, Task] = {}
_loaded = False


def register(task: Task) -> Task:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    _TASKS[task.name] = task
    return task


def register_all(source: Any, where: str) -> None:
    """Register the ``TASKS`` of a module (or object); one that defines none is an error."""
    tasks = getattr(source, "TASKS", None)
    if not tasks or not all(isinstance(t, Task) for t in tasks):
        raise ValueError(f"task module {where}: defines no TASKS (a tuple of Task objects)")
    for task in tasks:
        register(task)


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        register_all(importlib.import_module(module), module)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        register_all(ep.load(), f"{ep.value} (entry point {ep.name!r} of {ENTRY_POINT_GROUP!r})")


def available() -> list[str]:
    _load_builtin()
    return sorted(_TASKS)


def get_task(name_or_path: str) -> Task:
    """A registered task by name, a user task from a YAML file path, or an lm-eval task."""
    if is_lm_eval_name(name_or_path):
        return load_lm_eval_task(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")):
        return load_yaml_task(Path(name_or_path))
    _load_builtin()
    try:
        return _TASKS[name_or_path]
    except KeyError:
        raise KeyError(
            f"unknown task {name_or_path!r}; registered tasks: {', '.join(available())} "
            "(or give the path of a task YAML file)"
        ) from None
