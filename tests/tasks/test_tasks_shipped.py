"""The tasks over the data shipped inside ptft: real rows, read with no network and no cache."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from ptft import sources
from ptft.tasks import LoadRequest, get_task
from ptft.tasks.base import TaskDataError
from ptft.tasks.review_polarity import sentence_row
from ptft.tasks.rows import Row
from task_checks import check_formats, check_pools_disjoint, check_seeded

SHIPPED_TASKS = {
    "sentiment": ["sentiment_movies", "sentiment_products", "sentiment_editorials", "sentiment_tweets"],
    "review_polarity": ["review_polarity", "polarity_movies", "polarity_products", "polarity_tweets"],
    "squad_qg": ["squad_qg", "coqa_qg", "sciq_answer_qg"],
    "social_qg": ["social_qg", "sciq_options_qg"],
    **{name: [name] for name in ("mc_arc_easy", "mc_arc_challenge", "mc_openbookqa", "mc_commonsense_qa",
                                 "mc_piqa", "mc_sciq")},
}
REQ = LoadRequest(data_dir=None, seed=0, n_train=30, n_dev=20, n_eval=60)


@pytest.fixture(scope="module", params=sorted(SHIPPED_TASKS))
def loaded(request):
    task = get_task(request.param)
    return task, task.load(REQ)


def test_eval_sets_and_sizes(loaded):
    task, data = loaded
    assert [e.name for e in task.eval_sets] == SHIPPED_TASKS[task.name]
    assert task.in_domain[0].name == SHIPPED_TASKS[task.name][0]
    assert len(data.train) == 30 and len(data.dev) == 20
    assert all(len(rows) == 60 for rows in data.eval.values())


def test_full_pools_disjoint_by_uid_and_prompt(loaded):
    check_pools_disjoint(loaded[0])


def test_deterministic_and_seeded(loaded):
    check_seeded(*loaded, REQ)


def test_formats_render_without_trailing_space_or_target(loaded):
    check_formats(*loaded, per_set=10)


def test_sentiment_labels_follow_the_mean_rating_with_a_neutral_band():
    task = get_task("sentiment")
    data = task.load(LoadRequest(None, 0))
    by_uid = {ex.uid: ex for ex in data.train + data.dev + data.eval["sentiment_movies"]}
    assert len(by_uid) == 10605  # every movie-review snippet, none lost to the split
    # row 0 is rated +2.27 by its raters, row 10604 (the last movie snippet) -1.81
    assert by_uid["sentiment_movies:all:0"].target == "positive"
    assert by_uid["sentiment_movies:all:0"].fields["text"].startswith("The Rock is destined to be the 21st Century's")
    assert by_uid["sentiment_movies:all:10604"].target == "negative"
    # the band's edges are neutral: rows 855 (+0.5) and 1159 (-0.5)
    assert by_uid["sentiment_movies:all:855"].target == by_uid["sentiment_movies:all:1159"].target == "neutral"
    assert Counter(ex.target for ex in by_uid.values()) == {"positive": 4982, "negative": 5061, "neutral": 562}
    sizes = {k: len(v) for k, v in data.eval.items()}
    assert sizes == {"sentiment_movies": len(data.eval["sentiment_movies"]), "sentiment_products": 3708,
                     "sentiment_editorials": 5190, "sentiment_tweets": 4200}
    assert Counter(ex.target for ex in data.eval["sentiment_editorials"])["neutral"] == 2402
    ex = data.train[0]
    assert task.formats["default"].render(ex) == f"### Text: {ex.fields['text']}\n ### Sentiment:"


def test_review_polarity_reads_the_sentence_labels_and_keeps_only_clear_ratings_out_of_domain():
    task = get_task("review_polarity")
    data = task.load(LoadRequest(None, 0))
    by_uid = {ex.uid: ex for ex in data.train + data.dev + data.eval["review_polarity"]}
    assert len(by_uid) == 3000  # every sentence, none lost to the split
    # rows 0 (IMDb) and 1500 (Yelp) of the shipped file, labelled 0 and 1 by the dataset's authors
    assert by_uid["review_polarity:all:0"].target == "negative"
    assert by_uid["review_polarity:all:0"].fields["text"].startswith("A very, very, very slow-moving, aimless movie")
    assert by_uid["review_polarity:all:1500"].target == "positive"
    assert Counter(ex.target for ex in by_uid.values()) == {"positive": 1500, "negative": 1500}
    # the 60/10/30 split, by a hash of the sentence (its 18 repeated sentences stay in one split)
    assert (len(data.train), len(data.dev), len(data.eval["review_polarity"])) == (1804, 271, 925)
    # the tweets rated beyond +-0.5: 2,300 positive and 1,062 negative; the 838 neutral ones (70 of
    # them exactly on the band's edge) are not in the set
    assert Counter(ex.target for ex in data.eval["polarity_tweets"]) == {"positive": 2300, "negative": 1062}
    assert len(data.eval["polarity_movies"]) == 10605 - 562 and len(data.eval["polarity_products"]) == 3708 - 765
    ex = data.train[0]
    assert task.formats["default"].render(ex) == f"### Text: {ex.fields['text']}\n ### Sentiment:"


def test_review_polarity_names_a_row_whose_label_is_not_0_or_1():
    assert sentence_row(Row({"label": 1, "text": " Great phone. "}, "d", "all", 3)).target == "positive"
    for bad in (2, True, "1"):
        with pytest.raises(TaskDataError, match=r"dataset 'd', split 'all', row 3, field 'label'"):
            sentence_row(Row({"label": bad, "text": "x"}, "d", "all", 3))


def test_squad_qg_groups_paragraphs_and_reads_the_request_fields():
    data = get_task("squad_qg").load(LoadRequest(None, 0))
    everything = data.train + data.dev + data.eval["squad_qg"]
    assert len(everything) == 1000
    first = next(e for e in everything if e.uid == "squad_qg:all:0")
    assert first.fields["answer"] == "23 years"
    assert first.target == 'Harvard - Yale Regatta predates "The Game" by how many years?'
    assert first.fields["context"].startswith("Older than The Game by 23 years")
    assert not {e.fields["context"] for e in data.train} & {e.fields["context"] for e in data.eval["squad_qg"]}
    coqa = next(e for e in data.eval["coqa_qg"] if e.uid == "coqa_qg:test:0")
    assert (coqa.fields["answer"], coqa.target) == ("white", "What color was Cotton?")
    assert "\n" not in coqa.fields["context"]
    assert len(data.eval["coqa_qg"]) == 500
    assert data.notes["skipped"] == {"sciq_answer_qg": {"empty support": 113}}
    assert len(data.eval["sciq_answer_qg"]) == 1000 - 113


def test_mc_suite_answers_are_the_keyed_choices():
    arc = get_task("mc_arc_easy").load(LoadRequest(None, 0))
    everything = {e.uid: e for e in arc.train + arc.dev + arc.eval["mc_arc_easy"]}
    assert len(everything) == 570
    ex = everything["mc_arc_easy:all:0"]  # answerKey A of four
    assert ex.fields["question"] == "Which technology was developed most recently?"
    assert ex.choices == ("cellular telephone", "television", "refrigerator", "airplane")
    assert ex.target == "cellular telephone"
    piqa = get_task("mc_piqa").load(LoadRequest(None, 0))
    first = next(e for e in piqa.train + piqa.dev + piqa.eval["mc_piqa"] if e.uid == "mc_piqa:all:0")
    assert first.target == first.choices[0] and "ripped paper strips" in first.target  # label 0: sol1
    assert len(piqa.train) + len(piqa.dev) + len(piqa.eval["mc_piqa"]) == 1838


def test_every_shipped_file_matches_the_manifest_and_the_budget():
    """The manifest's sha256 is what the reader checks; the whole shipped data stays under 30 MB,
    and every file has its provenance in docs/data.md."""
    folder = resources.files("ptft") / "data"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith(".jsonl.gz"))
    assert shipped == sorted(manifest["files"])
    total = 0
    doc_text = (Path(__file__).resolve().parents[2] / "docs" / "data.md").read_text(encoding="utf-8")
    for name, entry in manifest["files"].items():
        data = (folder / name).read_bytes()
        total += len(data)
        assert len(data) == entry["bytes"] and entry["upstream"] in manifest["upstream"]
        assert sum(1 for _ in gzip.decompress(data).split(b"\n") if _) == entry["rows"]
        assert f"`{name}`" in doc_text, f"docs/data.md does not list {name}"
    assert total < 30e6


def test_a_changed_shipped_file_is_refused_in_one_line(tmp_path, monkeypatch):
    manifest = json.loads((resources.files("ptft") / "data" / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["piqa.jsonl.gz"]["sha256"] = "0" * 64
    monkeypatch.setattr(sources, "_manifest", lambda: manifest)
    sources.shipped_rows.cache_clear()
    try:
        with pytest.raises(sources.SourceError, match=r"piqa.jsonl.gz: the shipped data file does not match the "
                                                      r"sha256 in manifest.json.*reinstall ptft"):
            sources.shipped_rows("piqa")
    finally:
        sources.shipped_rows.cache_clear()
