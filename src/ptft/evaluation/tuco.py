"""TuCo, the contribution of fine-tuning to a response (Nuti, Franzmeyer and Henriques, ICML 2025,
"TuCo: Measuring the Contribution of Fine-Tuning to Individual Responses of LLMs"; definitions:
docs/method.md, "TuCo").

Each transformer block l is one residual function f_l (attention and MLP with their norms):
x_{l+1} = x_l + f_l(x_l). On the fine-tuned model's own hidden states x_l the block's update splits
exactly into a pre-training component PTC_l = f_l^PT(x_l), what the BASE block computes from the
same input, and a fine-tuning component FTC_l = f_l^FT(x_l) - f_l^PT(x_l). Summed over the blocks
at the prompt's last token (the paper's Algorithm 1 and Definition 4.3):

    TuCo = ||sum_l FTC_l||_1 / (||sum_l PTC_l||_1 + ||sum_l FTC_l||_1)

in [0, 1]: 0 when the fine-tuned blocks compute what BASE's do. The embeddings, the final norm and
the output head are in neither component. Cost: the fine-tuned model's forward pass over the
prompt plus BASE's blocks on the same hidden states (``ptft.evaluation.residual``; no generation).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ptft.evaluation.residual import trace


def tuco_ratio(ptc: torch.Tensor, ftc: torch.Tensor) -> torch.Tensor:
    """Per row: ||FTC||_1 / (||PTC||_1 + ||FTC||_1) of the summed components (0 where both are 0;
    NaN stays NaN: non-finite hidden states are no 'contribution of 0')."""
    f, p = ftc.abs().sum(-1), ptc.abs().sum(-1)
    total = p + f
    return torch.where(total == 0, torch.zeros_like(total), f / total)


def tuco(tuned, base, ids: Sequence[Sequence[int]], batch_size: int, pad_id: int) -> list[float]:
    """TuCo of each prompt (token ids, already cut to the model's window) at its last token."""
    traced = trace(tuned, ids, batch_size, pad_id, base=base)
    return tuco_ratio(traced.ptc, traced.ftc).tolist()
