"""ptft export RUN: write the run's results as a long-format table (CSV or Parquet)."""

from __future__ import annotations

import argparse

HELP = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (holds results.sqlite)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out", help="output file (default: RUN/results.csv or .parquet)")


def run(args: argparse.Namespace) -> int:
    from ptft.api import export

    path = export(args.run_dir, args.out, args.format)
    print(path)
    return 0
