"""Supervised fine-tuning: prompt tokens masked, EOS appended, the model learns the completion."""

from __future__ import annotations

import math

import pytest
import torch

from ptft.checkpoints.loading import load_causal_lm
from ptft.tasks import Example, PromptFormat
from ptft.training.args import FinetuneArgs
from ptft.training.finetune import finetune, prompt_completion_rows

FMT = PromptFormat("default", "### Input: {text}\n ### Label:", "### Input")
WORDS = ["river", "city", "music", "church", "team", "island", "album", "station"]


def examples(n: int, offset: int = 0) -> list[Example]:
    out = []
    for i in range(offset, offset + n):
        word = WORDS[i % len(WORDS)]
        out.append(Example(f"ex{i}", {"text": f"The {word} is near the {WORDS[(i * 3) % len(WORDS)]}."},
                           "yes" if word in ("river", "island", "station", "city") else "no"))
    return out


def completion_logprob(model, tok, ex: Example) -> float:
    prompt = FMT.render(ex)
    p_ids = tok(prompt, add_special_tokens=False).input_ids
    full = tok(prompt + " " + ex.target, add_special_tokens=False).input_ids + [tok.eos_token_id]
    with torch.no_grad():
        logp = model(torch.tensor([full])).logits[0].log_softmax(-1)
    return sum(logp[i - 1, full[i]].item() for i in range(len(p_ids), len(full)))


def test_prompt_truncation_keeps_cue_and_completion(tiny_model_dir):
    _, tok = load_causal_lm(tiny_model_dir)
    long = Example("long", {"text": "word " * 400}, "yes")
    (row,) = prompt_completion_rows([long], FMT, tok, max_length=48)
    assert row["completion"] == " yes" and row["prompt"].endswith("### Label:")
    assert len(tok(row["prompt"] + row["completion"]).input_ids) <= 48
    assert not row["prompt"].endswith(" ")


def test_labels_mask_the_prompt_and_end_with_eos(tiny_model_dir):
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tok = load_causal_lm(tiny_model_dir)
    rows = prompt_completion_rows(examples(2), FMT, tok, 64)
    trainer = SFTTrainer(model=model, args=SFTConfig(output_dir="/tmp/ptft-mask", use_cpu=True, report_to=[],
                                                     activation_checkpointing=False,
                                                     completion_only_loss=True, max_length=64),
                         train_dataset=Dataset.from_list(rows), processing_class=tok)
    item = trainer.train_dataset[0]
    n_prompt = len(tok(rows[0]["prompt"]).input_ids)
    completion = tok(rows[0]["completion"], add_special_tokens=False).input_ids
    assert item["labels"][:n_prompt] == [-100] * n_prompt
    assert item["labels"][n_prompt:] == completion + [tok.eos_token_id]


def test_finetuning_learns_the_completion(tiny_model_dir):
    model, tok = load_causal_lm(tiny_model_dir)
    train, dev = examples(48), examples(8, offset=100)
    before = sum(completion_logprob(model, tok, ex) for ex in dev)
    args = FinetuneArgs(lr=1e-2, epochs=2, batch_size=8, grad_accum=1, warmup=0.03, weight_decay=0.0, max_length=64,
                        seed=0, packing=False)
    _, result = finetune(model, tok, train, dev, FMT, args, progress=False)
    after = sum(completion_logprob(model, tok, ex) for ex in dev)
    assert result.steps == 12 and math.isfinite(result.dev_loss)
    assert after > before + 5  # the completions became far more likely
    # the study's dev loss is the completion-only loss: mean -log p per completion token
    n_tokens = sum(len(tok(" " + ex.target, add_special_tokens=False).input_ids) + 1 for ex in dev)
    assert abs(result.dev_loss - (-after / n_tokens)) < 0.05


def test_grouping_by_length_is_seeded_and_changes_the_batches(tiny_model_dir):
    # prompts of very different lengths, so that grouped batches differ from shuffled ones
    train = [Example(f"g{i}", {"text": " ".join(WORDS[: 1 + i % 8] * (1 + 3 * (i % 5)))}, "yes" if i % 2 else "no")
             for i in range(48)]
    dev = examples(8, offset=100)

    def train_loss(group_by_length: bool) -> float:
        model, tok = load_causal_lm(tiny_model_dir)
        args = FinetuneArgs(lr=1e-2, epochs=1, batch_size=8, grad_accum=1, warmup=0.03, weight_decay=0.0,
                            max_length=96, seed=0, group_by_length=group_by_length, packing=False)
        return finetune(model, tok, train, dev, FMT, args, progress=False)[1].train_loss

    grouped = train_loss(True)
    assert train_loss(True) == grouped
    assert train_loss(False) != grouped


