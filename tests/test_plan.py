"""`ptft plan`: the grid of a study, offline, without loading data or models."""

from __future__ import annotations

import json
import socket

import pytest

from ptft.cli import main
from ptft.config import load_config
from ptft.engine.plan import format_plan, plan_study

OLMO_PAPER_REVISIONS = ["step1000-tokens4B", "step18000-tokens75B", "step342000-tokens1433B",
                        "step424000-tokens1777B", "step505000-tokens2117B", "step592000-tokens2482B",
                        "step738000-tokens3094B", "main"]


@pytest.fixture
def offline(monkeypatch):
    """No network and no task data: any attempt fails the test."""
    from ptft.tasks.base import Task

    def refuse(*args, **kwargs):
        raise AssertionError("plan touched the network")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(Task, "load", lambda self, request: (_ for _ in ()).throw(AssertionError("loaded data")))


def units_per_model(types: dict[str, str], sets: dict[str, list[tuple[str, str]]], tasks, formats=3, shots=2,
                    methods=3, in_only=()) -> int:
    total = 0
    for t in tasks:
        n_sets = sum(1 for _, d in sets[t] if d == "in" or t not in in_only)
        total += n_sets * formats * shots * (methods if types[t] == "classification" else 1)
    return total


def test_plan_paper_olmo1b_offline(offline, capsys):
    assert main(["plan", "paper-olmo1b"]) == 0
    out = capsys.readouterr().out
    config = load_config("paper-olmo1b")
    plan = plan_study(config)
    lrs = {t.name: len(t.lr or config.finetune.learning_rates) for t in config.tasks}
    assert lrs == {"xsum": 1, "socialiqa_qg": 1, "mnli": 1, "paws": 1}
    assert [c.revision for c in plan.checkpoints] == OLMO_PAPER_REVISIONS
    assert [c.step for c in plan.checkpoints][:7] == [1000, 18000, 342000, 424000, 505000, 592000, 738000]
    n_ft = 8 * sum(lrs.values()) * len(config.finetune.seeds)
    assert plan.count("finetune") == n_ft == 32 and plan.count("instruct") == 8 and plan.count("pretrain") == 0
    assert "Checkpoints: 8 (allenai/OLMo-1B-hf)" in out
    assert "fine-tuning runs (SFT):   32 = 8 checkpoints x 4 (task, learning rate) pairs [1 + 1 + 1 + 1]" in out
    assert "instruction-tuning runs:  8 = 8 checkpoints" in out
    for rev in OLMO_PAPER_REVISIONS:
        assert rev in out
    # evaluation units, counted independently: 3 formats x 2 shots x (3 methods | 1 for generation)
    types, sets = plan.task_types, plan.eval_sets
    tasks = ["xsum", "socialiqa_qg", "mnli", "paws"]
    base = units_per_model(types, sets, tasks)
    ft = sum(units_per_model(types, sets, [t]) + units_per_model(types, sets, [o for o in tasks if o != t],
                                                                 in_only=tasks) for t in tasks)
    suite = 6 * 3 * 2  # six MC sets x formats x shots, one method
    assert plan.units["BASE"] == (8, 32, 8 * base) and base == 162
    assert plan.units["FT"] == (32, 32, 8 * ft)
    assert plan.units["BASE-MC"][2] == plan.units["IT"][2] == 8 * suite
    assert "ESTIMATE" in out and "GPU-hours" in out and "6 x parameters x tokens" in out
    assert plan.parameters == 1_176_764_416 and plan.gpu_hours > 0


def test_plan_paper_pythia_offline(offline):
    config = load_config("paper-pythia")
    assert len(config.checkpoints.hub.revision_names) == 154
    plan = plan_study(config)
    labels = [c.label for c in plan.checkpoints]
    assert len(labels) == 8 and labels[0] == "step0" and labels[-1] == "step143000"
    assert plan.count("finetune") == 8 * 4 * 3 and plan.count("instruct") == 8


