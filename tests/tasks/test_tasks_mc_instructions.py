"""The offline multiple-choice suite and the instruction mixtures (messages format)."""

import json

import pytest

from ptft.errors import DataError
from ptft.tasks import LoadRequest, build_prompt, get_task
from ptft.tasks.instructions import (available_instructions, load_instructions, quotas,
                                     validate_messages)

BB_MC = ["bb_mc_fables", "bb_mc_physical_intuition", "bb_mc_timedial", "bb_mc_wikihow_goal"]


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


# ----------------------------------------------------------------------------------- instructions

def test_quotas_spread_evenly():
    assert quotas({"a": 1, "b": 10, "c": 10}, 9) == {"a": 1, "b": 4, "c": 4}
    assert quotas({"a": 3, "b": 3}, 100) == {"a": 3, "b": 3}
    assert quotas({"a": 5, "b": 5, "c": 5}, 4) == {"a": 2, "b": 1, "c": 1}
    assert sum(quotas({"a": 7, "b": 0, "c": 30}, 20).values()) == 20


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


def test_natural_instructions_turns_match_the_file():
    from ptft.tasks import bbutil
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


def _write_jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _conv(i, answer="Paris."):
    return {"dataset": "x", "id": str(i), "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": f"Capital of France? ({i})"},
        {"role": "assistant", "content": answer}]}


def test_local_and_tulu_files(tmp_path):
    f = _write_jsonl(tmp_path / "mix.jsonl", [_conv(i) for i in range(10)] + [_conv(10, answer="  ")])
    rows = load_instructions(str(f), seed=0)
    assert len(rows) == 10 and rows.notes["skipped"] == {"empty assistant turns": 1}
    assert rows[0] == {"messages": _conv(0)["messages"]}  # extra columns dropped
    part = load_instructions(str(f), seed=0, n=4)
    assert len(part) == 4 and part == load_instructions(str(f), seed=0, n=4)
    _write_jsonl(tmp_path / "hub" / "tulu_v2" / "train.jsonl", [_conv(i) for i in range(6)])
    tulu = load_instructions("tulu_v2", seed=0, n=3, data_dir=str(tmp_path / "hub"))
    assert len(tulu) == 3
    with pytest.raises(DataError, match="tulu_v2: no .*train.jsonl"):
        load_instructions("tulu_v2", seed=0, data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="unknown instruction dataset"):
        load_instructions("no_such_mixture", seed=0)


@pytest.mark.parametrize("row, where", [
    ({"msgs": []}, r"row 0, field 'messages': missing"),
    ({"messages": []}, r"row 0, field 'messages': expected a non-empty list"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "yo"}]},
     r"row 0, field 'messages\[1\]\.role': 'bot'"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 3}]},
     r"row 0, field 'messages\[1\]\.content': expected text"),
    ({"messages": [{"role": "user", "content": "hi"}]}, r"row 0, field 'messages': no assistant turn"),
    ({"messages": ["hi"]}, r"row 0, field 'messages\[0\]'"),
])
def test_messages_validation(row, where):
    with pytest.raises(DataError, match=where):
        validate_messages(row, "src", 0)


def test_bad_row_in_file_names_the_row(tmp_path):
    bad = _conv(2)
    bad["messages"][1]["role"] = "human"
    f = _write_jsonl(tmp_path / "m.jsonl", [_conv(0), _conv(1), bad])
    with pytest.raises(DataError, match=r"m.jsonl', m.jsonl line 3, field 'messages\[1\]\.role'"):
        load_instructions(str(f), seed=0)


