"""``squad_qg``: question generation (paragraph + answer -> question) on SQuAD v1.1.

Data (shipped): the 1,000 SQuAD v1.1 validation questions of OLMo's evaluation suite (803
paragraphs of 48 Wikipedia articles), each with its paragraph and reference answers.

- train/dev/in-domain eval set ``squad_qg``: split 80/10/10 by a stable hash of the *paragraph*,
  so no eval paragraph is seen in training. Fields: ``context`` (the paragraph), ``answer`` (the
  first reference answer); target: the question.
- out-of-domain eval sets: ``coqa_qg``, the opening question of each of CoQA's 500 validation
  stories (children's stories, literature, news, exams, Wikipedia), with the story as context and
  its first reference answer; ``sciq_answer_qg``, SciQ's validation questions with their support
  paragraph and correct answer (rows without a support paragraph are skipped and counted).

It stands in for the study's SQuAD question-generation task and its shifted-domain sets.
"""

from __future__ import annotations

from ptft.tasks.base import Example, one_line
from ptft.tasks.formats import QUESTION_GENERATION
from ptft.tasks.pools import pooled_source
from ptft.tasks.rows import Row, Skip
from ptft.tasks.shipped import shipped_eval_set, shipped_pool


def first_answer(row: Row, key: str) -> str:
    answers = [one_line(a) for a in row.text_list(key) if a.strip()]
    if not answers:
        raise row.error(key, "no non-empty answer")
    return answers[0]


def squad_row(row: Row) -> Example:
    return Example(row.uid(), {"context": row.text("context").strip(), "answer": first_answer(row, "answers")},
                   one_line(row.text("question")))


def coqa_opening_row(row: Row) -> Example:
    turns = row.nested("turns")
    if not isinstance(turns, list) or not turns or not isinstance(turns[0], dict):
        raise row.error("turns", f"expected a list of question turns, got {turns!r}")
    first = Row(turns[0], row.dataset, row.split, row.index)
    return Example(row.uid(), {"context": one_line(row.text("story")), "answer": first_answer(first, "answers")},
                   one_line(first.text("question")))


def sciq_answer_row(row: Row) -> Example:
    support = row.text("support", allow_empty=True).strip()
    if not support:
        raise Skip("empty support")
    return Example(row.uid(), {"context": support, "answer": one_line(row.text("correct_answer"))},
                   one_line(row.text("question")))


TASKS = (QUESTION_GENERATION.task(
    "squad_qg",
    pooled_source("squad_qg", shipped_pool("squad", squad_row, lambda ex: ex.fields["context"]),
                  [shipped_eval_set("coqa_qg", "coqa", coqa_opening_row),
                   shipped_eval_set("sciq_answer_qg", "sciq", sciq_answer_row)]),
    "Question generation from SQuAD v1.1 (paragraph + answer -> question); OOD CoQA stories, SciQ",
    typical_tokens_per_example=190,  # a SQuAD paragraph + answer -> question
),)
