"""Bridge to lm-evaluation-harness: write a scored set as an lm-eval multiple-choice task over a
local JSONL file, so both tools can be run on identical items (parity test, throughput benchmark).
Rows carry ``prompt`` (the full context), ``choices`` (continuations without the leading space;
lm-eval adds its target delimiter " ") and ``gold`` (index of the correct choice)."""

from __future__ import annotations

import json
from pathlib import Path

LM_EVAL_TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {file}
test_split: test
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


def write_lm_eval_task(folder: Path, name: str, rows: list[dict]) -> Path:
    """``folder/name.yaml`` over ``folder/name.jsonl``; pass ``folder`` as lm-eval's include path."""
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = folder / f"{name}.yaml"
    path.write_text(LM_EVAL_TASK_YAML.format(name=name, file=data))
    return path
