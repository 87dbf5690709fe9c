"""``paws``: paraphrase identification (yes / no) on the Hub datasets of the study.

Split / eval set -> Hub dataset (config) [split] -> local file under ``data_dir`` -> columns:

- train -> ``google-research-datasets/paws`` (labeled_final) [train] -> ``paws/train.jsonl``
  -> sentence1, sentence2, label
- dev -> (same) [validation] -> ``paws/validation.jsonl``
- ``paws`` (in) -> (same) [test] -> ``paws/test.jsonl``
- ``qqp`` (out) -> ``nyu-mll/glue`` (qqp) [validation] -> ``glue_qqp/validation.jsonl``
  -> question1, question2, label
- ``stsb`` (out) -> ``nyu-mll/glue`` (stsb) [validation] -> ``glue_stsb/validation.jsonl``
  -> sentence1, sentence2, label (a 0-5 similarity score)

(``.jsonl``, ``.json``, ``.csv`` or ``.parquet``.) Labels: PAWS 1 -> yes (paraphrase), 0 -> no;
QQP 1 (duplicate) -> yes, 0 -> no; STS-B score > 3.5 -> yes, otherwise no (a score outside 0-5 is
refused). The GLUE test splits carry label -1 (hidden) and are refused: the original release
scored them and every gold answer became "no".
"""

from __future__ import annotations

import math

from ptft.tasks.base import Example
from ptft.tasks.formats import PARAPHRASE
from ptft.tasks.hubutil import EvalSplit, HubSource, SplitSpec, hub_source
from ptft.tasks.rows import Row

BINARY_MAP = {1: "yes", 0: "no"}
STSB_THRESHOLD = 3.5

PAWS = HubSource("paws", "google-research-datasets/paws", "labeled_final")
QQP = HubSource("glue_qqp", "nyu-mll/glue", "qqp")
STSB = HubSource("glue_stsb", "nyu-mll/glue", "stsb")


def pair_row(first: str, second: str):
    def convert(row: Row) -> Example:
        return Example(row.uid(), {"sentence1": row.text(first), "sentence2": row.text(second)},
                       row.label("label", BINARY_MAP))

    return convert


def stsb_label(row: Row) -> str:
    value = row.raw("label")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise row.error("label", f"expected a similarity score, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise row.error("label", f"expected a similarity score, got {value!r}")
    if value == -1:
        raise row.error("label", "label -1: this split's scores are hidden (the GLUE test split); "
                                 "use the validation split")
    if not 0 <= value <= 5:
        raise row.error("label", f"unknown label {value!r}: STS-B scores lie in 0-5")
    return "yes" if value > STSB_THRESHOLD else "no"


def stsb_row(row: Row) -> Example:
    return Example(row.uid(), {"sentence1": row.text("sentence1"), "sentence2": row.text("sentence2")},
                   stsb_label(row))


paws_row = pair_row("sentence1", "sentence2")

TASKS = (PARAPHRASE.task(
    "paws",
    hub_source(
        SplitSpec("paws", PAWS, "train", paws_row),
        SplitSpec("paws", PAWS, "validation", paws_row),
        [EvalSplit("paws", PAWS, "test", paws_row, domain="in"),
         EvalSplit("qqp", QQP, "validation", pair_row("question1", "question2"), domain="out"),
         EvalSplit("stsb", STSB, "validation", stsb_row, domain="out")],
    ),
    "PAWS paraphrase identification (yes/no); OOD QQP, STS-B (score > 3.5 -> yes)",
    typical_tokens_per_example=65,  # two sentences + a label word
),)
