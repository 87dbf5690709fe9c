"""Checkpoint series: Hub revision names, the selection rule, the pre-training schedule and output."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from ptft.checkpoints.loading import load_causal_lm
from ptft.checkpoints.series import (misnamed, parse_revision, parse_revisions, resolve_series, revisions_for_steps,
                                     select_evenly)
from ptft.config import load_config
from ptft.errors import CheckpointError, ConfigError
from ptft.training.args import checkpoint_schedule

PYTHIA = ["main", "step0"] + [f"step{2**i}" for i in range(10)] + [f"step{k * 1000}" for k in range(1, 144)]
OLMO = ["main", "step1000-tokens4B", "step18000-tokens75B", "step20000-tokens84B", "step342000-tokens1434B",
        "step738000-tokens3095B", "step738020-tokens3095B", "v1"]


def test_parse_names():
    assert parse_revision("step18000-tokens75B").step == 18000
    assert parse_revision("step18000-tokens75B").tokens_b == 75
    assert parse_revision("step512").step == 512 and parse_revision("step512").tokens_b is None
    assert parse_revision("main") is None and parse_revision("step12-tokens") is None
    assert parse_revision("stepX") is None


def test_pythia_names_sorted_and_complete():
    revs = parse_revisions(PYTHIA)
    assert len(PYTHIA) == 155 and len(revs) == 154
    assert [r.step for r in revs[:4]] == [0, 1, 2, 4] and revs[-1].step == 143000


def test_selection_first_final_and_evenly_spaced():
    revs = parse_revisions(PYTHIA)
    chosen = select_evenly(revs, 3)
    assert [r.step for r in chosen] == [0, 36000, 71000, 107000, 143000]  # a tie (71500) takes the earlier
    # the nearest revision to each target, never the same twice, on a sparse list
    sparse = parse_revisions(OLMO)
    assert [r.name for r in select_evenly(sparse, 1)] == ["step1000-tokens4B", "step342000-tokens1434B",
                                                          "step738020-tokens3095B"]
    assert select_evenly(sparse, 10) == sparse


def test_misnamed_olmo_branches_are_flagged():
    assert misnamed(parse_revisions(OLMO)) == []  # 4.19M tokens a step, step1000's 4B rounded down
    # 500,000 steps at 4.19M tokens are 2,096B: 1,000B is no rounding
    odd = parse_revisions(OLMO + ["step500000-tokens1000B", "step2000-tokens9B"])
    assert [r.name for r in misnamed(odd)] == ["step500000-tokens1000B"]  # 9B for 8.4B is within the rounding
    assert misnamed(parse_revisions(PYTHIA)) == []  # no tokens in Pythia's names


def test_a_chosen_misnamed_branch_is_warned_of(tmp_path, caplog):
    names = OLMO + ["step500000-tokens1000B"]
    path = tmp_path / "hub.yaml"
    path.write_text("tasks: [{name: sentiment}]\ncheckpoints:\n  source: hub\n  hub:\n    repo: allenai/OLMo-1B-hf\n"
                    f"    steps: [1000, 500000]\n    revision_names: {json.dumps(names)}\n")
    with caplog.at_level("WARNING", logger="ptft.checkpoints"):
        resolve_series(load_config(path), tmp_path, network=False)
    assert [r.getMessage().split(" names ")[0] for r in caplog.records] == ["checkpoints.hub: step500000-tokens1000B"]
    # revisions listed explicitly are checked against each other
    caplog.clear()
    path.write_text("tasks: [{name: sentiment}]\ncheckpoints:\n  source: hub\n  hub:\n    repo: allenai/OLMo-1B-hf\n"
                    f"    revisions: {json.dumps(OLMO[1:5] + ['step500000-tokens1000B'])}\n")
    with caplog.at_level("WARNING", logger="ptft.checkpoints"):
        resolve_series(load_config(path), tmp_path, network=False)
    assert [r.getMessage().split(" names ")[0] for r in caplog.records] == ["checkpoints.hub: step500000-tokens1000B"]


def test_steps_map_to_revisions():
    revs = parse_revisions(OLMO)
    assert [r.name for r in revisions_for_steps(revs, [1000, 18000])] == ["step1000-tokens4B", "step18000-tokens75B"]
    with pytest.raises(ConfigError, match=r"no revision for step\(s\) \[5\]"):
        revisions_for_steps(revs, [5])


def test_hub_series_without_network(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text("tasks: [{name: sentiment}]\ncheckpoints:\n  source: hub\n  hub:\n"
                    f"    repo: EleutherAI/pythia-160m\n    select: 2\n    revision_names: {json.dumps(PYTHIA)}\n")
    series = resolve_series(load_config(path), tmp_path, network=False)
    assert [c.revision for c in series] == ["step0", "step48000", "step95000", "step143000", "main"]
    assert all(c.path == "EleutherAI/pythia-160m" for c in series)
    assert series[1].identity == "EleutherAI/pythia-160m@step48000"


def test_schedule_first_early_late_final():
    assert checkpoint_schedule(600, 4) == [12, 38, 120, 600]
    steps = checkpoint_schedule(1000, 6, early=2)
    assert steps[0] == 20 and steps[-1] == 1000 and len(steps) == 6 and steps == sorted(steps)
    with pytest.raises(ConfigError):
        checkpoint_schedule(3, 5)


def test_pretrained_series_is_a_standard_hf_folder(tiny_series):
    steps = sorted(tiny_series)
    assert steps == [1, 8, 60]
    loss = pd.read_csv(tiny_series[60].parent / "loss.csv")
    assert list(loss.step) == list(range(1, 61))
    heldout = loss.dropna(subset=["heldout_loss"]).set_index("step").heldout_loss
    assert list(heldout.index) == steps
    assert heldout[60] < heldout[1] - 0.5  # it learned something
    model, tok = load_causal_lm(tiny_series[60])
    assert model.config.model_type == "llama" and tok.eos_token == "<|endoftext|>"
    ids = tok("The river flows", return_tensors="pt").input_ids
    assert torch.isfinite(model(ids).logits).all()


def test_resumed_pretraining_matches_uninterrupted(tmp_path):
    import shutil

    from ptft.training.args import ModelShape, PretrainSettings
    from ptft.training.pretrain import pretrain_series

    settings = PretrainSettings(model=ModelShape(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                                 vocab_size=512, max_seq_len=64),
                                steps=12, batch_size=4, seq_len=32, num_checkpoints=2, save_steps=[6, 12],
                                max_documents=300, heldout_windows=4)
    full = pretrain_series(settings, tmp_path / "full", seed=3, progress=False)
    shutil.copytree(tmp_path / "full", tmp_path / "resumed")
    shutil.rmtree(tmp_path / "resumed" / "step12")
    resumed = pretrain_series(settings, tmp_path / "resumed", seed=3, progress=False)
    a = load_causal_lm(full.checkpoints[12])[0].state_dict()
    b = load_causal_lm(resumed.checkpoints[12])[0].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_broken_checkpoint_gives_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_causal_lm(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_causal_lm(tmp_path / "missing")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        load_causal_lm(broken)


def test_a_fingerprint_is_of_the_tensors_not_of_the_files(tiny_model_dir, tmp_path):
    """A copy elsewhere, other file metadata or the tensors split into two shards: the same
    fingerprint. One weight changed by one ulp: another. No weight files: none."""
    import shutil

    from safetensors.torch import load_file, save_file

    from ptft.checkpoints.fingerprint import fingerprint

    original = fingerprint(tiny_model_dir)
    assert original is not None and len(original) == 16
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert fingerprint(copy) == original
    tensors = load_file(str(copy / "model.safetensors"))
    save_file(tensors, str(copy / "model.safetensors"), metadata={"format": "pt", "note": "re-saved"})
    assert fingerprint(copy) == original
    names = sorted(tensors)
    (copy / "model.safetensors").unlink()
    shards = {"model-00001-of-00002.safetensors": names[:3], "model-00002-of-00002.safetensors": names[3:]}
    for shard, held in shards.items():
        save_file({n: tensors[n] for n in held}, str(copy / shard))
    (copy / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {n: shard for shard, held in shards.items() for n in held}}))
    # what a trainer keeps beside the weights is not the weights
    (copy / "optimizer.pt").write_bytes(b"state")
    assert fingerprint(copy) == original
    changed = dict(tensors)
    first = changed[names[0]].clone()
    first.view(-1)[0] = torch.nextafter(first.view(-1)[0], torch.tensor(float("inf")))
    changed[names[0]] = first
    save_file({n: changed[n] for n in names[:3]}, str(copy / "model-00001-of-00002.safetensors"))
    assert fingerprint(copy) != original
    assert fingerprint(tmp_path) is None
    # a truncated shard: the file to fetch again, named
    data = (copy / "model-00002-of-00002.safetensors").read_bytes()
    (copy / "model-00002-of-00002.safetensors").write_bytes(data[:-8])
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors: not a whole safetensors file"):
        fingerprint(copy)
