"""ptft export RUN: write the run's results as a long-format table (CSV or Parquet), and its weight lenses and
per-block measures beside it."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a run directory (holds results.sqlite)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("--out", help="output file (default: RUN/results.csv or .parquet)")


def run(args: argparse.Namespace) -> int:
    from ptft.api import export
    from ptft.store import layers_path, weights_path

    path = export(args.run_dir, args.out, args.format)
    for written in (path, weights_path(path), layers_path(path)):
        print(written)
    return 0
