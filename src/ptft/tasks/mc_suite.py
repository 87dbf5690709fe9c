"""The offline multiple-choice suite (``mc_*``): the validation sets of OLMo's evaluation suite,
shipped, scored by log-likelihood of each choice (lm-evaluation-harness style).

==========================  ==================================  =====  =======
task / eval set             data                                items  choices
==========================  ==================================  =====  =======
``mc_arc_easy``             ARC-Easy (grade-school science)     570    3-5
``mc_arc_challenge``        ARC-Challenge (the hard part)       299    3-5
``mc_openbookqa``           OpenBookQA (science facts)          500    4
``mc_commonsense_qa``       CommonsenseQA                       1,221  5
``mc_piqa``                 PIQA (physical commonsense)         1,838  2
``mc_sciq``                 SciQ (with its support paragraph)   1,000  4
==========================  ==================================  =====  =======

Rows are converted as the Hub tasks (:mod:`ptft.tasks.hub_mc`) convert them, so prompts and choices
match the Hub suite's. Only validation splits ship, so each is split 20/10/70 by a stable hash of
the question: the train part supplies few-shot demonstrations, the dev part is unused, the test
part (70 %) is the eval set, named like the task. The suite stands in for the study's
multiple-choice benchmarks, evaluated before and after instruction tuning.
"""

from __future__ import annotations

from ptft.tasks.base import Example, Task, one_line
from ptft.tasks.formats import MC_READING, MULTIPLE_CHOICE, Family
from ptft.tasks.hub_mc import keyed_choices_row, sciq_mc_row
from ptft.tasks.hubutil import Converter
from ptft.tasks.pools import pooled_source
from ptft.tasks.rows import Row
from ptft.tasks.shipped import shipped_pool
from ptft.tasks.splits import EVAL_FIRST

PIQA_LABELS = {0: "sol1", 1: "sol2"}


def piqa_row(row: Row) -> Example:
    choices = (row.text("sol1"), row.text("sol2"))
    answer = row.label("label", PIQA_LABELS)
    return Example(row.uid(), {"question": row.text("goal")}, choices[0 if answer == "sol1" else 1], choices)


def _task(name: str, file: str, convert: Converter, family: Family, description: str) -> Task:
    pool = shipped_pool(file, convert, lambda ex: one_line(ex.fields["question"]), EVAL_FIRST)
    return family.task(name, pooled_source(name, pool), f"{description} (validation split, shipped)")


TASKS = (
    _task("mc_arc_easy", "arc_easy", keyed_choices_row("question"), MULTIPLE_CHOICE, "ARC-Easy: grade-school science"),
    _task("mc_arc_challenge", "arc_challenge", keyed_choices_row("question"), MULTIPLE_CHOICE,
          "ARC-Challenge: grade-school science, hard"),
    _task("mc_openbookqa", "openbookqa", keyed_choices_row("question_stem"), MULTIPLE_CHOICE,
          "OpenBookQA: science facts"),
    _task("mc_commonsense_qa", "commonsense_qa", keyed_choices_row("question"), MULTIPLE_CHOICE,
          "CommonsenseQA: everyday concepts"),
    _task("mc_piqa", "piqa", piqa_row, MULTIPLE_CHOICE, "PIQA: physical commonsense"),
    _task("mc_sciq", "sciq", sciq_mc_row, MC_READING, "SciQ: science questions with a support passage"),
)
