"""The Hub tasks, loaded from tiny local files in the Hub schema (no network anywhere)."""

import json
import sys

import pandas as pd
import pytest

from ptft.tasks import LoadRequest, build_prompt, get_task
from ptft.tasks.base import TaskDataError


def _nli(i, premise="A man plays a guitar on stage.", hyp="A person makes music."):
    return {"premise": f"{premise} ({i})", "hypothesis": hyp, "label": i % 3, "idx": i}


def _arc(i, key="question"):
    return {"id": f"q{i}", key: f"Which object is a conductor? ({i})",
            "choices": {"text": ["wood", "copper", "glass", "rubber"], "label": ["A", "B", "C", "D"]},
            "answerKey": "B"}


def _sciq(i, support="Copper conducts electricity well."):
    return {"question": f"What metal conducts electricity? ({i})", "distractor1": "wood", "distractor2": "glass",
            "distractor3": "rubber", "correct_answer": "copper", "support": support}


def _hellaswag(i, label="1"):
    return {"ind": i, "activity_label": "Removing ice from car", "ctx_a": "Then, the man writes over the snow.",
            "ctx_b": "then", "ctx": "", "endings": ["he eats it. [title] Done", "he scrapes the ice off.",
                                                     "he sings.", "he sleeps."], "label": label}


def _boolq(i, answer=True):
    return {"question": f"is copper a metal {i}", "passage": "Copper is a chemical element, a ductile metal.",
            "answer": answer}


N = 24  # rows per split: enough for a 95/5 carve to leave both parts non-empty

ROWS = {
    "xsum": {s: [{"document": f"The council met on Monday.\nIt voted on the budget {i}.", "summary": f"Budget vote {i}.",
                  "id": str(i)} for i in range(N)] for s in ("train", "validation", "test")},
    "xlsum_en": {"test": [{"id": str(i), "url": "u", "title": "t", "text": f"A storm hit the coast {i}.",
                           "summary": f"Storm {i}."} for i in range(N)]},
    "cnn_dailymail": {"test": [{"article": f"Stocks fell sharply today {i}.", "highlights": "Stocks fell .\nMarkets worried .",
                                "id": str(i)} for i in range(N)]},
    "social_i_qa": {s: [{"context": f"Tracy stayed home {i}.", "question": "Why did Tracy do this?",
                         "answerA": "to rest", "answerB": "to work", "answerC": "to sing", "label": "1"}
                        for i in range(N)] for s in ("train", "validation")},
    "sciq": {s: [_sciq(i) for i in range(N)] + [_sciq(N, support="")] for s in ("train", "validation", "test")},
    "tweet_qa": {"validation": [{"Question": f"who won the game {i}?", "Answer": ["the Jets"],
                                 "Tweet": "Great win for the Jets tonight!", "qid": str(i)} for i in range(N)]},
    "glue_mnli": {s: [_nli(i) for i in range(N)] for s in ("train", "validation_matched", "validation_mismatched")},
    "glue_rte": {"validation": [{"sentence1": "Paris is the capital of France.", "sentence2": f"Paris is in France {i}.",
                                 "label": i % 2, "idx": i} for i in range(N)]},
    "gpt3_nli": {"train": [{"text_a": "It rained.", "text_b": f"The ground is wet {i}.", "label": i % 3, "guid": i}
                           for i in range(N)]},
    "paws": {s: [{"id": i, "sentence1": f"The cat sat on the mat {i}.", "sentence2": "On the mat sat the cat.",
                  "label": i % 2} for i in range(N)] for s in ("train", "validation", "test")},
    "glue_qqp": {"validation": [{"question1": f"How do I learn Python {i}?", "question2": "How to learn Python?",
                                 "label": i % 2, "idx": i} for i in range(N)]},
    "glue_stsb": {"validation": [{"sentence1": "A dog runs.", "sentence2": f"A dog is running {i}.",
                                  "label": [4.8, 3.5, 0.2, 3.6][i % 4], "idx": i} for i in range(N)]},
    "arc_easy": {s: [_arc(i) for i in range(N)] for s in ("train", "validation", "test")},
    "arc_challenge": {s: [_arc(i) for i in range(N)] for s in ("train", "validation", "test")},
    "openbookqa": {s: [_arc(i, "question_stem") for i in range(N)] for s in ("train", "validation", "test")},
    "hellaswag": {s: [_hellaswag(i) for i in range(N)] for s in ("train", "validation")},
    "boolq": {s: [_boolq(i, answer=i % 2 == 0) for i in range(N)] for s in ("train", "validation")},
}

# one file format per folder, to exercise every reader
FORMATS = {"xsum": "jsonl", "xlsum_en": "json", "cnn_dailymail": "csv", "social_i_qa": "parquet", "sciq": "jsonl",
           "tweet_qa": "json", "glue_mnli": "jsonl", "glue_rte": "csv", "gpt3_nli": "parquet", "paws": "csv",
           "glue_qqp": "jsonl", "glue_stsb": "json", "arc_easy": "jsonl", "arc_challenge": "csv",
           "openbookqa": "parquet", "hellaswag": "json", "boolq": "jsonl"}


