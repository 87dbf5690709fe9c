"""The Python API behind the CLI: every `ptft` command is one function here, taking typed
arguments and returning data; the CLI parses arguments, calls it and prints.

    run, plan, status, eval, export, import_lm_eval (``ptft import``), analyze, report, prepare, tasks

Each function imports the layers it calls inside itself, for start-up time: a command loads the
engine, pandas, the analyses or torch only when it needs them (``ptft tasks`` needs none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ptft.config import StudyConfig, load_config
from ptft.errors import ConfigError, naming

if TYPE_CHECKING:
    from ptft.analysis.slices import Slice


def _config(config: str | Path | StudyConfig, overrides: dict[str, Any] | None = None) -> StudyConfig:
    return config if isinstance(config, StudyConfig) else load_config(config, overrides)


def run(config: str | Path | StudyConfig, *, run_dir: str | Path | None = None, executor: str | None = None,
        address: str | None = None, workers: int | None = None, progress: bool = True,
        overrides: dict[str, Any] | None = None, allow_mixed_numerics: bool = False):
    """Run a study (a config path, preset name or StudyConfig) and return its StudyRun.
    ``executor``, ``address`` and ``workers`` override the config's ``executor`` section (the
    command line's --executor, --address and --workers)."""
    from ptft.engine.study import run_study

    config = _config(config, overrides)
    kind = executor or config.executor.kind
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if address is not None and kind != "ray":
        raise ConfigError(f"--address {address} names a Ray cluster, but the study runs on the {kind} executor; "
                          "add --executor ray (or drop --address)")
    if kind == "ray" and (address or config.executor.address):
        from ptft.engine.executors import check_ray_address

        check_ray_address(address or config.executor.address, "--address" if address else "executor.address")
    return run_study(config, run_dir=run_dir, executor=executor, address=address, workers=workers,
                     progress=progress, allow_mixed_numerics=allow_mixed_numerics)


def export(run_dir: str | Path, out: str | Path | None = None, fmt: str = "csv") -> Path:
    """Write the run's long-format results table (docs/results.md, "Results table") and, beside it
    at ``ptft.store.weights_path`` and ``layers_path``, its weight-lenses and per-layer tables
    (docs/results.md, "Weights table", "Layers table"); return the results table's path."""
    from ptft.store import layers_frame, layers_path, results_frame, weights_frame, weights_path

    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / f"results.{fmt}"
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give the table's file name (e.g. {out / f'results.{fmt}'})")
    out.parent.mkdir(parents=True, exist_ok=True)
    for df, path in ((results_frame(run_dir), out), (weights_frame(run_dir), weights_path(out)),
                     (layers_frame(run_dir), layers_path(out))):
        with naming(path):
            if fmt == "parquet":
                df.to_parquet(path, index=False)
            else:
                df.to_csv(path, index=False)
    return out


def import_lm_eval(paths, out: str | Path, *, seed: int = 0, n_boot: int = 1000):
    """lm-evaluation-harness results files (0.4 or 0.3 layout; folders are searched) into a
    results table at ``out`` (``.csv`` / ``.parquet``, or a run directory with results.sqlite).
    Returns the :class:`ptft.lm_eval_import.ImportResult`."""
    from ptft.lm_eval_import import import_lm_eval as read, write_import

    result = read(paths, seed=seed, n_boot=n_boot)
    write_import(result, out)
    return result


def plan(config: str | Path | StudyConfig, run_dir: str | Path | None = None):
    """The grid a study would run, without running it (:class:`ptft.engine.plan.StudyPlan`)."""
    from ptft.engine.plan import plan_study

    return plan_study(_config(config), run_dir)


def status(run_dir: str | Path):
    """A run's grid: done, running, failed, pending (:class:`ptft.engine.status.GridStatus`)."""
    from ptft.engine.status import grid_status

    return grid_status(run_dir)


@dataclass
class EvalResult:
    outcome: Any  # ptft.evaluation.EvalOutcome
    task: Any  # ptft.tasks.Task
    eval_set: str
    method: str  # as asked; outcome.method_used says what scored
    n_examples: int
    predictions: Path

    @property
    def printed_metrics(self) -> dict:
        """The outcome's metrics without the aliases of others."""
        from ptft.task_types import get_task_type

        shown = get_task_type(self.task.task_type).printed_metrics
        return {name: mv for name, mv in self.outcome.metrics.items() if name in shown}


def _resolve_task(name: str):
    from ptft.tasks import get_task

    try:
        return get_task(name)
    except KeyError as err:
        raise ConfigError(str(err.args[0])) from None
    except FileNotFoundError as err:
        raise ConfigError(f"task file {name} not found: {err}") from None


