"""ptft status RUN: the run's grid (done, running, failed, pending) with elapsed and remaining time."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="a run directory (the --out of `ptft run`)")
    p.add_argument("--all", action="store_true", help="list every cell, not only the unfinished ones")


def run(args: argparse.Namespace) -> int:
    from ptft.api import status

    report = status(args.run_dir)
    print(report.render(show_all=args.all))
    return 1 if report.counts.get("failed") else 0
