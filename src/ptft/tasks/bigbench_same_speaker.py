"""``bb_same_speaker``: offline yes/no pair classification from BIG-bench.

"Were these two sentences of the conversation said by the same person?" — a judgement about a
pair of sentences (like paraphrase identification), answered ``yes`` / ``no``.

Train/dev/in-domain test: ``movie_dialog_same_or_different/task.json`` (50,000 movie-script
conversations; ``same`` -> yes 47 %, ``different`` -> no 53 %). Input:
``<dialogue> ----- In the preceding conversation, were the sentences "<s1>" and "<s2>"``; fields
``dialogue``, ``sentence1``, ``sentence2``. Split 80/10/10 by a stable hash of the item's uid
(every dialogue text is distinct).

Out-of-domain eval set ``bb_play_dialog``: ``play_dialog_same_or_different/task.json`` (3,264
Shakespeare dialogues, same question and labels).

Rows whose two quoted sentences cannot be found in the dialogue (a sentence that itself contains
``" and "`` makes the split ambiguous; 3 rows of the movie file) are skipped, logged and counted
in ``TaskData.notes["skipped"]``.
"""

from __future__ import annotations

import re
from collections import Counter

from ptft.tasks.base import Example
from ptft.tasks.bbutil import bigbench_examples, bigbench_source, gold_choice, map_label, need, text_field
from ptft.tasks.pools import OutOfDomain, Pool, log_skipped, make_pool
from ptft.tasks.formats import SAME_SPEAKER
from ptft.tasks.rows import row_error
from ptft.tasks.splits import BIG

LABEL_MAP = {"same": "yes", "different": "no"}

_MOVIE = re.compile(
    r'^(.*?)\s*-----\s*In the preceding conversation, were the sentences "(.+)" and "(.+)"\s*$', re.S)
_PLAY = re.compile(
    r'^(.*?)\s*In the preceding dialogue, were the lines "(.+)" and "(.+)" spoken by the same person '
    r'or different people\?\s*$', re.S)
SKIP_REASON = "sentence pair not found in the dialogue"

need("movie_dialog_same_or_different/task.json", "play_dialog_same_or_different/task.json")


def _rows(name: str, relpath: str, pattern: re.Pattern, split: str) -> tuple[list[Example], Counter]:
    out: list[Example] = []
    skipped: Counter = Counter()
    for i, row in enumerate(bigbench_examples(relpath)):
        text = text_field(row, "input", name, split, i)
        m = pattern.match(text)
        if not m:
            raise row_error(name, split, i, "input", f"unexpected layout: {text[-120:]!r}")
        dialogue, s1, s2 = (g.strip() for g in m.groups())
        if not dialogue or s1 not in dialogue or s2 not in dialogue:
            skipped[SKIP_REASON] += 1
            continue
        gold, _ = gold_choice(row, name, split, i)
        label = map_label(gold, LABEL_MAP, name, split, i)
        out.append(Example(f"{name}:{i}", {"dialogue": dialogue, "sentence1": s1, "sentence2": s2}, label))
    log_skipped(name, skipped)
    return out, skipped


def movie_pool(name: str) -> Pool:
    rows, skipped = _rows(name, "movie_dialog_same_or_different/task.json", _MOVIE, "all")
    return make_pool([(ex.uid, ex) for ex in rows], BIG, salt=name, skipped=skipped)


def play_rows(name: str) -> tuple[list[Example], Counter]:
    return _rows(name, "play_dialog_same_or_different/task.json", _PLAY, "test")


TASKS = (SAME_SPEAKER.task(
    "bb_same_speaker",
    bigbench_source("bb_movie_dialog", movie_pool, [OutOfDomain("bb_play_dialog", play_rows)]),
    "Same speaker? (yes/no) over a pair of sentences in a conversation, BIG-bench movie/play dialogs",
),)
