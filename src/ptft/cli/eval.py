"""`ptft eval`: evaluate one model on one task, print the metric with its CI, write predictions.

    ptft eval --model DIR --task NAME_OR_YAML [--format F] [--method M] [--shots K]
              [--limit N | --first N] [--eval-set NAME] [--seed S] [--batch-size B] [--data-dir D]
              [--out FILE]

``--limit N`` scores the loader's seeded sub-sample of N examples (the one a study with
``n_eval: N`` scores); ``--first N`` the first N in the eval set's own order, as
lm-evaluation-harness's ``--limit`` does.

Demonstrations come from the task's training split (``select_demos`` with ``--seed``), as in the
study; the eval set defaults to the task's first in-domain set and the method to the task type's
default (the first of its methods in ptft.task_types: tokenprob, greedy or loglik).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint folder (Hugging Face format)")
    p.add_argument("--task", required=True, help="registered task name or path of a task YAML file")
    p.add_argument("--format", default="default", help="prompt format: default, io or instruct (default: default)")
    from ptft.task_types import TASK_TYPES

    methods = "; ".join(f"{t.name.replace('_', ' ')}: {'|'.join(t.methods)}" for t in TASK_TYPES.values())
    p.add_argument("--method", default=None, help=f"{methods} (default: the first of the task type)")
    p.add_argument("--shots", type=int, default=0, help="number of demonstrations from the train split (default 0)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--limit", type=int, default=None,
                      help="score a seeded sample of N examples (the loader's, as a study's n_eval: N)")
    size.add_argument("--first", type=int, default=None,
                      help="score the first N examples in the eval set's order (lm-eval's --limit)")
    p.add_argument("--eval-set", default=None, help="eval set name (default: the task's first in-domain set)")
    p.add_argument("--seed", type=int, default=0, help="seed of data sub-sampling, demos and bootstrap (default 0)")
    p.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass (default 16)")
    p.add_argument("--data-dir", default=None, help="where the task's data files are (task-specific)")
    p.add_argument("--out", default=None,
                   help="predictions JSONL file (default: ptft-eval-TASK-SET-FORMAT-METHOD-KSHOT.jsonl here)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="precision the model is loaded and scored in (default float32)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CI (default 1000)")


def run(args: argparse.Namespace) -> int:
    from ptft.api import eval as evaluate

    result = evaluate(args.model, args.task, format=args.format, method=args.method, shots=args.shots,
                      limit=args.limit, first=args.first, eval_set=args.eval_set, seed=args.seed,
                      batch_size=args.batch_size, data_dir=args.data_dir, out=args.out, dtype=args.dtype,
                      device=args.device, n_boot=args.n_boot)
    out = result.outcome
    method_text = out.method_used if out.method_used == result.method else f"{out.method_used} (asked: {result.method})"
    print(f"{result.task.name} / {result.eval_set}  format={args.format}  method={method_text}  shots={args.shots}  "
          f"n={result.n_examples}  {out.seconds:.1f} s")
    for name, mv in result.printed_metrics.items():
        print(f"  {name:<9} {mv.value:.4f}  95% CI [{mv.ci_low:.4f}, {mv.ci_high:.4f}]")
    for note in out.notes:
        print(f"  note: {note}")
    print(f"  predictions: {result.predictions}")
    return 0
