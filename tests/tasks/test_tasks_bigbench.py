"""The offline BIG-bench tasks, on the real cached files (each file is parsed once per process)."""

from collections import Counter

import pytest

from ptft.tasks import LoadRequest, build_prompt, completion_text, get_task
from ptft.tasks.base import FORMAT_NAMES, TaskDataError
from ptft.tasks import bbutil

BB_TASKS = {
    "bb_vitaminc_nli": ["bb_vitaminc", "bb_presuppositions_nli", "bb_epistemic_reasoning", "bb_analytic_entailment"],
    "bb_same_speaker": ["bb_movie_dialog", "bb_play_dialog"],
    "bb_squad_qg": ["bb_squad_qg", "bb_squad_qg_new_wiki", "bb_squad_qg_nyt", "bb_squad_qg_reddit",
                    "bb_squad_qg_amazon"],
    "bb_socialiqa_qg": ["bb_socialiqa_qg"],
    "bb_xsum": ["bb_xsum"],
    "bb_multiemo_sentiment": ["bb_multiemo_hotels", "bb_multiemo_medicine", "bb_multiemo_products",
                              "bb_multiemo_school"],
}
REQ = LoadRequest(data_dir=None, seed=0, n_train=200, n_dev=50, n_eval=60)


@pytest.fixture(scope="module", params=sorted(BB_TASKS))
def loaded(request):
    task = get_task(request.param)
    return task, task.load(REQ)


def test_eval_sets_and_sizes(loaded):
    task, data = loaded
    assert [e.name for e in task.eval_sets] == BB_TASKS[task.name]
    assert task.in_domain[0].name == BB_TASKS[task.name][0]
    assert len(data.train) == 200 and len(data.dev) == 50
    for name, rows in data.eval.items():
        assert 0 < len(rows) <= 60


def test_splits_disjoint_uids_unique(loaded):
    task, data = loaded
    ids = [ex.uid for ex in data.train] + [ex.uid for ex in data.dev] + [
        ex.uid for rows in data.eval.values() for ex in rows]
    assert len(ids) == len(set(ids))


def test_full_pools_disjoint(loaded):
    task, _ = loaded
    data = task.load(LoadRequest(None, 0))
    train = {ex.uid for ex in data.train}
    dev = {ex.uid for ex in data.dev}
    test = {ex.uid for ex in data.eval[task.in_domain[0].name]}
    assert train and dev and test
    assert not (train & dev) and not (train & test) and not (dev & test)
    # also disjoint by content: the prompt of a test item is never a training prompt
    fmt = task.formats["default"]
    train_prompts = {fmt.render(ex) for ex in data.train}
    assert not any(fmt.render(ex) in train_prompts for ex in data.eval[task.in_domain[0].name])


def test_deterministic_and_seeded(loaded):
    task, data = loaded
    again = task.load(REQ)
    assert [e.uid for e in again.train] == [e.uid for e in data.train]
    assert again.split_fingerprints() == data.split_fingerprints()
    other = task.load(LoadRequest(None, seed=1, n_train=200, n_dev=50, n_eval=60))
    assert {e.uid for e in other.train} != {e.uid for e in data.train}
    # the split assignment does not depend on the seed: seed 1's train items are never seed 0's eval items
    in_eval = {e.uid for e in data.eval[task.in_domain[0].name]}
    assert not in_eval & {e.uid for e in other.train}


def test_formats_render_without_trailing_space_or_target(loaded):
    task, data = loaded
    assert set(task.formats) == set(FORMAT_NAMES)
    for rows in [data.train[:20], *[r[:20] for r in data.eval.values()]]:
        for ex in rows:
            for fmt in task.formats.values():
                text = build_prompt(fmt, ex, data.train[:2] if ex not in data.train else ())
                assert not text.endswith((" ", "\t"))
                query = fmt.render(ex)
                if task.task_type == "generation":
                    assert ex.target not in query, (task.name, fmt.name, ex.uid)
                assert completion_text(ex.target).startswith(" ")
    assert task.formats["io"].cue == ""
    assert task.formats["default"].cue and task.formats["default"].template.startswith(task.formats["default"].cue)
    assert task.formats["instruct"].template.startswith(task.formats["instruct"].cue)


