"""The results store: one SQLite file per run directory.

One process writes (the study driver, which holds the run directory's lock); workers hand their
rows back to it. Every write is one transaction, so a crash leaves either all of a cell's rows or
none. Rows are keyed by what they measure *and* by the cell that measured them (a content hash),
so re-running a cell replaces its own rows, never duplicates them, and never overwrites the rows
of another config's cell.

Tables:
- ``results``: one row per (cell, model, model state, eval set, format, shots, method, metric);
  the model state (``variant``, ``ft_fraction``, with ``ft_step`` carried) tells the final
  fine-tuned model (``none``, 1.0) from intermediate points of its training and from
  evaluation-only edits of it. ``ft_method`` is the cell's fine-tuning method.
- ``scores``: per-example scores of each cell's evaluation units (for paired comparisons), keyed
  by the model state and the unit's typed columns (eval task, eval set, format, shots, method).
- ``comparisons``: paired-bootstrap FT - BASE differences on the same examples, per state of the
  fine-tuned model (BASE has one state).
- ``cells``: every cell ever planned in this run directory and its state (pending, running,
  done, failed) with errors, tracebacks, attempts and timings.
- ``plan``: the cells of the current config (what `export`, `status` and the analyses show).
- ``trainings``: losses, steps, throughput, trainable parameters and peak memory of each
  fine-tuning or instruction-tuning run, with its fine-tuning method.
- ``weights``: the weight-space lenses of each fine-tuned model against its BASE checkpoint, one
  row per weight matrix (``ptft.evaluation.weights``).
- ``layers``: measures of representations block by block: a fine-tuned model's CKA with BASE on
  the prompts of an eval set (``ptft.evaluation.similarity``), a checkpoint's RankMe and alpha-ReQ
  on the probes' held-out positions (``ptft.evaluation.geometry``).
- ``selections``: the learning rate chosen per (checkpoint, train task, fine-tuning method, seed) on
  the dev split.
- ``runs``: each `ptft run` of the directory: who ran it, with which executor, when it ended.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

from ptft.errors import PtftError, StoreError
from ptft.grid import SCORE_KEY, STORE_FILE, EvalUnit, ModelState, ResultRow, Scores, store_path

_SCORE_KEY = ", ".join(SCORE_KEY)
# The first columns of a table with rows per fine-tuned model (weights, layers): the cell, and the
# model as results name it.
_FINE_TUNED_MODEL = """cell_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    checkpoint TEXT,
    step INTEGER,
    train_task TEXT,
    ft_method TEXT NOT NULL DEFAULT '',
    lr REAL,
    seed INTEGER,"""

SCHEMA = f"""
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
    n INTEGER,
    seconds REAL,
    config_hash TEXT,
    cell_id TEXT NOT NULL DEFAULT '',
    created_at REAL,
    ft_method TEXT NOT NULL DEFAULT '',
    variant TEXT NOT NULL DEFAULT 'none',
    ft_step INTEGER,
    ft_fraction REAL NOT NULL DEFAULT 1.0,
    PRIMARY KEY (cell_id, model_id, {_SCORE_KEY})
);
CREATE TABLE IF NOT EXISTS scores (
    cell_id TEXT NOT NULL,
    eval_task TEXT NOT NULL,
    eval_set TEXT NOT NULL,
    format TEXT NOT NULL,
    shots INTEGER NOT NULL,
    method TEXT NOT NULL,
    metric TEXT NOT NULL,
    vals TEXT NOT NULL,
    variant TEXT NOT NULL DEFAULT 'none',
    ft_fraction REAL NOT NULL DEFAULT 1.0,
    ft_step INTEGER,
    PRIMARY KEY (cell_id, {_SCORE_KEY})
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
    cell_id TEXT NOT NULL DEFAULT '',
    base_cell_id TEXT NOT NULL DEFAULT '',
    variant TEXT NOT NULL DEFAULT 'none',
    ft_fraction REAL NOT NULL DEFAULT 1.0,
    PRIMARY KEY (cell_id, base_cell_id, model_id, {_SCORE_KEY})
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
CREATE TABLE IF NOT EXISTS plan (
    cell_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL
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
    tokens_per_second REAL,
    dev_metric REAL,
    reused INTEGER NOT NULL DEFAULT 0,
    ft_method TEXT NOT NULL DEFAULT 'full',
    trainable_parameters INTEGER,
    peak_memory_mb REAL,
    examples_per_step REAL
);
CREATE TABLE IF NOT EXISTS selections (
    checkpoint TEXT NOT NULL,
    train_task TEXT NOT NULL,
    ft_method TEXT NOT NULL DEFAULT 'full',
    seed INTEGER NOT NULL,
    lr REAL NOT NULL,
    dev_score REAL,
    criterion TEXT,
    candidates TEXT,
    cell_id TEXT,
    PRIMARY KEY (checkpoint, train_task, ft_method, seed)
);
CREATE TABLE IF NOT EXISTS weights (
    {_FINE_TUNED_MODEL}
    name TEXT NOT NULL,
    module TEXT NOT NULL,
    layer INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    cols INTEGER NOT NULL,
    relative_change REAL,
    effective_rank INTEGER,
    intruders INTEGER,
    intruder_k INTEGER,
    intruder_epsilon REAL,
    PRIMARY KEY (cell_id, name)
);
CREATE TABLE IF NOT EXISTS layers (
    {_FINE_TUNED_MODEL}
    eval_task TEXT NOT NULL,
    eval_set TEXT NOT NULL,
    domain TEXT NOT NULL,
    format TEXT NOT NULL,
    shots INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    measure TEXT NOT NULL,
    value REAL,
    n INTEGER,
    PRIMARY KEY (cell_id, eval_set, format, shots, layer, measure)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY AUTOINCREMENT,
    pid INTEGER,
    host TEXT,
    executor TEXT,
    slots INTEGER,
    planned INTEGER,
    started_at REAL,
    heartbeat_at REAL,
    finished_at REAL,
    outcome TEXT
);
"""

# PRAGMA user_version of a store in this schema; 0 is every store written before the version was kept.
SCHEMA_VERSION = 5

# Less free space than this on the store's device makes an SQLite I/O error a full disk.
LOW_SPACE_BYTES = 16 << 20

# Columns added after a table was first released: (table, column, declaration).
_ADDED_COLUMNS = [
    ("trainings", "dev_metric", "REAL"),
    ("trainings", "reused", "INTEGER NOT NULL DEFAULT 0"),
    ("selections", "criterion", "TEXT"),
    ("selections", "candidates", "TEXT"),
    ("selections", "cell_id", "TEXT"),
    ("cells", "numerics", "TEXT"),
    ("trainings", "ft_method", "TEXT NOT NULL DEFAULT 'full'"),
    ("trainings", "trainable_parameters", "INTEGER"),
    ("trainings", "peak_memory_mb", "REAL"),
    ("trainings", "examples_per_step", "REAL"),
]

# The long-format table that `ptft export` writes and `ptft analyze` reads (docs/results.md,
# "Results table"): the results' columns (ptft.grid.RESULT_COLUMNS) without their provenance, and
# whether the row's learning rate was selected. A published file format, so its order is kept:
# a new column is appended (tests/test_grid.py checks that the two lists agree).
EXPORT_COLUMNS = [
    "checkpoint", "step", "train_task", "eval_set", "eval_task", "task_type", "domain", "format",
    "shots", "metric", "value", "lr", "seed", "method", "ci_low", "ci_high", "n", "selected",
    "ft_method", "variant", "ft_step", "ft_fraction",
]

# The per-matrix table that `ptft export` writes beside it (docs/results.md, "Weights table").
WEIGHTS_COLUMNS = [
    "checkpoint", "step", "train_task", "ft_method", "lr", "seed", "name", "module", "layer", "rows", "cols",
    "relative_change", "effective_rank", "intruders", "intruder_k", "intruder_epsilon", "selected",
]


# The per-layer table beside it (docs/results.md, "Layers table"): measures of a model's
# representations block by block (``measure``: ``cka``, ``rankme``, ``alpha_req``).
LAYERS_COLUMNS = [
    "checkpoint", "step", "train_task", "ft_method", "lr", "seed", "eval_task", "eval_set", "domain", "format",
    "shots", "layer", "measure", "value", "n", "selected",
]


def layers_path(results: str | Path) -> Path:
    """Where the layers table of the results table ``results`` lies: ``NAME.layers.EXT`` beside it."""
    results = Path(results)
    return results.with_name(f"{results.stem}.layers{results.suffix}")


def weights_path(results: str | Path) -> Path:
    """Where the weights table of the results table ``results`` lies: ``NAME.weights.EXT`` beside it."""
    results = Path(results)
    return results.with_name(f"{results.stem}.weights{results.suffix}")


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
    cell_id: str = ""
    base_cell_id: str = ""
    variant: str = "none"  # the fine-tuned model's state; BASE has only its one state
    ft_fraction: float = 1.0


class ResultsStore:
    """Opening a store that exists runs SQLite's ``quick_check`` first: a damaged store is refused
    (:class:`StoreError` saying what to do) before anything reads numbers from it or writes to it.
    SQLite errors a user can act on (damage, a full disk, a read-only location) become StoreErrors
    naming the file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.exists()
        # a store on a read-only medium (an archived run) is read as it is: nobody can change it
        self.read_only = existed and not os.access(self.path.parent, os.W_OK)
        try:
            if self.read_only:
                wal = self.path.with_name(self.path.name + "-wal")
                # immutable skips the WAL file: only right when it holds nothing
                mode = "mode=ro" if wal.exists() and wal.stat().st_size else "immutable=1"
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{mode}", uri=True,
                                           isolation_level=None)
            else:
                self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            if existed:
                self._check()
            if not self.read_only:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.executescript(SCHEMA)
                self._migrate()
        except sqlite3.Error as err:
            raise self._explain(err) from None

    def _check(self) -> None:
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise self._damaged("; ".join(problems))

    def _damaged(self, detail: str) -> StoreError:
        return StoreError(
            f"{self.path} is damaged (SQLite: {detail}); its numbers cannot be trusted, so nothing was read "
            f"or written. Move it aside (mv {self.path} {self.path}.damaged) and run the study again with the "
            f"same --out to recompute every cell, or put back a copy you trust")

    def _disk_full(self) -> bool:
        try:
            return shutil.disk_usage(self.path.parent).free < LOW_SPACE_BYTES
        except OSError:
            return False

    def _explain(self, err: sqlite3.Error) -> Exception:
        """The StoreError for an SQLite error a user can act on; the error itself otherwise (a bug)."""
        name = getattr(err, "sqlite_errorname", "") or ""
        if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return self._damaged(str(err))
        # a full disk shows as SQLITE_FULL, or as an I/O error on the shared-memory or WAL file
        if name.startswith("SQLITE_FULL") or (name.startswith("SQLITE_IOERR") and self._disk_full()):
            return StoreError(f"{self.path}: no space left on the device (SQLite: {err}); free some space and "
                              "run the same command again: every cell already finished is kept in the store")
        if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
            return StoreError(f"{self.path}: cannot open or write the results store (SQLite: {err}); the run "
                              "directory must be writable: fix its permissions or choose another --out")
        if name.startswith("SQLITE_IOERR"):
            return StoreError(f"{self.path}: input/output error (SQLite: {err}); check the disk (is it full, "
                              "or gone?) and run the same command again: finished cells are kept")
        return err

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            if self._db.in_transaction:  # one an interrupt (SIGTERM, Ctrl-C) left open between BEGIN and try
                self._db.execute("ROLLBACK")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite rolls back by itself after some errors (a full disk)
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            raise self._explain(err) from None

    def _migrate(self) -> None:
        """Bring a store written by an earlier ptft up to this schema (cheap no-op otherwise)."""
        def columns(table: str) -> dict[str, int]:
            return {row[1]: row[5] for row in self._db.execute(f"PRAGMA table_info({table})")}

        cols = columns("results")
        if not cols.get("cell_id"):  # cell_id was not part of the key: rebuild the table with it
            with self.transaction() as db:
                db.execute("ALTER TABLE results RENAME TO results_old")
                db.execute(SCHEMA.split(";")[0])  # the results table's CREATE statement
                shared = [c for c in cols if c in columns("results")]
                picked = ["COALESCE(cell_id, '')" if c == "cell_id" else c for c in shared]
                db.execute(f"INSERT OR REPLACE INTO results ({', '.join(shared)}) SELECT {', '.join(picked)} "
                           "FROM results_old")
                db.execute("DROP TABLE results_old")
        if "cell_id" not in columns("comparisons"):  # derived data: recomputed by the next run
            with self.transaction() as db:
                db.execute("DROP TABLE comparisons")
            self._db.executescript(SCHEMA)
        for table, column, decl in _ADDED_COLUMNS:
            if column not in columns(table):
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            # one transaction, version mark included: a crash leaves the old schema, migrated next time
            with self.transaction() as db:
                if "unit" in columns("scores"):
                    _type_score_units(db)
                if version < 2:
                    _add_model_states(db)
                if version < 3:
                    _add_weights(db)
                if version < 4:
                    _select_per_method(db)
                if version < 5:
                    _add_layers(db)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- results -------------------------------------------------------------------------
    def write_results(self, rows: Sequence[ResultRow], comparisons: Sequence[ComparisonRow] = ()) -> None:
        with self.transaction() as db:
            _upsert(db, "results", [r.columns() for r in rows])
            _upsert(db, "comparisons", [asdict(c) for c in comparisons])

    def finish_cell(self, cell_id: str, rows: Sequence[ResultRow], training: dict | None, notes: Sequence[str],
                    seconds: float, scores: Scores | None = None,
                    numerics: str | None = None, weights: Sequence[dict] = (), layers: Sequence[dict] = ()) -> None:
        """A cell's rows, per-example scores, training figures and its 'done' mark in one
        transaction: after a crash a cell is either complete in the store or absent from it.
        Rows a previous attempt of the same cell left behind are replaced, never duplicated."""
        with self.transaction() as db:
            db.execute("DELETE FROM results WHERE cell_id=?", (cell_id,))
            db.execute("DELETE FROM scores WHERE cell_id=?", (cell_id,))
            for table, content in (("weights", weights), ("layers", layers)):
                db.execute(f"DELETE FROM {table} WHERE cell_id=?", (cell_id,))
                _upsert(db, table, [dict(row) | {"cell_id": cell_id} for row in content])
            _upsert(db, "results", [r.columns() | {"cell_id": cell_id} for r in rows])
            _upsert(db, "scores", [{"cell_id": cell_id, **asdict(state), **asdict(unit), "metric": metric,
                                    "vals": json.dumps(vals)}
                                   for state, units in (scores or {}).items() for unit, metrics in units.items()
                                   for metric, vals in metrics.items()])
            if training is not None:
                _upsert(db, "trainings", [{"cell_id": cell_id, **training}])
            db.execute(
                "UPDATE cells SET status='done', error=NULL, traceback=NULL, finished_at=?, seconds=?, notes=?, "
                "numerics=? WHERE cell_id=?",
                (time.time(), seconds, json.dumps(list(notes)) if notes else None, numerics, cell_id))

    def numerics(self, cell_ids: Sequence[str]) -> dict[str, list[str]]:
        """What the done cells among ``cell_ids`` were computed with -> those cells."""
        out: dict[str, list[str]] = {}
        wanted = set(cell_ids)
        for cell_id, numerics in self._db.execute(
                "SELECT cell_id, numerics FROM cells WHERE status='done' AND numerics IS NOT NULL"):
            if cell_id in wanted:
                out.setdefault(numerics, []).append(cell_id)
        return out

    def count(self, table: str = "results") -> int:
        return self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

    def frame(self, table: str = "results"):
        import pandas as pd

        return pd.read_sql_query(f"SELECT * FROM {table}", self._db)

    def scores(self, cell_id: str) -> Scores:
        """Per-example scores of one cell: model state -> unit -> metric -> values."""
        out: Scores = {}
        for variant, fraction, ft_step, *unit, metric, vals in self._db.execute(
                "SELECT variant, ft_fraction, ft_step, eval_task, eval_set, format, shots, method, metric, vals "
                "FROM scores WHERE cell_id=? ORDER BY rowid", (cell_id,)):
            units = out.setdefault(ModelState(variant, fraction, ft_step), {})
            units.setdefault(EvalUnit(*unit), {})[metric] = json.loads(vals)
        return out

    def trainings(self, cell_ids: Sequence[str]) -> list[dict]:
        """The training figures of those of ``cell_ids`` that trained, in the order they were stored."""
        wanted = set(cell_ids)
        cur = self._db.execute("SELECT * FROM trainings ORDER BY rowid")
        names = [d[0] for d in cur.description]
        return [row for row in (dict(zip(names, values)) for values in cur) if row["cell_id"] in wanted]

    def export_frame(self, cell_ids: Sequence[str] | None = None):
        """The long-format results table (columns: EXPORT_COLUMNS), with ``selected`` marking the
        learning rate chosen on the dev split for each fine-tuned (checkpoint, task, method, seed) (at every
        point of its training: the choice is the final model's).
        ``cell_ids`` limits it to the rows of those cells; by default, the current plan's cells
        (every row when no plan was ever recorded)."""
        import pandas as pd

        if cell_ids is None:
            cell_ids = self.plan() or None
        df = pd.read_sql_query(
            """SELECT r.*, CASE WHEN r.train_task = '' THEN 1
                               WHEN s.lr IS NULL THEN 1
                               WHEN ABS(s.lr - r.lr) <= 1e-12 * ABS(s.lr) THEN 1 ELSE 0 END AS selected
               FROM results r LEFT JOIN selections s
                 ON s.checkpoint = r.checkpoint AND s.train_task = r.train_task AND s.ft_method = r.ft_method
                AND s.seed = r.seed
               ORDER BY r.step, r.checkpoint, r.train_task, r.ft_method, r.lr, r.seed, r.variant, r.ft_fraction,
                        r.eval_set, r.format, r.shots, r.method, r.metric""",
            self._db,
        )
        if cell_ids is not None:
            df = df[df["cell_id"].isin(set(cell_ids))]
        df["selected"] = df["selected"].astype(bool)
        # BASE is no point of a fine-tuning run: its fraction (1.0 in the store, for the keys) is blank
        df["ft_fraction"] = df["ft_fraction"].where(df["train_task"] != "")
        df["ft_step"] = df["ft_step"].astype("Int64")
        return df[EXPORT_COLUMNS].reset_index(drop=True)

    def weights_frame(self, cell_ids: Sequence[str] | None = None):
        """The per-matrix lenses table (columns: WEIGHTS_COLUMNS), ``selected`` as in
        :meth:`export_frame`; by default the current plan's cells."""
        return self._per_model_frame("weights", "w.layer, w.name", WEIGHTS_COLUMNS, cell_ids)

    def layers_frame(self, cell_ids: Sequence[str] | None = None):
        """The per-layer representation table (columns: LAYERS_COLUMNS), like :meth:`weights_frame`."""
        return self._per_model_frame("layers", "w.eval_set, w.format, w.shots, w.measure, w.layer", LAYERS_COLUMNS,
                                     cell_ids)

    def _per_model_frame(self, table: str, order: str, columns: list[str], cell_ids: Sequence[str] | None):
        """A table of rows per fine-tuned model with whether its learning rate was selected."""
        import pandas as pd

        if cell_ids is None:
            cell_ids = self.plan() or None
        df = pd.read_sql_query(
            f"""SELECT w.*, CASE WHEN s.lr IS NULL THEN 1
                                WHEN ABS(s.lr - w.lr) <= 1e-12 * ABS(s.lr) THEN 1 ELSE 0 END AS selected
                FROM {table} w LEFT JOIN selections s
                  ON s.checkpoint = w.checkpoint AND s.train_task = w.train_task AND s.ft_method = w.ft_method
                 AND s.seed = w.seed
                ORDER BY w.step, w.checkpoint, w.train_task, w.ft_method, w.lr, w.seed, {order}""",
            self._db,
        )
        if cell_ids is not None:
            df = df[df["cell_id"].isin(set(cell_ids))]
        df["selected"] = df["selected"].astype(bool)
        return df[columns].reset_index(drop=True)

    def example_scores(self, cell_ids: Sequence[str] | None = None):
        """Per-example scores beside what their results rows say they measure: one row per (cell,
        model state, unit, metric) with checkpoint, train_task, ft_method, lr, seed, variant, ft_fraction,
        eval_set, format, shots, method, metric and ``vals`` (the list of values, in the eval
        set's order: the same examples for every cell that scores the set). ``cell_ids`` as in
        :meth:`export_frame`."""
        import pandas as pd

        if cell_ids is None:
            cell_ids = self.plan() or None
        df = pd.read_sql_query(
            """SELECT DISTINCT r.cell_id, r.checkpoint, r.train_task, r.ft_method, r.lr, r.seed, s.variant, s.ft_fraction,
                      s.eval_set, s.format, s.shots, s.method, s.metric, s.vals
               FROM scores s JOIN results r
                 ON r.cell_id = s.cell_id AND r.variant = s.variant AND r.ft_fraction = s.ft_fraction
                AND r.eval_set = s.eval_set AND r.format = s.format AND r.shots = s.shots
                AND r.method = s.method AND r.metric = s.metric""", self._db)
        if cell_ids is not None:
            df = df[df["cell_id"].isin(set(cell_ids))]
        df["vals"] = df["vals"].map(json.loads)
        return df.reset_index(drop=True)

    def model_ids(self) -> dict[str, str]:
        """The model each cell's result rows are of, by cell id."""
        return dict(self._db.execute("SELECT DISTINCT cell_id, model_id FROM results").fetchall())

    # -- comparisons -------------------------------------------------------------------------
    def compared_pairs(self) -> set[tuple[str, str]]:
        return set(self._db.execute("SELECT DISTINCT cell_id, base_cell_id FROM comparisons").fetchall())

    def write_comparisons(self, rows: Sequence[ComparisonRow]) -> None:
        self.write_results([], rows)

    # -- learning-rate selection ----------------------------------------------------------
    def write_selections(self, rows: Sequence[dict]) -> None:
        """Record the chosen learning rates in place of every earlier choice (the selections always
        describe the current plan)."""
        with self.transaction() as db:
            db.execute("DELETE FROM selections")
            _upsert(db, "selections", list(rows))

    # -- cells -----------------------------------------------------------------------------
    def register_cells(self, cells: Sequence[tuple[str, str, str, dict]]) -> None:
        """Add (cell_id, kind, label, spec) rows not seen before; existing cells keep their state."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO cells (cell_id, kind, label, spec, status) VALUES (?, ?, ?, ?, 'pending')",
                [(cid, kind, label, json.dumps(spec, sort_keys=True, default=str)) for cid, kind, label, spec in cells],
            )

    def set_plan(self, cell_ids: Sequence[str]) -> None:
        """The current config's cells, in order (replaces the previous plan)."""
        with self.transaction() as db:
            db.execute("DELETE FROM plan")
            db.executemany("INSERT INTO plan (cell_id, position) VALUES (?, ?)",
                           [(cid, i) for i, cid in enumerate(cell_ids)])

    def plan(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT cell_id FROM plan ORDER BY position")]

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

    def reset_running(self) -> list[str]:
        """Cells a killed driver left 'running' are not done: put them back to 'pending' (their
        attempt count and start time stay, for the record). Call only while holding the run lock."""
        with self.transaction() as db:
            ids = [r[0] for r in db.execute("SELECT cell_id FROM cells WHERE status='running'")]
            db.execute("UPDATE cells SET status='pending', notes=? WHERE status='running'",
                       (json.dumps(["interrupted: the run that started this cell ended before it finished"]),))
        return ids

    def cells(self, current_only: bool = True):
        """The cells table (plan order); by default only the current plan's cells (every cell when
        no plan was ever recorded)."""
        import pandas as pd

        if current_only and self.plan():
            return pd.read_sql_query(
                "SELECT c.* FROM cells c JOIN plan p ON p.cell_id = c.cell_id ORDER BY p.position", self._db)
        return pd.read_sql_query("SELECT * FROM cells ORDER BY rowid", self._db)

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, pid: int, host: str, executor: str, slots: int, planned: int) -> int:
        now = time.time()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO runs (pid, host, executor, slots, planned, started_at, heartbeat_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (pid, host, executor, slots, planned, now, now))
            return int(cur.lastrowid)

    def end_run(self, run_id: int, outcome: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE runs SET finished_at=?, outcome=? WHERE run_id=?", (time.time(), outcome, run_id))

    def last_run(self) -> dict | None:
        cur = self._db.execute("SELECT * FROM runs ORDER BY run_id DESC LIMIT 1")
        row = cur.fetchone()
        return dict(zip([d[0] for d in cur.description], row)) if row else None


def _upsert(db: sqlite3.Connection, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    cols = list(rows[0])
    db.executemany(
        f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        [tuple(r[c] for c in cols) for r in rows],
    )


def _type_score_units(db: sqlite3.Connection) -> None:
    """Stores before schema 1 keyed scores by the unit's dotted name ``set.format.Nshot.method``;
    the eval task, which that name lacks, is the one the cell's results give the same eval set."""
    db.execute("ALTER TABLE scores RENAME TO scores_old")
    db.execute(next(s for s in SCHEMA.split(";") if "TABLE IF NOT EXISTS scores" in s))
    eval_task = dict(((cell_id, eval_set), task) for cell_id, eval_set, task
                     in db.execute("SELECT cell_id, eval_set, eval_task FROM results"))
    rows = []
    for cell_id, unit, metric, vals in db.execute("SELECT cell_id, unit, metric, vals FROM scores_old ORDER BY rowid"):
        eval_set, fmt, shots, method = unit.rsplit(".", 3)
        if (cell_id, eval_set) not in eval_task:  # no result to compare: nothing reads these scores
            continue
        rows.append({"cell_id": cell_id, "eval_task": eval_task[cell_id, eval_set], "eval_set": eval_set,
                     "format": fmt, "shots": int(shots.removesuffix("shot")), "method": method, "metric": metric,
                     "vals": vals})
    _upsert(db, "scores", rows)
    db.execute("DROP TABLE scores_old")


def _add_model_states(db: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the model-state columns (``variant``, ``ft_fraction``, ``ft_step``) join
    results, scores and comparisons, the first two in their keys; results also get ``ft_method``.
    Every row of a schema-1 store is a final, unedited model ('none', 1.0); its fine-tuned and
    instruction-tuned rows are full fine-tuning at the step count their training recorded.
    SQLite cannot change a primary key, so each table is rebuilt with its rows."""
    for table in ("results", "scores", "comparisons"):
        have = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        if "variant" in have:  # rebuilt from SCHEMA already, by the migration to schema 1
            continue
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
        db.execute(next(s for s in SCHEMA.split(";") if f"TABLE IF NOT EXISTS {table} (" in s))
        db.execute(f"INSERT INTO {table} ({', '.join(have)}) SELECT {', '.join(have)} FROM {table}_v1")
        db.execute(f"DROP TABLE {table}_v1")
    db.execute("UPDATE results SET ft_method='full' WHERE train_task != '' AND ft_method = ''")
    for table in ("results", "scores"):
        db.execute(f"UPDATE {table} SET ft_step=(SELECT t.steps FROM trainings t WHERE t.cell_id={table}.cell_id) "
                   f"WHERE ft_step IS NULL AND cell_id IN (SELECT cell_id FROM trainings)")


def _add_weights(db: sqlite3.Connection) -> None:
    """Schema 2 -> 3: the ``weights`` table of weight lenses. Stores of earlier schemas have no
    lenses (their cells were computed before them): the table starts empty."""
    db.execute(next(s for s in SCHEMA.split(";") if "TABLE IF NOT EXISTS weights (" in s))


def _add_layers(db: sqlite3.Connection) -> None:
    """Schema 4 -> 5: the ``layers`` table of per-block representation measures, empty for the
    cells computed before it."""
    db.execute(next(s for s in SCHEMA.split(";") if "TABLE IF NOT EXISTS layers (" in s))


def _select_per_method(db: sqlite3.Connection) -> None:
    """Schema 3 -> 4: learning rates are selected per fine-tuning method, so ``ft_method`` joins
    the selections' key. Every selection of an earlier store was full fine-tuning's."""
    have = [row[1] for row in db.execute("PRAGMA table_info(selections)")]
    if "ft_method" in have:
        return
    db.execute("ALTER TABLE selections RENAME TO selections_v3")
    db.execute(next(s for s in SCHEMA.split(";") if "TABLE IF NOT EXISTS selections (" in s))
    db.execute(f"INSERT INTO selections ({', '.join(have)}) SELECT {', '.join(have)} FROM selections_v3")
    db.execute("DROP TABLE selections_v3")


# ---------------------------------------------------------------- a run directory's current results

def results_frame(run_dir: str | Path):
    """The run's long-format results table, limited to the cells of its current config (rows left
    by cells of an earlier config version stay in the store but are not exported)."""
    run_dir = Path(run_dir)
    if not store_path(run_dir).exists():
        raise PtftError(f"{run_dir} is not a run directory: no {STORE_FILE} in it")
    with ResultsStore(store_path(run_dir)) as store:
        return store.export_frame(cell_ids=current_cells(run_dir, store))


def weights_frame(run_dir: str | Path):
    """The run's weight-lenses table (``ptft.store.WEIGHTS_COLUMNS``), limited like
    :func:`results_frame` to the cells of its current config."""
    return _current(run_dir, ResultsStore.weights_frame)


def layers_frame(run_dir: str | Path):
    """The run's per-layer representation table (``ptft.store.LAYERS_COLUMNS``), likewise."""
    return _current(run_dir, ResultsStore.layers_frame)


def _current(run_dir: str | Path, frame_of):
    run_dir = Path(run_dir)
    if not store_path(run_dir).exists():
        raise PtftError(f"{run_dir} is not a run directory: no {STORE_FILE} in it")
    with ResultsStore(store_path(run_dir)) as store:
        return frame_of(store, cell_ids=current_cells(run_dir, store))


def current_cells(run_dir: Path, store: ResultsStore | None = None) -> list[str] | None:
    """The current plan's cell ids: from the store, else from RUN/cells.json (older runs)."""
    if store is not None:
        plan = store.plan()
        if plan:
            return plan
    path = Path(run_dir) / "cells.json"
    return json.loads(path.read_text()) if path.exists() else None
