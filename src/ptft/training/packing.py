"""Packed fine-tuning batches: several examples per row, each attending only to itself.

Fine-tuning examples are short (tens to a few hundred tokens). Batched a fixed number of examples at
a time and padded to the longest, each step multiplies small matrices, wastes the padding and pays
the optimizer step on a few hundred tokens: fine-tuning then runs at a fraction of the throughput
pre-training gets from the same model. Packing fills rows of ``max_length`` tokens with whole
examples (trl's best-fit-decreasing packing, no example split) and gives each step a budget of
``batch_tokens`` tokens. The position ids restart at every example and no attention mask is passed,
so transformers builds a block-diagonal causal mask from the position ids (SDPA and eager
attention; it looks for packed sequences only when no key-value cache is built, hence
``use_cache=False``) or runs FlashAttention's variable-length kernels over the flattened batch: no example
sees another, and the loss of a packed batch is the loss of the same examples padded (the mean over
their loss tokens; ``tests/test_packing.py`` checks the loss and the gradients).

What packing changes is the batches, not the arithmetic: a step holds as many examples as fit in
its token budget (more short ones, fewer long ones) instead of ``batch_size``, which changes the
number of optimizer steps, hence the learning-rate schedule; which examples share a row is fixed
before training (rows are packed once, then shuffled every epoch with the seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from trl import pack_dataset
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling


def keeps_examples_apart(model, bf16: bool = False) -> bool:
    """Whether ``model``'s attention keeps packed examples apart: two short sequences run in one
    row with their position ids restarting must give the logits each gives alone. Attention that
    derives its mask from the position ids does; an implementation that ignores them would let the
    second sequence attend to the first, and packing would change what the model learns. ``bf16``:
    under bf16 autocast, as training runs (FlashAttention takes nothing else)."""
    generator = torch.Generator().manual_seed(0)
    vocab = model.get_input_embeddings().num_embeddings
    device = next(model.parameters()).device
    first, second = (torch.randint(0, vocab, (1, n), generator=generator).to(device) for n in (5, 7))
    positions = torch.cat([torch.arange(5), torch.arange(7)])[None].to(device)
    was_training = model.training
    model.eval()
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        alone = torch.cat([model(input_ids=first).logits, model(input_ids=second).logits], dim=1).float()
        packed = model(input_ids=torch.cat([first, second], dim=1), position_ids=positions,
                       use_cache=False).logits.float()
    model.train(was_training)
    # bf16 and fp16 round differently in a row of 12 tokens than in rows of 5 and 7; a leak moves the
    # second sequence's logits by far more than that
    precise = next(model.parameters()).dtype == torch.float32 and not bf16
    scale = alone.abs().max().clamp(min=1.0)
    return bool(((alone - packed).abs().max() <= (1e-4 if precise else 2e-2) * scale).item())


def pack_rows(dataset, row_tokens: int):
    """The tokenized examples (``input_ids``, ``labels``) of ``dataset`` packed into rows of at most
    ``row_tokens`` tokens, whole examples only; ``seq_lengths`` gives each row's examples."""
    return pack_dataset(dataset.select_columns(["input_ids", "labels"]), row_tokens, "bfd")


@dataclass
class PackedCollator(DataCollatorForLanguageModeling):
    """Batches of packed rows with position ids restarting at each example and no attention mask.
    ``padding_free`` (for FlashAttention, whose variable-length kernels take one flattened row)
    concatenates the rows into one; otherwise rows stay rows, so the block-diagonal mask SDPA
    builds is ``rows x max_length^2`` rather than ``(rows x max_length)^2``. Unpacked rows (the
    dev set) pass through the same way, one example each."""

    return_position_ids: bool = True

    def torch_call(self, examples):
        batch = super().torch_call(examples)
        if not self.padding_free:
            # with a mask present transformers would not look for packed sequences in the position ids
            del batch["attention_mask"]
            # the first token of an example is predicted from the end of the previous one: never a loss
            batch["labels"][batch["position_ids"] == 0] = -100
        # transformers reads packed sequences from the position ids only when no cache is being built
        batch["use_cache"] = False
        return batch
