"""The study engine's own cost, and the `smoke` study on each executor.

    python bench/engine.py [--reps 1] [--skip-overhead] [--skip-executors] [--keep DIR]

1. Overhead: the `smoke` preset run in this process (in-process executor, fresh run directory),
   with the engine's steps timed: planning (loading task data, hashing cells), the driver's store
   writes per cell (predictions files + one SQLite transaction), learning-rate selection and paired
   comparisons, and the time inside ``run_cell`` (the cells' own work: pre-training, fine-tuning,
   evaluation). Overhead = wall time of ``run_study`` - time inside ``run_cell``, also per cell.
   Then the same study run again on the finished directory (every cell skipped): the fixed cost
   of a resume.
2. Executors: ``ptft run smoke`` as a subprocess (what a user runs: interpreter start-up and imports
   included) on the local executor with 1 worker, with 2 workers, and on Ray with a local 2-CPU
   instance (started by ptft, ``ray.init(num_cpus=2)`` on this 2-core machine). Wall time of the
   whole command and the span of the grid after pre-training (first cell start to last cell end,
   from the store), medians over ``--reps`` runs.

Prints figures; asserts nothing. Cells compute with the config's ``executor.threads`` (1 in smoke).
"""

from __future__ import annotations

import argparse
import functools
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def timed(table: dict, name: str, module, attr: str):
    """Wrap ``module.attr`` so that every call adds its seconds to ``table[name]``."""
    original = getattr(module, attr)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            table[name].append(time.perf_counter() - start)

    setattr(module, attr, wrapper)
    return original


def overhead(root: Path) -> None:
    from ptft.api import run as api_run
    from ptft.engine import executors, study
    from ptft.store import ResultsStore

    spent: dict[str, list[float]] = defaultdict(list)
    timed(spent, "plan", study, "plan_cells")
    timed(spent, "store", study, "_store_output")
    timed(spent, "mark", study.ResultsStore, "mark_cell")
    timed(spent, "select", study, "_select_learning_rates")
    timed(spent, "compare", study, "_compare_with_base")
    timed(spent, "cell", executors, "_guarded")

    for label in ("fresh run", "resume (all done)"):
        spent.clear()
        start = time.perf_counter()
        result = api_run("smoke", run_dir=root / "overhead", progress=False)
        wall = time.perf_counter() - start
        cells = sum(spent["cell"])
        n = len(result.cells)
        print(f"\n[overhead] smoke, in process, {label}: {n} cells, {result.ran} run, wall {wall:.2f}s")
        print(f"  inside run_cell (the cells' work)    {cells:8.2f}s")
        print(f"  engine total (wall - cells)          {wall - cells:8.2f}s = {(wall - cells) / n * 1000:7.1f} ms/cell"
              f" = {(wall - cells) / wall:6.1%} of the wall time")
        for name, what in (("plan", "planning: task data + cell hashes"), ("mark", "marking cells running/failed"),
                           ("store", "storing outputs (files + transaction)"), ("select", "learning-rate selection"),
                           ("compare", "paired FT-BASE comparisons")):
            total = sum(spent[name])
            per = f"{total / len(spent[name]) * 1000:7.1f} ms/call x {len(spent[name])}" if spent[name] else ""
            print(f"  {what:37s} {total:8.3f}s  {per}")
        rest = wall - cells - sum(sum(spent[k]) for k in ("plan", "mark", "store", "select", "compare"))
        print(f"  {'other (config, registration, lock)':37s} {rest:8.3f}s")
    with ResultsStore(root / "overhead" / "results.sqlite") as store:
        per_kind = store.cells().groupby("kind").seconds.agg(["count", "median", "sum"])
    print("  cells' own seconds by kind:\n" + "\n".join("    " + line for line in per_kind.round(2).to_string().splitlines()))


def grid_span(run: Path) -> float:
    con = sqlite3.connect(run / "results.sqlite")
    try:
        start, end = con.execute("SELECT MIN(started_at), MAX(finished_at) FROM cells WHERE kind != 'pretrain'").fetchone()
    finally:
        con.close()
    return end - start


def executors(root: Path, reps: int) -> None:
    ptft = [sys.executable, "-m", "ptft", "run", "smoke", "--no-progress"]
    variants = [("local, 1 worker (in process)", []), ("local, 2 workers", ["--workers", "2"]),
                ("ray, 2 CPUs (local instance)", ["--executor", "ray"])]
    figures: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for rep in range(reps):
        for name, extra in variants:
            run = root / f"exec-{len(figures[name])}-{extra[-1] if extra else 'inproc'}-{rep}"
            start = time.perf_counter()
            proc = subprocess.run(ptft + ["--out", str(run)] + extra, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                print(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
                continue
            figures[name].append((wall, grid_span(run)))
            print(f"  rep {rep + 1}: {name:30s} wall {wall:6.1f}s, grid after pre-training {grid_span(run):6.1f}s",
                  flush=True)
    print(f"\n[executors] `ptft run smoke` (9 cells: pretrain, then 4 BASE + 4 FT), medians of {reps} run(s), "
          f"{os.cpu_count()} cores")
    print(f"  {'executor':32s} {'wall':>8s} {'grid after pretrain':>20s}")
    for name, _ in variants:
        if figures[name]:
            wall = statistics.median(w for w, _ in figures[name])
            span = statistics.median(s for _, s in figures[name])
            print(f"  {name:32s} {wall:7.1f}s {span:19.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-executors", action="store_true")
    parser.add_argument("--keep", help="run directories go here (default: a temporary folder, removed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ptft-bench-engine-") as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        if not args.skip_overhead:
            overhead(root)
        if not args.skip_executors:
            executors(root, args.reps)


if __name__ == "__main__":
    main()
