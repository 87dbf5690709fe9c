"""What the kinds of cells share in their work, run wherever the executor puts them (this process,
a worker, a Ray node): the study's task data, loading a checkpoint, evaluating a model on a cell's
units, training a model and evaluating it, and writing files whole.

A cell returns everything it produced (result rows, per-example predictions, training figures)
instead of writing to the results store: one writer, the study driver, stores it, so a crash
loses at most the cells in flight and never leaves half a cell behind.

The recipes and the evaluator (torch, transformers, trl) are imported inside the functions that
run them: the planner and the driver import this module, and `ptft plan`, `status` and the driver
process itself never need torch.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

from ptft.config import StudyConfig
from ptft.engine.cells import Cell, CellOutput
from ptft.errors import naming
from ptft.grid import FINAL, LINES_VARIANT, TUCO_METRIC, ModelState, ResultRow, graft_variant
from ptft.task_types import get_task_type
from ptft.tasks import LoadRequest, Task, TaskData, get_task
from ptft.tracking import training_report
from ptft.training.methods import get_method

log = logging.getLogger("ptft.engine")


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


def load_model(config: StudyConfig, cell: Cell, path: str | None = None, dtype: str | None = None):
    from ptft.checkpoints.loading import load_causal_lm

    ck = cell.checkpoint
    dtype = dtype or config.checkpoints.dtype
    if path is not None:
        return load_causal_lm(path, dtype=dtype, device=config.device)
    return load_causal_lm(ck.path, revision=ck.load_revision, dtype=dtype, device=config.device)


TRAINING_FILE = "ptft_training.json"


def weights_dir(run_dir: Path, cell: Cell) -> Path:
    """Where a fine-tuned model's weights are kept: addressed by its training hash, so a cell that
    differs only in evaluation settings finds them."""
    return run_dir / "models" / cell.training_hash


# What trains a cell's model: (model, tokenizer, training report, the evaluation to run at each
# point of ``during``) -> (trained model, training statistics)
Train = Callable[..., tuple]


# What a cell does with the model it trains: everything (``ALL``), or, under ``finetune.evaluate:
# selected``, the training half (``TRAIN``: train, keep the weights, record the dev figures and
# the weight lenses) or the evaluation half (``EVALUATE``: score the chosen run's kept weights).
ALL, TRAIN, EVALUATE = "all", "train", "evaluate"
DEV_FIGURES_DIR = "dev"


def dev_figures_path(run_dir: Path, training_hash: str) -> Path:
    """A trained run's dev figures (the learning-rate selection's inputs), kept after its weights go."""
    return run_dir / DEV_FIGURES_DIR / f"{training_hash}.json"


def train_and_evaluate(config: StudyConfig, run_dir: Path, cell: Cell, progress: bool, train: Train,
                       during: list[float], against_base: bool, dev_metric: bool, part: str = ALL) -> CellOutput:
    """Train a cell's model with ``train`` (or load its kept weights), then evaluate it on the
    cell's units, at the points ``during`` of its training as well. ``against_base``: compare it
    with its BASE checkpoint as configured (weight lenses, TuCo, CKA) and evaluate its grafts and
    LiNeS edit; ``dev_metric``: score it on the dev split for learning-rate selection. ``part``:
    all of it, or the ``TRAIN`` or ``EVALUATE`` half (see ``ALL``)."""
    from ptft.training.finetune import NonFiniteLoss, seed_everything

    weights = weights_dir(run_dir, cell)
    out = CellOutput(cell.cell_id)
    # the training figures are written last into a staging folder renamed whole (_keep)
    kept_figures = json.loads((weights / TRAINING_FILE).read_text()) if (weights / TRAINING_FILE).exists() else None
    kept = kept_figures is not None
    numerics = numerics_of(config)
    if kept and kept_figures.pop("numerics", numerics) != numerics:
        # weights trained on another kind of machine (a worker whose cell the driver refused for
        # that) would carry its numbers into this one's results
        kept = False
        out.notes.append(f"kept weights models/{cell.training_hash} not reused: they were computed with other "
                         "numerics, so the model is trained again here")
    if kept and during:
        out.notes.append(f"kept weights models/{cell.training_hash} not reused: finetune.eval_at evaluates "
                         "the model during its training, so it is trained again (to the same weights)")
    method = get_method(cell.ft_method)
    if kept and not during:
        # the halves of a selected-rate study work on the float32 weights, as the whole cell does
        # on those it trains (a retrained chosen run must give the same numbers as a kept one)
        dtype = None if part == ALL else "float32"
        model, tokenizer = method.load(weights, lambda path: load_model(config, cell, path, dtype=dtype))
        out.training = kept_figures | {"reused": 1}
        out.notes.append(f"reused kept fine-tuned weights models/{cell.training_hash}")
        log.info("reusing kept weights %s", weights)
    else:
        # Training keeps float32 master weights whatever checkpoints.dtype says: in bf16 an AdamW
        # update at the paper's lr 2e-7 rounds to nothing (finetune.bf16 gives bf16 arithmetic).
        model, tokenizer = load_model(config, cell, dtype="float32")
        seed_everything(cell.seed)
        report = training_report(config, run_dir, cell.label)

        def evaluate_during(trained, fraction: float, step: int) -> None:
            evaluate_units(config, cell, _at_eval_precision(config, trained), tokenizer, out, progress,
                           ModelState(ft_fraction=fraction, ft_step=step))

        try:
            model, stats = train(model, tokenizer, report, evaluate_during)
            if not math.isfinite(stats.dev_loss):
                raise NonFiniteLoss(f"the dev loss after fine-tuning is {stats.dev_loss}; lower the learning rate")
        except NonFiniteLoss as err:
            if part != TRAIN:
                raise
            # a rate that diverged is an outcome of the sweep, not a failure: it is no candidate
            out.training = {"dev_loss": None, "reused": 0, "train_task": task_label(config, cell.train_task)}
            out.notes.append(f"{err}: this rate is left out of the learning-rate selection")
            write_json(dev_figures_path(run_dir, cell.training_hash),
                       {"dev_loss": None, "dev_metric": None, "diverged": str(err)})
            return out
        out.training = {"train_loss": stats.train_loss, "dev_loss": stats.dev_loss, "steps": stats.steps,
                        "tokens": stats.tokens, "seconds": stats.seconds,
                        "tokens_per_second": stats.tokens_per_second, "reused": 0,
                        "trainable_parameters": stats.trainable_parameters, "peak_memory_mb": stats.peak_memory_mb,
                        "examples_per_step": stats.examples_per_step}
        log.info("trained: %s", out.training)
        # the training half keeps its weights for the evaluation half, which deletes them
        if config.finetune.keep_weights or part == TRAIN:
            _keep(model, tokenizer, weights, out.training | {"numerics": numerics}, method.save)
        model = method.merged(model)
    # BASE is loaded once, in float32, for every comparison with it
    base_model = _base_model(config, cell, part) if against_base else None
    base = {n: p.detach() for n, p in base_model.named_parameters()} if base_model is not None else None
    # on the float32 weights training produced, before evaluation's dtype rounds them (kept weights
    # are loaded at that dtype already); the training half measured the selected run already
    if part != EVALUATE:
        _lenses(config, cell, model, base, out)
    model = _at_eval_precision(config, model, in_place=True)
    out.training["train_task"] = task_label(config, cell.train_task)  # the label its rows carry
    if dev_metric and part != EVALUATE:
        out.training["dev_metric"] = _dev_metric(config, cell, model, tokenizer)
    if part == TRAIN:
        write_json(dev_figures_path(run_dir, cell.training_hash),
                   {k: out.training.get(k) for k in ("dev_loss", "dev_metric")})
        return out
    trained = ModelState(ft_step=out.training.get("steps"))
    evaluate_units(config, cell, model, tokenizer, out, progress, trained)
    if base_model is not None and (config.tuco.enabled or config.cka.enabled):
        _against_base_model(config, cell, model, _at_eval_precision(config, base_model), tokenizer, out, trained)
    if base is not None:
        _evaluate_edits(config, cell, model, tokenizer, base, out, progress, trained)
    if not config.finetune.keep_weights and weights.exists() and part == ALL:
        shutil.rmtree(weights, ignore_errors=True)
        out.notes.append(f"deleted weights models/{cell.training_hash} (finetune.keep_weights is false)")
    return out


def _against_base_model(config: StudyConfig, cell: Cell, model, base, tokenizer, out: CellOutput,
                        state: ModelState) -> None:
    """What compares the fine-tuned ``model`` with its BASE checkpoint on the prompts its units
    scored in ``state``, as configured: TuCo per prompt (in each prediction, in the per-example
    scores and per unit a row of metric ``tuco``) and CKA per block and set (the layers table).
    One pass of the fine-tuned model per set of prompts (a set in one format and shot count, which
    its scoring methods share) gives both; CKA adds one pass of BASE."""
    from ptft.evaluation import Evaluator
    from ptft.evaluation.residual import trace
    from ptft.evaluation.similarity import linear_cka
    from ptft.evaluation.stats import metric_value
    from ptft.evaluation.tuco import tuco_ratio

    start = time.perf_counter()
    scorer = Evaluator(model, tokenizer, batch_size=config.evaluation.batch_size).scorer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    batch = config.evaluation.batch_size
    tasks = study_tasks(config)
    key = asdict(cell.model_key(task_label(config, cell.train_task)))
    groups: dict[tuple, list] = {}
    for unit in cell.units:
        groups.setdefault((unit.eval_set, unit.format, unit.shots), []).append(unit)
    for (eval_set, fmt, shots), units in groups.items():
        began = time.perf_counter()
        prompts = [p["prompt"] for p in out.predictions[units[0].name + state.suffix]]
        ids = [x[-scorer.max_length:] for x in scorer.encode(prompts)]
        traced = trace(model, ids, batch, pad, base=base if config.tuco.enabled else None)
        task = tasks[units[0].eval_task][0]
        if config.tuco.enabled:
            values = tuco_ratio(traced.ptc, traced.ftc).tolist()
            for unit in units:
                for prediction, value in zip(out.predictions[unit.name + state.suffix], values, strict=True):
                    prediction[TUCO_METRIC] = value
                out.scores[state][unit][TUCO_METRIC] = values
                out.rows.append(_result_row(config, cell, unit, task, TUCO_METRIC,
                                            metric_value(values, config.seed, n_boot=config.evaluation.n_bootstrap),
                                            state, time.perf_counter() - began))
        if config.cka.enabled:
            pairs = zip(traced.states, trace(base, ids, batch, pad).states)
            out.layers += [{"model_id": cell.model_id, **key, "eval_task": task.name, "eval_set": eval_set,
                            "domain": task.eval_set(eval_set).domain, "format": fmt, "shots": shots,
                            "layer": layer, "measure": "cka", "value": linear_cka(x, y), "n": len(ids)}
                           for layer, (x, y) in enumerate(pairs, start=1)]
    lenses = [name for name, on in (("TuCo", config.tuco.enabled), ("CKA", config.cka.enabled)) if on]
    out.notes.append(f"against BASE ({', '.join(lenses)}): {len(groups)} sets of prompts in "
                     f"{time.perf_counter() - start:.2f}s")


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


def edit_variants(config: StudyConfig) -> list[tuple[str, float | None]]:
    """The evaluation-only edits each fine-tuned model is also scored as, in the order they run, as
    (variant, percent grafted): the grafts of ``grafting.top_percent``, then LiNeS (None)."""
    return ([(graft_variant(p), p) for p in config.grafting.top_percent] if config.grafting.enabled else []) + \
        ([(LINES_VARIANT, None)] if config.lines.enabled else [])


def _evaluate_edits(config: StudyConfig, cell: Cell, model, tokenizer, base: dict, out: CellOutput, progress: bool,
                    trained: ModelState) -> None:
    """Score the evaluation-only edits of the fine-tuned ``model`` on the cell's units, each made
    from the model as trained: the grafts of ``grafting.top_percent``, then LiNeS, as configured."""
    from ptft.evaluation.grafting import apply_graft
    from ptft.evaluation.weights import apply_lines

    entries = sum(p.numel() for p in model.parameters())

    def graft(percent: float):
        # ties at the threshold are all kept: the note says how many entries really moved
        return lambda m, b, t: f"{apply_graft(m, b, t, percent):,} of {entries:,} entries set to their fine-tuned value"

    def lines(m, b, _):
        return f"{len(apply_lines(m, b, config.lines.alpha, config.lines.beta))} parameters scaled"

    edits = [(name, lines if percent is None else graft(percent)) for name, percent in edit_variants(config)]
    if not edits:
        return
    import torch

    tuned = {n: p.detach().clone() for n, p in model.named_parameters()}
    for name, edit in edits:
        start = time.perf_counter()
        done = edit(model, base, tuned)
        out.notes.append(f"{name}: {done}, in {time.perf_counter() - start:.2f}s")
        evaluate_units(config, cell, model, tokenizer, out, progress, replace(trained, variant=name))
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(tuned[n])


def _base_model(config: StudyConfig, cell: Cell, part: str = ALL):
    """The BASE checkpoint in float32 on the model's device when anything in this ``part`` of the
    cell compares the fine-tuned model with it (the training half: the lenses; the evaluation
    half: grafting, LiNeS, TuCo, CKA; the whole cell: any of them); None otherwise."""
    lenses = [config.lenses] if part != EVALUATE else []
    edits = [config.grafting, config.lines, config.tuco, config.cka] if part != TRAIN else []
    if not any(c.enabled for c in lenses + edits):
        return None
    return load_model(config, cell, dtype="float32")[0]


def _lenses(config: StudyConfig, cell: Cell, model, base: dict | None, out: CellOutput) -> None:
    """The weight-space lenses of the fine-tuned ``model`` against ``base``, one row per matrix."""
    if base is None or not config.lenses.enabled:
        return
    from ptft.evaluation.weights import weight_lenses

    start = time.perf_counter()
    lenses = weight_lenses(base, dict(model.named_parameters()), k=config.lenses.intruder_k,
                           epsilon=config.lenses.intruder_epsilon)
    model_columns = {"model_id": cell.model_id, **asdict(cell.model_key(task_label(config, cell.train_task))),
                     "intruder_k": config.lenses.intruder_k, "intruder_epsilon": config.lenses.intruder_epsilon}
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


def evaluate_units(config: StudyConfig, cell: Cell, model, tokenizer, out: CellOutput, progress: bool,
                    state: ModelState = FINAL) -> None:
    """Score every unit of the cell on ``model`` in its ``state`` (the rows and scores say which)."""
    from ptft.evaluation import Evaluator, select_demos

    tasks = study_tasks(config)
    ev = config.evaluation
    evaluator = Evaluator(model, tokenizer, batch_size=ev.batch_size)
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
        out.rows += [_result_row(config, cell, unit, task, metric, mv, state, result.seconds)
                     for metric, mv in result.metrics.items()]


def _result_row(config: StudyConfig, cell: Cell, unit, task: Task, metric: str, mv, state: ModelState,
                seconds: float) -> ResultRow:
    """A metric ``mv`` of the cell's model in ``state`` on ``unit``, as results name its task."""
    return ResultRow(cell.model_id, cell.model_key(task_label(config, cell.train_task)),
                     replace(unit, eval_task=task.name), task.task_type, task.eval_set(unit.eval_set).domain, metric,
                     mv.value, mv.ci_low, mv.ci_high, mv.n, state, seconds=seconds, config_hash=config.hash(),
                     cell_id=cell.cell_id)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    write_whole(path, "".join(json.dumps(row, ensure_ascii=False, default=float) + "\n" for row in rows))


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, json.dumps(data, indent=1))


def write_whole(path: Path, text: str) -> None:
    """``path`` holds the whole text or keeps what it held: written to a temporary file renamed over
    it, which a failed write (a full disk) removes rather than leave half written."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with naming(tmp):
            tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
