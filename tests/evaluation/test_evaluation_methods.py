"""Each scoring method end to end on the real tiny model."""

import numpy as np
import pytest
from rouge_score import rouge_scorer

from ptft.evaluation import EvaluationError, Evaluator, match_label, select_demos
from ptft.tasks.base import EvalSet, Example, Task, build_prompt


def test_tokenprob_shared_first_token_falls_back_to_constrained(tiny_lm, toys):
    model, tok = tiny_lm
    labels = ("true story", "true lie")  # both start with the token(s) of " true"
    task, data = toys.classification(labels=labels)
    ev = Evaluator(model, tok)
    out = ev.evaluate(task, "test", data.eval["test"], "io", [], "tokenprob")
    assert out.method == "tokenprob" and out.method_used == "constrained"
    assert any("fell back to constrained" in n and "share the first token" in n for n in out.notes)
    direct = ev.evaluate(task, "test", data.eval["test"], "io", [], "constrained")
    assert [p["label_loglikelihoods"] for p in out.predictions] == [p["label_loglikelihoods"] for p in direct.predictions]
    assert out.metrics["accuracy"] == direct.metrics["accuracy"]


def test_classification_outcome_shape(tiny_lm, toys):
    model, tok = tiny_lm
    task, data = toys.classification()
    demos = select_demos(data.train, 2, seed=0)
    out = Evaluator(model, tok).evaluate(task, "test", data.eval["test"], "default", demos, "constrained", seed=3)
    acc = out.metrics["accuracy"]
    assert acc.n == len(data.eval["test"]) and acc.ci_low <= acc.value <= acc.ci_high
    assert acc.value == pytest.approx(out.scores["accuracy"].mean())
    assert out.shots == 2 and out.demo_uids == [d.uid for d in demos]
    p = out.predictions[0]
    assert p["uid"] == data.eval["test"][0].uid
    assert p["prompt"] == build_prompt(task.formats["default"], data.eval["test"][0], demos)
    assert p["demo_uids"] == [d.uid for d in demos]
    assert p["correct"] == (p["prediction"] == p["target"])
    import json

    json.dumps(out.predictions), json.dumps(out.summary())  # JSON-able


def test_free_method(tiny_lm, toys):
    model, tok = tiny_lm
    task, data = toys.classification(labels=("yes", "no"))
    demos = select_demos(data.train, 2, seed=0)
    ev = Evaluator(model, tok, batch_size=5)
    out = ev.evaluate(task, "test", data.eval["test"], "default", demos, "free")
    assert out.method_used == "free"
    for p in out.predictions:
        assert "\n" not in p["output"] and "### Input" not in p["output"]
        assert len(tok(p["output"], add_special_tokens=False)["input_ids"]) <= 5
        assert p["prediction"] == match_label(p["output"], ("yes", "no"))
        assert p["correct"] == (p["prediction"] == p["target"])
    # labels taken from what the model really says: the whole first word is its answer, a
    # label that is only a prefix of that word (a substring) is never chosen
    words = [p["normalized"].split()[0] for p in out.predictions if p["normalized"] and len(p["normalized"].split()[0]) > 2]
    assert words, "the model produced no word at all"
    word = words[0]
    labels = (word, word[:-1])
    rows = [Example(ex.uid, ex.fields, word) for ex in data.eval["test"]]
    task2 = Task("toy_free", "classification", task.formats, (EvalSet("test", "in"),), loader=task.loader, labels=labels)
    demos2 = [Example(d.uid, d.fields, word) for d in demos]
    out2 = ev.evaluate(task2, "test", rows, "default", demos2, "free")
    said = [p for p in out2.predictions if p["normalized"].split()[:1] == [word]]
    assert said and all(p["prediction"] == word and p["correct"] for p in said)
    assert all(p["prediction"] != word[:-1] for p in out2.predictions)
    assert out2.scores["accuracy"].sum() == sum(p["prediction"] == word for p in out2.predictions)


def test_generation_rouge_and_stops(tiny_lm, toys):
    model, tok = tiny_lm
    task, data = toys.generation(n_eval=8, max_new_tokens=16)
    demos = select_demos(data.train, 2, seed=0)
    outs = {bs: Evaluator(model, tok, batch_size=bs).evaluate(task, "test", data.eval["test"], "default", demos, "greedy")
            for bs in (1, 4)}
    out = outs[4]
    assert [p["prediction"] for p in outs[1].predictions] == [p["prediction"] for p in out.predictions]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    for ex, p, s in zip(data.eval["test"], out.predictions, out.scores["rougeL"]):
        assert "\n" not in p["prediction"] and "### Input" not in p["prediction"]
        assert s == pytest.approx(scorer.score(ex.target, p["prediction"])["rougeL"].fmeasure)
        assert p["score"] == s
    assert out.metrics["rougeL"].value == pytest.approx(float(np.mean(out.scores["rougeL"])))


def test_generation_truncates_at_the_first_stop(tiny_lm):
    model, tok = tiny_lm
    ev = Evaluator(model, tok, batch_size=2)
    prompts = ["The river flows through the city. The", "The band released its first album in",
               "He was born in a small village in the north of", "It is a species of"]
    ctx = ev.scorer.encode(prompts)
    free = ev.scorer.generate(ctx, 20, stops=(), eos_ids=())
    checked = 0
    for ids, (text, stopped) in zip(ctx, free):
        assert not stopped
        stop = text[-3:]  # a stop sequence the model really produces; cut at its *first* occurrence
        cut_at = text.index(stop) if len(text) >= 6 else 0
        if cut_at == 0:
            continue
        ((short, hit),) = ev.scorer.generate([ids], 20, stops=("\n", stop), eos_ids=())
        assert hit and short == text[:cut_at].split("\n")[0]
        ((nl, _),) = ev.scorer.generate([ids], 20, stops=("\n",), eos_ids=())
        assert nl == text.split("\n")[0]
        checked += 1
    assert checked, f"no usable output among {free}"


def test_multiple_choice_metrics(tiny_lm, toys):
    model, tok = tiny_lm
    task, data = toys.mc(n_eval=8)
    out = Evaluator(model, tok).evaluate(task, "test", data.eval["test"], "default", [], "loglik", seed=1)
    assert set(out.metrics) >= {"acc", "acc_norm"}
    for p, a, an in zip(out.predictions, out.scores["acc"], out.scores["acc_norm"]):
        assert len(p["loglikelihoods"]) == len(p["choices"]) == 4
        assert a == float(p["prediction"] == p["target"]) and an == float(p["prediction_norm"] == p["target"])


def test_bad_requests_are_refused(tiny_lm, toys):
    model, tok = tiny_lm
    task, data = toys.classification()
    ev = Evaluator(model, tok)
    rows = data.eval["test"]
    with pytest.raises(EvaluationError, match="method must be one of"):
        ev.evaluate(task, "test", rows, "default", [], "greedy")
    with pytest.raises(EvaluationError, match="has no format 'fancy'; it has default, io, instruct"):
        ev.evaluate(task, "test", rows, "fancy", [], "tokenprob")
    with pytest.raises(EvaluationError, match="no examples"):
        ev.evaluate(task, "test", [], "default", [], "tokenprob")
    with pytest.raises(EvaluationError, match="no eval set"):
        ev.evaluate(task, "dev", rows, "default", [], "tokenprob")
