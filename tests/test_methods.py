"""The fine-tuning methods (ptft.training.methods) on the session's tiny model: LoRA trains its
adapters only and scores the same merged or not; HFT freezes exactly its share of every category,
draws again with the seed every round, and leaves what it froze bit for bit as it was."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from ptft.checkpoints.loading import load_causal_lm
from ptft.tasks.base import EvalSet, Example, PromptFormat, Task, TaskData
from ptft.training.args import FinetuneArgs
from ptft.training.finetune import finetune
from ptft.training.methods import get_method
from ptft.training.methods.hft import OUTSIDE, HftSettings, hft_frozen, hft_units
from ptft.training.methods.lora import LoraSettings

FMT = PromptFormat("default", "### Input: {text}\n ### Label:", "### Input")
WORDS = ["river", "city", "music", "church", "team", "island", "album", "station"]


def examples(n: int, offset: int = 0) -> list[Example]:
    return [Example(f"ex{i}", {"text": f"The {WORDS[i % 8]} is near the {WORDS[(i * 3) % 8]}."},
                    "yes" if WORDS[i % 8] in ("river", "island", "station", "city") else "no")
            for i in range(offset, offset + n)]


def train(model_dir, method: str, epochs: float = 1, **settings):
    model, tok = load_causal_lm(model_dir)
    # unpacked batches of 8: 4 steps an epoch (a packed epoch of 32 short examples is one step)
    args = FinetuneArgs(lr=1e-2, epochs=epochs, batch_size=8, max_length=64, seed=0, method=method, packing=False,
                        **settings)
    trained, result = finetune(model, tok, examples(32), examples(8, offset=100), FMT, args, progress=False)
    return trained, tok, result


# The tiny test model: 2 blocks, hidden 64, MLP 192, a head tied to the embeddings.
LORA_R = 8
# per block: q, k, v, o (64 -> 64) take r x (64 + 64) each; gate, up (64 -> 192) and down (192 -> 64)
# take r x (64 + 192) each
LORA_PARAMETERS = 2 * (4 * LORA_R * (64 + 64) + 3 * LORA_R * (64 + 192))


def test_lora_trains_its_adapters_only(tiny_model_dir):
    """With trl's default activation checkpointing on: a frozen embedding must not cut the
    adapters off from their gradients."""
    base, _ = load_causal_lm(tiny_model_dir)
    trained, _, result = train(tiny_model_dir, "lora", activation_checkpointing=True)
    adapters = {n: p for n, p in trained.named_parameters() if "lora_" in n}
    assert result.trainable_parameters == sum(p.numel() for p in adapters.values()) == LORA_PARAMETERS == 20480
    assert all(p.abs().sum() > 0 for n, p in adapters.items() if "lora_B" in n)  # B starts at 0: it trained
    frozen = {n.replace("base_model.model.", "").replace(".base_layer", ""): p
              for n, p in trained.named_parameters() if "lora_" not in n}
    original = dict(base.named_parameters())
    assert frozen.keys() == original.keys()
    assert all(torch.equal(frozen[n], original[n]) for n in original)
    merged = get_method("lora").merged(trained)
    assert type(merged) is type(base) and set(dict(merged.named_parameters())) == set(original)
    assert any(not torch.equal(p, original[n]) for n, p in merged.named_parameters())


def _task() -> tuple[Task, TaskData]:
    data = TaskData(train=examples(4), dev=examples(2, 50), eval={"test": examples(24, 200)})
    formats = {"default": FMT, "io": PromptFormat("io", "{text}"), "instruct": PromptFormat("instruct", "Is it? {text}")}
    return Task("yes_no", "classification", formats, (EvalSet("test", "in"),), loader=lambda r: data,
                labels=("yes", "no")), data


def _numbers(record) -> list[float]:
    if isinstance(record, dict):
        return [x for v in record.values() for x in _numbers(v)]
    if isinstance(record, (list, tuple)):
        return [x for v in record for x in _numbers(v)]
    return [float(record)] if isinstance(record, (int, float)) and not isinstance(record, bool) else []


def test_lora_scores_the_same_merged_or_not(tiny_model_dir):
    from ptft.evaluation import Evaluator

    # dropout: evaluation must run without it
    trained, tok, _ = train(tiny_model_dir, "lora", epochs=2, settings=LoraSettings(dropout=0.3))
    task, data = _task()

    def scores(model):
        out = Evaluator(model, tok).evaluate(task, "test", data.eval["test"], "default", [], "tokenprob", n_boot=1)
        return list(out.scores["accuracy"]), _numbers(out.predictions)

    unmerged_accuracy, unmerged = scores(trained)
    merged_accuracy, merged = scores(get_method("lora").merged(trained))
    assert len(unmerged) == len(merged) > 24
    assert max(abs(a - b) for a, b in zip(unmerged, merged)) < 1e-5
    assert unmerged_accuracy == merged_accuracy


def test_lora_needs_peft_settings_that_make_sense():
    from ptft.errors import ConfigError

    with pytest.raises(ConfigError, match="finetune.lora: r must be at least 1"):
        LoraSettings(r=0)
    with pytest.raises(ConfigError, match="finetune.lora.dropout"):
        LoraSettings(dropout=1.0)
    # the registry refuses a name it lacks (a study config's methods are checked against it first)
    with pytest.raises(KeyError, match="unknown fine-tuning method 'qlora'"):
        get_method("qlora")


# The parameter names of a Llama block (q, k, v, o; gate, up, down; two norms), as the test model has.
def llama_names(blocks: int, tied: bool = True) -> list[str]:
    names = ["model.embed_tokens.weight"]
    for b in range(blocks):
        names += [f"model.layers.{b}.self_attn.{m}_proj.weight" for m in "qkvo"]
        names += [f"model.layers.{b}.mlp.{m}_proj.weight" for m in ("gate", "up", "down")]
        names += [f"model.layers.{b}.input_layernorm.weight", f"model.layers.{b}.post_attention_layernorm.weight"]
    return names + ["model.norm.weight"] + ([] if tied else ["lm_head.weight"])


def test_hft_units_follow_the_categories_inside_each_block():
    groups = hft_units(llama_names(2))
    assert groups[(1, "attention")] == [f"model.layers.0.self_attn.{m}_proj" for m in "qkvo"]
    assert groups[(2, "mlp")] == [f"model.layers.1.mlp.{m}_proj" for m in ("gate", "up", "down")]
    # a norm named after attention is a norm
    assert groups[(1, "norm")] == ["model.layers.0.input_layernorm", "model.layers.0.post_attention_layernorm"]
    assert groups[(0, OUTSIDE)] == ["model.embed_tokens", "model.norm"]
    # GPT-NeoX (Pythia): fused qkv and biases freeze with their module
    neox = ["gpt_neox.layers.0.attention.query_key_value.weight", "gpt_neox.layers.0.attention.query_key_value.bias",
            "gpt_neox.layers.0.attention.dense.weight", "gpt_neox.layers.0.mlp.dense_h_to_4h.weight",
            "gpt_neox.layers.0.mlp.dense_4h_to_h.weight", "gpt_neox.layers.0.input_layernorm.weight"]
    assert hft_units(neox)[(1, "attention")] == ["gpt_neox.layers.0.attention.query_key_value",
                                                 "gpt_neox.layers.0.attention.dense"]


@pytest.mark.parametrize("blocks, share, per_block, totals", [
    # 2 of 4 attention matrices and 1 of 2 norms in every block; 3 MLP matrices: 1 or 2 per block,
    # half of them over the model; outside the blocks 1 of 2
    (2, 0.5, {"attention": {2}, "norm": {1}, "mlp": {1, 2}}, {"attention": 4, "mlp": 3, "norm": 2, OUTSIDE: 1}),
    (8, 0.5, {"attention": {2}, "norm": {1}, "mlp": {1, 2}}, {"attention": 16, "mlp": 12, "norm": 8, OUTSIDE: 1}),
    # a quarter: 1 of 4 attention matrices everywhere, round(0.25 x 24) = 6 of the MLP's 24
    (8, 0.25, {"attention": {1}, "norm": {0, 1}, "mlp": {0, 1}}, {"attention": 8, "mlp": 6, "norm": 4, OUTSIDE: 0}),
])
def test_hft_freezes_exactly_its_share_of_every_category(blocks, share, per_block, totals):
    names = llama_names(blocks)
    groups = hft_units(names)
    for round_index in range(3):
        frozen = hft_frozen(names, share, seed=5, round_index=round_index)
        modules = {n.rsplit(".", 1)[0] for n in frozen}
        counted = {category: 0 for category in totals}
        for (block, category), units in groups.items():
            n = sum(u in modules for u in units)
            counted[category] += n
            if block:
                assert n in per_block[category], (block, category, n)
        assert counted == totals


def test_hft_draws_again_every_round_and_with_the_seed():
    names = llama_names(8)
    draws = {(seed, r): frozenset(hft_frozen(names, 0.5, seed, r)) for seed in (0, 1) for r in range(3)}
    assert draws[0, 0] == frozenset(hft_frozen(names, 0.5, 0, 0))  # a pure function of its arguments
    assert len(set(draws.values())) == 6


@pytest.mark.parametrize("redraw", [False, True])
def test_hft_leaves_frozen_weights_bit_identical_and_trains_the_rest(tiny_model_dir, redraw):
    """Three epochs, with weight decay (which must not touch a frozen weight either). By default
    the run is one round (the paper's stage): the modules frozen in round 0 never train, half of
    them; the tiny model has 20 modules (2 blocks of 4 attention, 3 MLP, 2 norm modules; the tied
    embeddings and the final norm outside), 4 + 3 + 2 + 1 = 10 frozen. Redrawn every epoch, only
    the modules frozen in all three rounds stay as they were."""
    base, _ = load_causal_lm(tiny_model_dir)
    original = {n: p.detach().clone() for n, p in base.named_parameters()}
    trained, _, result = train(tiny_model_dir, "hft", epochs=3, weight_decay=0.1,
                               settings=HftSettings(frozen_share=0.5, redraw_every_epoch=redraw))
    names = list(original)
    rounds = [hft_frozen(names, 0.5, seed=0, round_index=r if redraw else 0) for r in range(3)]
    never = rounds[0] & rounds[1] & rounds[2]
    after = dict(trained.named_parameters())
    untouched = {n for n in names if torch.equal(after[n], original[n])}
    assert untouched == never
    share = len({n.rsplit(".", 1)[0] for n in never}) / len({n.rsplit(".", 1)[0] for n in names})
    if redraw:
        assert 0 < share < 0.3 and never != rounds[0]
    else:
        assert share == 0.5
    assert all(p.requires_grad for p in trained.parameters())  # the freezing ended with the training
    # what trained per round, averaged over the three rounds
    sizes = {n: p.numel() for n, p in original.items()}
    expected = sum(sum(sizes[n] for n in names if n not in frozen) for frozen in rounds) / 3
    assert result.trainable_parameters == round(expected)


def test_a_method_changes_what_trains_not_the_recipe(tiny_model_dir):
    """Full fine-tuning through the method hooks is the study's recipe unchanged: every parameter
    trains, and the cost estimate counts 6 FLOPs per parameter and token (LoRA 4, HFT 5)."""
    _, _, result = train(tiny_model_dir, "full")
    base, _ = load_causal_lm(tiny_model_dir)
    assert result.trainable_parameters == sum(p.numel() for p in base.parameters())
    args = FinetuneArgs(lr=1e-3, seed=0)
    assert [get_method(m).flops_per_parameter_token(args) for m in ("full", "lora", "hft")] == [6.0, 4.0, 5.0]


def test_a_method_is_one_module_registered_beside_the_others(tiny_model_dir, tmp_path, monkeypatch):
    """`tests/norms_only_method.py` is all a new method is. Registered, it trains what it says (the
    norms alone, the final one as its setting says); through the `ptft.methods` entry point, as
    another package registers it, a config gets its `finetune.norms_only` section, checked, and
    the grid its cells, without touching the cells of full fine-tuning."""
    from norms_only_method import NormsOnly, NormsOnlySettings

    from ptft.training.methods import METHODS

    monkeypatch.setitem(METHODS, "norms_only", NormsOnly())
    base = dict(load_causal_lm(tiny_model_dir)[0].named_parameters())
    for final_norm in (True, False):
        trained, _, _ = train(tiny_model_dir, "norms_only", settings=NormsOnlySettings(final_norm=final_norm))
        changed = {n for n, p in trained.named_parameters() if not torch.equal(p, base[n])}
        expected = {n for n in base if "norm" in n and (final_norm or ".layers." in n)}
        assert changed == expected and len(expected) == 4 + final_norm  # 2 blocks x 2 norms (+ the final)

    dist = tmp_path / "norms_only_example-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: norms-only-example\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ptft.methods]\nnorms_only = norms_only_method:NormsOnly\n")
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump({
        "checkpoints": {"source": "local", "local": {"paths": [str(tiny_model_dir)]}},
        "tasks": [{"name": "review_polarity", "n_train": 16, "n_dev": 8, "n_eval": 8}],
        "finetune": {"methods": ["full", "norms_only"], "learning_rates": [1e-3],
                     "norms_only": {"final_norm": False, "learning_rates": [0.01]}}}))
    script = f"""
import dataclasses, sys
from pathlib import Path
from ptft.config import load_config
from ptft.engine.study import plan_cells
from ptft.errors import ConfigError
config = load_config({str(config)!r})
print(config.finetune.norms_only)
cells = [c for c in plan_cells(config, Path({str(tmp_path / 'run')!r})) if c.kind == "finetune"]
print(sorted((c.ft_method, c.lr) for c in cells))
alone = load_config({str(config)!r}, {{"finetune.methods": ["full"]}})
full = {{c.cell_id for c in plan_cells(alone, Path({str(tmp_path / 'run')!r})) if c.kind == "finetune"}}
print(full == {{c.cell_id for c in cells if c.ft_method == "full"}})
try:
    load_config({str(config)!r}, {{"finetune.norms_only.final_norm": "yes"}})
except ConfigError as err:
    print(err)
"""
    tests = str(Path(__file__).parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), tests, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "NormsOnlySettings(learning_rates=[0.01], final_norm=False)"
    assert lines[1] == "[('full', 0.001), ('norms_only', 0.01)]"
    assert lines[2] == "True"
    assert lines[3].endswith("finetune.norms_only.final_norm: expected true or false, got 'yes'")
