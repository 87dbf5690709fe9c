"""The `ptft` command line, over the Python API (one module per subcommand).

The command table below says what each command does and shows one example; each subcommand
module defines ``add_arguments(parser)`` and ``run(args) -> int`` and is imported only when its
subcommand runs, so `ptft --help` stays fast; its ``run`` imports ``ptft.api`` and what it prints
with, so that parsing its arguments (its ``--help`` included) loads nothing heavy, and an error or
Ctrl-C while those load is handled like any other (below). A module may
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
import textwrap
import threading

from ptft.errors import PtftError, Terminated, describe_os_error, raise_stop

DESCRIPTION = ("ptft fine-tunes and evaluates every pre-training checkpoint of a language model, then says "
               "what more pre-training bought after fine-tuning, with intervals, figures and a report.")
# what each command does for the person typing it, and one example of it
SUBCOMMANDS = {
    "prepare": ("check that the data a study needs is there and readable, before running it",
                "ptft prepare tiny"),
    "run": ("pre-train or fetch the checkpoints, fine-tune and evaluate them; run again to resume",
            "ptft run tiny --out runs/tiny"),
    "plan": ("show what a study would run and roughly what it costs, without running anything",
             "ptft plan paper-olmo1b"),
    "status": ("show which cells of a run are done, running, failed or left, and why one failed",
               "ptft status runs/tiny"),
    "eval": ("score one model on one task (a checkpoint folder, any prompt format and scoring method)",
             "ptft eval --model runs/tiny/checkpoints/step1000 --task review_polarity --limit 200"),
    "export": ("write a run's results as one long table (CSV or Parquet) for your own analysis",
               "ptft export runs/tiny --format csv"),
    "import": ("turn lm-evaluation-harness results into a results table ptft can analyse",
               "ptft import lm-eval evals/pythia-160m --out pythia.csv"),
    "analyze": ("test the study's findings and write every analysis as tables, figures and a summary",
                "ptft analyze runs/tiny --out runs/tiny/analysis"),
    "report": ("write one self-contained HTML page with the findings, figures and predictions",
               "ptft report runs/tiny --out runs/tiny/report.html"),
    "tasks": ("list the tasks you can name in a study and their eval sets", "ptft tasks"),
}


def parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The command line's parser, with the arguments of the subcommand ``argv`` names (the others'
    modules are not imported)."""
    examples = "\n".join(f"  {example}" for _, example in SUBCOMMANDS.values())
    parser = argparse.ArgumentParser(prog="ptft", description=textwrap.fill(DESCRIPTION, 79),
                                     epilog=f"examples:\n{examples}", formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (help_text, example) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=f"{help_text[0].upper()}{help_text[1:]}.",
                           epilog=f"example:\n  {example}", formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == chosen:
            importlib.import_module(f"ptft.cli.{name}").add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = parser_for(argv)
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
