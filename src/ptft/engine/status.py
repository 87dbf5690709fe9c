"""A run's grid at a glance: how many cells are done, running, failed and pending, how long the
done ones took, and an estimate of the time left (median seconds per cell of each kind)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ptft.engine.study import STORE_FILE, _current_cells
from ptft.errors import PtftError
from ptft.store import ResultsStore


@dataclass
class GridStatus:
    cells: "object"  # pandas.DataFrame of the current cells
    counts: dict[str, int]
    elapsed: float
    remaining: float | None

    def render(self, show_all: bool = False) -> str:
        lines = ["  ".join(f"{k}: {v}" for k, v in self.counts.items())]
        lines.append(f"elapsed (sum over cells): {_hms(self.elapsed)}; estimated remaining: "
                     + (_hms(self.remaining) if self.remaining is not None else "unknown (no finished cell yet)"))
        rows = self.cells if show_all else self.cells[self.cells.status != "done"]
        for _, c in rows.iterrows():
            extra = f"  {c.error}" if c.status == "failed" and c.error else ""
            took = f" {c.seconds:.0f}s" if c.seconds == c.seconds and c.seconds else ""
            lines.append(f"  [{c.status:7}] {c.label}{took}{extra}")
        return "\n".join(lines)


def grid_status(run_dir: str | Path) -> GridStatus:
    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).exists():
        raise PtftError(f"{run_dir} is not a run directory: no {STORE_FILE} in it")
    with ResultsStore(run_dir / STORE_FILE) as store:
        cells = store.cells()
    current = _current_cells(run_dir)
    if current is not None:
        cells = cells[cells.cell_id.isin(set(current))]
    counts = {s: int((cells.status == s).sum()) for s in ("done", "running", "failed", "pending")}
    done = cells[cells.status == "done"]
    per_kind = done.groupby("kind").seconds.median().to_dict()
    left = cells[cells.status != "done"]
    remaining = None
    if per_kind:
        fallback = float(done.seconds.median())
        remaining = float(sum(per_kind.get(k, fallback) for k in left.kind))
        running = cells[cells.status == "running"]
        remaining -= float(sum(min(time.time() - s, per_kind.get(k, fallback))
                               for k, s in zip(running.kind, running.started_at) if s == s))
    return GridStatus(cells, counts, float(done.seconds.sum()), remaining)


def _hms(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"
