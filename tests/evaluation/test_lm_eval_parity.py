"""Parity with lm-evaluation-harness 0.4.13 (its HF backend) on the tiny test checkpoint.

Two tasks are written as lm-eval task YAMLs over local JSON files and scored by both tools:
a multiple-choice set, 0-shot (acc, acc_norm), and a classification set whose label words are the
choices (lm-eval's multiple_choice over the labels *is* the Constrained method), 2-shot: the
demonstrations are baked into the prompt that lm-eval sees (so its few-shot sampler plays no
part), while ptft gets them as demos and scores with its KV-cached prefix. Per-example choice
log-likelihoods must agree within 1e-4, accuracies exactly.
"""


import numpy as np
import pytest

from ptft.evaluation import Evaluator, select_demos
from lm_eval_tasks import write_lm_eval_task
from ptft.tasks.base import build_prompt

lm_eval = pytest.importorskip("lm_eval")

TOL = 1e-4


@pytest.fixture(scope="module")
def parity(tiny_model_dir, tiny_lm, toys, tmp_path_factory):
    model, tok = tiny_lm
    tmp = tmp_path_factory.mktemp("lm_eval_tasks")

    mc_task, mc_data = toys.mc(n_eval=16)
    mc_rows = mc_data.eval["test"]
    write_lm_eval_task(tmp, "ptft_parity_mc", [
        {"prompt": mc_task.formats["default"].render(ex), "choices": list(ex.choices), "gold": ex.choices.index(ex.target)}
        for ex in mc_rows])

    labels = ("yes", "no", "maybe")
    cls_task, cls_data = toys.classification(labels=labels, n_eval=24)
    cls_rows = cls_data.eval["test"]
    demos = select_demos(cls_data.train, 2, seed=0)
    write_lm_eval_task(tmp, "ptft_parity_cls", [
        {"prompt": build_prompt(cls_task.formats["default"], ex, demos), "choices": list(labels),
         "gold": labels.index(ex.target)} for ex in cls_rows])

    from lm_eval.tasks import TaskManager

    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model_dir},dtype=float32",
        tasks=["ptft_parity_mc", "ptft_parity_cls"], task_manager=TaskManager(include_path=str(tmp)),
        device="cpu", batch_size=8, num_fewshot=0, log_samples=True)

    ev = Evaluator(model, tok, batch_size=16)
    ours_mc = ev.evaluate(mc_task, "test", mc_rows, "default", [], "loglik")
    ours_cls = ev.evaluate(cls_task, "test", cls_rows, "default", demos, "constrained")
    assert ev.scorer.last_prefix_len > 0  # the demos went through the KV-cached prefix
    return results, ours_mc, ours_cls


def _samples(results, name):
    samples = sorted(results["samples"][name], key=lambda s: s["doc_id"])
    lls = [np.array([float(r[0]) for r in s["filtered_resps"]]) for s in samples]
    return samples, lls


def test_multiple_choice_parity(parity):
    results, ours, _ = parity
    samples, lls = _samples(results, "ptft_parity_mc")
    assert len(samples) == len(ours.predictions)
    for s, theirs, p in zip(samples, lls, ours.predictions):
        assert s["arguments"][0][0] == p["prompt"]
        np.testing.assert_allclose(np.array(p["loglikelihoods"]), theirs, atol=TOL, rtol=0)
    np.testing.assert_array_equal(ours.scores["acc"], [s["acc"] for s in samples])
    np.testing.assert_array_equal(ours.scores["acc_norm"], [s["acc_norm"] for s in samples])
    agg = results["results"]["ptft_parity_mc"]
    assert ours.metrics["acc"].value == pytest.approx(agg["acc,none"])
    assert ours.metrics["acc_norm"].value == pytest.approx(agg["acc_norm,none"])


def test_classification_constrained_parity(parity):
    results, _, ours = parity
    samples, lls = _samples(results, "ptft_parity_cls")
    labels = ("yes", "no", "maybe")
    for theirs, p in zip(lls, ours.predictions):
        np.testing.assert_allclose([p["label_loglikelihoods"][l] for l in labels], theirs, atol=TOL, rtol=0)
    np.testing.assert_array_equal(ours.scores["accuracy"], [s["acc"] for s in samples])
    assert ours.metrics["accuracy"].value == pytest.approx(results["results"]["ptft_parity_cls"]["acc,none"])
