"""Tasks, prompt formats and their data."""

from ptft.tasks.base import (
    DataSource,
    EvalSet,
    Example,
    LoadRequest,
    PromptFormat,
    Task,
    TaskData,
    TaskDataError,
    build_prompt,
    completion_text,
    demo_prefix,
)
from ptft.tasks.registry import available, get_task, register

__all__ = [
    "DataSource", "EvalSet", "Example", "LoadRequest", "PromptFormat", "Task", "TaskData", "TaskDataError",
    "build_prompt", "completion_text", "demo_prefix", "available", "get_task", "register",
]
