"""User-defined YAML tasks: the shipped example, other task types, and every config error."""

import json
from pathlib import Path

import pytest
import yaml

from ptft.errors import ConfigError
from ptft.tasks import LoadRequest, build_prompt, get_task
from ptft.tasks.base import TaskDataError
from ptft.tasks.yaml_task import load_yaml_task

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tasks" / "movie_sentiment" / "task.yaml"


def test_example_round_trip():
    task = get_task(str(EXAMPLE))
    assert task.name == "movie_sentiment" and task.task_type == "classification"
    assert task.labels == ("positive", "negative") and task.max_new_tokens == 5
    assert [(e.name, e.domain) for e in task.eval_sets] == [("movie_sentiment", "in"), ("product_reviews", "out")]
    data = task.load(LoadRequest(None, seed=0))
    assert len(data.train) + len(data.dev) == 40 and data.dev
    assert not {e.uid for e in data.train} & {e.uid for e in data.dev}
    assert len(data.eval["movie_sentiment"]) == 16 and len(data.eval["product_reviews"]) == 12
    prod = {e.uid: e for e in data.eval["product_reviews"]}
    assert prod["product_reviews:eval:0"].target == "positive"  # label_map 1 -> positive
    assert prod["product_reviews:eval:1"].target == "negative"
    assert prod["product_reviews:eval:1"].fields == {"text": "Stopped working after two weeks."}
    ex = data.eval["movie_sentiment"][0]
    assert task.formats["default"].render(ex) == f"### Input: {ex.fields['text']}\n ### Sentiment:"
    assert task.formats["io"].cue == "" and task.formats["default"].cue == "### Input"
    for fmt in task.formats.values():
        assert not build_prompt(fmt, ex, data.train[:3]).endswith(" ")
    again = task.load(LoadRequest(None, seed=0, n_train=10))
    assert [e.uid for e in again.train] == [e.uid for e in task.load(LoadRequest(None, seed=0, n_train=10)).train]
    assert {e.uid for e in again.train} != {e.uid for e in task.load(LoadRequest(None, seed=3, n_train=10)).train}
    assert {e.uid for e in again.dev} == {e.uid for e in data.dev}  # dev carve does not depend on the seed


def _write(tmp_path, spec, files):
    for name, rows in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _fmt(t):
    return {"default": {"template": t, "cue": "###"}, "io": {"template": "{document}"},
            "instruct": {"template": "Summarise: {document} Summary:", "cue": "Summarise"}}


def gen_spec():
    return {
        "name": "notes_summary", "type": "generation", "target_field": "summary",
        "fields": ["document"],
        "data": {"train": "train.jsonl", "dev": "dev.jsonl", "eval": [{"name": "notes", "path": "test.jsonl",
                                                                       "domain": "in"}]},
        "formats": _fmt("### Input: {document}\n ### Summary:"),
    }


GEN_FILES = {f"{s}.jsonl": [{"document": f"Meeting notes {s} {i}.\nWe agreed.", "summary": f"Summary\n{i}."}
                            for i in range(8)] for s in ("train", "dev", "test")}


def test_generation_task_with_dev_file(tmp_path):
    task = load_yaml_task(_write(tmp_path, gen_spec(), GEN_FILES))
    data = task.load(LoadRequest(None, seed=0))
    assert task.max_new_tokens == 60 and len(data.train) == 8 and len(data.dev) == 8
    assert data.dev[0].uid == "notes_summary:dev:0" and data.eval["notes"][0].uid == "notes:eval:0"
    assert data.train[0].target == "Summary 0."  # one line
    assert data.train[0].target not in task.formats["default"].render(data.train[0])


def test_multiple_choice_task(tmp_path):
    rows = [{"q": f"Which is a fruit? ({i})", "options": ["stone", "apple", "chair"], "gold": i % 2 and "apple" or 1}
            for i in range(6)]
    spec = {"name": "fruit_mc", "type": "multiple_choice", "choices_field": "options", "answer_field": "gold",
            "fields": {"question": "q"},
            "data": {"train": "train.jsonl", "eval": [{"name": "fruit_mc", "path": "test.jsonl", "domain": "in"}]},
            "formats": {"default": "Question: {question}\nAnswer:", "io": "{question}",
                        "instruct": {"template": "Pick one. {question} Answer:"}}}
    task = load_yaml_task(_write(tmp_path, spec, {"train.jsonl": rows, "test.jsonl": rows}))
    data = task.load(LoadRequest(None, seed=0))
    assert all(e.target == "apple" and e.choices == ("stone", "apple", "chair") for e in data.eval["fruit_mc"])


