"""Per-example outputs a user can check: a predictions row names its demonstrations and carries
the exact prompt, re-scoring that prompt by hand gives the recorded numbers, and input text
reaches the prompt as the data gives it unless the task asks for normalisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ptft.cli import main
from ptft.evaluation import Evaluator, select_demos
from ptft.tasks.base import build_prompt

TOL = 1e-4


def _hand_loglikelihood(model, tok, prompt: str, completion: str, dropped: int = 0) -> float:
    """log P(completion | prompt) with the prompt's first ``dropped`` tokens cut, as recorded."""
    ctx = tok(prompt)["input_ids"]
    whole = tok(prompt + completion)["input_ids"]
    assert whole[:len(ctx)] == ctx, "the completion changed the prompt's tokens"
    whole, n_ctx = whole[dropped:], len(ctx) - dropped
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([whole])).logits[0]
    lps = torch.log_softmax(logits.double(), dim=-1)
    return float(sum(lps[i - 1, whole[i]] for i in range(n_ctx, len(whole))))


def test_a_row_names_its_demos_and_its_prompt_reproduces_the_model_input(tiny_lm, toys):
    model, tok = tiny_lm
    labels = ("yes", "no", "maybe")
    task, data = toys.classification(labels=labels)
    demos = select_demos(data.train, 3, seed=5)
    out = Evaluator(model, tok, batch_size=8).evaluate(task, "test", data.eval["test"], "default", demos,
                                                        "constrained")
    train_by_uid = {ex.uid: ex for ex in data.train}
    for ex, row in zip(data.eval["test"], out.predictions):
        assert row["demo_uids"] == [d.uid for d in demos]
        # the row alone (its demo ids, the task's template) rebuilds its prompt
        assert row["prompt"] == build_prompt(task.formats["default"], ex, [train_by_uid[u] for u in row["demo_uids"]])
    assert {row["prompt_tokens_dropped"] for row in out.predictions} == {0}
    for row in out.predictions[:4]:
        mine = [_hand_loglikelihood(model, tok, row["prompt"], " " + label) for label in labels]
        np.testing.assert_allclose([row["label_loglikelihoods"][l] for l in labels], mine, atol=TOL, rtol=0)
        assert row["prediction"] == labels[int(np.argmax(mine))]


def test_a_prompt_cut_to_fit_the_window_says_how_much_was_cut(tiny_lm, toys):
    model, tok = tiny_lm
    labels = ("yes", "no", "maybe")
    task, data = toys.classification(labels=labels)
    demos = select_demos(data.train, 3, seed=5)
    window = 48
    out = Evaluator(model, tok, batch_size=8, max_length=window).evaluate(
        task, "test", data.eval["test"][:6], "default", demos, "constrained")
    assert any("cut from the left" in n for n in out.notes)
    for row in out.predictions:
        n_prompt = len(tok(row["prompt"])["input_ids"])
        longest = max(len(tok(row["prompt"] + " " + l)["input_ids"]) - n_prompt for l in labels)
        # lm-eval's rule: context + continuation - 1 tokens fit the window
        assert row["prompt_tokens_dropped"] == n_prompt - (window + 1 - longest) > 0
        mine = [_hand_loglikelihood(model, tok, row["prompt"], " " + label, row["prompt_tokens_dropped"])
                for label in labels]
        np.testing.assert_allclose([row["label_loglikelihoods"][l] for l in labels], mine, atol=TOL, rtol=0)


def test_tokenprob_rows_hold_first_token_log_probabilities(tiny_lm, toys):
    model, tok = tiny_lm
    labels = ("yes", "no", "maybe")
    task, data = toys.classification(labels=labels)
    out = Evaluator(model, tok).evaluate(task, "test", data.eval["test"], "io", [], "tokenprob")
    assert out.method_used == "tokenprob"
    row = out.predictions[0]
    assert "label_loglikelihoods" not in row and set(row["first_token_logprobs"]) == set(labels)
    ctx = tok(row["prompt"])["input_ids"]
    with torch.no_grad():
        lp = torch.log_softmax(model(input_ids=torch.tensor([ctx])).logits[0, -1].double(), dim=-1)
    for label in labels:
        variants = sorted({tok(row["prompt"] + " " + label)["input_ids"][len(ctx)],
                           tok(label, add_special_tokens=False)["input_ids"][0]})
        assert abs(row["first_token_logprobs"][label] - float(torch.logsumexp(lp[variants], 0))) < TOL


PADDED = "  The river flows through the city.\n"
CHOICES = ["the  old bridge", " a castle", "the park"]


def _write_mc_task(tmp_path, normalize: bool | None):
    rows = [{"question": PADDED if i == 0 else f"Sentence {i} is about", "choices": CHOICES, "answer": i % 3}
            for i in range(8)]
    for split in ("train", "test"):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
    option = "" if normalize is None else f"normalize_whitespace: {str(normalize).lower()}\n"
    (tmp_path / "task.yaml").write_text(
        "name: padded_mc\ntype: multiple_choice\nchoices_field: choices\nanswer_field: answer\n"
        "fields: [question]\ndata:\n  train: train.jsonl\n  eval:\n    - {name: padded, path: test.jsonl, domain: in}\n"
        "formats:\n  default: {template: \"Question: {question}\\nAnswer:\"}\n  io: {template: \"{question}\"}\n"
        "  instruct: {template: \"Q: {question} A:\"}\n" + option)
    return tmp_path / "task.yaml"


def _eval_rows(tiny_model_dir, task_file, out, extra=()):
    assert main(["eval", "--model", str(tiny_model_dir), "--task", str(task_file), "--first", "3",
                 "--out", str(out), *extra]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_field_with_surrounding_whitespace_reaches_the_prompt_unchanged(tiny_model_dir, tmp_path, capsys):
    rows = _eval_rows(tiny_model_dir, _write_mc_task(tmp_path, None), tmp_path / "p.jsonl")
    # --first 3: the first three rows of the file, in its order
    assert [r["uid"] for r in rows] == [f"padded:eval:{i}" for i in range(3)]
    assert rows[0]["prompt"] == f"Question: {PADDED}\nAnswer:"
    assert rows[0]["choices"] == CHOICES
    capsys.readouterr()


def test_normalize_whitespace_is_the_tasks_explicit_choice(tiny_model_dir, tmp_path, capsys):
    rows = _eval_rows(tiny_model_dir, _write_mc_task(tmp_path, True), tmp_path / "p.jsonl")
    assert rows[0]["prompt"] == "Question: The river flows through the city.\nAnswer:"
    assert rows[0]["choices"] == ["the old bridge", "a castle", "the park"]
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--model", str(tiny_model_dir), "--task", str(tmp_path / "task.yaml"), "--first", "2",
              "--limit", "2"])
    assert exit_info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_limit_is_a_seeded_sample_and_first_the_head(tiny_model_dir, tmp_path, capsys):
    task_file = _write_mc_task(tmp_path, None)
    head = _eval_rows(tiny_model_dir, task_file, tmp_path / "first.jsonl")
    assert main(["eval", "--model", str(tiny_model_dir), "--task", str(task_file), "--limit", "3",
                 "--seed", "1", "--out", str(tmp_path / "limit.jsonl")]) == 0
    sample = [json.loads(line) for line in (tmp_path / "limit.jsonl").read_text().splitlines()]
    from ptft.tasks.splits import subsample

    assert [r["uid"] for r in sample] == [f"padded:eval:{i}" for i in subsample(list(range(8)), 3, 1, "padded")]
    assert [r["uid"] for r in head] != [r["uid"] for r in sample]
    capsys.readouterr()
