"""``socialiqa_qg``: question generation on the Hub datasets of the study.

Split / eval set -> Hub dataset [split] -> local file under ``data_dir`` -> columns:

- train / dev -> ``allenai/social_i_qa`` [train] -> ``social_i_qa/train.jsonl``
  -> context, question, answerA, answerB, answerC (dev = 5 % of train by a stable hash of the row
  index, disjoint from train)
- ``socialiqa_qg`` (in) -> ``allenai/social_i_qa`` [validation] -> ``social_i_qa/validation.jsonl``
- ``sciq_qg`` (out) -> ``allenai/sciq`` [test] -> ``sciq/test.jsonl``
  -> support, question, correct_answer, distractor1, distractor2, distractor3
- ``tweetqa_qg`` (out) -> ``ucsbnlp/tweet_qa`` [validation] -> ``tweet_qa/validation.jsonl``
  -> Tweet, Answer (a list), Question (TweetQA's test split has no answers: not used)

(``.jsonl``, ``.json``, ``.csv`` or ``.parquet``.) Fields: ``context`` and ``answer``; target: the
question.

- SocialIQA: context + the three answers (``answerA; answerB; answerC``) -> question.
- SciQ: support + the four options (sorted alphabetically, so the correct one has no fixed place)
  -> question. Rows with an empty ``support`` (about 10 % of SciQ) are skipped and counted.
- TweetQA: tweet + the first answer -> question.
"""

from __future__ import annotations

from ptft.tasks.base import Example, one_line
from ptft.tasks.formats import QUESTION_GENERATION
from ptft.tasks.hubutil import EvalSplit, HubSource, SplitSpec, hub_source
from ptft.tasks.rows import Row, Skip

SOCIALIQA = HubSource("social_i_qa", "allenai/social_i_qa")
SCIQ = HubSource("sciq", "allenai/sciq")
TWEETQA = HubSource("tweet_qa", "ucsbnlp/tweet_qa")
SEPARATOR = "; "


def socialiqa_row(row: Row) -> Example:
    answers = [one_line(row.text(k)) for k in ("answerA", "answerB", "answerC")]
    return Example(row.uid(), {"context": row.text("context"), "answer": SEPARATOR.join(answers)},
                   one_line(row.text("question")))


def sciq_row(row: Row) -> Example:
    support = row.text("support", allow_empty=True)
    if not support:
        raise Skip("empty support")
    options = sorted(one_line(row.text(k)) for k in ("correct_answer", "distractor1", "distractor2", "distractor3"))
    return Example(row.uid(), {"context": support, "answer": SEPARATOR.join(options)},
                   one_line(row.text("question")))


def tweetqa_row(row: Row) -> Example:
    answers = [a for a in row.text_list("Answer") if a]
    if not answers:
        raise row.error("Answer", "no answer (TweetQA's test split has none: use validation)")
    return Example(row.uid(), {"context": one_line(row.text("Tweet")), "answer": one_line(answers[0])},
                   one_line(row.text("Question")))


TASKS = (QUESTION_GENERATION.task(
    "socialiqa_qg",
    hub_source(
        SplitSpec("socialiqa_qg", SOCIALIQA, "train", socialiqa_row, part="train"),
        SplitSpec("socialiqa_qg", SOCIALIQA, "train", socialiqa_row, part="dev"),
        [EvalSplit("socialiqa_qg", SOCIALIQA, "validation", socialiqa_row, domain="in"),
         EvalSplit("sciq_qg", SCIQ, "test", sciq_row, domain="out"),
         EvalSplit("tweetqa_qg", TWEETQA, "validation", tweetqa_row, domain="out")],
    ),
    "Question generation: SocialIQA context + answers -> question; OOD SciQ, TweetQA",
),)
