"""The kinds of cells, one module each (``pretrain``, ``base``, ``finetune``, ``instruct``,
``probe``, ``selected``), each a :class:`~ptft.engine.cells.Kind`: the cells it makes and what their ids hash,
what a cell runs, and what the trainings table keeps of it. The study's cells are their
expansions, in dependency order (:func:`expand`); a cell runs through :func:`run_cell`.

A cell's id is a content hash over everything that determines its result and nothing else
(checkpoint identity, the fingerprints of the data it reads, hyperparameters, evaluation settings,
seed, thread count, ptft version; never the run directory's path), so changing a setting reruns
exactly the cells it touches. Fine-tuned weights are addressed by a narrower *training* hash, so
kept weights are reused when only evaluation settings change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from pathlib import Path

from ptft.checkpoints.series import Checkpoint
from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput, Expansion, Kind
from ptft.engine.kinds.base import Base
from ptft.engine.kinds.finetune import Finetune
from ptft.engine.kinds.instruct import Instruct
from ptft.engine.kinds.pretrain import Pretrain
from ptft.engine.kinds.probe import Probe
from ptft.engine.kinds.selected import Selected
from ptft.engine.work import numerics_of

log = logging.getLogger("ptft.engine")

# In the order their cells are made, per study and then per checkpoint.
KINDS: dict[str, Kind] = {k.kind: k for k in (Pretrain(), Base(), Finetune(), Instruct(), Probe(), Selected())}


def expand(config: StudyConfig, series: list[Checkpoint], fingerprints: dict[str, str | dict],
           task_types: dict[str, str], task_eval_sets: dict[str, list[tuple[str, str]]]) -> list[Cell]:
    """The study's cells in dependency order: the per-study ones (pre-training), then each of
    ``series``' checkpoints', kind by kind. ``fingerprints`` maps task name to its data hash: a
    single string, or (finer, what ``plan_cells`` passes) the dict of
    :func:`~ptft.engine.cells.task_fingerprints`; ``task_eval_sets`` maps task name to
    [(eval set, domain)]."""
    ex = Expansion(config, fingerprints, task_types, task_eval_sets)
    cells = [cell for kind in KINDS.values() for cell in kind.per_study(ex)]
    ex.upstream = [cell.cell_id for cell in cells]
    for ck in series:
        ex.made = []
        for kind in KINDS.values():
            ex.made += kind.per_checkpoint(ex, ck)
        cells += ex.made
    return cells


def run_cell(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool = True) -> CellOutput:
    """Run one cell and return what it produced. Its log goes to ``RUN/logs/<cell_id>.log``
    (appended: every attempt of the cell is in it)."""
    start = time.perf_counter()
    log_path = run_dir / "logs" / f"{cell.cell_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        log.info("cell %s: %s (pid %d on %s)", cell.cell_id, cell.label, os.getpid(), socket.gethostname())
        with _quiet_hf():
            out = KINDS[cell.kind].run(config, run_dir, cell, progress)
        out.seconds = time.perf_counter() - start
        out.numerics = numerics_of(config)
        for note in out.notes:
            log.info("note: %s", note)
        log.info("cell %s done in %.1fs: %d result rows", cell.cell_id, out.seconds, len(out.rows))
        return out
    except BaseException:
        log.exception("cell %s failed after %.1fs", cell.cell_id, time.perf_counter() - start)
        raise
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()


@contextlib.contextmanager
def _quiet_hf():
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()
