"""The paper's released results (Sun & Dredze 2024, "Amuro & Char") in ptft's results-table schema.

The release (tests/data/amuro_char/README.md) has two tables, one row per (model, eval set):
- ``all_perf_table.csv``: supervised fine-tuning. ``model_id`` names the model and the shots,
  ``olmo1b_checkpoint-{step}_original_hf_{k}shots`` (BASE; ``olmo1b_original_hf_{k}shots`` is the
  final checkpoint, main) or ``olmo1b_hf_ckpt{step}_{task}_{epochs}epoch_{lr}_{k}shots`` (fine-tuned;
  ``olmo1b_hf_main_...`` for main); no ``_{k}shots`` suffix means 0 shots. ``eval dataset`` carries
  the format as a suffix (``_instruct``, ``_inputoutput``; none for the default format).
  ``Performance`` is accuracy or Rouge-L and ``std`` the standard error of the release's
  percentile bootstrap (scipy.stats.bootstrap, 3,000 resamples, eval/eval_pred.py).
- ``official_eval_table.csv``: instruction tuning on Tulu v2 (``olmo1b_hf_ckpt{step}_tulu_...``)
  against BASE (``checkpoint-{step}``, ``olmo1b_original_hf``), scored by OLMo-Eval on the
  multiple-choice suite's validation splits with 4 shots (scripts/exp_scripts/evaluate_it_model.sh).
  Accuracy only: no standard error, no example count.

What the conversion adds, and why:
- ``ci_low``/``ci_high`` of a fine-tuning row are value -/+ 1.96 std: a normal interval from the
  released bootstrap standard error (the percentile interval itself was not released). The
  findings recover se = (ci_high - ci_low) / 3.92, which is exactly the released std.
- ``n`` of a multiple-choice row is the size of the split it was scored on (``MC_SPLIT_SIZES``,
  the public validation splits). :func:`official_rows` checks that every accuracy is a whole
  number of examples out of that size, so a wrong size fails loudly instead of giving a wrong
  interval.
- The main checkpoint has no step in the release: its step is left empty (ptft orders it last).

What is left out, and why:
- QQP and STS-B: the release scored GLUE test splits, whose labels are hidden (docs/method.md).
- LLMBar: a pairwise instruction-following benchmark outside the study's analyses.
- 0-shot BASE rows named ``olmo1b_checkpoint-{step}_original`` (no ``_hf``) and the one-off
  ``checkpoint-1000_4shots``: names the paper's notebook never reads, whose weights are not
  documented (the release's README warns that a wrong weight conversion degrades OLMo badly).
- In the instruction-tuning table, RTE and QQP: BASE rows only, no fine-tuned model to compare.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ptft.analysis.stats import Z
from ptft.store import EXPORT_COLUMNS

DATA = Path(__file__).resolve().parent.parent / "data" / "amuro_char"
SFT_TABLE = DATA / "all_perf_table.csv"
IT_TABLE = DATA / "official_eval_table.csv"
# The paper's checkpoints (OLMo-1B); main's step is not in the release.
STEPS = (1000, 18000, 342000, 424000, 505000, 592000, 738000)
MAIN = "main"
# The release's training-task names -> ptft's task names.
SFT_TASKS = {"mnli": "mnli", "paws": "paws", "xsum": "xsum", "socialiqa": "socialiqa_qg"}
# The learning rate the paper used per task (release: analysis/gen_paper_figs.ipynb, LRS).
PAPER_LR = {"mnli": 2e-6, "paws": 2e-6, "xsum": 2e-7, "socialiqa_qg": 2e-6, "instruct": 2e-6}
# Release eval set -> (ptft eval set, its task, task type, domain), as in ptft's hub tasks.
SFT_SETS = {
    "mnli_matched": ("mnli_matched", "mnli", "classification", "in"),
    "mnli_mismatched": ("mnli_mismatched", "mnli", "classification", "in"),
    "rte": ("rte", "mnli", "classification", "out"),
    "gpt3nli": ("gpt3_nli", "mnli", "classification", "out"),
    "paws": ("paws", "paws", "classification", "in"),
    "xsum": ("xsum", "xsum", "generation", "in"),
    "xlsum": ("xlsum_en", "xsum", "generation", "out"),
    "cnn": ("cnn_dailymail", "xsum", "generation", "out"),
    "socialiqa": ("socialiqa_qg", "socialiqa_qg", "generation", "in"),
    "sciq": ("sciq_qg", "socialiqa_qg", "generation", "out"),
    "tweetqa": ("tweetqa_qg", "socialiqa_qg", "generation", "out"),
}
HIDDEN_LABELS = ("qqp", "stsb")
FORMAT_SUFFIXES = {"_instruct": "instruct", "_inputoutput": "io"}
# Validation-split sizes of the multiple-choice suite (ARC-Challenge, ARC-Easy, OpenBookQA,
# HellaSwag, BoolQ, SciQ).
MC_SPLIT_SIZES = {"arc_challenge": 299, "arc_easy": 570, "openbookqa": 500, "hellaswag": 10042, "boolq": 3270,
                  "sciq": 1000}
IT_SHOTS = 4
METRIC = {"classification": "accuracy", "generation": "rougeL", "multiple_choice": "acc"}
METHOD = {"classification": "tokenprob", "generation": "greedy", "multiple_choice": "loglik"}

_CKPT = r"(?:ckpt(?P<step>\d+)|main)"
_SHOTS = r"(?:_(?P<shots>\d+)shots)?"
SFT_BASE_ID = re.compile(r"olmo1b_(?:checkpoint-(?P<step>\d+)_)?original_hf" + _SHOTS)
SFT_FT_ID = re.compile(r"olmo1b_hf_" + _CKPT + r"_(?P<task>[a-z]+)_(?P<epochs>\d+)epoch_(?P<lr>[0-9.e-]+)" + _SHOTS)
IT_BASE_ID = re.compile(r"(?:checkpoint-(?P<step>\d+)|olmo1b_original_hf)")
IT_FT_ID = re.compile(r"olmo1b_hf_" + _CKPT + r"_tulu_(?P<epochs>\d+)epoch_(?P<lr>[0-9.e-]+)")


def checkpoint(step: str | None) -> tuple[str, int | None]:
    return (f"step{step}", int(step)) if step else (MAIN, None)


def split_format(name: str) -> tuple[str, str]:
    for suffix, fmt in FORMAT_SUFFIXES.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], fmt
    return name, "default"


def _row(step: str | None, train_task: str, lr: float | None, eval_set: tuple[str, str, str, str], fmt: str,
         shots: int, value: float, half: float | None, n: int | None) -> dict:
    name, eval_task, task_type, domain = eval_set
    label, number = checkpoint(step)
    return dict(checkpoint=label, step=number, train_task=train_task, eval_set=name, eval_task=eval_task,
                task_type=task_type, domain=domain, format=fmt, shots=shots, metric=METRIC[task_type], value=value,
                lr=lr, seed=None, method=METHOD[task_type],
                ci_low=None if half is None else value - half, ci_high=None if half is None else value + half,
                n=n, selected=lr is None or np.isclose(lr, PAPER_LR[train_task], rtol=1e-9, atol=0.0))


def sft_rows(path: Path = SFT_TABLE) -> list[dict]:
    raw = pd.read_csv(path, index_col=0)
    rows = []
    for model_id, released_set, value, std in raw[["model_id", "eval dataset", "Performance", "std"]].itertuples(
            index=False):
        base_set, fmt = split_format(released_set)
        if base_set not in SFT_SETS:
            continue
        base, ft = SFT_BASE_ID.fullmatch(model_id), SFT_FT_ID.fullmatch(model_id)
        if base:
            step, train_task, lr, shots = base["step"], "", None, base["shots"]
        elif ft and ft["task"] in SFT_TASKS:
            step, train_task, lr, shots = ft["step"], SFT_TASKS[ft["task"]], float(ft["lr"]), ft["shots"]
        else:
            continue
        rows.append(_row(step, train_task, lr, SFT_SETS[base_set], fmt, int(shots or 0), float(value),
                         Z * float(std), None))
    return rows


def official_rows(path: Path = IT_TABLE) -> list[dict]:
    raw = pd.read_csv(path, index_col=0)
    rows = []
    for model_id, eval_set, value in raw[["model_id", "eval dataset", "Performance"]].itertuples(index=False):
        if eval_set not in MC_SPLIT_SIZES:
            continue
        n = MC_SPLIT_SIZES[eval_set]
        correct = value * n
        if abs(correct - round(correct)) > 1e-6:
            raise ValueError(f"{path}: {model_id} on {eval_set}: accuracy {value!r} is not a count out of {n}")
        base, ft = IT_BASE_ID.fullmatch(model_id), IT_FT_ID.fullmatch(model_id)
        if not (base or ft):
            raise ValueError(f"{path}: unknown model_id {model_id!r}")
        step, train_task, lr = (base["step"], "", None) if base else (ft["step"], "instruct", float(ft["lr"]))
        rows.append(_row(step, train_task, lr, (eval_set, eval_set, "multiple_choice", "in"), "default", IT_SHOTS,
                         float(value), None, n))
    return rows


def release_table() -> pd.DataFrame:
    """Both released tables as one results table (EXPORT_COLUMNS), in the release's row order."""
    return pd.DataFrame(sft_rows() + official_rows(), columns=EXPORT_COLUMNS)
