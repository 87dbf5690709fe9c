"""ptft run CONFIG: run a study, resuming whatever is already done."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="a study YAML file or a preset name (smoke, tiny, paper-olmo1b, ...)")
    p.add_argument("--out", help="run directory (default: the config's output_dir)")
    p.add_argument("--seed", type=int, help="override the config's seed")
    p.add_argument("--executor", choices=["local", "ray"], help="override executor.kind")
    p.add_argument("--address", help="Ray cluster address, host:port (with --executor ray); default: start a "
                                     "local one")
    p.add_argument("--workers", type=int, help="local worker processes, at least 1 (default: executor.workers)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--allow-mixed-numerics", action="store_true",
                   help="resume although this machine or torch build computes differently from the done cells")


def run(args: argparse.Namespace) -> int:
    from ptft.api import run
    from ptft.engine.summary import summary_table

    from ptft.config import MAX_SEED
    from ptft.errors import ConfigError

    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise ConfigError(f"--seed must be between 0 and {MAX_SEED} (2**32 - 1), got {args.seed}")
    overrides = {"seed": args.seed} if args.seed is not None else {}
    result = run(args.config, run_dir=args.out, executor=args.executor, address=args.address,
                 workers=args.workers, progress=not args.no_progress, overrides=overrides,
                 allow_mixed_numerics=args.allow_mixed_numerics)
    table = summary_table(result.run_dir)
    if table.empty:
        print("no results yet")
    else:
        print("\nIn-domain metric per checkpoint, BASE (few-shot) vs FT (fine-tuned on that task):")
        print(table.round(3).to_string())
    print(f"\n{result.ran} cell(s) run, {result.skipped} already done, {len(result.failed)} failed "
          f"in {result.seconds:.0f}s. Results: {result.run_dir / 'results.sqlite'}")
    print("Next, each on its own:")
    print(f"  ptft export {result.run_dir} --format csv")
    print(f"  ptft analyze {result.run_dir} --out {result.run_dir / 'analysis'}")
    print(f"  ptft report {result.run_dir}")
    if result.failed:
        print(f"{len(result.failed)} cell(s) failed; see `ptft status {result.run_dir}`; rerun to retry them.")
        return 1
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C or SIGTERM leaves: the cells finished so far, in the store; the rest on a rerun."""
    from ptft.config import load_config

    try:
        run_dir = args.out or load_config(args.config).output_dir
    except Exception:  # the config itself was the problem: say it without the path
        run_dir = "the run directory"
    return (f"the cells finished so far are kept in {run_dir}; run the same command again to resume "
            f"(`ptft status {run_dir}` shows what is left)")
