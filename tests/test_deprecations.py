"""The suite's warning filters (pyproject.toml) turn a deprecation from transformers or trl into a
failure, wherever the library attributes it; ptft itself calls only the replacement APIs."""

from __future__ import annotations

import warnings

import pytest
import torch

from ptft.checkpoints.loading import load_causal_lm


def test_a_deprecated_forward_keyword_fails_the_run(tiny_model_dir):
    """transformers attributes a deprecated forward keyword to torch's Module.__call__."""
    from transformers import DynamicCache

    model, _ = load_causal_lm(tiny_model_dir)
    ids = torch.tensor([[1, 2, 3]])
    with pytest.raises(FutureWarning, match="past_key_values"):
        model(input_ids=ids, past_key_values=DynamicCache(config=model.config), use_cache=True)


def test_a_deprecated_training_argument_fails_the_run(tmp_path):
    from trl import SFTConfig

    with pytest.raises(FutureWarning, match="gradient_checkpointing"):
        SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[])


def test_the_scorer_and_the_trainer_use_the_replacement_apis(tiny_model_dir, tmp_path):
    """Scoring with a KV cache and building ptft's SFT config raise no deprecation at all (the
    filters above would turn those into errors; this checks every category, not just those)."""
    from ptft.evaluation.scoring import LMScorer
    from ptft.training.args import FinetuneArgs
    from ptft.training.finetune import sft_train

    model, tok = load_causal_lm(tiny_model_dir)
    scorer = LMScorer(model, tok, batch_size=2)
    ctx, conts = scorer.encode_pairs(["The river", "A small town"], [[" flows", " is"], [" lies", " has"]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        warnings.simplefilter("error", DeprecationWarning)
        lls = scorer.loglikelihoods(ctx, conts)
        scorer.generate(scorer.encode(["The river"]), 2, ("\n",), [tok.eos_token_id])
        rows = [{"prompt": "The river", "completion": " flows"}] * 2
        args = FinetuneArgs(lr=1e-3, epochs=1, batch_size=2, grad_accum=1, warmup=0.0, weight_decay=0.0,
                            max_length=32, seed=0)
        sft_train(model, tok, rows, rows, args, loss="completion", progress=False)
    assert all(s < 0 for per in lls for s, _, _ in per)
