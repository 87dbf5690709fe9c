"""Wall-time cost of evaluating during fine-tuning (``finetune.eval_at``) on a preset's study.

    python bench/eval_during.py [--preset smoke] [--reps 1] [--keep DIR]

The preset's study (default `smoke`, about 1 minute; `tiny` about an hour in all) runs once
(pre-training, BASE and FT cells); then, per repetition and setting, a copy of that run directory
runs again with only its fine-tuning cells to do (pre-training and BASE cells are reused): for
more points their ids change; for the final evaluation alone they are marked pending, so every
setting is timed in the same conditions, one after the other. Per setting: the FT cells' summed
seconds (from the store's cells table), the overhead against final-only, and the overhead per
extra point; medians over the repetitions. On a shared machine the spread between repetitions is
printed too. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SETTINGS = ([1.0], [0.5, 1.0], [0.25, 0.5, 0.75, 1.0])


def ft_seconds(run: Path) -> float:
    db = sqlite3.connect(run / "results.sqlite")
    try:
        return sum(s for (s,) in db.execute(
            "SELECT c.seconds FROM cells c JOIN plan p ON p.cell_id = c.cell_id WHERE c.kind = 'finetune'"))
    finally:
        db.close()


def eval_seconds(run: Path) -> float:
    """Seconds the FT cells spent evaluating before the end of training (each unit's own timing,
    in its results rows): the direct cost of the points, less noisy than a difference of wall
    times on a shared machine."""
    db = sqlite3.connect(run / "results.sqlite")
    try:
        return sum(s for (s,) in db.execute(
            "SELECT seconds FROM (SELECT DISTINCT r.cell_id, r.ft_fraction, r.eval_set, r.format, r.shots, r.method, "
            "r.seconds FROM results r JOIN plan p ON p.cell_id = r.cell_id WHERE r.ft_fraction < 1)"))
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    args = parser.parse_args()

    from ptft.config import load_config
    from ptft.engine.study import run_study

    root = args.keep or Path(tempfile.mkdtemp(prefix="ptft-bench-eval-during-"))
    base = root / "base"
    if not (base / "results.sqlite").exists():
        run_study(load_config(args.preset), run_dir=base, progress=False)
    times: dict[int, list[float]] = {}
    evals: dict[int, list[float]] = {}
    for rep in range(args.reps):
        for points in SETTINGS:
            run = root / f"rep{rep}-{len(points)}points"
            shutil.rmtree(run, ignore_errors=True)
            shutil.copytree(base, run)
            if points == [1.0]:
                db = sqlite3.connect(run / "results.sqlite")
                with db:
                    db.execute("UPDATE cells SET status = 'pending' WHERE kind = 'finetune'")
                db.close()
            result = run_study(load_config(args.preset, {"finetune.eval_at": points}), run_dir=run, progress=False)
            assert not result.failed and result.ran == sum(c.kind == "finetune" for c in result.cells), result.failed
            times.setdefault(len(points), []).append(ft_seconds(run))
            evals.setdefault(len(points), []).append(eval_seconds(run))
    final = statistics.median(times[1])
    print(f"{args.preset} preset, fine-tuning cells only, median of {args.reps} run(s); run directories in {root}")
    print(f"{'points':>6}  {'FT cells (s)':>12}  {'runs (s)':>24}  {'overhead':>9}  {'per extra point':>15}  "
          f"{'evaluating during training (s, % of the cells)':>46}")
    for n, values in sorted(times.items()):
        t = statistics.median(values)
        per = f"{100 * (t - final) / final / (n - 1):+.1f} %" if n > 1 else ""
        runs = ", ".join(f"{v:.1f}" for v in values)
        during = statistics.median(evals[n])
        print(f"{n:>6}  {t:>12.2f}  {runs:>24}  {100 * (t - final) / final:>+8.1f} %  {per:>15}  "
              f"{during:>38.2f} ({100 * during / t:.1f} %)")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
