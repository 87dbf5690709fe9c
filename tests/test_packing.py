"""Packed fine-tuning (ptft.training.packing) on the session's tiny model: a packed batch has the
loss and the gradients of the same examples padded, for full fine-tuning, LoRA and HFT, in rows
(SDPA's block-diagonal mask) and flattened (FlashAttention's layout); a model whose attention
ignores the position ids is caught and trained unpacked."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from ptft.checkpoints.loading import load_causal_lm
from ptft.errors import ConfigError
from ptft.tasks import Example, PromptFormat
from ptft.training.args import FinetuneArgs
from ptft.training.finetune import completion_loss, finetune, prompt_completion_rows
from ptft.training.methods import get_method
from ptft.training.methods.hft import hft_frozen
from ptft.training.methods.lora import LoraSettings
from ptft.training.packing import PackedCollator, keeps_examples_apart, pack_rows

FMT = PromptFormat("default", "### Input: {text}\n ### Label:", "### Input")
WORDS = ["river", "city", "music", "church", "team", "island", "album", "station"]


def examples(n: int, offset: int = 0) -> list[Example]:
    """Prompts of 1 to 12 words, so that rows hold examples of different lengths."""
    return [Example(f"p{i}", {"text": " ".join(WORDS[(i + j) % 8] for j in range(1 + (i * 5) % 12))},
                    "yes" if i % 3 else "no") for i in range(offset, offset + n)]


def tokenized(model_dir, n: int):
    """The examples as trl's SFTTrainer prepares them: input_ids, labels -100 on the prompt."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tok = load_causal_lm(model_dir)
    rows = prompt_completion_rows(examples(n), FMT, tok, 64)
    trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=Dataset.from_list(rows),
                         args=SFTConfig(output_dir="/tmp/ptft-pack", use_cpu=True, report_to=[], max_length=64,
                                        completion_only_loss=True, activation_checkpointing=False))
    return trainer.train_dataset


def loss_and_grads(model, batch, loss_of=completion_loss) -> tuple[float, dict[str, torch.Tensor]]:
    """The loss training minimises (by default; ``loss_of``) and its gradients."""
    model.zero_grad()
    loss = loss_of(model, batch)
    loss.backward()
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def prepared(tiny_model_dir, method: str):
    """The tiny model as ``method`` trains it: full, LoRA adapters, or HFT's first half frozen."""
    model, tok = load_causal_lm(tiny_model_dir)
    model.train()
    if method == "lora":
        from peft import get_peft_model

        # without dropout, whose masks depend on where each token sits in the batch
        args = FinetuneArgs(lr=1e-3, seed=0, method="lora", settings=LoraSettings(dropout=0.0))
        model = get_peft_model(model, get_method("lora").trainer_options(args)["peft_config"])
    elif method == "hft":
        frozen = hft_frozen([n for n, _ in model.named_parameters()], 0.5, seed=0, round_index=0)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name not in frozen)
    return model, tok


