"""``bb_squad_qg``: offline question generation (context + answer -> question) from BIG-bench.

Source: ``squad_shifts/`` of the BIG-bench sdist, SQuAD-format JSON files
(``data[].paragraphs[].{context, qas[].{id, question, answers[].text}}``).

- Train/dev/in-domain test ``bb_squad_qg``: ``squaddev_v1.1.json`` (SQuAD v1.1 dev, 10,565
  questions over 2,067 paragraphs), split 80/10/10 by a stable hash of the *paragraph* so that no
  test paragraph is seen in training (SQuAD asks ~5 questions per paragraph).
- Out-of-domain eval sets (whole files): ``bb_squad_qg_new_wiki`` (``new_wiki_v1.0.json``, 7,936),
  ``bb_squad_qg_nyt`` (``nyt_v1.0.json``, 10,056), ``bb_squad_qg_reddit`` (``reddit_v1.0.json``,
  9,767), ``bb_squad_qg_amazon`` (``amazon_reviews_v1.0.json``, 9,877).

Fields: ``context`` (the paragraph), ``answer`` (the first gold answer text); target: the question
(whitespace collapsed to one line). Uids are the SQuAD question ids.
"""

from __future__ import annotations

from ptft.tasks.base import Example, one_line
from ptft.tasks.bbutil import bigbench_json, bigbench_source, need, text_field
from ptft.tasks.pools import OutOfDomain, Pool, make_pool
from ptft.tasks.formats import QUESTION_GENERATION
from ptft.tasks.rows import row_error
from ptft.tasks.splits import BIG

IN_FILE = "squad_shifts/squaddev_v1.1.json"
OOD_FILES = {
    "bb_squad_qg_new_wiki": "squad_shifts/new_wiki_v1.0.json",
    "bb_squad_qg_nyt": "squad_shifts/nyt_v1.0.json",
    "bb_squad_qg_reddit": "squad_shifts/reddit_v1.0.json",
    "bb_squad_qg_amazon": "squad_shifts/amazon_reviews_v1.0.json",
}
need(IN_FILE, *OOD_FILES.values())


def squad_rows(name: str, relpath: str, split: str) -> list[tuple[str, Example]]:
    """``(context, example)`` pairs of a SQuAD-format file; row = question index in the file."""
    data = bigbench_json(relpath)
    if not isinstance(data.get("data"), list):
        raise row_error(name, split, 0, "data", f"{relpath}: not a SQuAD-format file")
    out = []
    i = -1
    for article in data["data"]:
        for para in article.get("paragraphs", []):
            for qa in para.get("qas", []):
                i += 1
                context = text_field(para, "context", name, split, i)
                question = text_field(qa, "question", name, split, i)
                answers = qa.get("answers") or []
                texts = [a.get("text", "").strip() for a in answers if isinstance(a, dict)]
                texts = [t for t in texts if t]
                if not texts:
                    raise row_error(name, split, i, "answers", "no non-empty answer text")
                qid = qa.get("id") or str(i)
                out.append((context, Example(f"{name}:{qid}", {"context": context, "answer": texts[0]},
                                             one_line(question))))
    return out


def squad_pool(name: str) -> Pool:
    return make_pool(squad_rows(name, IN_FILE, "all"), BIG, salt=name)


def ood_rows(name: str) -> list[Example]:
    return [ex for _, ex in squad_rows(name, OOD_FILES[name], "test")]


TASKS = (QUESTION_GENERATION.task(
    "bb_squad_qg",
    bigbench_source("bb_squad_qg", squad_pool, [OutOfDomain(name, ood_rows) for name in OOD_FILES]),
    "Question generation from SQuAD v1.1 dev (context + answer -> question); SQuAD-shifts as OOD",
    typical_tokens_per_example=190,  # a SQuAD paragraph + answer -> question
),)
