"""A small fake run directory, written through the real ResultsStore.

Two checkpoints (steps 1k and 2k), tasks nli (classification) and summ (generation), default and
io formats, 4 shots. Cross-task cells (default format):

    BASE nli_val .50 .60   FT summ on nli_val .45 .60   -> ratios -10 %, 0 %   => gen->cls MRC -5 %
    BASE summ_test .20 .40 FT nli on summ_test .10 .10  -> ratios -50 %, -75 % => cls->gen MRC -62.5 %
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict
from pathlib import Path

import pytest

from ptft.checkpoints.series import Checkpoint
from ptft.grid import EvalUnit, ModelKey, ResultRow
from ptft.store import ResultsStore

SETS = {  # eval_set: (eval_task, task_type, domain, method, metric)
    "nli_val": ("nli", "classification", "in", "tokenprob", "accuracy"),
    "summ_test": ("summ", "generation", "in", "greedy", "rougeL"),
}
VALUES = {  # (train_task, eval_set, format): values at c1, c2
    ("", "nli_val", "default"): (0.50, 0.60),
    ("", "summ_test", "default"): (0.20, 0.40),
    ("nli", "nli_val", "default"): (0.80, 0.85),
    ("nli", "summ_test", "default"): (0.10, 0.10),
    ("summ", "summ_test", "default"): (0.30, 0.45),
    ("summ", "nli_val", "default"): (0.45, 0.60),
    ("", "nli_val", "io"): (0.40, 0.55),
    ("nli", "nli_val", "io"): (0.60, 0.80),
}
STUDY_YAML = "name: tiny-study  # <checked: escaped>\nmodel: tiny-llama\ncheckpoints: [c1, c2]\n"
C1 = Checkpoint("c1", 1000, "org/model", "step1000", fingerprint="0123456789abcdef")
C2 = Checkpoint("c2", 2000, "runs/tiny/checkpoints/c2", pretrained=True)
# c2's weights, one float32 tensor, written by hand in the safetensors layout (an 8-byte header
# length, the JSON header, the bytes): its fingerprint is sha256("w|F32|[2]|" + the 8 bytes)
C2_TENSOR = struct.pack("<2f", 1.0, -2.0)
C2_SAFETENSORS = (lambda header: struct.pack("<Q", len(header)) + header + C2_TENSOR)(
    json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode())
PREDICTION = "predictions/ft-c1-nli/nli_val.default.4shot.tokenprob.jsonl"


def result_rows() -> list[ResultRow]:
    rows = []
    for (task, eval_set, fmt), values in VALUES.items():
        eval_task, task_type, domain, method, metric = SETS[eval_set]
        for (checkpoint, step), value in zip((("c1", 1000), ("c2", 2000)), values):
            model = ModelKey(checkpoint, step, task, lr=2e-6 if task else None, seed=0 if task else None)
            rows.append(ResultRow(f"ft-{checkpoint}-{task}" if task else f"base-{checkpoint}", model,
                                  EvalUnit(eval_task, eval_set, fmt, 4, method), task_type, domain, metric, value,
                                  ci_low=value - 0.03, ci_high=value + 0.03, n=300))
    return rows


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "runs" / "tiny"
    with ResultsStore(run / "results.sqlite") as store:
        store.write_results(result_rows())
        store.register_cells([
            ("eval-base-c1", "eval", "BASE c1 evaluation", {"checkpoint": asdict(C1)}),
            ("ft-c1-nli", "finetune", "fine-tune c1 on nli", {"checkpoint": asdict(C1), "task": "nli"}),
            ("ft-c2-summ", "finetune", "fine-tune c2 on summ", {"checkpoint": asdict(C2), "task": "summ"}),
        ])
        store.mark_cell("eval-base-c1", "done", seconds=1.0)
        store.mark_cell("ft-c1-nli", "failed", error="OutOfMemoryError: <GPU> ran out of memory")
    (run / "study.yaml").write_text(STUDY_YAML, encoding="utf-8")
    prediction = run / PREDICTION
    prediction.parent.mkdir(parents=True)
    prediction.write_text('{"uid": "1", "prediction": "yes", "target": "yes", "correct": true}\n', encoding="utf-8")
    (run / "checkpoints" / "c2").mkdir(parents=True)
    (run / "checkpoints" / "c2" / "model.safetensors").write_bytes(C2_SAFETENSORS)
    (run / "checkpoints" / "loss.csv").write_text("step,train_loss,heldout_loss\n0,10.5,10.6\n1000,6.2,6.4\n"
                                               "2000,4.1,4.5\n", encoding="utf-8")
    return run
