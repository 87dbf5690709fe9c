"""`ptft import lm-eval PATH... --out TABLE`: lm-evaluation-harness results into ptft's results table.

PATH is a results JSON file (lm-eval 0.4's ``results_<time>.json``, whose ``samples_*.jsonl``
beside it give n and per-example bootstrap intervals, or a 0.3 file such as Pythia's published
logs) or a folder searched for them. TABLE is a ``.csv`` or ``.parquet`` file, or a new run
directory (``results.sqlite``) for ``ptft analyze`` and ``ptft report``.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="source", metavar="SOURCE", required=True)
    le = sub.add_parser("lm-eval", help="lm-evaluation-harness results JSON (0.4 or 0.3 layout)",
                        description=__doc__.splitlines()[0])
    le.add_argument("paths", nargs="+", metavar="PATH", help="results JSON files or folders holding them")
    le.add_argument("--out", required=True, metavar="TABLE",
                    help="results.csv / results.parquet, or a new run directory (results.sqlite)")
    le.add_argument("--seed", type=int, default=0, help="bootstrap seed for per-example CIs (default 0)")
    le.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")


def run(args: argparse.Namespace) -> int:
    from ptft.api import import_lm_eval

    result = import_lm_eval(args.paths, args.out, seed=args.seed, n_boot=args.n_boot)
    table = result.table
    steps = ", ".join(table.drop_duplicates("checkpoint")["checkpoint"])
    print(f"{len(table)} rows from {len(result.files)} file(s): {result.model}, checkpoints {steps}; "
          f"{table['eval_set'].nunique()} tasks, {table['metric'].nunique()} metrics")
    for note in result.notes:
        print(f"  note: {note}")
    print(result.out)
    return 0
