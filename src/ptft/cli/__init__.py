"""The `ptft` command: a thin layer over the Python API, one module per subcommand.

Each subcommand module defines ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so `ptft --help` stays fast. A module may
also define ``interrupted(args) -> str``: the line printed on Ctrl-C or SIGTERM (what is kept, how
to resume).

Errors a user can fix end the command with one line on stderr and exit status 2, never a
traceback: every :class:`~ptft.errors.PtftError`, and the OSErrors of a full disk, a read-only or
mistyped path (:func:`~ptft.errors.describe_os_error`). Ctrl-C exits 130, SIGTERM 143."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading

from ptft.errors import PtftError, Terminated, describe_os_error, raise_stop

SUBCOMMANDS = {
    "prepare": "load and check the data a study needs before running it",
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
    prefix = f"ptft {args.command}"
    try:
        with _sigterm_raises():
            return int(module.run(args) or 0)
    except PtftError as err:
        # one line, whatever a library put in the message (SQLite's and transformers' span lines)
        print(f"{prefix}: error: {' '.join(part.strip() for part in str(err).splitlines())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `ptft status RUN | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except OSError as err:
        message = describe_os_error(err)
        if message is None:
            raise
        print(f"{prefix}: error: {message}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as stop:
        # the one line below is the whole answer: a second Ctrl-C (or one a library re-raises while
        # the interpreter shuts down) must not turn exit 130 into death by SIGINT
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # CPython marks a KeyboardInterrupt that escapes code run by exec() of a string (dataclasses
        # build their methods so: an import interrupted at that moment does) as unhandled, and
        # `python -m ptft` then ends by SIGINT whatever it returns; a string that runs clears the mark
        exec("pass")
        how = "stopped by SIGTERM" if isinstance(stop, Terminated) else "interrupted"
        explain = getattr(module, "interrupted", None)
        detail = explain(args) if explain else "nothing to resume: run the command again"
        print(f"{prefix}: {how}; {detail}", file=sys.stderr)
        return stop.code if isinstance(stop, Terminated) else 128 + signal.SIGINT


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises :class:`Terminated` (Python's default dies silently); the study driver
    installs its own handler, raising the same, while it runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    old = signal.signal(signal.SIGTERM, raise_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


if __name__ == "__main__":
    raise SystemExit(main())
