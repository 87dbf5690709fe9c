"""The API is the product: every CLI command is one function of ``ptft.api``, and no function
there is left without its command (litgpt's ``_check_commands``, as a test)."""

from __future__ import annotations

import inspect
import keyword

from ptft import api
from ptft.cli import SUBCOMMANDS


def api_name(command: str) -> str:
    # a command named by a Python keyword gets a longer name: `ptft import` is import_lm_eval
    return f"{command}_lm_eval" if keyword.iskeyword(command) else command


def test_every_command_has_its_api_function_and_no_function_is_orphaned():
    functions = {name for name, value in inspect.getmembers(api, inspect.isfunction)
                 if value.__module__ == api.__name__ and not name.startswith("_")}
    assert functions == {api_name(command) for command in SUBCOMMANDS}


def test_each_command_module_calls_its_api_function():
    for command in SUBCOMMANDS:
        module = __import__(f"ptft.cli.{command}", fromlist=["run"])
        assert f"from ptft.api import {api_name(command)}" in inspect.getsource(module.run), command