def test_plan_tiny_agrees_with_the_engine(tmp_path, capsys):
    """The plan's grid is the run's grid: same cells in the same order, same units (ids differ,
    they hash the real data)."""
    from ptft.engine.study import plan_cells

    assert main(["plan", "tiny", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    config = load_config("tiny")
    plan = plan_study(config, tmp_path)
    engine = plan_cells(config, tmp_path)

    def shape(cells):
        return [(c.kind, c.label, c.train_task, c.lr, c.seed, c.units, c.checkpoint) for c in cells]

    assert shape(plan.cells) == shape(engine)
    runs = config.checkpoints.pretrain.num_checkpoints * sum(
        len(tc.lr or config.finetune.learning_rates) for tc in config.tasks) * len(config.finetune.seeds)
    assert plan.count("pretrain") == 1 and plan.count("finetune") == runs
    assert f"fine-tuning runs (SFT):   {runs}" in out and "pre-training runs:        1" in out
    assert "instruction-tuning runs:  0" in out


def test_plan_tiny_it(offline):
    plan = plan_study(load_config("tiny-it"))
    assert plan.count("instruct") == len(plan.checkpoints) == 4
    assert plan.units["IT"][2] == 4 * 4  # four offline MC sets, one format, one shot count
    it = next(t for t in plan.training if t.name.startswith("IT"))
    assert it.examples == 96 and it.basis == "typical"


def test_plan_json_and_refusals(offline, tmp_path, capsys):
    assert main(["plan", "paper-olmo1b", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["finetune_runs"] == 32 and data["instruct_runs"] == 8 and data["gpu_hours"] > 0
    bad = tmp_path / "hub.yaml"
    bad.write_text("checkpoints: {source: hub, hub: {repo: allenai/OLMo-1B-hf}}\ntasks: [{name: mnli}]\n")
    assert main(["plan", str(bad)]) == 2
    assert "revision_names" in capsys.readouterr().err
    suite = tmp_path / "suite.yaml"
    suite.write_text("checkpoints: {source: hub, hub: {repo: x/y, revisions: [main]}}\ntasks: [{name: mnli}]\n"
                     "instruction_tuning: {enabled: true, suite: [mnli]}\n")
    assert main(["plan", str(suite)]) == 2
    assert "'mnli' is a classification task; the suite takes multiple_choice tasks" in capsys.readouterr().err


def test_plan_asks_the_task_and_mixture_for_their_lengths(offline, monkeypatch):
    """The estimate comes from the task's and mixture's declarations, not a table of names."""
    import dataclasses

    from ptft.tasks import get_task, registry
    from ptft.tasks.instructions import registered_mixture

    config = load_config("paper-olmo1b")
    task = config.tasks[0].name
    before = {t.name: t for t in plan_study(config).training}
    assert before[task].tokens_per_example == get_task(task).typical_tokens_per_example
    mixture = registered_mixture(config.instruction_tuning.mixture)
    it_name = f"IT {mixture.name}"
    assert before[it_name].tokens_per_example == mixture.typical_tokens_per_conversation
    monkeypatch.setitem(registry._TASKS, task, dataclasses.replace(get_task(task), typical_tokens_per_example=7))
    after = {t.name: t for t in plan_study(config).training}
    assert after[task].tokens_per_example == 7 and after[task].basis == "typical"
    monkeypatch.setitem(registry._TASKS, task, dataclasses.replace(get_task(task), typical_tokens_per_example=None))
    unknown = {t.name: t for t in plan_study(config).training}[task]
    assert unknown.tokens_per_example == config.finetune.max_length and unknown.basis == "upper bound (max_length)"


def test_plan_counts_evaluations_during_fine_tuning_and_seeds(offline, capsys):
    """Each point of finetune.eval_at evaluates every FT model's units once more; each seed is a
    fine-tuning run (and a model) of its own."""
    plain = plan_study(load_config("smoke"))
    more = plan_study(load_config("smoke", {"finetune.eval_at": [0.25, 0.5, 1.0], "finetune.seeds": [0, 1]}))
    models, cells, units = plain.units["FT"]
    assert more.units["FT"] == (2 * models, 2 * cells, 3 * 2 * units)
    assert more.scored["FT"] == 3 * 2 * plain.scored["FT"] and more.units["BASE"] == plain.units["BASE"]
    ft = [t for t in plain.training if not t.name.startswith("IT")]
    assert [t.runs * 2 for t in ft] == [t.runs for t in more.training if not t.name.startswith("IT")]
    assert main(["plan", "smoke", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ft_eval_points"] == [1.0] and data["seeds"] == [0]
    text = format_plan(more)
    assert "FT units count each of the 3 points of finetune.eval_at" in text and "(0.25, 0.5, 1 of its steps)" in text
    assert data["ft_edits"] == [] and "edit(s)" not in text


def test_plan_counts_the_edits_each_fine_tuned_model_is_evaluated_as(offline, capsys):
    """Two grafts and LiNeS score every FT model's units three more times, after the model as trained;
    BASE is not edited."""
    plain = plan_study(load_config("smoke"))
    edited = plan_study(load_config("smoke", {"grafting": {"enabled": True, "top_percent": [1, 0.1]},
                                              "lines": {"enabled": True}}))
    models, cells, units = plain.units["FT"]
    assert edited.units["FT"] == (models, cells, 4 * units) and edited.scored["FT"] == 4 * plain.scored["FT"]
    assert edited.units["BASE"] == plain.units["BASE"]
    assert "FT units count each of the 3 edit(s) every fine-tuned model is also evaluated as (graft1pct, graft0.1pct, " \
           "lines)" in format_plan(edited)


def test_plan_counts_the_methods_and_their_cost(offline, capsys):
    """Each fine-tuning method is a run per (checkpoint, task, its own learning rate, seed), and
    the estimate counts LoRA's and HFT's smaller backward passes (4 and 5 FLOPs per parameter and
    token against full fine-tuning's 6)."""
    plan = plan_study(load_config("tiny-methods"))
    runs = {}
    for c in plan.cells:
        if c.kind == "finetune":
            runs[c.ft_method] = runs.get(c.ft_method, 0) + 1
    assert runs == {"full": 6, "lora": 6, "hft": 6}  # 3 checkpoints x 2 tasks x 1 rate each
    assert {c.lr for c in plan.cells if c.ft_method == "lora"} == {0.01}
    text = format_plan(plan)
    assert "fine-tuning runs (SFT):   18 = 3 checkpoints x 6 (task, method, learning rate) triples" in text
    assert ("lora (r 8, alpha 16.0, dropout 0.05, target_modules all-linear), "
            "hft (frozen_share 0.5, redraw_every_epoch False)") in text
    by_name = {t.name: t for t in plan.training}
    task = "sentiment"
    assert [by_name[n].flops_factor for n in (task, f"{task} (lora)", f"{task} (hft)")] == [6.0, 4.0, 5.0]
    full = plan_study(load_config("tiny-methods", {"finetune.methods": ["full"]}))
    tokens = {t.name: t.tokens for t in full.training}
    assert plan.training_flops == pytest.approx(sum(tokens.values()) * plan.parameters * (6 + 4 + 5))
    assert main(["plan", "paper-olmo1b-methods", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    # the paper's 32 full runs, 32 HFT runs at the same rates, 64 LoRA runs at its two own
    assert data["methods"] == ["full", "lora", "hft"] and data["finetune_runs"] == 32 + 32 + 64
    assert data["learning_rates"]["mnli"] == {"full": [2e-6], "lora": [2e-4, 5e-5], "hft": [2e-6]}
