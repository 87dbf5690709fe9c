"""The study driver: expand a config into cells, run what is not done, store every result.

The driver is the only writer of the results store. A cell's rows and its 'done' mark go in one
transaction, so a run killed at any moment loses only the cells in flight; the next run skips every
done cell, retries failed ones, and ends with the same numbers as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptft.config import StudyConfig
from ptft.engine.cells import Cell, expand
from ptft.engine.executors import CellFailure, make_executor
from ptft.engine.work import CellOutput, study_tasks
from ptft.store import ComparisonRow, ResultsStore

log = logging.getLogger("ptft.engine")

STORE_FILE = "results.sqlite"
CONFIG_FILE = "study.yaml"


@dataclass
class StudyRun:
    run_dir: Path
    cells: list[Cell]
    ran: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def plan_cells(config: StudyConfig, run_dir: Path) -> list[Cell]:
    tasks = study_tasks(config)
    fingerprints = {name: data.fingerprint() for name, (task, data) in tasks.items()}
    task_types = {name: task.task_type for name, (task, _) in tasks.items()}
    eval_sets = {name: [(e.name, e.domain) for e in task.eval_sets] for name, (task, _) in tasks.items()}
    return expand(config, run_dir, fingerprints, task_types, eval_sets)


def run_study(config: StudyConfig, *, run_dir: str | Path | None = None, executor: str | None = None,
              address: str | None = None, workers: int | None = None, progress: bool = True) -> StudyRun:
    from tqdm.auto import tqdm

    run_dir = Path(run_dir or config.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / CONFIG_FILE).write_text(config.to_yaml())
    cells = plan_cells(config, run_dir)
    store = ResultsStore(run_dir / STORE_FILE)
    store.register_cells([(c.cell_id, c.kind, c.label, c.spec()) for c in cells])
    (run_dir / "cells.json").write_text(json.dumps([c.cell_id for c in cells]))
    status = store.cell_status()
    todo = [c for c in cells if status.get(c.cell_id) != "done"]
    result = StudyRun(run_dir, cells, skipped=len(cells) - len(todo))
    runner = make_executor(config, executor, address, workers)
    start = time.perf_counter()
    bar = tqdm(total=len(cells), initial=result.skipped, desc=f"study {config.name}", unit="cell",
               disable=not progress, position=0)
    failed_ids: set[str] = set()
    # Stages: a cell runs once the cells it depends on are done (the pre-training cell first).
    while todo:
        ready = [c for c in todo if all(d not in failed_ids and status.get(d) == "done" for d in c.depends_on)]
        if not ready:
            break
        todo = [c for c in todo if c not in ready]

        def on_start(cell: Cell) -> None:
            store.mark_cell(cell.cell_id, "running")
            bar.set_postfix_str(cell.label)

        for outcome in runner.run(config, run_dir, ready, on_start, progress):
            if isinstance(outcome, CellFailure):
                store.mark_cell(outcome.cell_id, "failed", error=outcome.error, traceback=outcome.traceback)
                failed_ids.add(outcome.cell_id)
                result.failed.append(outcome.cell_id)
                tqdm.write(f"cell failed: {next(c.label for c in cells if c.cell_id == outcome.cell_id)}: "
                           f"{outcome.error}")
            else:
                _store_output(store, run_dir, outcome)
                status[outcome.cell_id] = "done"
                result.ran += 1
            bar.update(1)
    for cell in todo:  # blocked by a failed dependency: left pending, retried next run
        failed_ids.add(cell.cell_id)
    bar.close()
    _select_learning_rates(store, config, cells)
    _compare_with_base(store, run_dir, cells, config)
    result.seconds = time.perf_counter() - start
    store.close()
    return result


def _store_output(store: ResultsStore, run_dir: Path, out: CellOutput) -> None:
    rows = out.rows
    if rows:
        model_dir = run_dir / "predictions" / rows[0].model_id.replace("/", "__")
        model_dir.mkdir(parents=True, exist_ok=True)
        for key, preds in out.predictions.items():
            _write_jsonl(model_dir / f"{key}.jsonl", preds)
        _write_json(model_dir / "scores.json", _merge_json(model_dir / "scores.json", out.scores))
    training = None
    if out.training is not None and rows:
        r = rows[0]
        training = {"model_id": r.model_id, "checkpoint": r.checkpoint, "step": r.step, "train_task": r.train_task,
                    "lr": r.lr, "seed": r.seed, **{k: out.training.get(k) for k in
                    ("train_loss", "dev_loss", "steps", "tokens", "seconds", "tokens_per_second")}}
    elif out.training is not None:
        (run_dir / "pretrain.json").write_text(json.dumps(out.training, indent=1))
    store.finish_cell(out.cell_id, rows, training, out.notes, out.seconds)


def _select_learning_rates(store: ResultsStore, config: StudyConfig, cells: list[Cell]) -> None:
    """Per (checkpoint, task, seed): the learning rate with the lowest dev loss (the dev split,
    never an eval set). Recorded even with a single rate, so the choice is always explicit."""
    trainings = store.frame("trainings")
    current = {c.cell_id for c in cells if c.kind == "finetune"}
    trainings = trainings[trainings.cell_id.isin(current)]
    for (ck, task, seed), group in trainings.groupby(["checkpoint", "train_task", "seed"]):
        best = group.loc[group.dev_loss.idxmin()]
        store.write_selection(ck, task, int(seed), float(best.lr), float(best.dev_loss))


def _compare_with_base(store: ResultsStore, run_dir: Path, cells: list[Cell], config: StudyConfig) -> None:
    """Paired bootstrap FT - BASE on the same examples, for every fine-tuned result whose BASE
    counterpart exists (same checkpoint, eval set, format, shots, method)."""
    from ptft.evaluation import paired_bootstrap

    pred_root = run_dir / "predictions"
    comparisons = []
    for cell in cells:
        if cell.kind != "finetune":
            continue
        base_id = f"base/{cell.checkpoint.label}"
        ft_scores = _read_json(pred_root / cell.model_id.replace("/", "__") / "scores.json")
        base_scores = _read_json(pred_root / base_id.replace("/", "__") / "scores.json")
        for key, metrics in ft_scores.items():
            if key not in base_scores:
                continue
            eval_set, fmt, shots, method = _split_key(key)
            for metric, values in metrics.items():
                base = base_scores[key].get(metric)
                if base is None or len(base) != len(values):
                    continue
                diff, lo, hi = paired_bootstrap(np.asarray(values), np.asarray(base), seed=config.seed,
                                                n_boot=config.evaluation.n_bootstrap)
                comparisons.append(ComparisonRow(cell.model_id, base_id, eval_set, fmt, shots, method, metric,
                                                 float(diff), float(lo), float(hi), len(values)))
    if comparisons:
        store.write_results([], comparisons)


def _split_key(key: str) -> tuple[str, str, int, str]:
    eval_set, fmt, shots, method = key.rsplit(".", 3)
    return eval_set, fmt, int(shots.removesuffix("shot")), method


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, default=float) + "\n")
    tmp.replace(path)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def _merge_json(path: Path, new: dict) -> dict:
    return {**_read_json(path), **new}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def results_frame(run_dir: str | Path):
    """The run's long-format results table, limited to the cells of its current config (rows left
    by cells of an earlier config version stay in the store but are not exported)."""
    run_dir = Path(run_dir)
    if not (run_dir / STORE_FILE).exists():
        from ptft.errors import PtftError

        raise PtftError(f"{run_dir} is not a run directory: no {STORE_FILE} in it")
    with ResultsStore(run_dir / STORE_FILE) as store:
        df = store.export_frame(cell_ids=_current_cells(run_dir))
    return df


def _current_cells(run_dir: Path) -> list[str] | None:
    path = run_dir / "cells.json"
    return json.loads(path.read_text()) if path.exists() else None
