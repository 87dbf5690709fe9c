"""The study's multiple-choice suite on the Hub (evaluated after instruction tuning; 4-shot,
ranked by log-likelihood): ``arc_easy``, ``arc_challenge``, ``openbookqa``, ``hellaswag``,
``boolq``, ``sciq``. Each task has one eval set of its own name; ``train`` supplies few-shot
demonstrations.

Task -> Hub dataset (config) [train / dev / eval splits] -> local folder under ``data_dir`` -> columns:

- ``arc_easy`` -> ``allenai/ai2_arc`` (ARC-Easy) [train / validation / test] -> ``arc_easy/``
  -> question, choices {text, label}, answerKey
- ``arc_challenge`` -> ``allenai/ai2_arc`` (ARC-Challenge) [train / validation / test]
  -> ``arc_challenge/`` -> (same)
- ``openbookqa`` -> ``allenai/openbookqa`` (main) [train / validation / test] -> ``openbookqa/``
  -> question_stem, choices {text, label}, answerKey
- ``hellaswag`` -> ``Rowan/hellaswag`` [train 95 % / train 5 % / validation] -> ``hellaswag/``
  -> activity_label, ctx_a, ctx_b, endings, label
- ``boolq`` -> ``google/boolq`` [train 95 % / train 5 % / validation] -> ``boolq/``
  -> question, passage, answer (bool)
- ``sciq`` -> ``allenai/sciq`` [train / validation / test] -> ``sciq/``
  -> question, support, correct_answer, distractor1, distractor2, distractor3

Each local file is ``<folder>/<split>.jsonl`` (or ``.json``, ``.csv``, ``.parquet``); nested
columns are JSON-encoded strings in CSV. Prompts follow lm-evaluation-harness: ARC/OpenBookQA
``Question: …\\nAnswer:``; HellaSwag the cleaned context (``activity_label: ctx_a Ctx_b``) with the
cleaned endings as choices; BoolQ ``passage`` + ``question?`` with choices no / yes; SciQ the
support + question with choices distractor1-3 + correct answer. HellaSwag's test split has no
labels (``""``) and is refused; an ``answerKey`` that names no choice is refused.
"""

from __future__ import annotations

import re

from ptft.tasks.base import Example, Task
from ptft.tasks.formats import MC_READING, MULTIPLE_CHOICE, Family
from ptft.tasks.hubutil import EvalSplit, HubSource, SplitSpec, hub_source
from ptft.tasks.rows import Row


def keyed_choices_row(question_key: str):
    """ARC / OpenBookQA: ``choices = {"text": [...], "label": ["A", ...]}``, ``answerKey``."""

    def convert(row: Row) -> Example:
        question = row.text(question_key)
        choices = row.nested("choices")
        if not isinstance(choices, dict) or "text" not in choices or "label" not in choices:
            raise row.error("choices", f"expected {{'text': [...], 'label': [...]}}, got {choices!r}")
        texts, keys = [str(t) for t in choices["text"]], [str(k).strip() for k in choices["label"]]
        if len(texts) != len(keys) or len(texts) < 2:
            raise row.error("choices", f"needs >= 2 texts with one label each, got {choices!r}")
        answer = str(row.raw("answerKey")).strip()
        if answer in ("", "-1"):
            raise row.error("answerKey", "empty: this split's answers are hidden")
        if answer not in keys:
            raise row.error("answerKey", f"unknown label {answer!r}; the choices are labelled {keys}")
        return Example(row.uid(), {"question": question}, texts[keys.index(answer)], tuple(texts))

    return convert


def hellaswag_clean(text: str) -> str:
    """lm-evaluation-harness's HellaSwag preprocessing (WikiHow ``[title]`` markers removed)."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ").strip()


def hellaswag_row(row: Row) -> Example:
    ctx_b = row.text("ctx_b", allow_empty=True)
    context = f"{row.text('activity_label')}: {row.text('ctx_a', allow_empty=True)} {ctx_b[:1].upper()}{ctx_b[1:]}"
    endings = [hellaswag_clean(e) for e in row.text_list("endings")]
    label = row.raw("label")
    if isinstance(label, str):
        if not label.strip():
            raise row.error("label", "empty: this split's labels are hidden (HellaSwag test); use validation")
        try:
            label = int(label)
        except ValueError:
            raise row.error("label", f"expected an ending index, got {label!r}") from None
    if label == -1:
        raise row.error("label", "label -1: this split's labels are hidden; use validation")
    if not isinstance(label, int) or not 0 <= label < len(endings):
        raise row.error("label", f"unknown label {label!r}; expected 0..{len(endings) - 1}")
    return Example(row.uid(), {"question": hellaswag_clean(context)}, endings[label], tuple(endings))


BOOLQ_CHOICES = ("no", "yes")


def boolq_row(row: Row) -> Example:
    answer = row.raw("answer")
    if isinstance(answer, str) and answer.strip().lower() in ("true", "false"):
        answer = answer.strip().lower() == "true"
    if isinstance(answer, int) and not isinstance(answer, bool) and answer in (0, 1):
        answer = bool(answer)
    if not isinstance(answer, bool):
        raise row.error("answer", f"unknown label {answer!r}; expected true/false")
    question = row.text("question").rstrip("?")
    return Example(row.uid(), {"context": row.text("passage"), "question": f"{question}?"},
                   "yes" if answer else "no", BOOLQ_CHOICES)


def sciq_mc_row(row: Row) -> Example:
    choices = tuple(row.text(k) for k in ("distractor1", "distractor2", "distractor3", "correct_answer"))
    return Example(row.uid(), {"context": row.text("support", allow_empty=True), "question": row.text("question")},
                   choices[-1], choices)


def _task(name: str, source: HubSource, convert, family: Family, *, carve_dev: bool, eval_split: str,
          description: str) -> Task:
    if carve_dev:
        train = SplitSpec(name, source, "train", convert, part="train")
        dev = SplitSpec(name, source, "train", convert, part="dev")
    else:
        train = SplitSpec(name, source, "train", convert)
        dev = SplitSpec(name, source, "validation", convert)
    return family.task(name, hub_source(train, dev, [EvalSplit(name, source, eval_split, convert)]), description)


TASKS = (
    _task("arc_easy", HubSource("arc_easy", "allenai/ai2_arc", "ARC-Easy"), keyed_choices_row("question"),
          MULTIPLE_CHOICE, carve_dev=False, eval_split="test", description="ARC-Easy (grade-school science)"),
    _task("arc_challenge", HubSource("arc_challenge", "allenai/ai2_arc", "ARC-Challenge"),
          keyed_choices_row("question"), MULTIPLE_CHOICE, carve_dev=False, eval_split="test",
          description="ARC-Challenge (grade-school science, hard)"),
    _task("openbookqa", HubSource("openbookqa", "allenai/openbookqa", "main"), keyed_choices_row("question_stem"),
          MULTIPLE_CHOICE, carve_dev=False, eval_split="test", description="OpenBookQA (science facts)"),
    _task("hellaswag", HubSource("hellaswag", "Rowan/hellaswag"), hellaswag_row, MULTIPLE_CHOICE,
          carve_dev=True, eval_split="validation", description="HellaSwag (commonsense sentence completion)"),
    _task("boolq", HubSource("boolq", "google/boolq"), boolq_row, MC_READING,
          carve_dev=True, eval_split="validation", description="BoolQ (yes/no questions over a passage)"),
    _task("sciq", HubSource("sciq", "allenai/sciq"), sciq_mc_row, MC_READING,
          carve_dev=False, eval_split="test", description="SciQ (science questions with a support passage)"),
)
