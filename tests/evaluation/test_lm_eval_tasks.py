"""lm-evaluation-harness tasks as ptft eval sets (``lm-eval:PATH.yaml``), loaded through lm-eval's
own TaskManager and scored by ptft. Parity on a local-JSON lm-eval task: lm-eval 0.4.13 and ptft
give per-example choice log-likelihoods within 1e-4 and the same accuracies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ptft.cli import main
from ptft.errors import ConfigError
from ptft.evaluation import Evaluator
from lm_eval_tasks import write_lm_eval_task
from ptft.tasks import LoadRequest, get_task

lm_eval = pytest.importorskip("lm_eval")
TOL = 1e-4

STARTS = ["The river", "Paris", "The band", "The church", "The island", "She", "The novel", "The team"]
ENDINGS = ["flows through the city", "is the capital of France", "released its first album",
           "was built in the twelfth century", "has about two thousand people"]


def rows(split: str, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"prompt": f"Question: {STARTS[i % len(STARTS)]} {split} {i}: what follows?\nAnswer:",
             "choices": [str(c) for c in rng.choice(ENDINGS, size=3, replace=False)], "gold": int(rng.integers(3))}
            for i in range(n)]


def write_task(folder, name="ptft_lm_task", extra: str = "") -> str:
    return str(write_lm_eval_task(folder, name, rows("test", 14, 0), rows("train", 6, 1), extra))


@pytest.fixture(scope="module")
def lm_task_file(tmp_path_factory):
    return write_task(tmp_path_factory.mktemp("lm_eval_task"))


def test_the_task_is_lm_evals_documents_prompts_and_choices(lm_task_file):
    task = get_task(f"lm-eval:{lm_task_file}")
    data = task.load(LoadRequest(None, seed=0))
    (name,) = data.eval
    expected = rows("test", 14, 0)
    assert [ex.fields["text"] for ex in data.eval[name]] == [r["prompt"] for r in expected]
    assert [ex.target for ex in data.eval[name]] == [r["choices"][r["gold"]] for r in expected]
    assert [list(ex.choices) for ex in data.eval[name]] == [r["choices"] for r in expected]
    assert len(data.train) == 6 and {ex.uid.split(":")[-2] for ex in data.train} == {"train"}


def test_parity_with_lm_eval_on_its_own_task(lm_task_file, tiny_model_dir, tiny_lm):
    from lm_eval.tasks import TaskManager

    model, tok = tiny_lm
    results = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={tiny_model_dir},dtype=float32", tasks=["ptft_lm_task"],
        task_manager=TaskManager(include_path=lm_task_file.rsplit("/", 1)[0], include_defaults=False),
        device="cpu", batch_size=8, num_fewshot=0, log_samples=True)
    samples = sorted(results["samples"]["ptft_lm_task"], key=lambda s: s["doc_id"])

    task = get_task(f"lm-eval:{lm_task_file}")
    data = task.load(LoadRequest(None, seed=0))
    (name,) = data.eval
    ours = Evaluator(model, tok, batch_size=16).evaluate(task, name, data.eval[name], "default", [], "loglik")
    assert len(samples) == len(ours.predictions) == 14
    for s, p in zip(samples, ours.predictions):
        assert s["arguments"][0][0] == p["prompt"]
        theirs = [float(r[0]) for r in s["filtered_resps"]]
        np.testing.assert_allclose(p["loglikelihoods"], theirs, atol=TOL, rtol=0)
    np.testing.assert_array_equal(ours.scores["acc"], [s["acc"] for s in samples])
    np.testing.assert_array_equal(ours.scores["acc_norm"], [s["acc_norm"] for s in samples])
    agg = results["results"]["ptft_lm_task"]
    assert ours.metrics["acc"].value == pytest.approx(agg["acc,none"])
    assert ours.metrics["acc_norm"].value == pytest.approx(agg["acc_norm,none"])


def test_ptft_eval_scores_it_with_ptfts_demos(lm_task_file, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    assert main(["eval", "--model", str(tiny_model_dir), "--task", f"lm-eval:{lm_task_file}", "--shots", "2",
                 "--out", str(out)]) == 0
    assert "method=loglik" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 14
    assert all(len(r["demo_uids"]) == 2 and all(":train:" in u for u in r["demo_uids"]) for r in rows)
    assert all(r["prompt"].count("Question:") == 3 for r in rows)


def test_tasks_ptft_cannot_score_are_refused(tmp_path, capsys):
    generative = write_task(tmp_path, "ptft_lm_gen", "output_type: generate_until\n")
    with pytest.raises(ConfigError, match="output_type is 'generate_until'"):
        get_task(f"lm-eval:{generative}")
    described = write_task(tmp_path, "ptft_lm_desc", 'description: "Answer these.\\n\\n"\n')
    with pytest.raises(ConfigError, match="description preamble"):
        get_task(f"lm-eval:{described}")
    with pytest.raises(ConfigError, match="not found"):
        get_task(f"lm-eval:{tmp_path / 'missing.yaml'}")
