"""The BASE cell: evaluate one checkpoint few-shot on one eval task's sets. Computed once and
reused by every comparison with the models fine-tuned from it."""

from __future__ import annotations

from pathlib import Path

from ptft.checkpoints.series import Checkpoint
from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput, Expansion, Kind, digest, task_label
from ptft.engine.work import evaluate_units, load_model
from ptft.grid import CellKind


class Base(Kind):
    kind = CellKind.BASE

    def per_checkpoint(self, ex: Expansion, ck: Checkpoint) -> list[Cell]:
        """One cell per eval task (the study's tasks, then the instruction-tuning suite's). Its id
        hashes the checkpoint (and the pre-training that made it), the eval task's definition, its
        training split (the demonstrations) and the eval sets it scores, the evaluation settings
        and units, the seed, the dtype, the thread count and ptft's version."""
        config = ex.config
        names = [t.name for t in config.tasks]
        it = config.instruction_tuning
        cells = []
        for task in names + [s for s in (it.suite if it.enabled else []) if s not in names]:
            units = ex.units({task: ex.sets_of(task, config.evaluation.out_of_domain)})
            cid = digest({"kind": CellKind.BASE, **ex.source(ck), **ex.eval_inputs(units), **ex.common})
            cells.append(Cell(cid, CellKind.BASE, f"BASE {ck.label} {task_label(task)}", ck, units=units,
                              depends_on=ex.upstream))
        return cells

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        model, tokenizer = load_model(config, cell)
        out = CellOutput(cell.cell_id)
        evaluate_units(config, cell, model, tokenizer, out, progress)
        return out
