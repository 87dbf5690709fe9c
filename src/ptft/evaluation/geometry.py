"""Representation geometry of a checkpoint: how many directions its last-layer representations of
held-out text use (docs/method.md, "Predicting fine-tuning from proxies").

The representations: the final hidden states (after the last norm, what the output head reads)
of ``n`` token positions drawn with the seed, without replacement, from the probes' held-out
windows; an ``n`` x d matrix Z, in float64. Per block, the same positions' residual stream after
that block gives the per-layer values.

- **RankMe** (Garrido et al. 2023, "RankMe: Assessing the downstream performance of pretrained
  self-supervised representations by their rank", eq. 1): with the singular values s_k of Z (not
  centred) and p_k = s_k / sum(s) + 1e-7, RankMe = exp(-sum_k p_k log p_k). Between 1 and
  min(n, d); at most r for a matrix of rank r (up to the 1e-7).
- **alpha-ReQ** (Agrawal et al. 2022, "alpha-ReQ: Assessing representation quality in
  self-supervised learning by measuring eigenspectrum decay"): the eigenvalues l_r of the
  covariance of Z (centred), normalised to sum to 1, fitted as l_r ~ c r^(-alpha) by least
  squares of log l_r on -log r weighted by 1/r over ranks 6 to 100 (the authors' code,
  ``reptrix``: the first five bend away from the power law), clipped to the non-zero eigenvalues.
  A smaller alpha is a slower decay: more directions in use.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import numpy as np
import torch

from ptft.evaluation.residual import blocks_of, hooked

# The ranks alpha-ReQ is fitted on (1-based, both ends included).
ALPHA_RANKS = (6, 100)
RANKME_EPS = 1e-7


def rankme(z: torch.Tensor) -> float:
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum() + RANKME_EPS
    return float(torch.exp(-(p * p.log()).sum()))


def alpha_req(z: torch.Tensor) -> float:
    """NaN when fewer than 3 ranks of the fitting range have a non-zero eigenvalue."""
    z = z.double()
    eig = torch.linalg.svdvals(z - z.mean(dim=0)).pow(2)
    eig = (eig / eig.sum()).cpu().numpy()
    first, last = ALPHA_RANKS
    last = min(last, int((eig > eig[0] * 1e-12).sum()))
    ranks = np.arange(first, last + 1)
    if len(ranks) < 3:
        return float("nan")
    x = np.stack([-np.log(ranks), np.ones(len(ranks))], axis=1)
    w = 1.0 / ranks[:, None]
    coef = np.linalg.solve(x.T @ (x * w), (x * w).T @ np.log(eig[ranks - 1]))
    return float(coef[0])


@contextlib.contextmanager
def head_inputs(model) -> Iterator[list[torch.Tensor]]:
    """Collect what the output head reads (the final hidden states, one row per position) on every
    forward pass run inside: the held-out loss's pass gives the representations at no extra cost."""
    states: list[torch.Tensor] = []
    handle = model.get_output_embeddings().register_forward_hook(
        lambda module, args, output: states.append(args[0].detach().flatten(0, 1).float()))
    try:
        yield states
    finally:
        handle.remove()


def kept_positions(total: int, n: int, seed: int) -> np.ndarray:
    """Which ``n`` of ``total`` token positions (in the order the passes see them, batch by batch and
    row by row) the representations use, drawn with ``seed`` and sorted; all of them when there are
    fewer."""
    if n < total:
        return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))
    return np.arange(total)


def sample_positions(states: Sequence[torch.Tensor], n: int, seed: int) -> torch.Tensor:
    """``n`` rows of the collected states (all of them when there are fewer), drawn with ``seed``."""
    z = torch.cat(list(states))
    keep = kept_positions(len(z), n, seed)
    return z[torch.from_numpy(keep).to(z.device)]  # on the model's device: the decompositions run there


@contextlib.contextmanager
def block_outputs(model, keep: np.ndarray) -> Iterator[list[list[torch.Tensor]]]:
    """Per block, its output (the residual stream after it) at the positions ``keep`` of all the
    positions the forward passes run inside see (numbered as :func:`kept_positions` numbers them),
    collected batch by batch so that no pass keeps more than the sampled rows."""
    blocks = blocks_of(model)
    got: list[list[torch.Tensor]] = [[] for _ in blocks]
    seen = [0]
    wanted = torch.from_numpy(keep)

    def hook(index: int):
        def record(module, args, output):
            flat = (output[0] if isinstance(output, tuple) else output).detach().flatten(0, 1)
            lo = seen[0]
            picked = wanted[(wanted >= lo) & (wanted < lo + len(flat))] - lo
            got[index].append(flat[picked.to(flat.device)].float())
            if index == len(blocks) - 1:
                seen[0] = lo + len(flat)
        return record

    with hooked(blocks, hook):
        yield got


@torch.inference_mode()
def final_hidden_states(model, batches: Sequence[torch.Tensor], n: int, seed: int) -> torch.Tensor:
    """``n`` token positions' final hidden states, drawn with ``seed`` from the windows (each
    window's inputs: all its tokens but the last)."""
    model.eval()
    device = next(model.parameters()).device
    with head_inputs(model) as states:
        for b in batches:
            model(b[:, :-1].to(device), use_cache=False)
    return sample_positions(states, n, seed)
