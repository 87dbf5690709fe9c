"""Exactness of the scoring engine on the real tiny model: batch invariance, KV-prefix reuse,
hand checks against a direct, unpadded, uncached forward pass, and greedy decoding against
``model.generate``."""

import numpy as np
import pytest
import torch

from ptft.evaluation import Evaluator, select_demos
from ptft.tasks.base import build_prompt, completion_text

TOL = 1e-4


def _direct_logprobs(model, ids):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return torch.log_softmax(logits.double(), dim=-1)


def _label_scores(out):
    """Per example, per label: first-token log-probabilities (tokenprob) or full log-likelihoods."""
    key = "first_token_logprobs" if out.method_used == "tokenprob" else "label_loglikelihoods"
    return np.array([[p[key][l] for l in sorted(p[key])] for p in out.predictions])


def _mc_lls(out):
    return [np.array(p["loglikelihoods"]) for p in out.predictions]


def test_batch_invariance_multiple_choice(tiny_lm, toys):
    model, tok = tiny_lm
    task, data = toys.mc(n_eval=20)  # contexts of 21-33 tokens, choices of 6-40 tokens
    outs = {bs: Evaluator(model, tok, batch_size=bs).evaluate(task, "test", data.eval["test"], "default", [], "loglik")
            for bs in (1, 16)}
    for a, b in zip(_mc_lls(outs[1]), _mc_lls(outs[16])):
        np.testing.assert_allclose(a, b, atol=TOL, rtol=0)
    for name in ("acc", "acc_norm"):
        np.testing.assert_array_equal(outs[1].scores[name], outs[16].scores[name])


@pytest.mark.parametrize("method", ["tokenprob", "constrained"])
def test_batch_invariance_classification_few_shot(tiny_lm, toys, method):
    model, tok = tiny_lm
    task, data = toys.classification(labels=("yes", "no", "maybe"))
    demos = select_demos(data.train, 2, seed=0)
    outs = {bs: Evaluator(model, tok, batch_size=bs).evaluate(task, "test", data.eval["test"], "default", demos, method)
            for bs in (1, 16)}
    assert outs[1].method_used == outs[16].method_used == method
    np.testing.assert_allclose(_label_scores(outs[1]), _label_scores(outs[16]), atol=TOL, rtol=0)


@pytest.mark.parametrize("fmt,k", [("io", 4), ("default", 2)])
def test_prefix_reuse_equals_no_reuse(tiny_lm, toys, fmt, k):
    model, tok = tiny_lm
    task, data = toys.classification(labels=("yes", "no", "maybe"))
    demos = select_demos(data.train, k, seed=1)
    examples = data.eval["test"]
    with_cache = Evaluator(model, tok, batch_size=8)
    without = Evaluator(model, tok, batch_size=8, reuse_prefix=False)
    for method in ("tokenprob", "constrained"):
        a = with_cache.evaluate(task, "test", examples, fmt, demos, method)
        assert with_cache.scorer.last_prefix_len > 20, "the few-shot prefix was not reused"
        assert any("KV cache reused" in n for n in a.notes)
        assert not any("cut from the left" in n for n in a.notes)
        b = without.evaluate(task, "test", examples, fmt, demos, method)
        assert without.scorer.last_prefix_len == 0
        np.testing.assert_allclose(_label_scores(a), _label_scores(b), atol=TOL, rtol=0)
        assert [p["prediction"] for p in a.predictions] == [p["prediction"] for p in b.predictions]


def test_prefix_reuse_equals_no_reuse_multiple_choice(tiny_lm, toys):
    model, tok = tiny_lm
    task, data = toys.mc(n_eval=10)
    demos = select_demos(data.train, 2, seed=0)
    a = Evaluator(model, tok, batch_size=4).evaluate(task, "test", data.eval["test"], "default", demos, "loglik")
    b = Evaluator(model, tok, batch_size=4, reuse_prefix=False).evaluate(
        task, "test", data.eval["test"], "default", demos, "loglik")
    for x, y in zip(_mc_lls(a), _mc_lls(b)):
        np.testing.assert_allclose(x, y, atol=TOL, rtol=0)


