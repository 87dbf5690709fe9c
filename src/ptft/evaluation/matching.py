"""Turning free text into an answer: normalised prefix match to a label, never a substring match.

``normalize`` lowercases, turns every punctuation character into a space and collapses
whitespace. An output answers label L when its normalised form *is* L's normalised form or
*starts with it followed by a word break*: " Yes." -> "yes" answers yes, "yes, it is" answers yes,
but "know" does not answer "no" and "yesterday" does not answer "yes" (the word-break rule is
stricter than a bare ``startswith``: a label must be a whole word of the output). When several
labels match (e.g. "not entailment" and "not"), the longest wins.
"""

from __future__ import annotations

import re
import string
from typing import Sequence

_PUNCT = re.compile("[" + re.escape(string.punctuation) + "]")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def match_label(output: str, labels: Sequence[str]) -> str | None:
    """The label the output starts with (normalised, whole words, longest), or None."""
    out = normalize(output)
    best: str | None = None
    best_len = -1
    for label in labels:
        norm = normalize(label)
        if not norm:
            continue
        if (out == norm or out.startswith(norm + " ")) and len(norm) > best_len:
            best, best_len = label, len(norm)
    return best


def truncate_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """``text`` cut at the earliest occurrence of any stop sequence; whether one was found."""
    cut = len(text)
    found = False
    for stop in stops:
        if not stop:
            continue
        i = text.find(stop)
        if i != -1 and i < cut:
            cut, found = i, True
    return text[:cut], found
