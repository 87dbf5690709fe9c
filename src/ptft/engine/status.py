"""A run's grid at a glance: how many cells are done, running, failed and pending, whether a
driver is working on it now, how long it has been going and an estimate of the time left.

The estimate: per kind of cell (pretrain, base, finetune, instruct), the median seconds of the
done cells of that kind (of all done cells for a kind with none done yet), summed over the cells
not done, minus what the running ones have already spent, divided by the number of cells the
executor runs at once. A cell the store says is 'running' while no driver holds the run lock was
left by a killed run: it is shown as pending ("interrupted") and will run again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from ptft.engine.study import driver_alive
from ptft.errors import PtftError
from ptft.grid import STORE_FILE, store_path
from ptft.store import ResultsStore, current_cells

STATES = ("done", "running", "failed", "pending")


@dataclass
class GridStatus:
    cells: "object"  # pandas.DataFrame of the current cells (status already corrected, see above)
    counts: dict[str, int]
    elapsed: float | None  # wall seconds of the current run (or of the last one, when none is running)
    remaining: float | None  # estimated wall seconds left; None before any cell finished
    cell_seconds: float = 0.0  # sum of the done cells' own seconds
    driver: str | None = None  # "pid N on HOST since ..." while a run is going, else None
    last_run: dict | None = None
    run_dir: Path = field(default_factory=Path)

    def render(self, show_all: bool = False) -> str:
        total = sum(self.counts.values())
        run = self.last_run or {}
        slots = int(run.get("slots") or 1)
        if self.driver:
            head = f"running: {self.driver} ({run.get('executor', '?')} executor, {slots} at a time)"
        elif run:
            head = f"not running (last run {run.get('outcome') or 'interrupted'})"
        elif self.counts["pending"] == total:
            head = "not running (never run)"
        else:
            head = "not running"
        lines = [f"{self.run_dir}: {head}",
                 f"cells: {total} = " + ", ".join(f"{k} {self.counts[k]}" for k in STATES)]
        timing = [f"elapsed {_hms(self.elapsed)}" if self.elapsed is not None else "elapsed -",
                  f"cell time {_hms(self.cell_seconds)}"]
        if self.counts["done"] == total:
            timing.append("nothing left")
        elif self.remaining is not None:
            timing.append(f"estimated remaining {_hms(self.remaining)}"
                          + (f" ({slots} at a time)" if slots > 1 else ""))
        else:
            timing.append("estimated remaining: unknown until a cell finishes")
        lines.append("; ".join(timing))
        rows = self.cells if show_all else self.cells[self.cells.status != "done"]
        now = time.time()
        for _, c in rows.iterrows():
            extra = []
            if c.status == "running" and c.started_at == c.started_at:
                extra.append(f"running {_hms(now - c.started_at)}")
            elif c.status == "done" and c.seconds == c.seconds:
                extra.append(f"{c.seconds:.1f}s")
            if c.get("interrupted"):
                extra.append("interrupted: will run again")
            if c.status == "failed":
                extra.append(f"attempts {c.attempts}")
                if c.error:
                    extra.append(str(c.error).splitlines()[0])
            if c.status in ("failed", "running") or c.get("interrupted"):
                extra.append(f"log: logs/{c.cell_id}.log")
            lines.append(f"  [{c.status:7}] {c.label}" + (f"  ({'; '.join(extra)})" if extra else ""))
        return "\n".join(lines)


def grid_status(run_dir: str | Path) -> GridStatus:
    run_dir = Path(run_dir)
    if not store_path(run_dir).exists():
        raise PtftError(f"{run_dir} is not a run directory: no {STORE_FILE} in it")
    driver = driver_alive(run_dir)
    with ResultsStore(store_path(run_dir)) as store:
        cells = store.cells(current_only=False)
        current = current_cells(run_dir, store)
        last_run = store.last_run()
    if current is not None:
        order = {cid: i for i, cid in enumerate(current)}
        cells = cells[cells.cell_id.isin(order)].copy()
        cells["_order"] = cells.cell_id.map(order)
        cells = cells.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    cells["interrupted"] = False
    if driver is None:  # nobody runs it: 'running' cells were left by a killed driver
        stale = cells.status == "running"
        cells.loc[stale, "interrupted"] = True
        cells.loc[stale, "status"] = "pending"
    counts = {s: int((cells.status == s).sum()) for s in STATES}
    done = cells[cells.status == "done"]
    per_kind = done.groupby("kind").seconds.median().to_dict()
    remaining = None
    now = time.time()
    if per_kind:
        fallback = float(done.seconds.median())
        left = cells[cells.status != "done"]
        work = float(sum(per_kind.get(k, fallback) for k in left.kind))
        running = cells[cells.status == "running"]
        work -= float(sum(min(now - s, per_kind.get(k, fallback))
                          for k, s in zip(running.kind, running.started_at) if s == s))
        slots = int((last_run or {}).get("slots") or 1)
        remaining = max(0.0, work) / max(1, slots)
    elapsed = None
    if last_run and last_run.get("started_at"):
        end = now if driver else (last_run.get("finished_at")
                                  or max(_last_activity(cells) or 0.0, last_run["started_at"]))
        elapsed = end - last_run["started_at"]
    return GridStatus(cells, counts, elapsed, remaining, float(done.seconds.fillna(0).sum()), driver, last_run,
                      run_dir)


def _last_activity(cells) -> float | None:
    """When a killed run last did anything: its latest cell start or finish."""
    stamps = [x for x in list(cells.finished_at) + list(cells.started_at) if x == x and x is not None]
    return max(stamps) if stamps else None


def _hms(seconds: float | None) -> str:
    seconds = max(0, int(seconds or 0))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
