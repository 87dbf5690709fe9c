"""Test helper: write a scored set as an lm-evaluation-harness multiple-choice task over a local
JSONL file, so both tools can be run on identical items (the parity tests, the import tests).
Rows carry ``prompt`` (the full context), ``choices`` (continuations without the leading space;
lm-eval adds its target delimiter " ") and ``gold`` (index of the correct choice). ``train_rows``
add a training split (lm-eval's few-shot source)."""

from __future__ import annotations

import json
from pathlib import Path

LM_EVAL_TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {file}{train_file}
test_split: test{train_split}
output_type: multiple_choice
doc_to_text: prompt
doc_to_choice: choices
doc_to_target: gold
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def write_lm_eval_task(folder: Path, name: str, rows: list[dict], train_rows: list[dict] | None = None,
                       extra: str = "") -> Path:
    """``folder/name.yaml`` over ``folder/name.jsonl`` (and ``name.train.jsonl``); pass ``folder``
    as lm-eval's include path. ``extra`` is appended to the YAML (more task keys)."""
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    train_file = train_split = ""
    if train_rows is not None:
        train = folder / f"{name}.train.jsonl"
        train.write_text("".join(json.dumps(r) + "\n" for r in train_rows))
        train_file, train_split = f"\n    train: {train}", "\ntraining_split: train"
    path = folder / f"{name}.yaml"
    path.write_text(LM_EVAL_TASK_YAML.format(name=name, file=data, train_file=train_file,
                                             train_split=train_split) + extra)
    return path
