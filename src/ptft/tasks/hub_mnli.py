"""``mnli``: NLI on the Hub datasets of the study.

Split / eval set -> Hub dataset (config) [split] -> local file under ``data_dir`` -> columns:

- train / dev -> ``nyu-mll/glue`` (mnli) [train] -> ``glue_mnli/train.jsonl`` -> premise, hypothesis, label
  (dev = 5 % of train by a stable hash of the row index: both validation sets are eval sets)
- ``mnli_matched`` (in) -> [validation_matched] -> ``glue_mnli/validation_matched.jsonl``
- ``mnli_mismatched`` (in) -> [validation_mismatched] -> ``glue_mnli/validation_mismatched.jsonl``
- ``rte`` (out) -> ``nyu-mll/glue`` (rte) [validation] -> ``glue_rte/validation.jsonl``
  -> sentence1, sentence2, label
- ``gpt3_nli`` (out) -> ``pietrolesci/gpt3_nli`` [train, its only split] -> ``gpt3_nli/train.jsonl``
  -> text_a, text_b, label

(``.jsonl``, ``.json``, ``.csv`` or ``.parquet``.) Labels: MNLI / GPT-3 NLI 0 -> entailment,
1 -> neutral, 2 -> contradiction; RTE 0 -> entailment, 1 -> not_entailment (RTE has its own label
set). GLUE test splits (label -1) are never used and are refused if pointed at.
"""

from __future__ import annotations

from ptft.tasks.base import Example
from ptft.tasks.formats import BINARY_NLI_LABELS, NLI
from ptft.tasks.hubutil import EvalSplit, HubSource, SplitSpec, hub_source
from ptft.tasks.rows import Row

MNLI_MAP = {0: "entailment", 1: "neutral", 2: "contradiction"}
RTE_MAP = {0: "entailment", 1: "not_entailment"}

MNLI = HubSource("glue_mnli", "nyu-mll/glue", "mnli")
RTE = HubSource("glue_rte", "nyu-mll/glue", "rte")
GPT3NLI = HubSource("gpt3_nli", "pietrolesci/gpt3_nli")


def pair_row(first: str, second: str, mapping: dict[int, str]):
    def convert(row: Row) -> Example:
        return Example(row.uid(), {"premise": row.text(first), "hypothesis": row.text(second)},
                       row.label("label", mapping))

    return convert


mnli_row = pair_row("premise", "hypothesis", MNLI_MAP)

TASKS = (NLI.task(
    "mnli",
    hub_source(
        SplitSpec("mnli", MNLI, "train", mnli_row, part="train"),
        SplitSpec("mnli", MNLI, "train", mnli_row, part="dev"),
        [EvalSplit("mnli_matched", MNLI, "validation_matched", mnli_row, domain="in"),
         EvalSplit("mnli_mismatched", MNLI, "validation_mismatched", mnli_row, domain="in"),
         EvalSplit("rte", RTE, "validation", pair_row("sentence1", "sentence2", RTE_MAP), domain="out",
                   labels=BINARY_NLI_LABELS),
         EvalSplit("gpt3_nli", GPT3NLI, "train", pair_row("text_a", "text_b", MNLI_MAP), domain="out")],
    ),
    "MNLI (entailment/neutral/contradiction); OOD RTE (2 labels), GPT-3-generated NLI",
    typical_tokens_per_example=55,  # two sentences + a label word
),)
