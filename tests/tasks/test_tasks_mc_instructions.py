"""The offline multiple-choice suite and the instruction mixtures (messages format)."""

import json

import pytest

from ptft.errors import DataError
from ptft.tasks import LoadRequest, build_prompt, get_task
from ptft.tasks.instructions import (available_instructions, load_instructions, quotas,
                                     validate_messages)

MC_SUITE = ["mc_arc_easy", "mc_arc_challenge", "mc_openbookqa", "mc_commonsense_qa", "mc_piqa", "mc_sciq"]


@pytest.mark.parametrize("name", MC_SUITE)
def test_shipped_mc_tasks(name):
    task = get_task(name)
    assert task.task_type == "multiple_choice" and [e.name for e in task.eval_sets] == [name]
    data = task.load(LoadRequest(None, seed=0, n_train=4, n_eval=30))
    assert len(data.train) == 4 and len(data.eval[name]) == 30
    for ex in data.eval[name]:
        assert ex.target in ex.choices and len(ex.choices) >= 2
        assert all(c.strip() for c in ex.choices)
        for fmt in task.formats.values():
            prompt = build_prompt(fmt, ex, data.train)
            assert not prompt.endswith(" ")
    cue = "Passage: " if name == "mc_sciq" else "Question: "
    assert task.formats["default"].render(data.eval[name][0]).startswith(cue)


def test_shipped_mc_split_is_mostly_eval_and_grouped_by_question():
    data = get_task("mc_commonsense_qa").load(LoadRequest(None, seed=0))
    sizes = [len(data.train), len(data.dev), len(data.eval["mc_commonsense_qa"])]
    assert sum(sizes) == 1221 and 0.6 < sizes[2] / 1221 < 0.8  # 20/10/70 by a hash of the question
    norm = lambda e: " ".join(e.fields["question"].split())
    assert not {norm(e) for e in data.train} & {norm(e) for e in data.eval["mc_commonsense_qa"]}


# ----------------------------------------------------------------------------------- instructions

def test_quotas_spread_evenly():
    assert quotas({"a": 1, "b": 10, "c": 10}, 9) == {"a": 1, "b": 4, "c": 4}
    assert quotas({"a": 3, "b": 3}, 100) == {"a": 3, "b": 3}
    assert quotas({"a": 5, "b": 5, "c": 5}, 4) == {"a": 2, "b": 1, "c": 1}
    assert sum(quotas({"a": 7, "b": 0, "c": 30}, 20).values()) == 20


def test_mixed_instructions_messages():
    assert {"mixed_instructions", "bb_natural_instructions", "tulu_v2"} <= set(available_instructions())
    rows = load_instructions("mixed_instructions", seed=0, n=40)
    assert len(rows) == 40
    assert rows.notes["subtasks"] == 4 and set(rows.notes["per_subtask"].values()) == {10}
    instructions = {"Write a short dictionary definition", "Give a word or phrase", "Is the following review",
                    "Read the passage"}
    for row in rows:
        assert set(row) == {"messages"}
        user, assistant = row["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert any(user["content"].startswith(i) for i in instructions) and "\n\n" in user["content"]
        assert assistant["content"].strip()
    again = load_instructions("mixed_instructions", seed=0, n=40)
    other = load_instructions("mixed_instructions", seed=1, n=40)
    assert again == rows and other != rows


def test_mixed_instructions_turns_match_the_shipped_rows():
    """WordNet's first sampled synset ('entity'), the first UCI sentence (IMDb, negative) and BoolQ's
    third passage (54 words; the first two are over the 100-word limit)."""
    from ptft.tasks.instructions import mixed_subtasks, registered_mixture

    subtasks = mixed_subtasks()
    assert subtasks["word_definitions"][0]["messages"] == [
        {"role": "user", "content": "Write a short dictionary definition of the given word.\n\nentity (noun)"},
        {"role": "assistant", "content": "that which is perceived or known or inferred to have its own distinct "
                                         "existence (living or nonliving)"}]
    assert subtasks["synonyms"][0]["messages"][1] == {"role": "assistant", "content": "unit"}  # whole -> unit
    user, assistant = subtasks["review_polarity"][0]["messages"]
    assert user["content"].endswith("\n\nA very, very, very slow-moving, aimless movie about a distressed, "
                                    "drifting young man.") and assistant["content"] == "negative"
    assert len(subtasks["review_polarity"]) == 3000
    assert all(len(c["messages"][0]["content"].split("Passage: ", 1)[1].split("\nQuestion: ")[0].split()) <= 100
               for c in subtasks["yes_no_questions"])
    assert registered_mixture("mixed_instructions").size == sum(map(len, subtasks.values()))


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


