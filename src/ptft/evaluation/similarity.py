"""Where fine-tuning changes the representations: linear CKA (Kornblith et al., ICML 2019,
"Similarity of Neural Network Representations Revisited", eq. 5) between a fine-tuned model's
hidden states and its BASE checkpoint's, layer by layer, on the same prompts (definitions:
docs/method.md, "CKA").

The representations of a set: the residual stream at each prompt's last token after each block l
(1-based; the last block's before the final norm), an n x d matrix per block
(``ptft.evaluation.residual``). The embeddings are left out: at the last token they are one vector
for every prompt that ends in the same cue ("Sentiment:"), which has no variance to compare. With
X and Y centred per column,

    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)

in [0, 1]; 1 for the same representations up to an orthogonal transform and a scale (tested).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ptft.evaluation.residual import trace


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two n x d representations of the same n inputs (float64; the n x n Gram
    form when n < d, the same number with less work). NaN when either has no variance."""
    x, y = x.double(), y.double()
    x, y = x - x.mean(0), y - y.mean(0)
    if len(x) < x.shape[1]:
        k, m = x @ x.T, y @ y.T
        cross, norm_x, norm_y = (k * m).sum(), k.norm(), m.norm()
    else:
        cross, norm_x, norm_y = (y.T @ x).pow(2).sum(), (x.T @ x).norm(), (y.T @ y).norm()
    if norm_x == 0 or norm_y == 0:
        return float("nan")
    return float(cross / (norm_x * norm_y))


def last_token_states(model, ids: Sequence[Sequence[int]], batch_size: int, pad_id: int) -> list[torch.Tensor]:
    """Per block (the first first), the n x d residual stream after it at each prompt's last token."""
    return trace(model, ids, batch_size, pad_id).states
