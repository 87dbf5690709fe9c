"""`ptft eval` end to end on the tiny model: a user task YAML through the real command line, and
`ptft.api.eval` with a task object."""

import json
from pathlib import Path

from ptft import api
from ptft.cli import main


def _write_yaml_task(tmp_path, toys):
    _, data = toys.classification(labels=("yes", "no"), n_train=12, n_eval=10)
    for split, rows in (("train", data.train), ("test", data.eval["test"])):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for ex in rows:
                f.write(json.dumps({**ex.fields, "label": ex.target}) + "\n")
    (tmp_path / "task.yaml").write_text(
        "name: toy_cli\n"
        "type: classification\n"
        "labels: [\"yes\", \"no\"]\n"
        "fields: [premise, hypothesis]\n"
        "data:\n"
        "  train: train.jsonl\n"
        "  eval:\n"
        "    - {name: toy_test, path: test.jsonl, domain: in}\n"
        "formats:\n"
        "  default: {template: \"### Input_1: {premise}\\n ### Input_2: {hypothesis}\\n ### Inference:\", cue: \"### Input\"}\n"
        "  io: {template: \"{premise} {hypothesis}\"}\n"
        "  instruct: {template: \"Text 1: {premise} Text 2: {hypothesis} The relation is\"}\n"
    )
    return tmp_path / "task.yaml"


def test_cli_eval_yaml_task(tiny_model_dir, toys, tmp_path, capsys):
    task_file = _write_yaml_task(tmp_path, toys)
    out = tmp_path / "preds" / "p.jsonl"
    rc = main(["eval", "--model", str(tiny_model_dir), "--task", str(task_file), "--shots", "2",
               "--method", "constrained", "--limit", "6", "--batch-size", "4", "--out", str(out)])
    captured = capsys.readouterr()
    printed = captured.out
    assert rc == 0, captured.err
    assert "toy_cli / toy_test" in printed and "method=constrained" in printed and "shots=2" in printed
    assert "accuracy" in printed and "95% CI [" in printed
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6
    assert all({"uid", "prompt", "demo_uids", "prediction", "target", "correct", "label_loglikelihoods"} <= set(r) for r in rows)
    assert all(r["prediction"] in ("yes", "no") for r in rows)


def test_cli_eval_errors_are_clean(tiny_model_dir, toys, tmp_path, capsys):
    task_file = _write_yaml_task(tmp_path, toys)
    rc = main(["eval", "--model", str(tiny_model_dir), "--task", str(task_file), "--method", "greedy"])
    assert rc == 2 and "is classification: method must be one of tokenprob, constrained, free, not 'greedy'" in capsys.readouterr().err
    rc = main(["eval", "--model", str(tiny_model_dir), "--task", "no_such_task_xyz"])
    assert rc == 2 and "unknown task 'no_such_task_xyz'" in capsys.readouterr().err
    rc = main(["eval", "--model", str(tmp_path / "missing"), "--task", str(task_file), "--limit", "2"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_api_eval_with_task_object(tiny_model_dir, toys, tmp_path, monkeypatch):
    task, _ = toys.generation(n_eval=4, max_new_tokens=8)
    monkeypatch.chdir(tmp_path)
    result = api.eval(str(tiny_model_dir), task, shots=1)
    assert result.outcome.method_used == "greedy" and list(result.printed_metrics) == ["rougeL"]
    assert result.n_examples == 4 and result.predictions == Path("ptft-eval-toy_gen-test-default-greedy-1shot.jsonl")
    rows = [json.loads(line) for line in result.predictions.read_text().splitlines()]
    assert len(rows) == 4 and all("score" in r and "\n" not in r["prediction"] for r in rows)