def test_vitaminc_label_mapping_and_fields():
    task = get_task("bb_vitaminc_nli")
    rows = bbutil.bigbench_examples("vitaminc_fact_verification/task.json")
    pool = task.load(LoadRequest(None, 0))
    by_uid = {ex.uid: ex for ex in pool.train + pool.dev + pool.eval["bb_vitaminc"]}
    assert len(by_uid) == len(rows) == 54668
    expect = {"True": "entailment", "Neither": "neutral", "False": "contradiction"}
    for i in (0, 1, 2, 1000, 54667):
        ex = by_uid[f"bb_vitaminc:{i}"]
        raw = max(rows[i]["target_scores"], key=rows[i]["target_scores"].get)
        assert ex.target == expect[raw]
        assert not ex.fields["hypothesis"].startswith("Claim")
        assert "\nClaim:" in rows[i]["input"] and rows[i]["input"].rstrip().endswith(ex.fields["hypothesis"])
        assert rows[i]["input"].startswith(ex.fields["premise"])
    counts = Counter(ex.target for ex in by_uid.values())
    assert counts == {"entailment": 27242, "contradiction": 20169, "neutral": 7257}
    assert task.labels_for("bb_epistemic_reasoning") == ("entailment", "not_entailment")
    assert task.labels_for("bb_presuppositions_nli") == ("entailment", "neutral", "contradiction")
    ae = pool.eval["bb_analytic_entailment"]
    first = next(e for e in ae if e.uid == "bb_analytic_entailment:0")
    assert first.fields == {"premise": "The meeting starts in less than an hour.",
                            "hypothesis": "The meeting starts in less than ten minutes."}
    assert first.target == "not_entailment"


def test_vitaminc_pages_do_not_straddle_splits():
    data = get_task("bb_vitaminc_nli").load(LoadRequest(None, 0))
    page = lambda ex: ex.fields["premise"].split(":", 1)[0]
    train_pages = {page(ex) for ex in data.train}
    assert not train_pages & {page(ex) for ex in data.eval["bb_vitaminc"]}


def test_same_speaker_labels_and_skips():
    data = get_task("bb_same_speaker").load(LoadRequest(None, 0, n_eval=None))
    ex = next(e for e in data.eval["bb_play_dialog"] if e.uid == "bb_play_dialog:0")
    assert ex.target == "yes"  # 'same' in the file
    assert ex.fields["sentence1"] == "Now, sir! what make you here?"
    assert ex.fields["sentence1"] in ex.fields["dialogue"] and "In the preceding" not in ex.fields["dialogue"]
    assert data.notes["skipped"] == {"bb_movie_dialog": {"sentence pair not found in the dialogue": 3}}
    total = len(data.train) + len(data.dev) + len(data.eval["bb_movie_dialog"])
    assert total == 50000 - 3
    assert {e.target for e in data.eval["bb_movie_dialog"]} == {"yes", "no"}


def test_socialiqa_question_removed_from_context():
    data = get_task("bb_socialiqa_qg").load(LoadRequest(None, 0))
    all_ex = data.train + data.dev + data.eval["bb_socialiqa_qg"]
    assert len(all_ex) == 1954
    by_uid = {e.uid: e for e in all_ex}
    ex = by_uid["bb_socialiqa_qg:0"]
    assert ex.target == "What does Tracy need to do before this?"
    assert ex.fields["context"] == "Tracy didn't go home that evening and resisted Riley's attacks."
    assert ex.fields["answer"] == "Make a new plan; Go home and see Riley; Find somewhere to go"
    for e in all_ex:
        assert e.target.endswith("?")
        assert e.target not in e.fields["context"]
        assert not e.fields["context"].endswith("?")


