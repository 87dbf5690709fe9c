"""`ptft report RUN --out report.html`: one self-contained HTML report of a run."""

from __future__ import annotations

import argparse

from ptft.cli.analyze import add_slice_arguments, slice_options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="the run directory")
    parser.add_argument("--out", default="report.html", metavar="FILE",
                        help="the HTML file to write (default report.html)")
    add_slice_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from ptft.api import report

    print(report(args.run_dir, args.out, **slice_options(args)))
    return 0
