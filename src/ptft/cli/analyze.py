"""`ptft analyze TABLE|RUN --out DIR`: every analysis of the study as CSV, PNG, SVG and summary.md."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="TABLE|RUN", help="a run directory, or a results table (.csv or .parquet)")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the tables, figures and summary.md")
    add_slice_arguments(parser)


def add_slice_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that choose the headline numbers' slice (shared with `ptft report`)."""
    parser.add_argument("--format", default="default", metavar="F",
                        help="prompt format of the headline numbers (default: default)")
    parser.add_argument("--shots", type=int, default=None, metavar="K",
                        help="few-shot count of the headline numbers (default: the count present at the most checkpoints, ties: the largest)")
    parser.add_argument("--lr", type=_lr_choice, action="append", default=[], metavar="TASK=VALUE",
                        help="use this learning rate for TASK instead of the dev-selected one (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--ft-fraction", type=float, default=1.0, metavar="F",
                        help="the point of fine-tuning the analyses use, as a fraction of its steps "
                             "(finetune.eval_at; default 1.0, the final model)")
    parser.add_argument("--ft-method", default=None, metavar="M",
                        help="the fine-tuning method the analyses use (finetune.methods; default: full, or the "
                             "one method the table has); the methods analysis compares them all")


def slice_options(args: argparse.Namespace) -> dict:
    from ptft.analysis.slices import Slice

    sl = Slice(fmt=args.format, shots=args.shots, lr=dict(args.lr), ft_fraction=args.ft_fraction,
               ft_method=args.ft_method)
    return dict(sl=sl, seed=args.seed)


def _lr_choice(text: str) -> tuple[str, float]:
    task, sep, value = text.partition("=")
    try:
        if task and sep:
            return task, float(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected TASK=VALUE such as nli=2e-6, got {text!r}")


def run(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from ptft.api import analyze

    from ptft.analysis.findings import verdict_line

    frames = analyze(args.source, args.out, **slice_options(args))
    empty = [name for name, frame in frames.items() if frame.empty]
    print(f"wrote {len(frames)} tables, their figures and summary.md to {args.out}"
          + (f" (no data: {', '.join(empty)})" if empty else ""))
    for _, row in frames["findings"].iterrows():
        print(verdict_line(row))
    return 0
