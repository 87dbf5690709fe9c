"""The selected-rate evaluation cell (``finetune.evaluate: selected``): once every learning rate's
fine-tuning cell of a (checkpoint, task, method, seed) has trained, choose the rate on the dev
split, as the driver does after the grid, and evaluate that run's model as its fine-tuning cell
would have. The other rates' models are trained and measured (dev loss, weight lenses) but never
scored, which in a grid of three rates saves two thirds of the fine-tuned models' evaluation."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

from ptft.checkpoints.series import Checkpoint
from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput, Expansion, Kind, digest, weight_inputs
from ptft.engine.kinds.finetune import finetune_units, run_label, trainer
from ptft.engine.selection import select_learning_rates
from ptft.engine.work import EVALUATE, dev_figures_path, train_and_evaluate, weights_dir
from ptft.errors import PtftError
from ptft.grid import CellKind


class Selected(Kind):
    kind = CellKind.SELECTED

    def per_checkpoint(self, ex: Expansion, ck: Checkpoint) -> list[Cell]:
        """One cell per (trained task, method, seed) of the checkpoint, depending on the fine-tuning
        cells of every rate. Its id hashes their ids, the selection criterion, the evaluation
        inputs of every set it scores, the LiNeS and grafting settings and the inputs every cell
        hashes: what decides which model it scores and how (the weight lenses are the training
        cells' own)."""
        config = ex.config
        if config.finetune.evaluate != "selected":
            return []
        runs: dict[tuple, list[Cell]] = {}
        for cell in ex.made:
            if cell.kind == CellKind.FINETUNE:
                runs.setdefault((cell.train_task, cell.ft_method, cell.seed), []).append(cell)
        cells = []
        for (task, method, seed), candidates in runs.items():
            units = finetune_units(ex, task)
            # the runs as cells, in no order: a rerun of one (new dev figures) makes the choice again
            edits = {k: v for k, v in weight_inputs(config).items() if k != "lenses"}
            cid = digest({"kind": CellKind.SELECTED, "runs": sorted(c.cell_id for c in candidates),
                          "selection": config.finetune.selection_metric, **ex.eval_inputs(units), **edits,
                          **ex.common})
            rates = ", ".join(f"{c.lr:g}" for c in candidates)
            cells.append(Cell(cid, CellKind.SELECTED, run_label(ck, task, method, f"selected of {rates}", seed), ck,
                              task, None, seed, units=units, depends_on=[*ex.upstream, *(c.cell_id for c in candidates)],
                              ft_method=method, candidates=[(c.lr, c.training_hash) for c in candidates]))
        return cells

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        """Choose among the runs by their dev figures, then score the chosen run's kept weights
        (trained again, to the same weights, where they are gone). Its rows are the chosen run's
        model's; every candidate's weights are deleted afterwards unless ``finetune.keep_weights``."""
        figures = []
        for lr, training_hash in cell.candidates:
            path = dev_figures_path(run_dir, training_hash)
            if not path.exists():
                raise PtftError(f"{path}: missing; the fine-tuning cell of lr {lr:g} wrote its dev figures there, and "
                                f"{cell.label} chooses by them. Restore the file or start a new run directory (--out)")
            figures.append(dict(checkpoint=cell.checkpoint.label, train_task=cell.train_task,
                                ft_method=cell.ft_method, seed=cell.seed, lr=lr, cell_id=training_hash,
                                **json.loads(path.read_text())))
        by_metric = config.finetune.selection_metric == "metric"
        choices = select_learning_rates(figures, by_metric=by_metric)
        if not choices:
            raise PtftError(f"{cell.label}: no rate to choose: " + "; ".join(
                f"lr {f['lr']:g}: {f.get('diverged') or 'no dev figure'}" for f in figures))
        (choice,) = choices
        lr = choice["lr"]
        chosen = replace(cell, kind=CellKind.FINETUNE, lr=lr, training_hash=choice["cell_id"], candidates=[],
                         label=run_label(cell.checkpoint, cell.train_task, cell.ft_method, f"{lr:g}", cell.seed))
        out = train_and_evaluate(config, run_dir, chosen, progress, trainer(config, chosen, progress, []), [],
                                 against_base=True, dev_metric=False, part=EVALUATE)
        out.model_id = chosen.model_id
        out.training = None  # the trainings table holds each rate's own row, from its fine-tuning cell
        out.notes.insert(0, f"selected lr {lr:g} by {choice['criterion']} among "
                            + ", ".join(f"{rate} ({score:.4g})" for rate, score in json.loads(choice["candidates"]).items()))
        if not config.finetune.keep_weights:
            for _, training_hash in cell.candidates:
                shutil.rmtree(weights_dir(run_dir, replace(cell, training_hash=training_hash)), ignore_errors=True)
            out.notes.append(f"deleted the weights of the {len(cell.candidates)} run(s) (finetune.keep_weights is false)")
        return out
