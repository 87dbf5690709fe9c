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
    lens_inputs,
    method_inputs,
    packing_inputs,
    task_label,
    weight_inputs,
)
from ptft.engine.work import ALL, TRAIN, Train, study_tasks, train_and_evaluate
from ptft.grid import FULL, CellKind, EvalUnit
from ptft.task_types import get_task_type


def finetune_units(ex: Expansion, task: str) -> list[EvalUnit]:
    """What a model fine-tuned on ``task`` is scored on: the task's eval sets and, with
    ``evaluation.cross_task``, the other tasks' in-domain sets."""
    config = ex.config
    sets = {task: ex.sets_of(task, config.evaluation.out_of_domain)}
    if config.evaluation.cross_task:
        sets |= {t.name: ex.sets_of(t.name, False) for t in config.tasks if t.name != task}
    return ex.units(sets)


def run_label(ck: Checkpoint, task: str, method: str, rate: str, seed: int) -> str:
    shown = "" if method == FULL else f" {method}"
    return f"FT {ck.label} {task_label(task)}{shown} lr={rate} seed={seed}"


def trainer(config: StudyConfig, cell: Cell, progress: bool, during: list[float]) -> Train:
    """How a fine-tuning cell's model is trained: the recipe at the cell's method, rate and seed."""
    # deferred for start-up time: it imports torch and trl
    from ptft.training.finetune import finetune

    def train(model, tokenizer, report, evaluate_during):
        task, data = study_tasks(config)[cell.train_task]
        args = config.finetune.run_args(cell.ft_method, lr=cell.lr, seed=cell.seed)
        return finetune(model, tokenizer, data.train, data.dev, task.formats["default"], args,
                        progress=progress, report=report, during=during, evaluate=evaluate_during)

    return train


class Finetune(Kind):
    kind = CellKind.FINETUNE

    def per_checkpoint(self, ex: Expansion, ck: Checkpoint) -> list[Cell]:
        """One cell per (trained task, method, learning rate, seed). Its id is its *training* hash
        (checkpoint, the task's definition, train and dev data, fine-tuning settings, lr, seed,
        dtype, version, and for a method other than full its name and settings; not the list of
        other methods, learning rates or seeds, not ``keep_weights``) plus the evaluation inputs
        of every set it scores, the intermediate points of ``finetune.eval_at`` and the lens and
        LiNeS settings, each where it differs from before it existed (:func:`added_inputs`).
        Kept weights are addressed by the training hash alone.

        Under ``finetune.evaluate: selected`` the cell only trains (and measures the weight
        lenses): it scores nothing, so its id is the training hash plus the selection criterion
        and the lens settings, and the ``selected`` kind's cell evaluates the rate chosen."""
        config = ex.config
        settings = {**training_inputs(config.finetune), **packing_inputs(config)}
        points = added_inputs(eval_at=intermediate_fractions(config.finetune.eval_at))
        post_training = weight_inputs(config)
        selected = config.finetune.evaluate == "selected"
        cells = []
        for tc in config.tasks:
            if not tc.train:
                continue
            units = [] if selected else finetune_units(ex, tc.name)
            # the training half scores the dev split itself when the selection is by the metric
            dev_inputs = {}
            if selected and config.finetune.selection_metric == "metric":
                dev_method = get_task_type(ex.task_types[tc.name]).study_methods(config.evaluation.methods)[0]
                dev_inputs = {"dev_method": dev_method, **ex.eval_inputs([])}
            for method in config.finetune.methods:
                for lr in learning_rates(config, tc, method):
                    for seed in config.finetune.seeds:
                        training = {"kind": CellKind.FINETUNE, **ex.source(ck), "task": tc.name,
                                    "task_def": ex.fp(tc.name, "task"), "train": ex.fp(tc.name, "train"),
                                    "dev": ex.fp(tc.name, "dev"), "lr": lr, "seed": seed, "finetune": settings,
                                    **method_inputs(config, method), **ex.common}
                        if selected:
                            outputs = {"evaluate": "selected", **lens_inputs(config), **dev_inputs}
                        else:
                            outputs = {**ex.eval_inputs(units), **points, **post_training}
                        cid = digest({**training, "selection": config.finetune.selection_metric, **outputs})
                        label = run_label(ck, tc.name, method, f"{lr:g}", seed)
                        cells.append(Cell(cid, CellKind.FINETUNE, label, ck, tc.name, lr, seed, digest(training),
                                          units, ex.upstream, ft_method=method))
        return cells

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        during = intermediate_fractions(config.finetune.eval_at)
        part = TRAIN if config.finetune.evaluate == "selected" else ALL
        return train_and_evaluate(config, run_dir, cell, progress, trainer(config, cell, progress, during), during,
                                  against_base=True, dev_metric=config.finetune.selection_metric == "metric",
                                  part=part)