def test_activation_checkpointing_changes_time_not_numbers(tiny_model_dir):
    """Why it is not part of a cell's identity: with and without recomputed activations the
    weights, and so every loss, come out bit for bit the same."""
    train, dev = examples(32), examples(8, offset=100)

    def trained(checkpointing: bool):
        model, tok = load_causal_lm(tiny_model_dir)
        args = FinetuneArgs(lr=1e-2, epochs=1, batch_size=8, max_length=64, seed=0, batch_tokens=128,
                            activation_checkpointing=checkpointing)
        _, result = finetune(model, tok, train, dev, FMT, args, progress=False)
        return result, model

    (with_ckpt, m1), (without, m2) = trained(True), trained(False)
    assert (with_ckpt.train_loss, with_ckpt.dev_loss) == (without.train_loss, without.dev_loss)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert m1.state_dict()["lm_head.weight"].ne(load_causal_lm(tiny_model_dir)[0].state_dict()["lm_head.weight"]).any()


def test_the_recipe_is_declared_once_for_the_config_and_the_trainer():
    """The `finetune:` section and FinetuneArgs both are the SFT recipe (one declaration, one
    check, one error type) plus what each adds; every hashed setting is the recipe's, so the engine
    passes it by building the arguments object, never by hand."""
    import dataclasses

    from ptft.config import FinetuneConfig, training_inputs
    from ptft.errors import ConfigError
    from ptft.training.args import SftRecipe
    from ptft.training.methods.lora import LoraSettings

    recipe = {f.name for f in dataclasses.fields(SftRecipe)}
    assert issubclass(FinetuneConfig, SftRecipe) and issubclass(FinetuneArgs, SftRecipe)
    assert set(training_inputs(FinetuneConfig())) == recipe - {"activation_checkpointing", "packing", "batch_tokens"}
    # what the section adds: the grid's axes and settings with a rule of their own, and a section
    # per method with settings, built from the methods' registry
    assert {f.name for f in dataclasses.fields(FinetuneConfig)} - recipe == {
        "learning_rates", "seeds", "keep_weights", "selection_metric", "eval_at", "evaluate", "methods", "lora", "hft"}
    section = FinetuneConfig(epochs=2.0, group_by_length=True, lora=LoraSettings(r=4))
    args = section.run_args("lora", lr=1e-3, seed=5)
    assert (args.epochs, args.group_by_length, args.lr, args.seed, args.method, args.settings.r) == \
        (2.0, True, 1e-3, 5, "lora", 4)
    assert section.run_args("full", lr=1e-3, seed=5).settings is None
    with pytest.raises(ConfigError, match="LoraSettings are finetune.lora's, not those of method 'hft'"):
        FinetuneArgs(lr=1e-3, seed=0, method="hft", settings=LoraSettings())
    for build in (lambda: FinetuneArgs(lr=1e-3, seed=0, warmup=1.5), lambda: FinetuneConfig(warmup=1.5)):
        with pytest.raises(ConfigError, match="finetune.warmup: a fraction"):
            build()


def test_evaluating_during_training_changes_nothing_of_the_training(tiny_model_dir):
    """With dropout on (so the training draws random numbers every step) and an evaluation that
    draws from every generator itself, the trained weights and losses are bit for bit those of a
    run without it; the evaluation sees the model in eval mode at the steps the fractions name."""
    import random

    import numpy as np

    train, dev = examples(48), examples(8, offset=100)
    seen = []

    def evaluate(model, fraction, step):
        seen.append((fraction, step, model.training))
        random.random(), np.random.rand(), torch.rand(3)
        model(torch.tensor([[1, 2, 3]]))

    def trained(during):
        model, tok = load_causal_lm(tiny_model_dir)
        for layer in model.model.layers:
            layer.self_attn.attention_dropout = 0.3
        args = FinetuneArgs(lr=1e-2, epochs=1, batch_size=8, max_length=64, seed=0, packing=False)
        _, result = finetune(model, tok, train, dev, FMT, args, progress=False, during=during, evaluate=evaluate)
        return result, model

    (plain, m1), (watched, m2) = trained(()), trained((0.25, 0.5))
    assert plain.steps == 6 and seen == [(0.25, 2, False), (0.5, 3, False)]  # round(1.5) = 2, round(3.0) = 3
    assert (plain.train_loss, plain.dev_loss) == (watched.train_loss, watched.dev_loss)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    # the dropout masks matter (so a draw the evaluation left behind would have changed them)
    model, tok = load_causal_lm(tiny_model_dir)
    finetune(model, tok, train, dev, FMT, FinetuneArgs(lr=1e-2, epochs=1, batch_size=8, max_length=64, seed=0,
                                                       packing=False), progress=False)
    assert not torch.equal(model.state_dict()["lm_head.weight"], m1.state_dict()["lm_head.weight"])


def test_fractions_fall_on_the_nearest_step_and_at_least_the_first():
    from ptft.training.finetune import steps_at

    assert steps_at([0.1, 0.25, 0.5, 0.75, 1.0], 8) == {0.1: 1, 0.25: 2, 0.5: 4, 0.75: 6, 1.0: 8}
    assert steps_at([0.01], 3) == {0.01: 1}
