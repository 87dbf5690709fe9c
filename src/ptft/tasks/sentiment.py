"""``sentiment``: the sentiment of a short text, positive / negative / neutral, rated by people.

Data: the ground-truth sets of VADER (Hutto & Gilbert 2014, shipped as ``sentiment_ratings``):
short English texts each rated by ten people on one scale from -4 to +4; the label is the mean
rating's sign, with a neutral band: positive above +0.5, negative below -0.5, neutral between
(inclusive). One training domain and three out-of-domain ones, all on that one scale:

- train/dev/in-domain eval set ``sentiment_movies``: movie-review snippets (Pang & Lee), 10,605
  (positive 4,982, negative 5,061, neutral 562), split 80/10/10 by a stable hash of the text;
- out-of-domain eval sets: ``sentiment_products`` (Amazon product-review snippets, 3,708),
  ``sentiment_editorials`` (New York Times editorial snippets, 5,190; mostly neutral) and
  ``sentiment_tweets`` (4,200).

It stands in for the study's review-sentiment task with its out-of-domain review sets: word-level
cues a small model learns from a few thousand examples, and domains whose label balance differs
(the editorials are 46 % neutral, the movie reviews 5 %).
"""

from __future__ import annotations

from ptft.tasks.base import Example
from ptft.tasks.formats import RATED_SENTIMENT
from ptft.tasks.pools import pooled_source
from ptft.tasks.rows import Row
from ptft.tasks.shipped import shipped_eval_set, shipped_pool

FILE = "sentiment_ratings"
NEUTRAL_BAND = 0.5  # |mean rating| <= this is neutral
SCALE = 4.0
IN_DOMAIN = "sentiment_movies"
OUT_OF_DOMAIN = {"sentiment_products": "products", "sentiment_editorials": "editorials",
                 "sentiment_tweets": "tweets"}


def label_of(rating: float) -> str:
    if rating > NEUTRAL_BAND:
        return "positive"
    if rating < -NEUTRAL_BAND:
        return "negative"
    return "neutral"


def rating_row(row: Row) -> Example:
    rating = row.raw("rating")
    if isinstance(rating, bool) or not isinstance(rating, (int, float)) or not -SCALE <= rating <= SCALE:
        raise row.error("rating", f"expected a mean rating in [-{SCALE:g}, {SCALE:g}], got {rating!r}")
    return Example(row.uid(), {"text": row.text("text").strip()}, label_of(float(rating)))


def domain(name: str):
    return lambda record: record.get("domain") == name


TASKS = (RATED_SENTIMENT.task(
    "sentiment",
    pooled_source(IN_DOMAIN, shipped_pool(FILE, rating_row, lambda ex: ex.fields["text"], keep=domain("movies")),
                  [shipped_eval_set(name, FILE, rating_row, keep=domain(d)) for name, d in OUT_OF_DOMAIN.items()]),
    "Sentiment of a short text (positive/negative/neutral, mean of human ratings): movie reviews; "
    "OOD product reviews, editorials, tweets",
    typical_tokens_per_example=40,  # a one-sentence snippet + its label
),)
