"""The offline multiple-choice suite from BIG-bench (``bb_mc_*``), scored by log-likelihood.

Each task's ``target_scores`` holds several choices with exactly one correct (score 1); the
choices become ``Example.choices`` (stripped, file order) and ``target`` the correct one. The
prompt is the question only (choices are scored as completions, lm-evaluation-harness style).

================================  ==============================================  =====  =======
task / eval set                   BIG-bench file                                  items  choices
================================  ==============================================  =====  =======
``bb_mc_wikihow_goal``            ``goal_step_wikihow/goal_inference/task.json``  1,703  4
``bb_mc_timedial``                ``timedial/task.json``                          2,550  3
``bb_mc_fables``                  ``understanding_fables/task.json``              189    5
``bb_mc_physical_intuition``      ``physical_intuition/task.json``                81     2-5
================================  ==============================================  =====  =======

Split 20/10/70 by a stable hash of the question text (items that repeat a question with other
choices share a split): the train split only supplies few-shot
demonstrations, the test split is the eval set (named like the task).
"""

from __future__ import annotations

from ptft.tasks.base import Example, Task, one_line
from ptft.tasks.bbutil import bigbench_examples, bigbench_source, gold_choice, need, text_field
from ptft.tasks.pools import Pool, make_pool
from ptft.tasks.formats import MULTIPLE_CHOICE
from ptft.tasks.rows import row_error
from ptft.tasks.splits import EVAL_FIRST

MC_FILES = {
    "bb_mc_wikihow_goal": ("goal_step_wikihow/goal_inference/task.json",
                           "Infer the goal of a wikiHow step (commonsense, procedural)"),
    "bb_mc_timedial": ("timedial/task.json", "Temporal commonsense: fill the masked duration in a dialogue"),
    "bb_mc_fables": ("understanding_fables/task.json", "Pick the moral of a fable"),
    "bb_mc_physical_intuition": ("physical_intuition/task.json", "Qualitative physics questions"),
}
need(*(path for path, _ in MC_FILES.values()))


def mc_examples(name: str, rows: list[dict], split: str = "all") -> list[Example]:
    out = []
    for i, row in enumerate(rows):
        question = text_field(row, "input", name, split, i)
        gold, choices = gold_choice(row, name, split, i)
        choices = [one_line(c) for c in choices]
        if any(not c for c in choices):
            raise row_error(name, split, i, "target_scores", "empty choice")
        if len(set(choices)) != len(choices):
            raise row_error(name, split, i, "target_scores", f"duplicate choices {choices}")
        if len(choices) < 2:
            raise row_error(name, split, i, "target_scores", "needs at least two choices")
        out.append(Example(f"{name}:{i}", {"question": question}, one_line(gold), tuple(choices)))
    return out


def mc_pool(name: str) -> Pool:
    rows = mc_examples(name, bigbench_examples(MC_FILES[name][0]))
    # grouped by the question text: timedial asks the same dialogue with other choice sets
    return make_pool([(one_line(ex.fields["question"]), ex) for ex in rows], EVAL_FIRST, salt=name)


def _make(name: str, relpath: str, description: str) -> Task:
    return MULTIPLE_CHOICE.task(
        name,
        bigbench_source(name, mc_pool),
        f"{description} (BIG-bench {relpath.rsplit('/', 1)[0]})",
    )


TASKS = tuple(_make(name, path, desc) for name, (path, desc) in MC_FILES.items())