@pytest.mark.parametrize("mutate, key, message", [
    (lambda s: s.update(colour="red"), "colour", "unknown key"),
    (lambda s: s["data"].update(test="x.jsonl"), "data.test", "unknown key"),
    (lambda s: s["formats"]["default"].update(stop="x"), "formats.default.stop", "unknown key"),
    (lambda s: s["data"]["eval"][0].update(weight=2), "data.eval[0].weight", "unknown key"),
    (lambda s: s.update(type="regression"), "type", "not one of"),
    (lambda s: s.update(max_new_tokens="many"), "max_new_tokens", "expected an integer"),
    (lambda s: s.update(fields=5), "fields", "expected a mapping"),
    (lambda s: s["data"].update(train="missing.jsonl"), "data.train", "not found"),
    (lambda s: s["data"]["eval"][0].update(path="nope.csv"), "data.eval[0].path", "not found"),
    (lambda s: s["data"].update(train="train.txt"), "data.train", "unsupported file type"),
    (lambda s: s["formats"].pop("io"), "formats.io", "missing"),
    (lambda s: s["formats"]["default"].update(template="### {body}"), "formats.default.template", "'body'"),
    (lambda s: s.pop("target_field"), "target_field", "missing"),
    (lambda s: s.update(labels=["a", "b"]), "labels", "only for type 'classification'"),
    (lambda s: s["data"]["eval"][0].update(domain="out"), "data.eval", "domain: in"),
    (lambda s: s["data"]["eval"][0].update(path="train.jsonl"), "data.eval[0].path", "train/dev file"),
    (lambda s: s["data"].update(dev_fraction=0.2), "data.dev_fraction", "not both"),
    (lambda s: s.pop("name"), "name", "missing"),
])
def test_config_errors_name_file_and_key(tmp_path, mutate, key, message):
    spec = gen_spec()
    mutate(spec)
    path = _write(tmp_path, spec, GEN_FILES)
    with pytest.raises(ConfigError) as err:
        load_yaml_task(path)
    assert str(path) in str(err.value) and f"key {key!r}" in str(err.value) and message in str(err.value)


def test_not_a_mapping_or_missing_file(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_yaml_task(p)
    with pytest.raises(ConfigError, match="not found"):
        get_task(str(tmp_path / "absent.yaml"))


def _cls_spec(label_map=None):
    spec = {"name": "nli_user", "type": "classification", "labels": ["entailment", "contradiction"],
            "fields": {"premise": "p", "hypothesis": "h"},
            "data": {"train": "train.jsonl", "eval": [{"name": "nli_user", "path": "test.jsonl", "domain": "in"}]},
            "formats": {"default": {"template": "### Input_1: {premise}\n ### Input_2: {hypothesis}\n ### Inference:",
                                    "cue": "### Input"},
                        "io": "{premise} {hypothesis}", "instruct": "Text 1: {premise} Text 2: {hypothesis} The relation is"}}
    if label_map is not None:
        spec["label_map"] = label_map
    return spec


def test_label_map_and_refusals(tmp_path):
    rows = [{"p": f"A dog sleeps {i}.", "h": "An animal rests.", "label": i % 2} for i in range(10)]
    task = load_yaml_task(_write(tmp_path, _cls_spec({0: "entailment", 1: "contradiction"}),
                                 {"train.jsonl": rows, "test.jsonl": rows}))
    data = task.load(LoadRequest(None, seed=0))
    assert [e.target for e in sorted(data.eval["nli_user"], key=lambda e: int(e.uid.rsplit(":", 1)[1]))][:2] == [
        "entailment", "contradiction"]
    bad = list(rows)
    bad[4] = dict(rows[4], label=-1)
    task = load_yaml_task(_write(tmp_path, _cls_spec({0: "entailment", 1: "contradiction"}),
                                 {"train.jsonl": rows, "test.jsonl": bad}))
    with pytest.raises(TaskDataError, match=r"dataset 'nli_user', split 'eval', test.jsonl line 5, "
                                            r"field 'label': label -1"):
        task.load(LoadRequest(None, seed=0))
    bad[4] = dict(rows[4], label=2)
    task = load_yaml_task(_write(tmp_path, _cls_spec({0: "entailment", 1: "contradiction"}),
                                 {"train.jsonl": rows, "test.jsonl": bad}))
    with pytest.raises(TaskDataError, match=r"test.jsonl line 5, field 'label': unknown label 2"):
        task.load(LoadRequest(None, seed=0))
    # without a label_map the column must hold the label words
    task = load_yaml_task(_write(tmp_path, _cls_spec(), {"train.jsonl": rows, "test.jsonl": rows}))
    with pytest.raises(TaskDataError, match=r"unknown label 0.*label_map"):
        task.load(LoadRequest(None, seed=0))
    missing = [{"p": "x"} for _ in range(4)]
    task = load_yaml_task(_write(tmp_path, _cls_spec({0: "entailment", 1: "contradiction"}),
                                 {"train.jsonl": rows, "test.jsonl": missing}))
    with pytest.raises(TaskDataError, match=r"'nli_user', split 'eval', test.jsonl line 1, field 'h': missing"):
        task.load(LoadRequest(None, seed=0))
    with pytest.raises(ConfigError, match=r"key 'label_map.1'.*not one of the labels"):
        load_yaml_task(_write(tmp_path, _cls_spec({0: "entailment", 1: "neutral"}),
                              {"train.jsonl": rows, "test.jsonl": rows}))
