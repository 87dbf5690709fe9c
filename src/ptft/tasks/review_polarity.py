"""``review_polarity``: is a one-sentence review positive or negative?

Data: the UCI Sentiment Labelled Sentences (Kotzias et al. 2015, shipped as ``uci_sentences``):
3,000 review sentences, 1,000 each from IMDb, Yelp and Amazon, half of them positive, chosen by
their authors to carry a clear polarity. Train, dev and the in-domain eval set ``review_polarity``
are a 60/10/30 split by a stable hash of the sentence; the eval share is large so that a
difference of a few points between checkpoints is outside the noise (about ±3 points at 900
examples).

Out-of-domain eval sets: the snippets of the VADER ground truth (shipped as ``sentiment_ratings``)
whose mean human rating is clearly positive or negative (beyond ±0.5 on -4..+4; the neutral band
is dropped): ``polarity_movies`` (Rotten Tomatoes snippets), ``polarity_products`` (Amazon
product-review snippets) and ``polarity_tweets``. Other collectors, other sites, graded rather than
chosen polarity.

It stands in for the study's review-sentiment task where the model is one pre-trained in minutes:
such a model learns the frequent, word-level cues of these sentences from 1,800 examples, and
learns them better the longer it was pre-trained, where the subtler rated snippets of ``sentiment``
stay at the majority class (docs/tasks.md).
"""

from __future__ import annotations

from ptft.tasks.base import Example
from ptft.tasks.formats import POLARITY
from ptft.tasks.pools import pooled_source
from ptft.tasks.rows import Row
from ptft.tasks.sentiment import FILE as RATINGS_FILE
from ptft.tasks.sentiment import NEUTRAL_BAND, rating_row
from ptft.tasks.sentiment import domain as sentiment_domain
from ptft.tasks.shipped import shipped_eval_set, shipped_pool

FILE = "uci_sentences"
LABELS = {1: "positive", 0: "negative"}
SPLIT = {"train": 0.6, "dev": 0.1, "test": 0.3}
OUT_OF_DOMAIN = {"polarity_movies": "movies", "polarity_products": "products", "polarity_tweets": "tweets"}


def sentence_row(row: Row) -> Example:
    label = row.raw("label")
    if isinstance(label, bool) or label not in LABELS:
        raise row.error("label", f"expected 1 (positive) or 0 (negative), got {label!r}")
    return Example(row.uid(), {"text": row.text("text").strip()}, LABELS[label])


def polar(domain: str):
    """The rows of one VADER domain outside the neutral band."""
    same_domain = sentiment_domain(domain)
    return lambda record: same_domain(record) and abs(record.get("rating", 0)) > NEUTRAL_BAND


TASKS = (POLARITY.task(
    "review_polarity",
    pooled_source("review_polarity", shipped_pool(FILE, sentence_row, lambda ex: ex.fields["text"], SPLIT),
                  [shipped_eval_set(name, RATINGS_FILE, rating_row, keep=polar(d))
                   for name, d in OUT_OF_DOMAIN.items()]),
    "Polarity of a one-sentence review (positive/negative): IMDb, Yelp and Amazon sentences; "
    "OOD rated movie, product and tweet snippets",
    typical_tokens_per_example=25,  # a review sentence + its label
),)
