"""``bb_socialiqa_qg``: offline question generation from BIG-bench SocialIQA.

Source: ``social_iqa/task.json`` (1,954 items). Each input is a context followed by a question as
its final sentence (``"Tracy didn't go home ... attacks. What does Tracy need to do before
this?"``); ``target_scores`` holds the answers (three; four items have two). The task, as in the
study: context + the answers -> the question. The question is cut off the input (it is the
target, so it never appears in the prompt).

Fields: ``context``, ``answer`` (the answers in file order joined by ``"; "``); target: the question.
Split 70/10/20 by a stable hash of the context (two contexts are asked twice; both questions
share a split). In-domain eval set ``bb_socialiqa_qg``.
"""

from __future__ import annotations

import re

from ptft.tasks.base import Example, one_line
from ptft.tasks.bbutil import bigbench_examples, bigbench_source, gold_choice, need, text_field
from ptft.tasks.pools import Pool, make_pool
from ptft.tasks.formats import QUESTION_GENERATION
from ptft.tasks.rows import row_error
from ptft.tasks.splits import SMALL

ANSWER_SEPARATOR = "; "
# The question is the last sentence: text after the last . ! ? (or closing quote) that ends in "?".
_QUESTION = re.compile(r"^(.*[.!?\"'])\s+([^.!?]*\?)\s*$", re.S)

need("social_iqa/task.json")


def split_question(text: str) -> tuple[str, str] | None:
    """``(context, question)`` of a SocialIQA input, or None when there is no final question."""
    m = _QUESTION.match(text.strip())
    if not m:
        return None
    return m.group(1).strip(), m.group(2).strip()


def socialiqa_pool(name: str) -> Pool:
    out = []
    for i, row in enumerate(bigbench_examples("social_iqa/task.json")):
        text = text_field(row, "input", name, "all", i)
        parts = split_question(text)
        if parts is None:
            raise row_error(name, "all", i, "input", f"no final question sentence in {text[:80]!r}")
        context, question = parts
        _, answers = gold_choice(row, name, "all", i)
        answers = [one_line(a) for a in answers if a.strip()]
        if len(answers) < 2:
            raise row_error(name, "all", i, "target_scores", "needs at least two answers")
        ex = Example(f"{name}:{i}", {"context": context, "answer": ANSWER_SEPARATOR.join(answers)},
                     one_line(question))
        out.append((context, ex))
    return make_pool(out, SMALL, salt=name)


TASKS = (QUESTION_GENERATION.task(
    "bb_socialiqa_qg",
    bigbench_source("bb_socialiqa_qg", socialiqa_pool),
    "Question generation from BIG-bench SocialIQA (context + three answers -> question)",
),)