def write_rows(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows))
    elif path.suffix == ".csv":
        enc = [{k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in rows]
        pd.DataFrame(enc).to_csv(path, index=False)
    else:
        pd.DataFrame(rows).to_parquet(path)


@pytest.fixture()
def hub_dir(tmp_path):
    for folder, splits in ROWS.items():
        for split, rows in splits.items():
            write_rows(tmp_path / folder / f"{split}.{FORMATS[folder]}", rows)
    return tmp_path


def load(name, data_dir, **kw):
    return get_task(name).load(LoadRequest(data_dir=str(data_dir), seed=0, **kw))


EXPECT_EVAL = {
    "xsum": ["xsum", "xlsum_en", "cnn_dailymail"],
    "socialiqa_qg": ["socialiqa_qg", "sciq_qg", "tweetqa_qg"],
    "mnli": ["mnli_matched", "mnli_mismatched", "rte", "gpt3_nli"],
    "paws": ["paws", "qqp", "stsb"],
    "arc_easy": ["arc_easy"], "arc_challenge": ["arc_challenge"], "openbookqa": ["openbookqa"],
    "hellaswag": ["hellaswag"], "boolq": ["boolq"], "sciq": ["sciq"],
}


@pytest.mark.parametrize("name", sorted(EXPECT_EVAL))
def test_loads_from_local_files_and_formats(name, hub_dir):
    task = get_task(name)
    assert [e.name for e in task.eval_sets] == EXPECT_EVAL[name]
    data = load(name, hub_dir)
    assert data.train and data.dev and set(data.eval) == set(EXPECT_EVAL[name])
    train_ids = {e.uid for e in data.train}
    assert not train_ids & {e.uid for e in data.dev}
    for rows in data.eval.values():
        ex = rows[0]
        for fmt in task.formats.values():
            text = build_prompt(fmt, ex, data.train[:2])
            assert not text.endswith(" ")
            if task.task_type == "generation":
                assert ex.target not in fmt.render(ex)
        if task.task_type == "multiple_choice":
            assert ex.target in ex.choices and len(ex.choices) >= 2


def test_sizes_and_seeded_subsample(hub_dir):
    a = load("mnli", hub_dir, n_train=5, n_dev=1, n_eval=4)
    b = load("mnli", hub_dir, n_train=5, n_dev=1, n_eval=4)
    c = get_task("mnli").load(LoadRequest(str(hub_dir), seed=7, n_train=5, n_dev=1, n_eval=4))
    assert len(a.train) == 5 and len(a.dev) == 1 and all(len(v) == 4 for v in a.eval.values())
    assert [e.uid for e in a.train] == [e.uid for e in b.train]
    assert [e.uid for e in a.train] != [e.uid for e in c.train]
    full = load("mnli", hub_dir)
    assert len(full.train) + len(full.dev) == N  # dev carved out of train, disjoint
    assert not {e.uid for e in full.train} & {e.uid for e in full.dev}


def test_label_mappings(hub_dir):
    mnli = load("mnli", hub_dir)
    by_uid = {e.uid: e for e in mnli.eval["mnli_matched"]}
    assert [by_uid[f"mnli_matched:validation_matched:{i}"].target for i in range(3)] == [
        "entailment", "neutral", "contradiction"]
    rte = {e.uid: e.target for e in mnli.eval["rte"]}
    assert rte["rte:validation:0"] == "entailment" and rte["rte:validation:1"] == "not_entailment"
    assert get_task("mnli").labels_for("rte") == ("entailment", "not_entailment")
    assert mnli.eval["mnli_matched"][0].fields["premise"].startswith("A man plays a guitar")

    paws = load("paws", hub_dir)
    assert {e.uid: e.target for e in paws.eval["paws"]}["paws:test:1"] == "yes"
    assert {e.uid: e.target for e in paws.eval["qqp"]}["qqp:validation:0"] == "no"
    stsb = {e.uid: e.target for e in paws.eval["stsb"]}
    # 4.8 -> yes, 3.5 -> no (not > 3.5), 0.2 -> no, 3.6 -> yes
    assert [stsb[f"stsb:validation:{i}"] for i in range(4)] == ["yes", "no", "no", "yes"]


def test_generation_fields(hub_dir):
    xs = load("xsum", hub_dir)
    cnn = xs.eval["cnn_dailymail"][0]
    assert cnn.target == "Stocks fell . Markets worried ."  # highlight lines joined, one line
    assert "\n" in xs.train[0].fields["document"]  # documents keep their line breaks
    qg = load("socialiqa_qg", hub_dir)
    ex = qg.eval["socialiqa_qg"][0]
    assert ex.fields["answer"] == "to rest; to work; to sing" and ex.target == "Why did Tracy do this?"
    assert "Why did Tracy" not in ex.fields["context"]
    sciq = qg.eval["sciq_qg"][0]
    assert sciq.fields["answer"] == "copper; glass; rubber; wood"  # sorted: the answer has no fixed place
    assert qg.notes["skipped"] == {"sciq_qg": {"empty support": 1}}
    tw = qg.eval["tweetqa_qg"][0]
    assert tw.fields == {"context": "Great win for the Jets tonight!", "answer": "the Jets"}


def test_mc_fields(hub_dir):
    arc = load("arc_challenge", hub_dir).eval["arc_challenge"][0]  # read from CSV with JSON-encoded choices
    assert arc.choices == ("wood", "copper", "glass", "rubber") and arc.target == "copper"
    hs = load("hellaswag", hub_dir).eval["hellaswag"][0]
    assert hs.fields["question"] == "Removing ice from car: Then, the man writes over the snow. Then"
    assert hs.choices[0] == "he eats it.. Done" and hs.target == "he scrapes the ice off."
    bq = {e.uid: e for e in load("boolq", hub_dir).eval["boolq"]}
    assert bq["boolq:validation:0"].target == "yes" and bq["boolq:validation:1"].target == "no"
    assert bq["boolq:validation:0"].fields["question"] == "is copper a metal 0?"
    sq = load("sciq", hub_dir).eval["sciq"]
    assert sq[0].choices[-1] == sq[0].target == "copper"
    assert any(e.fields["context"] == "" for e in sq)  # SciQ MC keeps rows without support (as lm-eval)


# ------------------------------------------------------------------------------------- refusals

def _rewrite(hub_dir, folder, split, rows):
    for old in (hub_dir / folder).glob(f"{split}.*"):
        old.unlink()
    write_rows(hub_dir / folder / f"{split}.jsonl", rows)


def test_hidden_labels_refused(hub_dir):
    rows = [_nli(i) for i in range(N)]
    rows[3]["label"] = -1
    _rewrite(hub_dir, "glue_mnli", "validation_matched", rows)
    with pytest.raises(TaskDataError, match=r"dataset 'mnli_matched', split 'validation_matched', "
                                            r"validation_matched.jsonl line 4, "
                                            r"field 'label': label -1.*hidden"):
        load("mnli", hub_dir)


def test_stsb_hidden_scores_refused(hub_dir):
    _rewrite(hub_dir, "glue_stsb", "validation", [{"sentence1": "a b", "sentence2": "c d", "label": -1, "idx": 0}])
    with pytest.raises(TaskDataError, match=r"'stsb', split 'validation', validation.jsonl line 1, "
                                            r"field 'label': label -1"):
        load("paws", hub_dir)


def test_hellaswag_test_split_refused(hub_dir):
    _rewrite(hub_dir, "hellaswag", "validation", [_hellaswag(0, label="")])
    with pytest.raises(TaskDataError, match=r"'hellaswag', split 'validation', "
                                            r"validation.jsonl line 1, field 'label'.*hidden"):
        load("hellaswag", hub_dir)


def test_unknown_label_refused(hub_dir):
    rows = [_nli(i) for i in range(N)]
    rows[5]["label"] = 7
    _rewrite(hub_dir, "glue_mnli", "validation_mismatched", rows)
    with pytest.raises(TaskDataError, match=r"'mnli_mismatched', split 'validation_mismatched', "
                                            r"validation_mismatched.jsonl line 6, "
                                            r"field 'label': unknown label 7"):
        load("mnli", hub_dir)
    arc = [_arc(i) for i in range(N)]
    arc[2]["answerKey"] = "E"
    _rewrite(hub_dir, "arc_easy", "test", arc)
    with pytest.raises(TaskDataError, match=r"'arc_easy', split 'test', test.jsonl line 3, "
                                            r"field 'answerKey': unknown label 'E'"):
        load("arc_easy", hub_dir)


def test_missing_field_refused(hub_dir):
    rows = [{"id": i, "sentence1": "x y", "label": 1} for i in range(N)]
    _rewrite(hub_dir, "paws", "test", rows)
    with pytest.raises(TaskDataError, match=r"'paws', split 'test', test.jsonl line \d+, field 'sentence2': missing"):
        load("paws", hub_dir)


def test_empty_split_and_missing_file_refused(hub_dir):
    (hub_dir / "xsum" / "test.jsonl").write_text("")
    with pytest.raises(TaskDataError, match=r"'xsum', split 'test': no rows"):
        load("xsum", hub_dir)
    (hub_dir / "xsum" / "test.jsonl").unlink()
    with pytest.raises(TaskDataError, match=r"no local file .*xsum/test"):
        load("xsum", hub_dir)


def test_no_network_at_import():
    # importing every task module must not import `datasets` (which is where Hub access lives)
    import subprocess

    code = ("import sys; from ptft.tasks import available; available(); "
            "print('datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
