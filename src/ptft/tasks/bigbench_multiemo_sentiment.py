"""``bb_multiemo_sentiment``: offline sentiment classification from BIG-bench MultiEmo (English).

MultiEmo (Kocoń et al. 2021) holds sentences of Polish consumer reviews, here in their English
translation, each labelled positive / negative / neutral / ambivalent. Each domain is a file:

- train/dev/in-domain test: ``multiemo/hotels_sentence_en`` (hotel reviews), split 80/10/10 by a
  stable hash of the sentence text (exact repeats share a split); rows with an empty sentence
  (a few per file) are skipped and counted in ``TaskData.notes["skipped"]``;
- out-of-domain eval sets, whole files: ``bb_multiemo_medicine`` (reviews of doctors),
  ``bb_multiemo_products`` and ``bb_multiemo_school`` (university reviews, the ``reviews`` file).

The labels are word-level cues a small model can pick up from a few hundred examples, which the
NLI and dialogue tasks are not: the offline default uses it as its learnable classification task.
"""

from __future__ import annotations

from collections import Counter

from ptft.tasks.base import Example
from ptft.tasks.bbutil import bigbench_examples, bigbench_source, gold_choice, map_label, need, text_field
from ptft.tasks.pools import OutOfDomain, Pool, log_skipped, make_pool
from ptft.tasks.formats import SENTIMENT
from ptft.tasks.splits import BIG

LABEL_MAP = {label: label for label in SENTIMENT.labels}
IN_DOMAIN = "bb_multiemo_hotels"
FILES = {
    "bb_multiemo_hotels": "multiemo/hotels_sentence_en/task.json",
    "bb_multiemo_medicine": "multiemo/medicine_sentence_en/task.json",
    "bb_multiemo_products": "multiemo/products_sentence_en/task.json",
    "bb_multiemo_school": "multiemo/reviews_sentence_en/task.json",
}

SKIP_REASON = "empty sentence"

need(*FILES.values())


def _rows(name: str, split: str) -> tuple[list[Example], Counter]:
    out, skipped = [], Counter()
    for i, row in enumerate(bigbench_examples(FILES[name])):
        if not str(row.get("input") or "").strip():
            skipped[SKIP_REASON] += 1
            continue
        text = text_field(row, "input", name, split, i)
        gold, _ = gold_choice(row, name, split, i)
        out.append(Example(f"{name}:{i}", {"text": text}, map_label(gold, LABEL_MAP, name, split, i)))
    log_skipped(name, skipped)
    return out, skipped


def hotels_pool(name: str) -> Pool:
    rows, skipped = _rows(name, "all")
    return make_pool([(ex.fields["text"], ex) for ex in rows], BIG, salt=name, skipped=skipped)


def ood_rows(name: str) -> tuple[list[Example], Counter]:
    return _rows(name, "test")


TASKS = (SENTIMENT.task(
    "bb_multiemo_sentiment",
    bigbench_source(IN_DOMAIN, hotels_pool, [OutOfDomain(name, ood_rows) for name in FILES if name != IN_DOMAIN],
                    normalize_whitespace=False),  # the sentences as the files give them
    "Sentiment of a review sentence (positive/negative/neutral/ambivalent), BIG-bench MultiEmo English",
),)