@pytest.mark.parametrize("method", ["full", "lora", "hft"])
@pytest.mark.parametrize("flatten", [False, True], ids=["rows", "flattened"])
def test_a_packed_batch_has_the_loss_and_gradients_of_the_same_examples_padded(tiny_model_dir, method, flatten):
    model, tok = prepared(tiny_model_dir, method)
    data = tokenized(tiny_model_dir, 12)
    rows = pack_rows(data, 64)
    # more than one row, and rows holding several examples of different lengths
    assert 1 < len(rows) < len(data) and max(len(s) for s in rows["seq_lengths"]) >= 2
    assert sorted(n for s in rows["seq_lengths"] for n in s) == sorted(len(x) for x in data["input_ids"])
    padded = DataCollatorForLanguageModeling(pad_token_id=tok.eos_token_id)([data[i] for i in range(len(data))])
    packed = PackedCollator(pad_token_id=tok.eos_token_id, padding_free=flatten)([rows[i] for i in range(len(rows))])
    assert "attention_mask" in padded and "attention_mask" not in packed
    assert packed["input_ids"].shape[0] == (1 if flatten else len(rows))
    # the same loss tokens: the completions and their EOS, nothing more
    assert int((packed["labels"] != -100).sum()) == int((padded["labels"] != -100).sum()) > 12
    loss_padded, grads_padded = loss_and_grads(model, padded)
    loss_packed, grads_packed = loss_and_grads(model, packed)
    assert loss_packed == pytest.approx(loss_padded, rel=1e-5)
    assert grads_padded.keys() == grads_packed.keys() and grads_padded
    for name, grad in grads_padded.items():
        torch.testing.assert_close(grads_packed[name], grad, rtol=1e-4, atol=1e-6, msg=name)
    if method == "hft":
        assert len(grads_padded) < len(list(model.parameters()))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_the_completion_loss_is_the_models_own_loss(tiny_model_dir, method):
    """Logits only where a label follows: the same loss and gradients as the model's loss over
    every position, padded or packed."""
    model, tok = prepared(tiny_model_dir, method)
    data = tokenized(tiny_model_dir, 12)
    padded = DataCollatorForLanguageModeling(pad_token_id=tok.eos_token_id)([data[i] for i in range(len(data))])
    rows = pack_rows(data, 64)
    packed = PackedCollator(pad_token_id=tok.eos_token_id)([rows[i] for i in range(len(rows))])
    for batch in (padded, packed):
        mine, my_grads = loss_and_grads(model, batch)
        theirs, their_grads = loss_and_grads(model, batch, lambda m, b: m(**b).loss)
        assert mine == pytest.approx(theirs, rel=1e-6) and mine > 0.1
        for name, grad in their_grads.items():
            torch.testing.assert_close(my_grads[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    # a count given by the Trainer (a gradient-accumulation step's labelled tokens) divides the sum
    n = int((padded["labels"][:, 1:] != -100).sum())
    with torch.no_grad():
        assert completion_loss(model, padded, 2 * n).item() == pytest.approx(completion_loss(model, padded).item() / 2)


class IgnoresPositionIds(LlamaForCausalLM):
    """A real model whose forward drops the position ids (as some remote-code models do): packed
    examples would attend to one another."""

    def forward(self, input_ids=None, position_ids=None, **kwargs):
        return super().forward(input_ids=input_ids, **kwargs)


def test_packing_is_used_only_where_the_attention_keeps_examples_apart(tiny_model_dir, caplog):
    model, tok = load_causal_lm(tiny_model_dir)
    assert keeps_examples_apart(model)
    assert keeps_examples_apart(model.to(torch.bfloat16))
    blind = IgnoresPositionIds.from_pretrained(tiny_model_dir)
    assert not keeps_examples_apart(blind)
    args = FinetuneArgs(lr=1e-2, epochs=1, batch_size=8, max_length=64, batch_tokens=256, seed=0)
    _, result = finetune(blind, tok, examples(32), examples(8, offset=100), FMT, args, progress=False)
    assert "does not keep packed examples apart" in caplog.text
    assert result.steps == 4 and result.examples_per_step == 8


def test_packed_steps_follow_the_token_budget_and_the_seed(tiny_model_dir):
    """32 examples of 11 to 26 tokens (about 600 in all) in rows of 64 tokens, 2 rows a step:
    about 5 steps of about 6 examples each where unpacked batches of 8 take 4; the same seed gives
    the same run."""
    def run(seed: int):
        model, tok = load_causal_lm(tiny_model_dir)
        args = FinetuneArgs(lr=1e-2, epochs=1, batch_size=8, max_length=64, batch_tokens=128, seed=seed)
        return finetune(model, tok, examples(32), examples(8, offset=100), FMT, args, progress=False)[1]

    first = run(0)
    data = tokenized(tiny_model_dir, 32)
    rows = len(pack_rows(data, 64))
    assert first.steps == -(-rows // 2) and first.examples_per_step == pytest.approx(32 / first.steps)
    assert first.tokens == sum(len(x) for x in data["input_ids"])
    again, other = run(0), run(1)
    assert (again.train_loss, again.dev_loss) == (first.train_loss, first.dev_loss)
    assert other.train_loss != first.train_loss


def test_a_budget_that_leaves_few_steps_is_warned(tiny_model_dir, caplog):
    """32 short examples fit one step of 4,096 tokens: a run of one step, whose warm-up gives it
    learning rate 0, is trained but said."""
    model, tok = load_causal_lm(tiny_model_dir)
    args = FinetuneArgs(lr=1e-2, epochs=1, batch_size=8, max_length=64, seed=0)
    result = finetune(model, tok, examples(32), examples(8, offset=100), FMT, args, progress=False)[1]
    assert result.steps == 1 and result.examples_per_step == 32
    assert "fine-tuning takes only 1 optimizer step(s) (32 examples, packed into" in caplog.text


def test_a_token_budget_below_one_row_is_refused():
    with pytest.raises(ConfigError, match="batch_tokens"):
        FinetuneArgs(lr=1e-3, seed=0, max_length=512, batch_tokens=256)
    FinetuneArgs(lr=1e-3, seed=0, max_length=512, batch_tokens=256, packing=False)
