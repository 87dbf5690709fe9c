"""The fine-tuning cell: fine-tune one checkpoint on one task with one method at one learning
rate and seed, then evaluate the fine-tuned model on the task's eval sets and the other tasks'
in-domain sets (and, as configured, during its training, grafted and as the LiNeS edit), and compare
it with its BASE checkpoint (weight lenses, TuCo, CKA)."""

from __future__ import annotations

from pathlib import Path

from ptft.checkpoints.series import Checkpoint
from ptft.config import StudyConfig, learning_rates, training_inputs
from ptft.engine.cells import (
    Cell,
    CellOutput,
    Expansion,
    Kind,
    added_inputs,
    digest,
    intermediate_fractions,
    method_inputs,
    packing_inputs,
    task_label,
    weight_inputs,
)
from ptft.engine.work import study_tasks, train_and_evaluate
from ptft.grid import FULL, CellKind


class Finetune(Kind):
    kind = CellKind.FINETUNE

    def per_checkpoint(self, ex: Expansion, ck: Checkpoint) -> list[Cell]:
        """One cell per (trained task, method, learning rate, seed). Its id is its *training* hash
        (checkpoint, the task's definition, train and dev data, fine-tuning settings, lr, seed,
        dtype, version, and for a method other than full its name and settings; not the list of
        other methods, learning rates or seeds, not ``keep_weights``) plus the evaluation inputs
        of every set it scores, the intermediate points of ``finetune.eval_at`` and the lens and
        LiNeS settings, each where it differs from before it existed (:func:`added_inputs`).
        Kept weights are addressed by the training hash alone."""
        config = ex.config
        names = [t.name for t in config.tasks]
        settings = {**training_inputs(config.finetune), **packing_inputs(config)}
        points = added_inputs(eval_at=intermediate_fractions(config.finetune.eval_at))
        post_training = weight_inputs(config)
        cells = []
        for tc in config.tasks:
            if not tc.train:
                continue
            sets = {tc.name: ex.sets_of(tc.name, config.evaluation.out_of_domain)}
            if config.evaluation.cross_task:
                sets |= {other: ex.sets_of(other, False) for other in names if other != tc.name}
            units = ex.units(sets)
            for method in config.finetune.methods:
                shown = "" if method == FULL else f" {method}"
                for lr in learning_rates(config, tc, method):
                    for seed in config.finetune.seeds:
                        training = {"kind": CellKind.FINETUNE, **ex.source(ck), "task": tc.name,
                                    "task_def": ex.fp(tc.name, "task"), "train": ex.fp(tc.name, "train"),
                                    "dev": ex.fp(tc.name, "dev"), "lr": lr, "seed": seed, "finetune": settings,
                                    **method_inputs(config, method), **ex.common}
                        cid = digest({**training, **ex.eval_inputs(units),
                                      "selection": config.finetune.selection_metric, **points, **post_training})
                        label = f"FT {ck.label} {task_label(tc.name)}{shown} lr={lr:g} seed={seed}"
                        cells.append(Cell(cid, CellKind.FINETUNE, label, ck, tc.name, lr, seed, digest(training),
                                          units, ex.upstream, ft_method=method))
        return cells

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        # deferred for start-up time: it imports torch and trl
        from ptft.training.finetune import finetune

        during = intermediate_fractions(config.finetune.eval_at)

        def train(model, tokenizer, report, evaluate_during):
            task, data = study_tasks(config)[cell.train_task]
            args = config.finetune.run_args(cell.ft_method, lr=cell.lr, seed=cell.seed)
            return finetune(model, tokenizer, data.train, data.dev, task.formats["default"], args,
                            progress=progress, report=report, during=during, evaluate=evaluate_during)

        return train_and_evaluate(config, run_dir, cell, progress, train, during, against_base=True,
                                  dev_metric=config.finetune.selection_metric == "metric")
