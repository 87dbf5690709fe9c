"""ptft tasks: list the registered tasks with their type and eval sets."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from ptft.api import tasks

    for name, task in tasks().items():
        sets = ", ".join(f"{e.name} ({e.domain})" for e in task.eval_sets)
        print(f"{name:24} {task.task_type:16} {sets}")
    return 0
