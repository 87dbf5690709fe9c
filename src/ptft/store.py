"""The results store: one SQLite file per run directory.

One process writes (the study driver); workers hand their rows back to it. Every write is one
transaction, so a crash leaves either all of a unit's rows or none. Rows are keyed by what they
measure, so re-running a finished unit replaces nothing and duplicates nothing.

Tables:
- ``results``: one row per (model, eval set, format, shots, method, metric).
- ``comparisons``: paired-bootstrap FT - BASE differences on the same examples.
- ``cells``: the study grid and each cell's state (pending, done, failed) with errors.
- ``trainings``: losses, steps and throughput of each fine-tuning or instruction-tuning run.
- ``selections``: the learning rate chosen per (checkpoint, train task, seed) and its dev score.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    model_id TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    step INTEGER,
    train_task TEXT NOT NULL DEFAULT '',
    lr REAL,
    seed INTEGER,
    eval_set TEXT NOT NULL,
    eval_task TEXT NOT NULL,
    task_type TEXT NOT NULL,
    domain TEXT NOT NULL,
    format TEXT NOT NULL,
    shots INTEGER NOT NULL,
    method TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER NOT NULL,
    seconds REAL,
    config_hash TEXT,
    cell_id TEXT,
    created_at REAL,
    PRIMARY KEY (model_id, eval_set, format, shots, method, metric)
);
CREATE TABLE IF NOT EXISTS comparisons (
    model_id TEXT NOT NULL,
    base_id TEXT NOT NULL,
    eval_set TEXT NOT NULL,
    format TEXT NOT NULL,
    shots INTEGER NOT NULL,
    method TEXT NOT NULL,
    metric TEXT NOT NULL,
    diff REAL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER NOT NULL,
    PRIMARY KEY (model_id, eval_set, format, shots, method, metric)
);
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    traceback TEXT,
    started_at REAL,
    finished_at REAL,
    seconds REAL,
    notes TEXT
);
CREATE TABLE IF NOT EXISTS trainings (
    cell_id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    checkpoint TEXT,
    step INTEGER,
    train_task TEXT,
    lr REAL,
    seed INTEGER,
    train_loss REAL,
    dev_loss REAL,
    steps INTEGER,
    tokens INTEGER,
    seconds REAL,
    tokens_per_second REAL
);
CREATE TABLE IF NOT EXISTS selections (
    checkpoint TEXT NOT NULL,
    train_task TEXT NOT NULL,
    seed INTEGER NOT NULL,
    lr REAL NOT NULL,
    dev_score REAL,
    PRIMARY KEY (checkpoint, train_task, seed)
);
"""

# The long-format table that `ptft export` writes and `ptft analyze` reads (README: "Results table").
EXPORT_COLUMNS = [
    "checkpoint", "step", "train_task", "eval_set", "eval_task", "task_type", "domain", "format",
    "shots", "metric", "value", "lr", "seed", "method", "ci_low", "ci_high", "n", "selected",
]


@dataclass
class ResultRow:
    model_id: str
    checkpoint: str
    step: int | None
    train_task: str
    lr: float | None
    seed: int | None
    eval_set: str
    eval_task: str
    task_type: str
    domain: str
    format: str
    shots: int
    method: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    n: int
    seconds: float = 0.0
    config_hash: str = ""
    cell_id: str = ""
    created_at: float = field(default_factory=time.time)


@dataclass
class ComparisonRow:
    model_id: str
    base_id: str
    eval_set: str
    format: str
    shots: int
    method: str
    metric: str
    diff: float
    ci_low: float
    ci_high: float
    n: int


class ResultsStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- results -------------------------------------------------------------------------
    def write_results(self, rows: Sequence[ResultRow], comparisons: Sequence[ComparisonRow] = ()) -> None:
        with self.transaction() as db:
            _upsert(db, "results", [asdict(r) for r in rows])
            _upsert(db, "comparisons", [asdict(c) for c in comparisons])

    def finish_cell(self, cell_id: str, rows: Sequence[ResultRow], training: dict | None, notes: Sequence[str],
                    seconds: float) -> None:
        """A cell's rows, its training figures and its 'done' mark in one transaction: after a
        crash a cell is either complete in the store or absent from it."""
        with self.transaction() as db:
            _upsert(db, "results", [asdict(r) for r in rows])
            if training is not None:
                _upsert(db, "trainings", [{"cell_id": cell_id, **training}])
            db.execute(
                "UPDATE cells SET status='done', error=NULL, traceback=NULL, finished_at=?, seconds=?, notes=? "
                "WHERE cell_id=?", (time.time(), seconds, json.dumps(list(notes)) if notes else None, cell_id))

    def has_result(self, model_id: str, eval_set: str, fmt: str, shots: int, method: str) -> bool:
        cur = self._db.execute(
            "SELECT 1 FROM results WHERE model_id=? AND eval_set=? AND format=? AND shots=? AND method=? LIMIT 1",
            (model_id, eval_set, fmt, shots, method),
        )
        return cur.fetchone() is not None

    def count(self, table: str = "results") -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def frame(self, table: str = "results"):
        import pandas as pd

        return pd.read_sql_query(f"SELECT * FROM {table}", self._db)

    def export_frame(self, cell_ids: Sequence[str] | None = None):
        """The long-format results table (columns: EXPORT_COLUMNS), with ``selected`` marking the
        learning rate chosen on the dev split for each fine-tuned (checkpoint, task, seed).
        ``cell_ids`` limits it to the rows of those cells."""
        import pandas as pd

        df = pd.read_sql_query(
            """SELECT r.*, CASE WHEN r.train_task = '' THEN 1
                               WHEN s.lr IS NULL THEN 1
                               WHEN ABS(s.lr - r.lr) <= 1e-12 * ABS(s.lr) THEN 1 ELSE 0 END AS selected
               FROM results r LEFT JOIN selections s
                 ON s.checkpoint = r.checkpoint AND s.train_task = r.train_task AND s.seed = r.seed
               ORDER BY r.step, r.checkpoint, r.train_task, r.lr, r.eval_set, r.format, r.shots, r.method, r.metric""",
            self._db,
        )
        if cell_ids is not None:
            df = df[df["cell_id"].isin(set(cell_ids))]
        df["selected"] = df["selected"].astype(bool)
        return df[EXPORT_COLUMNS].reset_index(drop=True)

    # -- learning-rate selection ----------------------------------------------------------
    def write_selection(self, checkpoint: str, train_task: str, seed: int, lr: float, dev_score: float) -> None:
        with self.transaction() as db:
            _upsert(db, "selections", [dict(checkpoint=checkpoint, train_task=train_task, seed=seed, lr=lr, dev_score=dev_score)])

    # -- cells -----------------------------------------------------------------------------
    def register_cells(self, cells: Sequence[tuple[str, str, str, dict]]) -> None:
        """Add (cell_id, kind, label, spec) rows not seen before; existing cells keep their state."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO cells (cell_id, kind, label, spec, status) VALUES (?, ?, ?, ?, 'pending')",
                [(cid, kind, label, json.dumps(spec, sort_keys=True, default=str)) for cid, kind, label, spec in cells],
            )

    def cell_status(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT cell_id, status FROM cells").fetchall())

    def mark_cell(self, cell_id: str, status: str, *, error: str | None = None, traceback: str | None = None,
                  seconds: float | None = None) -> None:
        now = time.time()
        with self.transaction() as db:
            if status == "running":
                db.execute(
                    "UPDATE cells SET status='running', started_at=?, attempts=attempts+1, error=NULL, traceback=NULL "
                    "WHERE cell_id=?", (now, cell_id))
            else:
                db.execute(
                    "UPDATE cells SET status=?, error=?, traceback=?, finished_at=?, seconds=? WHERE cell_id=?",
                    (status, error, traceback, now, seconds, cell_id))

    def cells(self):
        import pandas as pd

        return pd.read_sql_query("SELECT * FROM cells ORDER BY rowid", self._db)


def _upsert(db: sqlite3.Connection, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    db.executemany(
        f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        [tuple(r[c] for c in cols) for r in rows],
    )
