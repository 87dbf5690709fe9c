"""The study driver: expand a config into cells, run what is not done, store every result.

The driver is the only writer of the results store, and only one driver works on a run directory
at a time (it holds ``RUN/.ptft-run.lock``; a second `ptft run` on the same directory is refused).
A cell's rows and its 'done' mark go in one transaction, so a run killed at any moment loses only
the cells in flight: the next run finds them 'running' with no driver alive, puts them back to
pending, skips every done cell, retries failed ones, and ends with the same numbers as an
uninterrupted run.

Cells are submitted as soon as the cells they depend on are done and the executor has a free
slot (no stage barrier). After the grid, the driver has :mod:`ptft.engine.selection` select each
(checkpoint, task, seed)'s learning rate on the dev split and compute the paired FT - BASE
comparisons not yet stored, and stores them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ptft.checkpoints.series import resolve_series
from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput, task_fingerprints
from ptft.engine.executors import CellFailure, make_executor
from ptft.engine.kinds import KINDS, expand
from ptft.engine.preflight import check_study
from ptft.engine.selection import compare_with_base, select_learning_rates
from ptft.engine.summary import summary_table
from ptft.engine.work import numerics_of, study_tasks, write_json, write_jsonl
from ptft.errors import PtftError, naming, raise_stop, stop_exception
from ptft.grid import CellKind, store_path
from ptft.store import ResultsStore
from ptft.tracking import StudyTracker, open_tracker

log = logging.getLogger("ptft.engine")

CONFIG_FILE = "study.yaml"
LOCK_FILE = ".ptft-run.lock"


@dataclass
class StudyRun:
    run_dir: Path
    cells: list[Cell]
    ran: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    blocked: list[str] = field(default_factory=list)  # not run: a cell they depend on failed
    interrupted: list[str] = field(default_factory=list)  # left 'running' by a killed earlier run


def plan_cells(config: StudyConfig, run_dir: Path) -> list[Cell]:
    series = resolve_series(config, run_dir)
    tasks = study_tasks(config)
    fingerprints = {name: task_fingerprints(task, data) for name, (task, data) in tasks.items()}
    task_types = {name: task.task_type for name, (task, _) in tasks.items()}
    eval_sets = {name: [(e.name, e.domain) for e in task.eval_sets] for name, (task, _) in tasks.items()}
    return expand(config, series, fingerprints, task_types, eval_sets)


# -- the run lock ------------------------------------------------------------------------------

class RunLock:
    """An exclusive ``flock`` on ``RUN/.ptft-run.lock`` for the driver's lifetime. The kernel drops
    it when the driver dies, however it dies, so a lock is never left stale."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 512).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise PtftError(f"{self.path.parent} is being run by {holder}; wait for it to finish "
                            f"(`ptft status {self.path.parent}`) or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def driver_alive(run_dir: str | Path) -> str | None:
    """Who is running this directory now ("pid N on HOST since ..."), or None."""
    import fcntl

    path = Path(run_dir) / LOCK_FILE
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 512).decode(errors="replace").strip() or "a running process"
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# -- the driver ---------------------------------------------------------------------------------