def test_loglikelihood_hand_check(tiny_lm, toys):
    """One example, every choice: the sum of log-probs of " choice" after the prompt, from one
    plain forward pass over prompt + choice tokens."""
    model, tok = tiny_lm
    task, data = toys.mc(n_eval=6)
    demos = select_demos(data.train, 1, seed=0)
    out = Evaluator(model, tok, batch_size=4).evaluate(task, "test", data.eval["test"], "default", demos, "loglik")
    ex, pred = data.eval["test"][3], out.predictions[3]
    prompt = build_prompt(task.formats["default"], ex, demos)
    ctx = tok(prompt)["input_ids"]
    for choice, got in zip(ex.choices, pred["loglikelihoods"]):
        whole = tok(prompt + completion_text(choice))["input_ids"]
        cont = whole[len(ctx):]
        lp = _direct_logprobs(model, ctx + cont)
        expected = sum(float(lp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
        assert got == pytest.approx(expected, abs=TOL)
    # acc_norm by hand: divide by the choice's length in characters
    lls = np.array(pred["loglikelihoods"])
    lengths = np.array([len(c) for c in ex.choices], dtype=float)
    assert pred["prediction_norm"] == ex.choices[int(np.argmax(lls / lengths))]
    assert pred["prediction"] == ex.choices[int(np.argmax(lls))]
    assert out.scores["acc_norm"][3] == float(ex.choices[int(np.argmax(lls / lengths))] == ex.target)


def test_tokenprob_hand_check(tiny_lm, toys):
    model, tok = tiny_lm
    labels = ("yes", "no", "maybe")
    task, data = toys.classification(labels=labels)
    demos = select_demos(data.train, 2, seed=0)
    out = Evaluator(model, tok).evaluate(task, "test", data.eval["test"], "default", demos, "tokenprob")
    assert out.method_used == "tokenprob" and not any("fell back" in n for n in out.notes)
    ex, pred = data.eval["test"][5], out.predictions[5]
    prompt = build_prompt(task.formats["default"], ex, demos)
    ctx = tok(prompt)["input_ids"]
    lp = _direct_logprobs(model, ctx)[-1]
    for label in labels:
        with_space = tok(prompt + " " + label)["input_ids"][len(ctx)]
        alone = tok(label, add_special_tokens=False)["input_ids"][0]
        variants = sorted({with_space, alone})
        expected = float(torch.logsumexp(lp[variants], dim=0))
        assert pred["first_token_logprobs"][label] == pytest.approx(expected, abs=TOL)
        assert sorted(pred["label_tokens"][label]) == sorted(tok.decode([t]) for t in variants)
    assert pred["prediction"] == max(labels, key=lambda l: pred["first_token_logprobs"][l])


def test_greedy_generation_matches_model_generate(tiny_lm):
    model, tok = tiny_lm
    ev = Evaluator(model, tok, batch_size=3)
    prompts = ["The river", "Paris is the capital of France. It is", "He was born in a small village in the north of",
               "The film was directed by"]
    ctx = ev.scorer.encode(prompts)
    ours = ev.scorer.generate(ctx, 8, stops=(), eos_ids=ev.eos_ids)
    for ids, (text, stopped) in zip(ctx, ours):
        with torch.no_grad():
            ref = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
        ref_text = tok.decode(ref[0, len(ids):], skip_special_tokens=True)
        assert text == ref_text
        assert not stopped or len(tok(text, add_special_tokens=False)["input_ids"]) < 8


def test_empty_context_is_conditioned_on_the_prefix_token(tiny_lm):
    model, tok = tiny_lm
    ev = Evaluator(model, tok, batch_size=2)
    ctx, conts = ev.scorer.encode_pairs(["", "The river"], [[" flows"], [" flows"]])
    assert ctx[0] == [ev.scorer.prefix_token_id]
    assert conts[0][0] == tok(" flows", add_special_tokens=False)["input_ids"]
    (got,), _ = ev.scorer.loglikelihoods(ctx, conts)
    lp = _direct_logprobs(model, ctx[0] + conts[0][0])
    expected = sum(float(lp[j, t]) for j, t in enumerate(conts[0][0]))
    assert got[0] == pytest.approx(expected, abs=TOL)


def test_one_pass_tree_scoring_equals_two_stage_scoring(tiny_lm, toys):
    """Contexts + all continuations in one pass (4-D mask) vs contexts, then continuations on
    copies of the context cache (2-D masks): the same log-likelihoods."""
    model, tok = tiny_lm
    task, data = toys.mc(n_eval=12)
    demos = select_demos(data.train, 2, seed=0)
    one = Evaluator(model, tok, batch_size=5)
    assert one.scorer.tree, "the tiny Llama should take the one-pass path"
    two = Evaluator(model, tok, batch_size=5)
    two.scorer.tree = False
    for k in (0, 2):
        a = one.evaluate(task, "test", data.eval["test"], "default", demos[:k], "loglik")
        b = two.evaluate(task, "test", data.eval["test"], "default", demos[:k], "loglik")
        for x, y in zip(_mc_lls(a), _mc_lls(b)):
            np.testing.assert_allclose(x, y, atol=TOL, rtol=0)


def test_fast_encoding_equals_the_tokenizer_call(tiny_lm, toys):
    model, tok = tiny_lm
    ev = Evaluator(model, tok)
    texts = ["", " yes", "### Input_1: The river\\n ### Inference: no\\n\\n### Input", toys.sentences[2] + "\n\n"]
    assert ev.scorer._backend() is not None
    assert ev.scorer.encode(texts[1:]) == tok(texts[1:])["input_ids"]
    assert ev.scorer.encode(texts[1:], add_special_tokens=False) == tok(texts[1:], add_special_tokens=False)["input_ids"]
    tok(["a", "bb"], padding=True)  # a caller that leaves padding configured on the backend
    try:
        assert ev.scorer.encode(texts[1:]) == tok(texts[1:])["input_ids"]
    finally:
        tok.backend_tokenizer.no_padding()
