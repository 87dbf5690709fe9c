"""`ptft import lm-eval`: real lm-evaluation-harness output into the results table, analysed.

Two layouts: the 0.3 files EleutherAI published for Pythia (tests/data/pythia-evals, two real
logs), and lm-eval 0.4.13's own ``--output_path ... --log_samples`` output, produced here by
running its command line on the tiny test checkpoint over a local JSON task."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ptft.api import import_lm_eval
from ptft.cli import main
from lm_eval_tasks import write_lm_eval_task
from ptft.evaluation.stats import metric_value

PYTHIA = Path(__file__).parent / "data" / "pythia-evals"
Z95 = 1.959963984540054


def test_pythia_0_3_logs_become_base_rows_per_revision(tmp_path):
    result = import_lm_eval([PYTHIA], tmp_path / "pythia.csv")
    table = pd.read_csv(tmp_path / "pythia.csv")
    assert result.model == "EleutherAI/pythia-v1.1-160m"
    assert list(table.drop_duplicates("checkpoint")["checkpoint"]) == ["step1000", "step143000"]
    assert set(table["step"]) == {1000, 143000}
    assert (table["train_task"].isna()).all() and (table["shots"] == 0).all()
    assert set(table["task_type"]) == {"multiple_choice"} and set(table["method"]) == {"loglik"}
    # every (task, metric) of both files, stderr keys excluded
    raw = {f: json.loads((PYTHIA / f).read_text())["results"] for f in ("160m_step1000.json", "160m_step143000.json")}
    assert len(table) == sum(1 for r in raw.values() for m in r.values() for k in m if not k.endswith("_stderr"))

    wino = table[(table["eval_set"] == "winogrande") & (table["checkpoint"] == "step1000")].iloc[0]
    value, stderr = 0.5082872928176796, 0.014050555322824192
    assert wino["metric"] == "acc" and wino["value"] == value
    assert wino["ci_low"] == pytest.approx(value - Z95 * stderr) and wino["ci_high"] == pytest.approx(value + Z95 * stderr)
    # n from acc and its stderr: winogrande's validation split has 1,267 problems, ARC-Easy's test 2,376
    assert wino["n"] == 1267
    assert set(table.loc[table["eval_set"] == "arc_easy", "n"]) == {2376}
    ppl = table[(table["eval_set"] == "lambada_openai") & (table["metric"] == "ppl")]
    assert list(ppl["value"]) == [2591.451412162786, 38.064877017771195]
    assert set(ppl["n"]) == {5153}  # LAMBADA (OpenAI) test: from the task's acc


def test_imported_table_runs_through_analyze_and_report(tmp_path, capsys):
    run_dir = tmp_path / "pythia-run"
    assert main(["import", "lm-eval", str(PYTHIA / "160m_step1000.json"), str(PYTHIA / "160m_step143000.json"),
                 "--out", str(run_dir)]) == 0
    assert "checkpoints step1000, step143000" in capsys.readouterr().out
    assert main(["analyze", str(run_dir), "--out", str(tmp_path / "analysis")]) == 0
    trajectory = pd.read_csv(tmp_path / "analysis" / "trajectory.csv")
    arc = trajectory[trajectory["eval_set"] == "arc_easy"]
    assert list(arc["checkpoint"]) == ["step1000", "step143000"] and set(arc["metric"]) == {"acc"}
    assert list(arc["value"]) == [0.3063973063973064, 0.4351851851851852]
    assert main(["report", str(run_dir), "--out", str(tmp_path / "report.html")]) == 0
    html = (tmp_path / "report.html").read_text()
    assert "BASE metric over pre-training" in html and "winogrande" in html


@pytest.fixture(scope="module")
def lm_eval_output(tiny_model_dir, tmp_path_factory):
    """lm-eval 0.4.13's command line on the tiny checkpoint (a local folder named step60), 0-shot,
    with --log_samples: the files a user gets."""
    pytest.importorskip("lm_eval")
    tmp = tmp_path_factory.mktemp("lm_eval_run")
    rows = [{"prompt": f"Question {i}: where does the river flow?", "choices": ["to the sea", "up the hill", "nowhere"],
             "gold": i % 3} for i in range(12)]
    write_lm_eval_task(tmp, "ptft_import_mc", rows)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([sys.executable, "-m", "lm_eval", "run", "--model", "hf",
                    "--model_args", f"pretrained={tiny_model_dir},dtype=float32", "--tasks", "ptft_import_mc",
                    "--include_path", str(tmp), "--device", "cpu", "--batch_size", "4",
                    "--output_path", str(tmp / "out"), "--log_samples"],
                   check=True, capture_output=True, env=env, timeout=300)
    (results,) = (tmp / "out").rglob("results_*.json")
    (samples,) = (tmp / "out").rglob("samples_ptft_import_mc_*.jsonl")
    return results, samples


def test_lm_eval_0_4_output_with_samples(lm_eval_output, tiny_model_dir, tmp_path):
    results, samples = lm_eval_output
    theirs = json.loads(results.read_text())["results"]["ptft_import_mc"]
    per_example = [json.loads(line) for line in samples.read_text().splitlines()]
    table = import_lm_eval([results.parent], tmp_path / "t.parquet", seed=3).table
    assert set(table["metric"]) == {"acc", "acc_norm"}  # sample_len, alias and stderr keys are not metrics
    assert set(table["checkpoint"]) == {tiny_model_dir.name} == {"step60"} and set(table["step"]) == {60}
    for metric in ("acc", "acc_norm"):
        row = table[table["metric"] == metric].iloc[0]
        assert row["value"] == theirs[f"{metric},none"] and row["n"] == 12
        # the interval is ptft's seeded bootstrap over lm-eval's own per-example scores
        scores = [s[metric] for s in sorted(per_example, key=lambda s: s["doc_id"])]
        mv = metric_value(scores, 3, n_boot=1000)
        assert (row["ci_low"], row["ci_high"]) == (mv.ci_low, mv.ci_high)
    assert pd.read_parquet(tmp_path / "t.parquet").equals(table)


def test_lm_eval_0_4_without_samples_uses_the_stderr(lm_eval_output, tmp_path):
    results, _ = lm_eval_output
    lone = tmp_path / results.name
    shutil.copy(results, lone)
    table = import_lm_eval([lone], tmp_path / "t.csv").table
    theirs = json.loads(results.read_text())["results"]["ptft_import_mc"]
    row = table[table["metric"] == "acc"].iloc[0]
    stderr = theirs["acc_stderr,none"]
    assert row["n"] == 12  # n-samples.effective
    assert row["ci_low"] == pytest.approx(row["value"] - Z95 * stderr)
    assert row["ci_high"] == pytest.approx(row["value"] + Z95 * stderr)


def test_bad_inputs_are_refused_by_file(tmp_path, capsys):
    not_results = tmp_path / "other.json"
    not_results.write_text(json.dumps({"hello": 1}))
    assert main(["import", "lm-eval", str(not_results), "--out", str(tmp_path / "t.csv")]) == 2
    assert f"{not_results}: no 'results' mapping" in capsys.readouterr().err

    twice = tmp_path / "copy.json"
    shutil.copy(PYTHIA / "160m_step1000.json", twice)
    assert main(["import", "lm-eval", str(PYTHIA / "160m_step1000.json"), str(twice),
                 "--out", str(tmp_path / "t.csv")]) == 2
    assert "is also in" in capsys.readouterr().err

    other_model = json.loads((PYTHIA / "160m_step1000.json").read_text())
    other_model["config"]["model_args"] = "pretrained=EleutherAI/pythia-410m,revision=step1000"
    (tmp_path / "410m.json").write_text(json.dumps(other_model))
    assert main(["import", "lm-eval", str(PYTHIA / "160m_step143000.json"), str(tmp_path / "410m.json"),
                 "--out", str(tmp_path / "t.csv")]) == 2
    assert "results of several models" in capsys.readouterr().err
