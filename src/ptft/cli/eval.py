"""`ptft eval`: evaluate one model on one task, print the metric with its CI, write predictions.

    ptft eval --model DIR --task NAME_OR_YAML [--format F] [--method M] [--shots K]
              [--limit N | --first N] [--eval-set NAME] [--seed S] [--batch-size B] [--data-dir D]
              [--out FILE]

``--limit N`` scores the loader's seeded sub-sample of N examples (the one a study with
``n_eval: N`` scores); ``--first N`` the first N in the eval set's own order, as
lm-evaluation-harness's ``--limit`` does.

Demonstrations come from the task's training split (``select_demos`` with ``--seed``), as in the
study; the eval set defaults to the task's first in-domain set and the method to the task type's
default (tokenprob, greedy or loglik).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ptft.errors import ConfigError, naming

HELP = "evaluate one model on one task"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="checkpoint folder (Hugging Face format)")
    p.add_argument("--task", required=True, help="registered task name or path of a task YAML file")
    p.add_argument("--format", default="default", help="prompt format: default, io or instruct (default: default)")
    p.add_argument("--method", default=None,
                   help="classification: tokenprob|constrained|free; generation: greedy; multiple choice: "
                        "loglik (default: the first of the task type)")
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
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CI (default 1000)")


def resolve_task(name: str):
    from ptft.tasks import get_task

    try:
        return get_task(name)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None
    except FileNotFoundError as err:
        raise ConfigError(f"task file {name} not found: {err}") from None


def run(args: argparse.Namespace, task=None, model=None, tokenizer=None) -> int:
    """Run the command. ``task`` (a :class:`~ptft.tasks.base.Task`) and ``model``/``tokenizer``
    may be given directly by Python callers instead of being resolved from ``args``."""
    from ptft.evaluation import DEFAULT_METHOD, METHODS, Evaluator, select_demos
    from ptft.tasks.base import LoadRequest

    task = task if task is not None else resolve_task(args.task)
    eval_set = args.eval_set or task.in_domain[0].name
    if eval_set not in [e.name for e in task.eval_sets]:
        raise ConfigError(f"task {task.name!r} has no eval set {eval_set!r}; it has "
                          f"{', '.join(e.name for e in task.eval_sets)}")
    if args.format not in task.formats:
        raise ConfigError(f"task {task.name!r} has no format {args.format!r}; it has {', '.join(task.formats)}")
    method = args.method or DEFAULT_METHOD[task.task_type]
    if method not in METHODS[task.task_type]:
        raise ConfigError(f"task {task.name!r} is {task.task_type}: --method must be one of "
                          f"{', '.join(METHODS[task.task_type])}")
    if args.shots < 0:
        raise ConfigError("--shots must be >= 0")
    for flag, value in (("--limit", args.limit), ("--first", args.first)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be >= 1")

    if args.out and Path(args.out).is_dir():
        raise ConfigError(f"--out {args.out} is a folder; give the predictions file's name "
                          f"(e.g. {Path(args.out) / 'predictions.jsonl'})")
    if model is None:
        from ptft.checkpoints.loading import check_checkpoint

        check_checkpoint(args.model)  # before the data is loaded: a wrong folder is refused at once
    data = task.load(LoadRequest(data_dir=args.data_dir, seed=args.seed, n_eval=args.limit))
    examples = data.eval[eval_set][: args.limit or args.first]
    demos = select_demos(data.train, args.shots, args.seed)

    if model is None:
        from ptft.checkpoints.loading import load_causal_lm

        model, tokenizer = load_causal_lm(args.model, dtype=args.dtype, device=args.device)
    evaluator = Evaluator(model, tokenizer, batch_size=args.batch_size)
    out = evaluator.evaluate(task, eval_set, examples, args.format, demos, method, seed=args.seed,
                             n_boot=args.n_boot)

    path = Path(args.out) if args.out else Path(
        f"ptft-eval-{task.name}-{eval_set}-{args.format}-{out.method_used}-{args.shots}shot.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with naming(path), open(path, "w", encoding="utf-8") as f:
        for row in out.predictions:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    method_text = out.method_used if out.method_used == method else f"{out.method_used} (asked: {method})"
    print(f"{task.name} / {eval_set}  format={args.format}  method={method_text}  shots={args.shots}  "
          f"n={len(examples)}  {out.seconds:.1f} s")
    for name, mv in out.metrics.items():
        if name == "accuracy" and task.task_type == "multiple_choice":
            continue  # the alias of acc
        print(f"  {name:<9} {mv.value:.4f}  95% CI [{mv.ci_low:.4f}, {mv.ci_high:.4f}]")
    for note in out.notes:
        print(f"  note: {note}")
    print(f"  predictions: {path}")
    return 0