def run_study(config: StudyConfig, *, run_dir: str | Path | None = None, executor: str | None = None,
              address: str | None = None, workers: int | None = None, progress: bool = True,
              allow_mixed_numerics: bool = False) -> StudyRun:
    """Run what is not done. The cells of a run must all be computed with the same numerics
    (:func:`ptft.engine.work.numerics_of`): a resume on another kind of machine or torch build is
    refused before anything runs (and a Ray node that differs fails its cells) unless
    ``allow_mixed_numerics``."""
    from tqdm.auto import tqdm

    run_dir = Path(run_dir or config.output_dir)
    cells = plan_cells(config, run_dir)
    for note in check_study(config, run_dir, cells):  # before anything is written
        tqdm.write(f"note: {note}")
    # a write that fails on a full disk names no file: it is one of the run directory's
    with naming(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(run_dir), _sigterm_exits():
            return _run_locked(config, run_dir, cells, executor, address, workers, progress, allow_mixed_numerics)


@contextlib.contextmanager
def _sigterm_exits():
    """SIGTERM (a scheduler's time limit, `scancel`, `kill`) ends the run like Ctrl-C does: cells in
    flight are cancelled and put back to pending, the run is recorded as interrupted. Both signals
    also leave a mark the driver checks after each cell: Python ignores an exception raised inside
    a ``__del__`` or a callback, so a Ctrl-C landing there would otherwise be lost."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        global _stop_signal
        _stop_signal = signum
        raise_stop(signum, frame)

    global _stop_signal
    _stop_signal = None
    old = {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, previous in old.items():
            signal.signal(signum, previous)


_stop_signal: int | None = None  # the signal that asked the driver to stop, if one did


def _run_locked(config: StudyConfig, run_dir: Path, cells: list[Cell], executor: str | None, address: str | None,
                workers: int | None, progress: bool, allow_mixed_numerics: bool) -> StudyRun:
    from tqdm.auto import tqdm

    (run_dir / CONFIG_FILE).write_text(config.to_yaml())
    by_id = {c.cell_id: c for c in cells}
    store = ResultsStore(store_path(run_dir))
    tracker = None
    try:
        store.register_cells([(c.cell_id, c.kind, c.label, c.spec()) for c in cells])
        store.set_plan([c.cell_id for c in cells])
        write_json(run_dir / "cells.json", [c.cell_id for c in cells])
        interrupted = store.reset_running()  # we hold the lock: whoever left them running is gone
        status = store.cell_status()
        todo = [c for c in cells if status.get(c.cell_id) != "done"]
        result = StudyRun(run_dir, cells, skipped=len(cells) - len(todo),
                          interrupted=[i for i in interrupted if i in by_id])
        tracker = open_tracker(config, run_dir)  # a missing tracking package fails before any work
        runner = make_executor(config, executor, address, workers)
        numerics = None if allow_mixed_numerics else _run_numerics(store, cells, todo, runner, config, run_dir)
        start = time.perf_counter()
        run_id, bar, outcome = None, None, "interrupted"
        try:
            runner.start(config, run_dir, progress)
            run_id = store.start_run(os.getpid(), socket.gethostname(), runner.kind, runner.slots, len(cells))
            bar = tqdm(total=len(cells), initial=result.skipped, desc=f"study {config.name}", unit="cell",
                       disable=not progress, position=0, dynamic_ncols=True)
            _drive(store, runner, run_dir, todo, status, by_id, result, bar, numerics, tracker)
            outcome = "failed" if result.failed or result.blocked else "finished"
        finally:
            if bar is not None:
                bar.close()
            runner.close(cancel=outcome == "interrupted")
            store.reset_running()  # cells in flight when the driver stopped are not done
            if run_id is not None:
                store.end_run(run_id, outcome)
        _select_learning_rates(store, config, cells)
        _compare_with_base(store, cells, config)
        if tracker is not None:
            tracker.log_summary(summary_table(run_dir))
        result.seconds = time.perf_counter() - start
        return result
    finally:
        if tracker is not None:
            tracker.close()
        store.close()


def _run_numerics(store: ResultsStore, cells: list[Cell], todo: list[Cell], runner, config: StudyConfig,
                  run_dir: Path) -> list[str]:
    """The numerics every cell of this run must be computed with (a one-element list, filled by
    the first cell to finish when none is done yet). A local resume that would compute with other
    numerics is refused here, before any cell runs."""
    done = store.numerics([c.cell_id for c in cells])
    if len(done) > 1:
        log.warning("%s already mixes results computed with %s", run_dir, " and ".join(done))
    if len(done) != 1:
        return []
    (theirs, cell_ids), = done.items()
    if todo and runner.kind == "local":
        mine = numerics_of(config)
        if mine != theirs:
            raise PtftError(_mixing_message(run_dir, len(cell_ids), theirs, mine, "this machine"))
    return [theirs]


def _mixing_message(run_dir: Path, n_done: int, theirs: str, mine: str, where: str) -> str:
    return (f"{run_dir}: its {n_done} done cell(s) were computed with {theirs}, but {where} computes with "
            f"{mine}; the run would mix numbers computed two ways. Finish it on the same kind of machine and "
            "torch build, start a new run directory (--out), or pass --allow-mixed-numerics to accept the mix")


def _drive(store: ResultsStore, runner, run_dir: Path, todo: list[Cell], status: dict[str, str],
           by_id: dict[str, Cell], result: StudyRun, bar, numerics: list[str] | None,
           tracker: StudyTracker | None = None) -> None:
    """Submit every cell whose dependencies are done while the executor has room; store each
    outcome as it arrives (and log its metrics to the tracker). Cells depending on a failed cell
    are left pending (``blocked``). ``numerics`` (see :func:`_run_numerics`; None: anything goes):
    an outcome computed otherwise is not stored but recorded as a failure."""
    from tqdm.auto import tqdm

    queue = list(todo)
    failed: set[str] = set()
    running: dict[str, str] = {}
    while queue or runner.in_flight():
        room = runner.free() if queue else 0
        for cell in list(queue):
            if any(d in failed or d in result.blocked for d in cell.depends_on):
                queue.remove(cell)
                result.blocked.append(cell.cell_id)
            elif room > 0 and all(status.get(d) == "done" for d in cell.depends_on):
                queue.remove(cell)
                store.mark_cell(cell.cell_id, "running")
                runner.submit(cell)
                running[cell.cell_id] = cell.label
                room -= 1
        if not runner.in_flight():
            result.blocked += [c.cell_id for c in queue]  # waiting for cells that are not in this plan
            break
        bar.set_postfix_str(", ".join(running.values())[:100])
        out = runner.next_outcome()
        if _stop_signal is not None:  # the signal arrived inside code that swallowed its exception
            if isinstance(out, CellOutput):
                _store_output(store, run_dir, by_id[out.cell_id], out)
            raise stop_exception(_stop_signal)
        running.pop(out.cell_id, None)
        if isinstance(out, CellOutput) and numerics is not None:
            if not numerics:
                numerics.append(out.numerics)
            elif out.numerics != numerics[0]:
                n_done = sum(s == "done" for s in status.values())
                why = _mixing_message(run_dir, n_done, numerics[0], out.numerics, "the worker that ran this cell")
                out = CellFailure(out.cell_id, f"NumericsMismatch: {why}", "", out.seconds)
        if isinstance(out, CellFailure):
            store.mark_cell(out.cell_id, "failed", error=out.error, traceback=out.traceback, seconds=out.seconds)
            failed.add(out.cell_id)
            result.failed.append(out.cell_id)
            first = (out.error.splitlines() or [""])[0]  # whole: a cut message loses what to do
            tqdm.write(f"cell failed: {by_id[out.cell_id].label}: {first} "
                       f"(log: {run_dir / 'logs' / (out.cell_id + '.log')})")
        else:
            _store_output(store, run_dir, by_id[out.cell_id], out)
            if tracker is not None:
                tracker.log_rows(out.rows)
            status[out.cell_id] = "done"
            result.ran += 1
        bar.update(1)


def _store_output(store: ResultsStore, run_dir: Path, cell: Cell, out: CellOutput) -> None:
    """Predictions go to files (RUN/predictions/<model>/<unit>.jsonl, written whole and renamed,
    for people and the report); rows, per-example scores, training figures and the done mark go
    to the store in one transaction."""
    if out.predictions:
        model_dir = run_dir / "predictions" / (out.model_id or cell.model_id).replace("/", "__")
        model_dir.mkdir(parents=True, exist_ok=True)
        for name, preds in out.predictions.items():
            write_jsonl(model_dir / f"{name}.jsonl", preds)
    training = KINDS[cell.kind].training_row(run_dir, cell, out)
    store.finish_cell(out.cell_id, out.rows, training, out.notes, out.seconds, scores=out.scores,
                      numerics=out.numerics, weights=out.weights, layers=out.layers)


def _select_learning_rates(store: ResultsStore, config: StudyConfig, cells: list[Cell]) -> None:
    """Rebuilt for the current plan's fine-tuning cells whenever the grid ends."""
    current = [c.cell_id for c in cells if c.kind == CellKind.FINETUNE]
    store.write_selections(select_learning_rates(store.trainings(current),
                                                 by_metric=config.finetune.selection_metric == "metric"))


def _compare_with_base(store: ResultsStore, cells: list[Cell], config: StudyConfig) -> None:
    """Pairs of cells are content-addressed, so a pair compared once is never recomputed."""
    status = store.cell_status()
    done = {c.cell_id for c in cells if status.get(c.cell_id) == "done"}
    rows = compare_with_base(cells, done, store.compared_pairs(), store.scores, seed=config.seed,
                             n_boot=config.evaluation.n_bootstrap, model_ids=store.model_ids())
    if rows:
        store.write_comparisons(rows)


