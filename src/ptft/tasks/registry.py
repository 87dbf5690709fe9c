"""The task registry: every task is one small module that calls :func:`register`.

A name given in a study config or on the command line is looked up here; a path to a YAML file
is loaded as a user-defined task (see :mod:`ptft.tasks.yaml_task`); ``lm-eval:NAME`` or
``lm-eval:PATH.yaml`` is an lm-evaluation-harness task (see :mod:`ptft.tasks.lm_eval_task`)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from ptft.tasks.base import Task

_TASKS: dict[str, Task] = {}
_loaded = False


def register(task: Task) -> Task:
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    _TASKS[task.name] = task
    return task


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import ptft.tasks as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith(("bigbench_", "hub_")):
            importlib.import_module(f"ptft.tasks.{mod.name}")


def available() -> list[str]:
    _load_builtin()
    return sorted(_TASKS)


def get_task(name_or_path: str) -> Task:
    """A registered task by name, a user task from a YAML file path, or an lm-eval task."""
    from ptft.tasks.lm_eval_task import is_lm_eval_name, load_lm_eval_task

    if is_lm_eval_name(name_or_path):
        return load_lm_eval_task(name_or_path)
    if name_or_path.endswith((".yaml", ".yml")):
        from ptft.tasks.yaml_task import load_yaml_task

        return load_yaml_task(Path(name_or_path))
    _load_builtin()
    try:
        return _TASKS[name_or_path]
    except KeyError:
        raise KeyError(
            f"unknown task {name_or_path!r}; registered tasks: {', '.join(available())} "
            "(or give the path of a task YAML file)"
        ) from None
