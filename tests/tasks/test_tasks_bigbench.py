"""The BIG-bench tasks: refused in one line without the user's archive (the package index no
longer serves it); with the archive (``PTFT_BIGBENCH_ARCHIVE``), the data checks on the real files
run too (each file is parsed once per process)."""

import hashlib
from collections import Counter

import pytest

from ptft import sources
from ptft.cli import main as cli_main
from ptft.config import load_config
from ptft.errors import ConfigError
from ptft.tasks import LoadRequest, build_prompt, get_task
from ptft.tasks.base import TaskDataError
from ptft.tasks import bbutil
from ptft.tasks.instructions import available_instructions, load_instructions
from task_checks import check_formats, check_pools_disjoint, check_seeded


def _have_archive() -> bool:
    try:
        sources.bigbench_archive()
    except sources.SourceError:
        return False
    return True


needs_archive = pytest.mark.skipif(not _have_archive(), reason="no BIG-bench archive (set PTFT_BIGBENCH_ARCHIVE)")


@pytest.fixture
def no_archive(tmp_path, monkeypatch):
    monkeypatch.delenv(sources.ARCHIVE_ENV, raising=False)
    monkeypatch.setenv("PTFT_CACHE", str(tmp_path / "cache"))


def test_a_study_naming_a_bigbench_task_is_refused_in_one_line(no_archive, tmp_path, capsys):
    study = tmp_path / "study.yaml"
    study.write_text("name: bb\ntasks: [{name: sentiment}, {name: bb_multiemo_sentiment}]\n")
    with pytest.raises(ConfigError) as err:
        load_config(study)
    message = str(err.value)
    assert message.startswith("study.yaml: tasks[1].name: bb_multiemo_sentiment: the BIG-bench tasks read "
                              "bigbench-1.0.0.tar.gz, which the package index no longer serves")
    assert sources.ARCHIVE_ENV in message and sources.BIGBENCH.sha256 in message and "\n" not in message
    assert "pip" not in message
    assert cli_main(["run", str(study), "--no-progress", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    assert not (tmp_path / "run").exists()


def test_the_natural_instructions_mixture_and_a_bigbench_suite_are_refused_too(no_archive, tmp_path):
    study = tmp_path / "it.yaml"
    study.write_text("name: it\ntasks: [{name: sentiment}]\ninstruction_tuning: {enabled: true, "
                     "mixture: bb_natural_instructions, suite: [mc_piqa]}\n")
    with pytest.raises(ConfigError, match=r"it.yaml: instruction_tuning.mixture: bb_natural_instructions: the "
                                          r"BIG-bench tasks read"):
        load_config(study)
    study.write_text("name: it\ntasks: [{name: sentiment}]\ninstruction_tuning: {enabled: true, "
                     "suite: [mc_piqa, bb_mc_fables]}\n")
    with pytest.raises(ConfigError, match=r"instruction_tuning.suite\[1\]: bb_mc_fables: the BIG-bench"):
        load_config(study)


def test_an_archive_that_is_not_the_pinned_file_is_refused(no_archive, tmp_path, monkeypatch):
    fake = tmp_path / "bigbench-1.0.0.tar.gz"
    fake.write_bytes(b"not the archive")
    monkeypatch.setenv(sources.ARCHIVE_ENV, str(fake))
    digest = hashlib.sha256(b"not the archive").hexdigest()
    with pytest.raises(sources.SourceError, match=rf"{sources.ARCHIVE_ENV}={fake}: sha256 {digest} is not the "
                                                  rf"pinned {sources.BIGBENCH.sha256}"):
        sources.bigbench_archive()
    monkeypatch.setenv(sources.ARCHIVE_ENV, str(tmp_path / "missing.tar.gz"))
    with pytest.raises(sources.SourceError, match=r"missing.tar.gz is not a file"):
        sources.bigbench_archive()


def test_the_archive_route_extracts_checks_and_repairs_the_task_files(no_archive, bigbench_copy, tmp_path):
    """The bb_* task reads the user's archive through PTFT_BIGBENCH_ARCHIVE, the extracted file
    carries its checksum, and a damaged extracted file is extracted again."""
    examples, labels = bigbench_copy.examples, bigbench_copy.labels
    try:
        data = get_task("bb_multiemo_sentiment").load(LoadRequest(None, 0, n_train=50, n_dev=5, n_eval=10))
        assert len(data.train) == 50 and set(data.eval) == {"bb_multiemo_hotels", "bb_multiemo_medicine",
                                                            "bb_multiemo_products", "bb_multiemo_school"}
        assert {ex.target for ex in data.train} <= set(labels)
        extracted = (tmp_path / "cache" / "files" / "bigbench-1.0.0" / bbutil.BENCHMARK_TASKS /
                     "multiemo/hotels_sentence_en/task.json")
        assert extracted.with_name("task.json.sha256").read_text() == hashlib.sha256(extracted.read_bytes()).hexdigest()
        extracted.write_text("{damaged")
        sources._verified.clear()
        bbutil.bigbench_json.cache_clear()
        assert bbutil.bigbench_examples("multiemo/hotels_sentence_en/task.json") == examples
    finally:
        bbutil.bigbench_json.cache_clear()

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
    if not _have_archive():
        pytest.skip("no BIG-bench archive (set PTFT_BIGBENCH_ARCHIVE)")
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
    check_pools_disjoint(loaded[0])


def test_deterministic_and_seeded(loaded):
    check_seeded(*loaded, REQ)


def test_formats_render_without_trailing_space_or_target(loaded):
    check_formats(*loaded)


@needs_archive
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


@needs_archive
def test_vitaminc_pages_do_not_straddle_splits():
    data = get_task("bb_vitaminc_nli").load(LoadRequest(None, 0))
    page = lambda ex: ex.fields["premise"].split(":", 1)[0]
    train_pages = {page(ex) for ex in data.train}
    assert not train_pages & {page(ex) for ex in data.eval["bb_vitaminc"]}


@needs_archive
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


@needs_archive
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


@needs_archive
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


@needs_archive
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


@needs_archive
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


BB_MC = ["bb_mc_fables", "bb_mc_physical_intuition", "bb_mc_timedial", "bb_mc_wikihow_goal"]


@needs_archive
@pytest.mark.parametrize("name", BB_MC)
def test_bb_mc_tasks(name):
    task = get_task(name)
    assert task.task_type == "multiple_choice" and [e.name for e in task.eval_sets] == [name]
    data = task.load(LoadRequest(None, seed=0, n_train=4, n_eval=30))
    assert len(data.train) == 4 and 0 < len(data.eval[name]) <= 30
    for ex in data.eval[name]:
        assert ex.target in ex.choices and len(set(ex.choices)) == len(ex.choices) >= 2
        assert all(c == c.strip() and c for c in ex.choices)
        for fmt in task.formats.values():
            prompt = build_prompt(fmt, ex, data.train)
            assert not prompt.endswith(" ")
    assert task.formats["default"].render(data.eval[name][0]).startswith("Question: ")


@needs_archive
def test_bb_mc_known_item_and_grouping():
    data = get_task("bb_mc_physical_intuition").load(LoadRequest(None, seed=0))
    every = {e.uid: e for e in data.train + data.dev + data.eval["bb_mc_physical_intuition"]}
    assert len(every) == 81
    ex = every["bb_mc_physical_intuition:0"]
    assert ex.choices == ("Yes", "No") and ex.target == "No"
    # timedial repeats dialogues with other choices: one dialogue never sits in train and test
    td = get_task("bb_mc_timedial").load(LoadRequest(None, seed=0))
    norm = lambda e: " ".join(e.fields["question"].split())
    assert not {norm(e) for e in td.train} & {norm(e) for e in td.eval["bb_mc_timedial"]}
    assert len(td.train) + len(td.dev) + len(td.eval["bb_mc_timedial"]) == 2550


@needs_archive
def test_bb_natural_instructions_messages():
    assert {"bb_natural_instructions", "tulu_v2"} <= set(available_instructions())
    rows = load_instructions("bb_natural_instructions", seed=0, n=122)
    assert len(rows) == 122
    assert rows.notes["subtasks"] == 61 and set(rows.notes["per_subtask"].values()) == {2}
    for row in rows:
        assert set(row) == {"messages"}
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert user["content"].startswith("Definition:") and "\n\n" in user["content"]
        assert assistant["content"].strip()
    again = load_instructions("bb_natural_instructions", seed=0, n=122)
    other = load_instructions("bb_natural_instructions", seed=1, n=122)
    assert again == rows and other != rows
    assert rows.notes["skipped"] == {"no non-empty target": 1}


@needs_archive
def test_natural_instructions_turns_match_the_file():
    from ptft.tasks.instructions import _NI_FILES, ni_subtask

    name, rows, _ = ni_subtask(_NI_FILES[0])
    raw = bbutil.bigbench_json(_NI_FILES[0])
    assert name == "subtask001_quoref_question_generation" and len(rows) == len(raw["examples"]) == 4225
    user, assistant = rows[0]["messages"]
    assert user["content"] == raw["task_prefix"].strip() + "\n\n" + raw["examples"][0]["input"].strip()
    assert assistant["content"] == raw["examples"][0]["target"][0]
    assert user["content"].endswith("Mount St. Helens eruption or the 1991 Mount Pinatubo eruption. We're talking "
                                    "about something very small, relatively localized that should have a fairly "
                                    "limited impact... but it'll be extremely exciting\", Hickson said. If an eruption "
                                    "were to occur, Hickson suggested that it would be characterized by a lava fountain "
                                    "that sends globs of lava 100 m (330 ft) into the air. This is similar to those "
                                    "that occur in Hawaii. Hickson said that a Nazko eruption could be a tourist "
                                    "attraction, but warned that noxious gases such as carbon dioxide and sulfur "
                                    "dioxide would be released during the event.")
