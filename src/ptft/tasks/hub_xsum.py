"""``xsum``: summarisation on the Hub datasets of the study (needs the Hub, or local files).

Split / eval set -> Hub dataset (config) [split] -> local file under ``data_dir`` -> columns:

- train -> ``EdinburghNLP/xsum`` [train] -> ``xsum/train.jsonl`` -> document, summary
- dev -> ``EdinburghNLP/xsum`` [validation] -> ``xsum/validation.jsonl`` -> document, summary
- ``xsum`` (in) -> ``EdinburghNLP/xsum`` [test] -> ``xsum/test.jsonl`` -> document, summary
- ``xlsum_en`` (out) -> ``csebuetnlp/xlsum`` (english) [test] -> ``xlsum_en/test.jsonl`` -> text, summary
- ``cnn_dailymail`` (out) -> ``abisee/cnn_dailymail`` (3.0.0) [test] -> ``cnn_dailymail/test.jsonl``
  -> article, highlights

Local files live under ``<data_dir>/<folder>/<split>.<ext>`` (``.jsonl``, ``.json``, ``.csv`` or
``.parquet``, the first that exists) with the Hub's column names. Fields: ``document``; target: the
summary on one line (CNN/DailyMail's highlight lines are joined with spaces). Rows with an empty
document or summary are skipped and counted in ``TaskData.notes["skipped"]``.
"""

from __future__ import annotations

from ptft.tasks.base import Example, one_line
from ptft.tasks.formats import SUMMARISATION
from ptft.tasks.hubutil import EvalSplit, HubSource, SplitSpec, hub_source
from ptft.tasks.rows import Row, Skip

XSUM = HubSource("xsum", "EdinburghNLP/xsum")
XLSUM = HubSource("xlsum_en", "csebuetnlp/xlsum", "english")
CNNDM = HubSource("cnn_dailymail", "abisee/cnn_dailymail", "3.0.0")


def summary_row(doc_key: str, sum_key: str):
    def convert(row: Row) -> Example:
        document = row.text(doc_key, allow_empty=True)
        summary = one_line(row.text(sum_key, allow_empty=True))
        if not document:
            raise Skip("empty document")
        if not summary:
            raise Skip("empty summary")
        return Example(row.uid(), {"document": document}, summary)

    return convert


TASKS = (SUMMARISATION.task(
    "xsum",
    hub_source(
        SplitSpec("xsum", XSUM, "train", summary_row("document", "summary")),
        SplitSpec("xsum", XSUM, "validation", summary_row("document", "summary")),
        [EvalSplit("xsum", XSUM, "test", summary_row("document", "summary"), domain="in"),
         EvalSplit("xlsum_en", XLSUM, "test", summary_row("text", "summary"), domain="out"),
         EvalSplit("cnn_dailymail", CNNDM, "test", summary_row("article", "highlights"), domain="out")],
    ),
    "XSum summarisation (train XSum; OOD XL-Sum English, CNN/DailyMail)",
),)