def test_squad_qg_fields_and_ood_sizes():
    data = get_task("bb_squad_qg").load(LoadRequest(None, 0, n_eval=None))
    sizes = {k: len(v) for k, v in data.eval.items()}
    assert sizes["bb_squad_qg_new_wiki"] == 7936 and sizes["bb_squad_qg_nyt"] == 10056
    assert sizes["bb_squad_qg_reddit"] == 9767 and sizes["bb_squad_qg_amazon"] == 9877
    assert len(data.train) + len(data.dev) + sizes["bb_squad_qg"] == 10565
    ex = next(e for e in data.train + data.dev + data.eval["bb_squad_qg"]
              if e.uid == "bb_squad_qg:56be4db0acb8001400a502ec")
    assert ex.fields["answer"] == "Denver Broncos" and ex.target == "Which NFL team represented the AFC at Super Bowl 50?"
    # no paragraph is in both train and test
    assert not {e.fields["context"] for e in data.train} & {e.fields["context"] for e in data.eval["bb_squad_qg"]}


def test_xsum_sizes_and_one_line_targets():
    data = get_task("bb_xsum").load(LoadRequest(None, 0))
    assert len(data.train) + len(data.dev) + len(data.eval["bb_xsum"]) == 1001
    assert 150 <= len(data.eval["bb_xsum"]) <= 250 and len(data.train) >= 600
    assert all("\n" not in e.target for e in data.train)
    assert "skipped" not in data.notes


def test_xsum_skips_empty_summary_and_refuses_bad_rows():
    from ptft.tasks.bigbench_xsum import xsum_examples

    rows, skipped = xsum_examples([{"input": "doc a", "target": "sum a"}, {"input": "doc b", "target": "  "}], "bb_xsum")
    assert [r.uid for r in rows] == ["bb_xsum:0"] and skipped == {"empty summary": 1}
    with pytest.raises(TaskDataError, match=r"'bb_xsum'.*row 1, field 'target'"):
        xsum_examples([{"input": "doc a", "target": "sum a"}, {"input": "doc b"}], "bb_xsum")


def test_gold_choice_and_label_refusals():
    with pytest.raises(TaskDataError, match=r"dataset 'd', split 'all', row 3, field 'target_scores'"):
        bbutil.gold_choice({"target_scores": {"a": 1, "b": 1}}, "d", "all", 3)
    with pytest.raises(TaskDataError, match="unknown label 'Maybe'"):
        bbutil.map_label("Maybe", {"True": "entailment"}, "d", "all", 0)
    with pytest.raises(TaskDataError, match="field 'input': missing"):
        bbutil.text_field({}, "input", "d", "all", 0)
    assert bbutil.gold_choice({"target_scores": {" x ": 0, "y": 1}}, "d", "all", 0) == ("y", ["x", "y"])


def test_multiemo_sentiment_labels_and_skipped_rows():
    """Labels come straight from the file's four choices; the few rows with an empty sentence are
    counted, never silently dropped (hotels 1, medicine 4, products 2, school 1 in BIG-bench 1.0.0)."""
    task = get_task("bb_multiemo_sentiment")
    data = task.load(LoadRequest(None, 0, n_train=400, n_dev=20, n_eval=100))
    assert task.labels == ("positive", "negative", "neutral", "ambivalent")
    assert {ex.target for ex in data.train} == set(task.labels)
    assert data.notes["skipped"] == {name: {"empty sentence": n} for name, n in
                                     [("bb_multiemo_hotels", 1), ("bb_multiemo_medicine", 4),
                                      ("bb_multiemo_products", 2), ("bb_multiemo_school", 1)]}
    ex = data.train[0]
    assert task.formats["default"].render(ex) == f"### Review: {ex.fields['text']}\n ### Sentiment:"
    # the in-domain pool is 80/10/10 of the 24,850 non-empty hotel sentences
    sizes = data.notes["pool_sizes"]["bb_multiemo_hotels"]
    assert sum(sizes.values()) == 24850 and sizes["train"] > 7 * sizes["test"]