def eval(model, task, *, tokenizer=None, format: str = "default", method: str | None = None,  # noqa: A001
         shots: int = 0, limit: int | None = None, first: int | None = None, eval_set: str | None = None,
         seed: int = 0, batch_size: int = 16, data_dir: str | None = None, out: str | Path | None = None,
         dtype: str = "float32", device: str = "auto", n_boot: int = 1000) -> EvalResult:
    """Evaluate one model on one task (``ptft eval``) and write its predictions (JSONL).

    ``model`` is a checkpoint folder or a loaded model (then give ``tokenizer``); ``task`` a
    registered name, a task YAML path or a :class:`~ptft.tasks.base.Task`. ``limit`` scores the
    loader's seeded sub-sample of that many examples, ``first`` the eval set's first ones."""
    from ptft.evaluation import Evaluator, checked_request, select_demos
    from ptft.tasks.base import LoadRequest

    task = _resolve_task(task) if isinstance(task, (str, Path)) else task
    eval_set = eval_set or task.in_domain[0].name
    method = checked_request(task, eval_set, format, method)  # before the model is loaded
    if shots < 0:
        raise ConfigError("--shots must be >= 0")
    for flag, value in (("--limit", limit), ("--first", first), ("--batch-size", batch_size), ("--n-boot", n_boot)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} must be >= 1, got {value}")
    if out and Path(out).is_dir():
        raise ConfigError(f"--out {out} is a folder; give the predictions file's name "
                          f"(e.g. {Path(out) / 'predictions.jsonl'})")
    loaded = not isinstance(model, (str, Path))
    if not loaded:
        from ptft.checkpoints.loading import check_checkpoint

        check_checkpoint(model)  # before the data is loaded: a wrong folder is refused at once
    data = task.load(LoadRequest(data_dir=data_dir, seed=seed, n_eval=limit))
    examples = data.eval[eval_set][: limit or first]
    demos = select_demos(data.train, shots, seed)
    if not loaded:
        from ptft.checkpoints.loading import load_causal_lm

        model, tokenizer = load_causal_lm(model, dtype=dtype, device=device)
    outcome = Evaluator(model, tokenizer, batch_size=batch_size).evaluate(
        task, eval_set, examples, format, demos, method, seed=seed, n_boot=n_boot)

    path = Path(out) if out else Path(
        f"ptft-eval-{task.name}-{eval_set}-{format}-{outcome.method_used}-{shots}shot.jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    with naming(path), open(path, "w", encoding="utf-8") as f:
        for row in outcome.predictions:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return EvalResult(outcome, task, eval_set, method, len(examples), path)


def analyze(source: str | Path, out: str | Path, sl: Slice | None = None, *, seed: int = 0) -> dict:
    """Every analysis of the study written under ``out`` (tables, figures, summary.md), on the
    slice ``sl`` (:class:`ptft.analysis.Slice`; default: the default format, the dev-selected
    learning rates, the final full fine-tuning models); returns the tables by name."""
    from ptft.analysis import analyze as write_analyses
    from ptft.analysis.slices import Slice

    if Path(out).exists() and not Path(out).is_dir():
        raise ConfigError(f"--out {out} is a file; analyze writes a folder of tables and figures: name a folder")
    return write_analyses(source, out, sl or Slice(), seed=seed)


def report(run_dir: str | Path, out: str | Path = "report.html", sl: Slice | None = None, *, seed: int = 0) -> Path:
    """Write the self-contained HTML report of a run (its analyses on the slice ``sl``, as
    :func:`analyze`) and return its path."""
    from ptft.analysis.slices import Slice
    from ptft.report import write_report

    if Path(out).is_dir():
        raise ConfigError(f"--out {out} is a folder; give the report's file name "
                          f"(e.g. {Path(out) / 'report.html'})")
    return write_report(run_dir, out, sl or Slice(), seed=seed)


@dataclass
class Prepared:
    corpus: str | None  # the pre-training corpus, when the study pre-trains
    corpus_documents: int
    tasks: dict  # task name -> (Task, TaskData)
    repaired: list  # cached files extracted again
    cache_dir: Path
    seconds: float


def prepare(config: str | Path | StudyConfig) -> Prepared:
    """Load every task of a study once (the shipped files checked against their manifest, Hub data
    fetched into its cache) and, for a study that reads the user's BIG-bench archive, check every
    file extracted from it against its checksum."""
    import time

    from ptft.engine.work import study_tasks
    from ptft.sources import cache_dir, checking
    from ptft.tasks.bbutil import check_declared

    config = _config(config)
    start = time.perf_counter()
    corpus, documents = None, 0
    with checking() as repaired:
        if config.checkpoints.source == "pretrain":
            from ptft.training.corpus import load_corpus

            corpus = config.checkpoints.pretrain.corpus
            documents = len(load_corpus(corpus))
        tasks = study_tasks(config)
        if any(task.requires is not None for task, _ in tasks.values()):
            check_declared()
    return Prepared(corpus, documents, tasks, list(repaired), cache_dir(), time.perf_counter() - start)


def tasks() -> dict:
    """The registered tasks, name -> :class:`~ptft.tasks.base.Task`."""
    from ptft.tasks import available, get_task

    return {name: get_task(name) for name in available()}
