"""``bb_xsum``: offline summarisation from BIG-bench GEM XSum.

Source: ``gem/xsum/task.json`` (1,001 BBC articles with their one-sentence summaries; ``input`` is
the article, ``target`` the summary). Fields: ``document`` (the article, its line breaks kept);
target: the summary on one line. Split 70/10/20 by a stable hash of the item index (about 700
train, 100 dev, 200 test). In-domain eval set ``bb_xsum``.

Rows with an empty article or summary are skipped on purpose, logged and counted in
``TaskData.notes["skipped"]`` (the pinned file has none); a target that is not text is an error.
"""

from __future__ import annotations

from collections import Counter

from ptft.tasks.base import Example, one_line
from ptft.tasks.bbutil import bigbench_examples, bigbench_source, need
from ptft.tasks.pools import Pool, log_skipped, make_pool
from ptft.tasks.formats import SUMMARISATION
from ptft.tasks.rows import row_error
from ptft.tasks.splits import SMALL

need("gem/xsum/task.json")


def xsum_examples(rows: list[dict], name: str) -> tuple[list[Example], Counter]:
    out: list[Example] = []
    skipped: Counter = Counter()
    for i, row in enumerate(rows):
        for key in ("input", "target"):
            if key not in row:
                raise row_error(name, "all", i, key, "missing")
            if not isinstance(row[key], str):
                raise row_error(name, "all", i, key, f"expected text, got {type(row[key]).__name__}")
        document, summary = row["input"].strip(), one_line(row["target"])
        if not document:
            skipped["empty document"] += 1
            continue
        if not summary:
            skipped["empty summary"] += 1
            continue
        out.append(Example(f"{name}:{i}", {"document": document}, summary))
    log_skipped(name, skipped)
    return out, skipped


def xsum_pool(name: str) -> Pool:
    rows, skipped = xsum_examples(bigbench_examples("gem/xsum/task.json"), name)
    return make_pool([(ex.uid, ex) for ex in rows], SMALL, salt=name, skipped=skipped)


TASKS = (SUMMARISATION.task(
    "bb_xsum",
    bigbench_source("bb_xsum", xsum_pool),
    "One-sentence news summarisation, BIG-bench GEM XSum (1,001 articles)",
),)
