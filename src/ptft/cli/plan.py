"""ptft plan CONFIG: print the grid a study would run and a rough cost estimate, running nothing."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="a study YAML file or a preset name (tiny, tiny-it, paper-olmo1b, ...)")
    p.add_argument("--out", help="run directory the study would use (default: the config's output_dir)")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args: argparse.Namespace) -> int:
    from ptft.api import plan as plan_study
    from ptft.engine.plan import format_plan, plan_json

    plan = plan_study(args.config, args.out)
    print(plan_json(plan) if args.json else format_plan(plan))
    return 0
