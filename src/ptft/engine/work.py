"""The work of one cell, run wherever the executor puts it (this process, a worker, a Ray node).

A cell returns everything it produced (result rows, per-example predictions, training figures)
instead of writing to the results store: one writer, the study driver, stores it, so a crash
loses at most the cells in flight and never leaves half a cell behind.

The recipes and the evaluator (torch, transformers, trl) are imported inside the functions that
run them: the planner and the driver import this module, and `ptft plan`, `status` and the driver
process itself never need torch.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

from ptft.config import StudyConfig
from ptft.engine.cells import Cell, heldout_source, intermediate_fractions
from ptft.grid import FINAL, PROBE_METHOD, CellKind, ModelState, Scores
from ptft.task_types import get_task_type
from ptft.store import ResultRow
from ptft.tasks import LoadRequest, Task, TaskData, get_task
from ptft.tasks.base import completion_text
from ptft.tracking import training_report
from ptft.training.args import InstructArgs
from ptft.training.corpus import load_corpus, split_documents
from ptft.training.methods import get_method

log = logging.getLogger("ptft.engine")


@dataclass
class CellOutput:
    cell_id: str
    rows: list[ResultRow] = field(default_factory=list)
    predictions: dict[str, list[dict]] = field(default_factory=dict)
    scores: Scores = field(default_factory=dict)
    training: dict | None = None
    # weight-space lenses, one dict per matrix (the store's ``weights`` table)
    weights: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    numerics: str = ""


def numerics_of(config: StudyConfig) -> str:
    """What a cell's floating-point results depend on besides its inputs and its thread count (a
    setting, part of its id): the torch build, the kernels the hardware selects (a CPU's vector
    ISA, a GPU's model) and the attention kernels fine-tuning picks where that is not SDPA. The
    cells of one run must agree on it, or the run would silently mix numbers computed two ways."""
    import torch

    from ptft.checkpoints.loading import fine_tuning_attention, pick_device

    if pick_device(config.device).startswith("cuda"):
        hardware = f"CUDA {torch.version.cuda} on {torch.cuda.get_device_name()}"
    else:
        hardware = f"CPU kernels {torch.backends.cpu.get_cpu_capability()}"
    attention = fine_tuning_attention(config.device, config.finetune.bf16 or config.checkpoints.dtype != "float32")
    return f"torch {torch.__version__}, {hardware}" + ("" if attention == "sdpa" else f", fine-tuning on {attention}")


def set_threads(threads: int) -> None:
    import torch

    if torch.get_num_threads() != threads:
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


def task_label(config: StudyConfig, name: str) -> str:
    """What results call a task: its own name (a user task's ``name:``, not the path of its YAML
    file, which the config holds to load it). Other labels (``instruct``, '' for BASE) stay."""
    tasks = study_tasks(config)
    return tasks[name][0].name if name in tasks else name


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
            out = RUNNERS[cell.kind](config, run_dir, cell, progress)
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


PRETRAIN_MARKER = "ptft_pretrain.json"


def _pretrain(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
    """Pre-train into RUN/checkpoints (resuming a killed pre-training of the same settings). A
    series made with other settings (another pre-training cell) is moved aside to
    RUN/checkpoints.<its cell id>, never resumed from or silently reused."""
    from ptft.training.pretrain import pretrain_series

    folder = run_dir / "checkpoints"
    marker = folder / PRETRAIN_MARKER
    out = CellOutput(cell.cell_id)
    if marker.exists():
        previous = json.loads(marker.read_text()).get("cell_id")
        if previous != cell.cell_id:
            aside = run_dir / f"checkpoints.{previous}"
            shutil.rmtree(aside, ignore_errors=True)
            folder.rename(aside)
            out.notes.append(f"pre-training settings changed: the earlier series moved to {aside.name}")
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"cell_id": cell.cell_id}))
    result = pretrain_series(config.checkpoints.pretrain, folder, seed=config.seed, progress=progress)
    out.training = {"tokens_per_second": result.tokens_per_second, "parameters": result.parameters,
                    "seconds": result.seconds, "checkpoints": {str(k): str(v) for k, v in result.checkpoints.items()}}
    return out


def _load(config: StudyConfig, cell: Cell, path: str | None = None, dtype: str | None = None):
    from ptft.checkpoints.loading import load_causal_lm

    ck = cell.checkpoint
    dtype = dtype or config.checkpoints.dtype
    if path is not None:
        return load_causal_lm(path, dtype=dtype, device=config.device)
    return load_causal_lm(ck.path, revision=ck.revision, dtype=dtype, device=config.device)


def _evaluate_checkpoint(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
    model, tokenizer = _load(config, cell)
    out = CellOutput(cell.cell_id)
    _evaluate_units(config, cell, model, tokenizer, out, progress)
    return out


TRAINING_FILE = "ptft_training.json"


def weights_dir(run_dir: Path, cell: Cell) -> Path:
    """Where a fine-tuned model's weights are kept: addressed by its training hash, so a cell that
    differs only in evaluation settings finds them."""
    return run_dir / "models" / cell.training_hash


def _finetune_and_evaluate(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
    from ptft.training.finetune import NonFiniteLoss, finetune, seed_everything

    weights = weights_dir(run_dir, cell)
    out = CellOutput(cell.cell_id)
    during = intermediate_fractions(config.finetune.eval_at) if cell.kind == CellKind.FINETUNE else []
    # the training figures are written last into a staging folder renamed whole (_keep)
    kept = (weights / TRAINING_FILE).exists()
    if kept and during:
        out.notes.append(f"kept weights models/{cell.training_hash} not reused: finetune.eval_at evaluates "
                         "the model during its training, so it is trained again (to the same weights)")
    method = get_method(cell.ft_method)
    if kept and not during:
        model, tokenizer = method.load(weights, lambda path: _load(config, cell, path))
        out.training = json.loads((weights / TRAINING_FILE).read_text()) | {"reused": 1}
        out.notes.append(f"reused kept fine-tuned weights models/{cell.training_hash}")
        log.info("reusing kept weights %s", weights)
    else:
        # Training keeps float32 master weights whatever checkpoints.dtype says: in bf16 an AdamW
        # update at the paper's lr 2e-7 rounds to nothing (finetune.bf16 gives bf16 arithmetic).
        model, tokenizer = _load(config, cell, dtype="float32")
        seed_everything(cell.seed)
        report = training_report(config, run_dir, cell.label)
        if cell.kind == CellKind.INSTRUCT:
            from ptft.training.instruct import instruction_tune

            model, stats = instruction_tune(model, tokenizer, InstructArgs.from_config(config, cell.seed),
                                            progress=progress, report=report)
        else:
            task, data = study_tasks(config)[cell.train_task]
            args = config.finetune.run_args(cell.ft_method, lr=cell.lr, seed=cell.seed)

            def evaluate_during(trained, fraction: float, step: int) -> None:
                _evaluate_units(config, cell, _at_eval_precision(config, trained), tokenizer, out, progress,
                                ModelState(ft_fraction=fraction, ft_step=step))

            model, stats = finetune(model, tokenizer, data.train, data.dev, task.formats["default"], args,
                                    progress=progress, report=report, during=during, evaluate=evaluate_during)
        if not math.isfinite(stats.dev_loss):
            raise NonFiniteLoss(f"the dev loss after fine-tuning is {stats.dev_loss}; lower the learning rate")
        out.training = {"train_loss": stats.train_loss, "dev_loss": stats.dev_loss, "steps": stats.steps,
                        "tokens": stats.tokens, "seconds": stats.seconds,
                        "tokens_per_second": stats.tokens_per_second, "reused": 0,
                        "trainable_parameters": stats.trainable_parameters, "peak_memory_mb": stats.peak_memory_mb,
                        "examples_per_step": stats.examples_per_step}
        log.info("trained: %s", out.training)
        if config.finetune.keep_weights:
            _keep(model, tokenizer, weights, out.training, method.save)
        model = method.merged(model)
    base = _base_weights(config, cell)
    # on the float32 weights training produced, before evaluation's dtype rounds them (kept weights
    # are loaded at that dtype already)
    _lenses(config, cell, model, base, out)
    model = _at_eval_precision(config, model, in_place=True)
    out.training["train_task"] = task_label(config, cell.train_task)  # the label its rows carry
    if cell.kind == CellKind.FINETUNE and config.finetune.selection_metric == "metric":
        out.training["dev_metric"] = _dev_metric(config, cell, model, tokenizer)
    trained = ModelState(ft_step=out.training.get("steps"))
    _evaluate_units(config, cell, model, tokenizer, out, progress, trained)
    if base is not None and config.lines.enabled:
        from ptft.evaluation.weights import apply_lines

        apply_lines(model, base, config.lines.alpha, config.lines.beta)
        _evaluate_units(config, cell, model, tokenizer, out, progress, replace(trained, variant="lines"))
    if not config.finetune.keep_weights and weights.exists():
        shutil.rmtree(weights, ignore_errors=True)
        out.notes.append(f"deleted weights models/{cell.training_hash} (finetune.keep_weights is false)")
    return out


def _at_eval_precision(config: StudyConfig, model, in_place: bool = False):
    """The model at the precision BASE is evaluated at, so FT - BASE differs only in the weights.
    During training (not ``in_place``) a copy: casting the float32 master weights down and back
    would change the training."""
    import copy

    from ptft.checkpoints.loading import DTYPES

    dtype = DTYPES[config.checkpoints.dtype]
    if next(model.parameters()).dtype == dtype:
        return model
    return model.to(dtype) if in_place else copy.deepcopy(model).to(dtype)


def _base_weights(config: StudyConfig, cell: Cell) -> dict | None:
    """The BASE checkpoint's parameters by name, in float32 on the model's device, when a fine-tuning
    cell computes lenses or LiNeS (instruction tuning does neither); None otherwise."""
    if cell.kind != CellKind.FINETUNE or not (config.lenses.enabled or config.lines.enabled):
        return None
    base, _ = _load(config, cell, dtype="float32")
    return {n: p.detach() for n, p in base.named_parameters()}


def _lenses(config: StudyConfig, cell: Cell, model, base: dict | None, out: CellOutput) -> None:
    """The weight-space lenses of the fine-tuned ``model`` against ``base``, one row per matrix."""
    if base is None or not config.lenses.enabled:
        return
    from ptft.evaluation.weights import weight_lenses

    start = time.perf_counter()
    lenses = weight_lenses(base, dict(model.named_parameters()), k=config.lenses.intruder_k,
                           epsilon=config.lenses.intruder_epsilon)
    ck = cell.checkpoint
    model_columns = {"model_id": cell.model_id, "checkpoint": ck.label, "step": ck.step,
                     "train_task": task_label(config, cell.train_task), "ft_method": cell.ft_method, "lr": cell.lr,
                     "seed": cell.seed, "intruder_k": config.lenses.intruder_k,
                     "intruder_epsilon": config.lenses.intruder_epsilon}
    out.weights = [model_columns | asdict(x) for x in lenses]
    out.notes.append(f"weight lenses: {len(lenses)} matrices in {time.perf_counter() - start:.2f}s")


def _keep(model, tokenizer, weights: Path, training: dict, save_model) -> None:
    """Save the weights with their training figures; the folder appears complete or not at all."""
    staging = weights.with_name(weights.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    save_model(model, tokenizer, staging)
    (staging / TRAINING_FILE).write_text(json.dumps({k: v for k, v in training.items() if k != "reused"}))
    if weights.exists():
        shutil.rmtree(weights)
    staging.rename(weights)


def _dev_metric(config: StudyConfig, cell: Cell, model, tokenizer) -> float:
    """The task's metric on its dev split (Default format, zero-shot, the first method): the
    criterion of ``finetune.selection_metric: metric``. Never an eval set."""
    from ptft.evaluation import Evaluator

    task, data = study_tasks(config)[cell.train_task]
    method = get_task_type(task.task_type).study_methods(config.evaluation.methods)[0]
    evaluator = Evaluator(model, tokenizer, batch_size=config.evaluation.batch_size)
    result = evaluator.evaluate(task, task.in_domain[0].name, data.dev, "default", [], method, seed=config.seed,
                                n_boot=1)
    return float(result.metrics[task.metric].value)


def _heldout_docs(config: StudyConfig) -> list[str]:
    """The documents of the probes' held-out loss (see :func:`ptft.engine.cells.heldout_source`)."""
    source = heldout_source(config)
    if source == "pretrain_heldout":
        settings = config.checkpoints.pretrain
        return split_documents(load_corpus(settings.corpus, settings.max_documents), settings.heldout_fraction)[1]
    if source == "probes_text":
        return load_corpus([config.probes.text])
    tasks = study_tasks(config)
    return [task.formats["default"].render(ex) + completion_text(ex.target)
            for task, data in (tasks[t.name] for t in config.tasks) for ex in data.train]


def _probe(config: StudyConfig, cell: Cell) -> CellOutput:
    """A checkpoint's proxies as result rows (method ``probe``, train_task ''): ``heldout_loss``
    and ``sensitivity`` with eval_set '' and the held-out text's name as eval_task, and
    ``gold_loglik`` per unit."""
    import numpy as np

    from ptft.evaluation import Evaluator, select_demos
    from ptft.evaluation.probes import heldout_loss, sensitivity, text_windows
    from ptft.evaluation.scoring import infer_max_length
    from ptft.evaluation.stats import metric_value

    model, tokenizer = _load(config, cell)
    out = CellOutput(cell.cell_id)
    ck, pr, ev = cell.checkpoint, config.probes, config.evaluation
    config_hash = config.hash()

    def row(eval_set: str, eval_task: str, task_type: str, domain: str, shots: int, metric: str, value: float,
            ci_low=None, ci_high=None, n=None, seconds=0.0) -> ResultRow:
        return ResultRow(model_id=cell.model_id, checkpoint=ck.label, step=ck.step, train_task="", lr=None,
                         seed=None, eval_set=eval_set, eval_task=eval_task, task_type=task_type, domain=domain,
                         format="default", shots=shots, method=PROBE_METHOD,
                         metric=metric, value=value, ci_low=ci_low, ci_high=ci_high, n=n, seconds=seconds,
                         config_hash=config_hash, cell_id=cell.cell_id)

    start = time.perf_counter()
    source = heldout_source(config)
    if source == "pretrain_heldout":
        settings = config.checkpoints.pretrain  # the very windows pre-training logged its held-out loss on
        windows, seq_len = settings.heldout_windows, settings.seq_len
    else:
        windows, seq_len = pr.windows, pr.seq_len
    batches = text_windows(tokenizer, _heldout_docs(config), windows, seq_len, ev.batch_size,
                           infer_max_length(model, tokenizer))
    clean = heldout_loss(model, batches)
    n_windows = sum(len(b) for b in batches)
    out.rows.append(row("", source, "", "", 0, "heldout_loss", clean, n=n_windows,
                        seconds=time.perf_counter() - start))
    start = time.perf_counter()
    draws = sensitivity(model, batches, pr.sigma, pr.draws, config.seed, clean=clean)
    mean = float(np.mean(draws))
    half = 1.96 * float(np.std(draws, ddof=1)) / math.sqrt(len(draws)) if len(draws) > 1 else float("nan")
    out.rows.append(row("", source, "", "", 0, "sensitivity", mean, mean - half, mean + half, len(draws),
                        time.perf_counter() - start))
    log.info("probe %s: held-out loss %.4f on %d windows of %s, sensitivity %.4f (sigma %g, %d draws)",
             ck.label, clean, n_windows, source, mean, pr.sigma, pr.draws)
    tasks = study_tasks(config)
    evaluator = Evaluator(model, tokenizer, batch_size=ev.batch_size)
    for unit in cell.units:
        task, data = tasks[unit.eval_task]
        start = time.perf_counter()
        values, notes = evaluator.gold_logliks(task, unit.eval_set, data.eval[unit.eval_set], unit.format,
                                               select_demos(data.train, unit.shots, config.seed))
        out.notes += [f"{unit.name}: {n}" for n in notes]
        mv = metric_value(values, config.seed, n_boot=ev.n_bootstrap)
        out.rows.append(row(unit.eval_set, task.name, task.task_type, "in", unit.shots, "gold_loglik", mv.value,
                            mv.ci_low, mv.ci_high, mv.n, time.perf_counter() - start))
    return out


def _evaluate_units(config: StudyConfig, cell: Cell, model, tokenizer, out: CellOutput, progress: bool,
                    state: ModelState = FINAL) -> None:
    """Score every unit of the cell on ``model`` in its ``state`` (the rows and scores say which)."""
    from ptft.evaluation import Evaluator, select_demos

    tasks = study_tasks(config)
    ev = config.evaluation
    evaluator = Evaluator(model, tokenizer, batch_size=ev.batch_size)
    ck = cell.checkpoint
    config_hash = config.hash()
    from tqdm.auto import tqdm

    for unit in tqdm(cell.units, desc=f"evaluate {cell.label}", unit="set", disable=not progress, leave=False):
        name = unit.name + state.suffix
        task, data = tasks[unit.eval_task]
        demos = select_demos(data.train, unit.shots, config.seed)
        result = evaluator.evaluate(task, unit.eval_set, data.eval[unit.eval_set], unit.format, demos, unit.method,
                                    seed=config.seed, n_boot=ev.n_bootstrap)
        out.predictions[name] = result.predictions
        out.scores.setdefault(state, {})[unit] = {m: [float(x) for x in v] for m, v in result.scores.items()}
        out.notes += [f"{name}: {n}" for n in result.notes]
        log.info("evaluated %s: %s (%.1fs)", name, {m: round(v.value, 4) for m, v in result.metrics.items()},
                 result.seconds)
        for metric, mv in result.metrics.items():
            out.rows.append(ResultRow(
                model_id=cell.model_id, checkpoint=ck.label, step=ck.step,
                train_task=task_label(config, cell.train_task), lr=cell.lr, seed=cell.seed, eval_set=unit.eval_set,
                eval_task=task.name,
                task_type=task.task_type, domain=task.eval_set(unit.eval_set).domain, format=unit.format,
                shots=unit.shots, method=unit.method, metric=metric, value=mv.value, ci_low=mv.ci_low,
                ci_high=mv.ci_high, n=mv.n, seconds=result.seconds, config_hash=config_hash, cell_id=cell.cell_id,
                ft_method=cell.ft_method, variant=state.variant, ft_step=state.ft_step,
                ft_fraction=state.ft_fraction))


# The work of each kind of cell (what its id hashes is ``ptft.engine.cells.expand``'s): one entry a kind.
RUNNERS: dict[CellKind, Callable[[StudyConfig, Path, Cell, bool], CellOutput]] = {
    CellKind.PRETRAIN: _pretrain,
    CellKind.BASE: _evaluate_checkpoint,
    CellKind.FINETUNE: _finetune_and_evaluate,
    CellKind.INSTRUCT: _finetune_and_evaluate,
    CellKind.PROBE: lambda config, run_dir, cell, progress: _probe(config, cell),
}
