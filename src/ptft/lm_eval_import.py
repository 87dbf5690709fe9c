"""lm-evaluation-harness results into ptft's results table (docs/results.md, "Results table").

Reads both layouts lm-eval has written:

- **0.4** (``lm_eval --output_path DIR``): ``results_<time>.json`` with ``results`` (metric keys
  ``acc,none`` = metric and filter, ``acc_stderr,none``), ``n-shot``, ``n-samples``, ``configs``
  (each task's ``output_type``), ``group_subtasks`` and ``config.model_args`` (a mapping or a
  ``key=value,...`` string); with ``--log_samples``, ``samples_<task>_<time>.jsonl`` beside it,
  one line per document and filter, holding each metric's per-example score.
- **0.3** (e.g. EleutherAI's published Pythia logs): ``results`` (``acc``, ``acc_stderr``),
  ``versions`` and ``config`` (``model_args`` string, ``num_fewshot``).

Each (task, metric) becomes one BASE row: the checkpoint is the model's revision (``revision=``
in ``model_args``, else ``config.model_revision``; a local checkpoint folder named like a
revision, ``.../step8``, counts as one), parsed by ptft's OLMo/Pythia revision parser for the
step; ``eval_set`` and ``eval_task`` are the lm-eval task; ``format`` is ``default`` (the task's
own prompt); ``method`` is ``loglik`` (``generate_until`` tasks: ``generate``). The 95 % interval
is ptft's seeded percentile bootstrap over the per-example scores when a samples file holds them
(and their mean is the reported value); otherwise ``value ± 1.96 × stderr`` (lm-eval's standard
error, normal approximation); none when lm-eval gave no stderr. ``n`` comes from the samples,
from ``n-samples`` (0.4), or, in 0.3 logs that do not record it, from a 0/1 metric (``acc``,
``acc_norm``, ``pct_stereotype``, ``exact_match``) and its stderr: lm-eval's stderr of a mean is
``sqrt(p(1-p)/(n-1))``, so ``n = p(1-p)/stderr² + 1``. Group aggregates (0.4 ``group_subtasks``)
are left out: their subtasks are imported, and a mean of means would count them twice.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ptft.checkpoints.series import parse_revision
from ptft.errors import DataError
from ptft.evaluation.stats import metric_value
from ptft.grid import EvalUnit, ModelKey, ResultRow, store_path
from ptft.store import EXPORT_COLUMNS, ResultsStore

Z95 = 1.959963984540054
BINARY_METRICS = ("acc", "acc_norm", "pct_stereotype", "exact_match")
GENERATION_OUTPUT = "generate_until"
TABLE_SUFFIXES = (".csv", ".parquet")
NOT_METRICS = ("sample_len", "sample_count")  # bookkeeping numbers lm-eval 0.4 keeps beside the metrics


@dataclass
class ImportResult:
    """The imported rows (``EXPORT_COLUMNS``), the model they belong to, the files read, notes."""

    table: pd.DataFrame
    model: str
    files: list[Path]
    notes: list[str] = field(default_factory=list)
    out: Path | None = None


@dataclass(frozen=True)
class _Run:
    path: Path
    model: str
    checkpoint: str
    step: int | None


def import_lm_eval(paths: Sequence[str | Path], *, seed: int = 0, n_boot: int = 1000) -> ImportResult:
    """Read lm-eval results files (or folders searched for them) into the results table."""
    files = _results_files(paths)
    rows: list[dict] = []
    notes: list[str] = []
    origin: dict[tuple, Path] = {}
    models: dict[str, Path] = {}
    for path in files:
        data = _read_json(path)
        run = _run_of(path, data)
        models.setdefault(run.model, path)
        for row in _rows(path, data, run, seed, n_boot, notes):
            key = (row["checkpoint"], row["eval_set"], row["shots"], row["metric"])
            if key in origin:
                raise DataError(f"{path}: {row['eval_set']} {row['metric']} at {row['checkpoint']}, "
                                f"{row['shots']}-shot, is also in {origin[key]}; import each run once")
            origin[key] = path
            rows.append(row)
    if len(models) > 1:
        (a, pa), (b, pb) = list(models.items())[:2]
        raise DataError(f"results of several models ({a} in {pa}, {b} in {pb}); a results table holds one "
                        "model's checkpoint series: import each model into its own table")
    if not rows:
        raise DataError(f"no metrics in {', '.join(map(str, files))}")
    table = pd.DataFrame(rows, columns=EXPORT_COLUMNS).assign(ft_method="", variant="none")  # BASE rows
    table = table.sort_values(["step", "checkpoint", "eval_set", "shots", "metric"], na_position="last",
                              kind="stable").reset_index(drop=True)
    table["step"] = table["step"].astype("Int64")
    table["n"] = table["n"].astype("Int64")
    return ImportResult(table, next(iter(models)), files, notes)


def write_import(result: ImportResult, out: str | Path) -> Path:
    """A ``.csv`` / ``.parquet`` table, or else a run directory holding ``results.sqlite`` (what
    ``ptft report`` reads; ``ptft analyze`` takes either)."""
    out = Path(out)
    if out.suffix and out.suffix.lower() not in TABLE_SUFFIXES and not out.is_dir():
        raise DataError(f"--out {out}: a table is written as {' or '.join(sorted(TABLE_SUFFIXES))}, and a name "
                        f"without a suffix makes a run directory; {out.suffix} is neither "
                        f"(e.g. {out.with_suffix('.csv')})")
    if out.suffix.lower() in TABLE_SUFFIXES:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".parquet":
            result.table.to_parquet(out, index=False)
        else:
            result.table.to_csv(out, index=False)
    else:
        if store_path(out).exists():
            raise DataError(f"{out} already holds a results.sqlite; import into a new directory")
        out.mkdir(parents=True, exist_ok=True)
        records = []
        for r in result.table.to_dict("records"):
            unit = EvalUnit(r["eval_task"], r["eval_set"], r["format"], int(r["shots"]), r["method"])
            records.append(ResultRow(f"{result.model}@{r['checkpoint']}", ModelKey(r["checkpoint"], _int(r["step"])),
                                     unit, r["task_type"], r["domain"], r["metric"], float(r["value"]),
                                     _float(r["ci_low"]), _float(r["ci_high"]), _int(r["n"]), cell_id="lm-eval"))
        with ResultsStore(store_path(out)) as store:
            store.write_results(records)
    result.out = out
    return out


# ----------------------------------------------------------------------------------- reading

def _results_files(paths: Sequence[str | Path]) -> list[Path]:
    if not paths:
        raise DataError("no lm-eval results given: pass results JSON files or folders that hold them")
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.json") if _looks_like_results(f))
            if not found:
                raise DataError(f"{p}: no lm-eval results JSON (a file with 'results' and 'config') in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p}: no such file or directory")
    return list(dict.fromkeys(files))


def _looks_like_results(path: Path) -> bool:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("results"), dict) and "config" in data


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise DataError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise DataError(f"{path}: no 'results' mapping; not an lm-evaluation-harness results file")
    if not isinstance(data.get("config"), dict):
        raise DataError(f"{path}: no 'config' mapping (lm-eval records the model there)")
    return data


def _model_args(path: Path, raw: Any) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, str):
        pairs = [item.split("=", 1) for item in raw.split(",") if item.strip()]
        return {k.strip(): v.strip() for k, v in (p for p in pairs if len(p) == 2)}
    raise DataError(f"{path}: config.model_args must be a mapping or a 'key=value,...' string, got {raw!r}")


def _run_of(path: Path, data: dict) -> _Run:
    config = data["config"]
    args = _model_args(path, config.get("model_args", ""))
    model = args.get("pretrained") or data.get("model_name") or config.get("model")
    if not model:
        raise DataError(f"{path}: config.model_args has no pretrained=... (which model was evaluated?)")
    revision = args.get("revision") or config.get("model_revision") or "main"
    if revision == "main" and parse_revision(Path(model).name):
        # a local checkpoint folder named by its step (ptft's own series, a downloaded revision)
        model, revision = str(Path(model).parent), Path(model).name
    parsed = parse_revision(revision)
    return _Run(path, model, revision, parsed.step if parsed else None)


def _rows(path: Path, data: dict, run: _Run, seed: int, n_boot: int, notes: list[str]) -> Iterable[dict]:
    configs = data.get("configs") or {}
    groups = {g for g, subs in (data.get("group_subtasks") or {}).items() if subs}
    n_shot = data.get("n-shot") or {}
    n_samples = data.get("n-samples") or {}
    samples_of = _samples_finder(path, data)
    for task, metrics in data["results"].items():
        if task in groups:
            notes.append(f"{path.name}: group {task!r} left out (its subtasks are imported)")
            continue
        if not isinstance(metrics, dict):
            raise DataError(f"{path}: results.{task} must be a mapping of metrics, got {metrics!r}")
        shots = _shots(path, task, n_shot, configs, data["config"])
        output_type = (configs.get(task) or {}).get("output_type")
        values = _metric_values(metrics)
        if output_type is None and any(m.split(",")[0] in ("bleu", "rouge1", "rouge2", "rougeL", "f1", "em")
                                       for m in values):
            output_type = GENERATION_OUTPUT
        task_type, method = (("generation", "generate") if output_type == GENERATION_OUTPUT
                             else ("multiple_choice", "loglik"))
        n_task = _n_of(task, n_samples, values)
        samples = samples_of(task)
        for metric, (value, stderr) in values.items():
            ci_low = ci_high = math.nan
            n = n_task
            per_example = _per_example(samples, metric)
            if per_example is not None and abs(float(np.mean(per_example)) - value) <= 1e-9 * max(1.0, abs(value)):
                mv = metric_value(per_example, seed, n_boot=n_boot)
                ci_low, ci_high, n = mv.ci_low, mv.ci_high, mv.n
            else:
                if per_example is not None:
                    notes.append(f"{path.name}: {task} {metric}: the per-example scores do not average to the "
                                 "reported value; its interval is from the stderr")
                if stderr is not None:
                    ci_low, ci_high = value - Z95 * stderr, value + Z95 * stderr
            yield {
                "checkpoint": run.checkpoint, "step": run.step, "train_task": "", "eval_set": task,
                "eval_task": task, "task_type": task_type, "domain": "in", "format": "default", "shots": shots,
                "metric": metric, "value": value, "lr": None, "seed": None, "method": method,
                "ci_low": ci_low, "ci_high": ci_high, "n": n, "selected": True,
            }


def _metric_values(metrics: dict) -> dict[str, tuple[float, float | None]]:
    """``{metric name: (value, stderr)}``; 0.4 keys ``acc,none`` -> ``acc`` (a filter other than
    ``none`` stays in the name: ``exact_match,strict-match``)."""
    out = {}
    for key, value in metrics.items():
        base, _, filt = key.partition(",")
        if base.endswith("_stderr") or base in NOT_METRICS or not _is_number(value):
            continue
        name = base if filt in ("", "none") else key
        stderr = metrics.get(f"{base}_stderr" + (f",{filt}" if filt else ""))
        out[name] = (float(value), float(stderr) if _is_number(stderr) and float(stderr) > 0 else None)
    return out


def _shots(path: Path, task: str, n_shot: dict, configs: dict, config: dict) -> int:
    for raw in (n_shot.get(task), (configs.get(task) or {}).get("num_fewshot"), config.get("num_fewshot")):
        if raw is None:
            continue
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise DataError(f"{path}: the number of shots of {task!r} is {raw!r}, not an integer") from None
    return 0


def _n_of(task: str, n_samples: dict, values: dict[str, tuple[float, float | None]]) -> int | None:
    counts = n_samples.get(task)
    if isinstance(counts, dict) and _is_number(counts.get("effective")):
        return int(counts["effective"])
    for metric in BINARY_METRICS:
        value, stderr = values.get(metric, (math.nan, None))
        if stderr and 0 < value < 1:
            return int(round(value * (1 - value) / stderr**2 + 1))
    return None


def _samples_finder(path: Path, data: dict):
    """Per task, its samples file's rows (0.4 ``--log_samples``), or None."""
    stamp = path.stem[len("results_"):] if path.stem.startswith("results_") else None

    def find(task: str) -> list[dict] | None:
        exact = path.parent / f"samples_{task}_{stamp}.jsonl" if stamp else None
        if exact is not None and exact.is_file():
            chosen = exact
        else:
            candidates = [p for p in path.parent.glob(f"samples_{task}_*.jsonl")
                          if re.fullmatch(rf"samples_{re.escape(task)}_[^_]+", p.stem)]
            if len(candidates) != 1:
                return None
            chosen = candidates[0]
        rows = []
        for i, line in enumerate(chosen.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as err:
                    raise DataError(f"{chosen}: line {i + 1} is not JSON ({err})") from None
        return rows

    return find


def _per_example(samples: list[dict] | None, metric: str) -> list[float] | None:
    if not samples:
        return None
    base, _, filt = metric.partition(",")
    filt = filt or "none"
    chosen = sorted((s for s in samples if s.get("filter", "none") == filt), key=lambda s: s.get("doc_id", 0))
    values = [s.get(base) for s in chosen]
    if not values or not all(_is_number(v) for v in values):
        return None
    return [float(v) for v in values]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _float(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
