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

from ptft.tasks import formats
from ptft.tasks.base import EvalSet, Example, LoadRequest, Task, TaskData, one_line
from ptft.tasks.bbutil import (need, Pool, assemble, bigbench_examples, cached, log_skipped, make_pool,
                               row_error)
from ptft.tasks.registry import register
from ptft.tasks.splits import SMALL

need("gem/xsum/task.json")


def xsum_examples(rows: list[dict], name: str = "bb_xsum") -> tuple[list[Example], Counter]:
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


@cached
def xsum_pool() -> Pool:
    rows, skipped = xsum_examples(bigbench_examples("gem/xsum/task.json"))
    return make_pool([(ex.uid, ex) for ex in rows], SMALL, salt="bb_xsum", skipped=skipped)


def load(request: LoadRequest) -> TaskData:
    pool = xsum_pool()
    return assemble(request, pool, {"bb_xsum": pool})


TASK = register(Task(
    name="bb_xsum",
    task_type="generation",
    formats=formats.summarisation(),
    eval_sets=(EvalSet("bb_xsum", "in"),),
    loader=load,
    max_new_tokens=60,
    description="One-sentence news summarisation, BIG-bench GEM XSum (1,001 articles)",
    normalize_whitespace=True,  # as ptft always did for BIG-bench: exported values unchanged
))
