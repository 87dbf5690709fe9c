"""The work of one cell, run wherever the executor puts it (this process, a worker, a Ray node).

A cell returns everything it produced (result rows, per-example predictions, training figures)
instead of writing to the results store: one writer, the study driver, stores it, so a crash
loses at most the cells in flight and never leaves half a cell behind.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ptft.config import StudyConfig
from ptft.engine.cells import Cell, EvalUnit
from ptft.store import ResultRow
from ptft.tasks import LoadRequest, Task, TaskData, get_task

log = logging.getLogger("ptft.engine")


@dataclass
class CellOutput:
    cell_id: str
    rows: list[ResultRow] = field(default_factory=list)
    predictions: dict[str, list[dict]] = field(default_factory=dict)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    training: dict | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def set_threads(threads: int | None) -> None:
    """Small models on a few cores run faster with one OpenMP thread per worker: threads that
    spin-wait on a busy core make small matmuls ten times slower (measured on 2 cores)."""
    import torch

    threads = threads or int(os.environ.get("PTFT_NUM_THREADS", "0") or 0)
    if threads > 0:
        torch.set_num_threads(threads)


@functools.lru_cache(maxsize=64)
def load_task_data(name: str, data_dir: str | None, seed: int, n_train, n_dev, n_eval) -> tuple[Task, TaskData]:
    task = get_task(name)
    return task, task.load(LoadRequest(data_dir, seed, n_train, n_dev, n_eval))


def study_tasks(config: StudyConfig) -> dict[str, tuple[Task, TaskData]]:
    out = {t.name: load_task_data(t.name, config.data_dir, config.seed, t.n_train, t.n_dev, t.n_eval)
           for t in config.tasks}
    it = config.instruction_tuning
    if it.enabled:
        for name in it.suite:
            out[name] = load_task_data(name, config.data_dir, config.seed, None, None, it.n_eval)
    return out


def unit_key(unit: EvalUnit) -> str:
    return f"{unit.eval_set}.{unit.format}.{unit.shots}shot.{unit.method}"


def run_cell(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool = True) -> CellOutput:
    start = time.perf_counter()
    log_path = run_dir / "logs" / f"{cell.cell_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        log.info("cell %s: %s", cell.cell_id, cell.label)
        with _quiet_hf():
            if cell.kind == "pretrain":
                out = _pretrain(config, run_dir, cell, progress)
            elif cell.kind == "base":
                out = _evaluate_checkpoint(config, run_dir, cell, progress)
            elif cell.kind in ("finetune", "instruct"):
                out = _finetune_and_evaluate(config, run_dir, cell, progress)
            else:
                raise ValueError(f"unknown cell kind {cell.kind!r}")
        out.seconds = time.perf_counter() - start
        log.info("cell %s done in %.1fs", cell.cell_id, out.seconds)
        return out
    except BaseException:
        log.exception("cell %s failed", cell.cell_id)
        raise
    finally:
        root.removeHandler(handler)
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


def _pretrain(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
    from ptft.checkpoints.pretrain import pretrain_series

    result = pretrain_series(config.checkpoints.pretrain, run_dir / "checkpoints", seed=config.seed,
                             progress=progress)
    training = {"tokens_per_second": result.tokens_per_second, "parameters": result.parameters,
                "seconds": result.seconds, "checkpoints": {str(k): str(v) for k, v in result.checkpoints.items()}}
    return CellOutput(cell.cell_id, training=training)


def _load(config: StudyConfig, cell: Cell, path: str | None = None):
    from ptft.checkpoints.loading import load_causal_lm

    ck = cell.checkpoint
    if path is not None:
        return load_causal_lm(path, dtype=config.checkpoints.dtype, device=config.device)
    return load_causal_lm(ck.path, revision=ck.revision, dtype=config.checkpoints.dtype, device=config.device)


def _evaluate_checkpoint(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
    model, tokenizer = _load(config, cell)
    out = CellOutput(cell.cell_id)
    _evaluate_units(config, cell, model, tokenizer, out, progress)
    return out


def _finetune_and_evaluate(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
    from ptft.finetune import finetune, save_model, seed_everything

    weights = run_dir / "models" / cell.training_hash
    out = CellOutput(cell.cell_id)
    if (weights / "config.json").exists() and (weights / "ptft_training.json").exists():
        import json

        model, tokenizer = _load(config, cell, str(weights))
        out.training = json.loads((weights / "ptft_training.json").read_text())
        out.notes.append("reused kept fine-tuned weights")
    else:
        model, tokenizer = _load(config, cell)
        seed_everything(cell.seed)
        if cell.kind == "instruct":
            from ptft.instruct import instruction_tune

            stats = instruction_tune(model, tokenizer, config, cell.seed, progress=progress)
        else:
            ft = config.finetune
            task, data = study_tasks(config)[cell.train_task]
            stats = finetune(
                model, tokenizer, data.train, data.dev, task.formats["default"], lr=cell.lr, epochs=ft.epochs,
                batch_size=ft.batch_size, grad_accum=ft.grad_accum, warmup=ft.warmup,
                weight_decay=ft.weight_decay, max_length=ft.max_length, seed=cell.seed, bf16=ft.bf16,
                progress=progress)
        out.training = {"train_loss": stats.train_loss, "dev_loss": stats.dev_loss, "steps": stats.steps,
                        "tokens": stats.tokens, "seconds": stats.seconds,
                        "tokens_per_second": stats.tokens_per_second}
        if config.finetune.keep_weights:
            import json

            save_model(model, tokenizer, weights)
            (weights / "ptft_training.json").write_text(json.dumps(out.training))
    _evaluate_units(config, cell, model, tokenizer, out, progress)
    if not config.finetune.keep_weights:
        shutil.rmtree(weights, ignore_errors=True)
    return out


def _evaluate_units(config: StudyConfig, cell: Cell, model, tokenizer, out: CellOutput, progress: bool) -> None:
    from ptft.evaluation import Evaluator, select_demos

    tasks = study_tasks(config)
    ev = config.evaluation
    evaluator = Evaluator(model, tokenizer, batch_size=ev.batch_size)
    ck = cell.checkpoint
    from tqdm.auto import tqdm

    for unit in tqdm(cell.units, desc=f"evaluate {cell.label}", unit="set", disable=not progress, leave=False):
        task, data = tasks[unit.eval_task]
        demos = select_demos(data.train, unit.shots, config.seed)
        result = evaluator.evaluate(task, unit.eval_set, data.eval[unit.eval_set], unit.format, demos, unit.method,
                                    seed=config.seed, n_boot=ev.n_bootstrap)
        key = unit_key(unit)
        out.predictions[key] = result.predictions
        out.scores[key] = {m: [float(x) for x in v] for m, v in result.scores.items()}
        out.notes += [f"{key}: {n}" for n in result.notes]
        for metric, mv in result.metrics.items():
            out.rows.append(ResultRow(
                model_id=cell.model_id, checkpoint=ck.label, step=ck.step, train_task=cell.train_task,
                lr=cell.lr, seed=cell.seed, eval_set=unit.eval_set, eval_task=unit.eval_task,
                task_type=task.task_type, domain=task.eval_set(unit.eval_set).domain, format=unit.format,
                shots=unit.shots, method=unit.method, metric=metric, value=mv.value, ci_low=mv.ci_low,
                ci_high=mv.ci_high, n=mv.n, seconds=result.seconds, cell_id=cell.cell_id))
