"""Model-level proxies of a checkpoint, measured without fine-tuning it: the held-out language
modelling loss and its sensitivity to Gaussian weight noise (docs/method.md, "Predicting
fine-tuning from proxies").

Held-out text: fixed, evenly spaced token windows of a document stream (the pre-training code's
``heldout_batches``), the same windows for every checkpoint of a series that shares a tokenizer.

Sensitivity (after Springer et al. 2025): for each draw ``d``, every parameter tensor ``W`` gets
noise ``N(0, (sigma * rms(W))^2)`` elementwise, ``rms(W) = sqrt(mean(W^2))`` of the unperturbed
tensor, from a generator seeded with (seed, d) on the CPU (the same noise on every device); the
sensitivity is the mean over draws of (noisy held-out loss - clean held-out loss). The weights
are restored exactly afterwards, from a copy.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ptft.errors import PtftError
from ptft.training.pretrain import heldout_batches, lm_loss, tokenize_corpus


class ProbeError(PtftError):
    pass


def text_windows(tokenizer, docs: Sequence[str], n_windows: int, seq_len: int, batch_size: int,
                 max_length: int) -> list[torch.Tensor]:
    """Batches of held-out windows of ``seq_len + 1`` tokens (inputs and their next tokens), the
    window shortened to what the model's context and the text allow."""
    tokens = tokenize_corpus(tokenizer, list(docs))
    seq_len = min(seq_len, max_length, len(tokens) - 2)
    if seq_len < 1:
        raise ProbeError(f"the held-out text has {len(tokens)} tokens; the loss needs at least 3")
    return heldout_batches(tokens, n_windows, seq_len, batch_size)


@torch.inference_mode()
def heldout_loss(model, batches: Sequence[torch.Tensor]) -> float:
    """Mean next-token cross-entropy over the windows (nats per token), model in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    total = sum(lm_loss(model, b.to(device), bf16=False).item() * len(b) for b in batches)
    return total / sum(len(b) for b in batches)


@torch.inference_mode()
def sensitivity(model, batches: Sequence[torch.Tensor], sigma: float, draws: int, seed: int,
                clean: float | None = None) -> list[float]:
    """Per draw, the held-out loss increase under relative Gaussian weight noise (module doc)."""
    clean = heldout_loss(model, batches) if clean is None else clean
    params = list(model.parameters())  # tied tensors appear once
    originals = [p.detach().clone() for p in params]
    scales = [sigma * float(w.float().pow(2).mean().sqrt()) for w in originals]
    increases = []
    try:
        for d in range(draws):
            gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, d]).generate_state(1)[0]))
            for p, w, scale in zip(params, originals, scales):
                noise = torch.randn(w.shape, generator=gen, dtype=torch.float32) * scale
                p.copy_(w + noise.to(device=w.device, dtype=w.dtype))
            increases.append(heldout_loss(model, batches) - clean)
    finally:
        for p, w in zip(params, originals):
            p.copy_(w)
    return increases
