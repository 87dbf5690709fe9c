"""RankMe and alpha-ReQ (ptft.evaluation.geometry) on matrices whose answers are known by hand, and
the final hidden states they are computed on."""

from __future__ import annotations

import math

import pytest
import torch

from ptft.checkpoints.loading import load_causal_lm
from ptft.evaluation.geometry import alpha_req, block_outputs, final_hidden_states, kept_positions, rankme


def _orthonormal(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """n x d, orthonormal columns that each sum to 0 (so centring leaves them as they are)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, d, generator=g, dtype=torch.float64))
    q, _ = torch.linalg.qr(q - q.mean(dim=0))
    return q


def test_rankme_by_hand():
    # singular values 3 and 1: p = (0.75, 0.25), exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = exp(0.56233)
    assert rankme(torch.tensor([[3.0, 0.0], [0.0, 1.0]])) == pytest.approx(1.75477, abs=1e-4)
    # r equal singular values: r (the 1e-7 of every p_k adds about r^2 x 1e-7)
    assert rankme(5 * torch.eye(10)) == pytest.approx(10, abs=2e-5)
    # a rank-8 matrix of 64 columns: at most 8, and the scale does not matter (up to the float32
    # rounding of its 56 zero singular values)
    z = torch.randn(500, 8, generator=torch.Generator().manual_seed(1)) @ torch.randn(8, 64)
    assert 7 < rankme(z) <= 8 and rankme(3 * z) == pytest.approx(rankme(z), rel=1e-6)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_alpha_req_recovers_a_power_law_spectrum(alpha: float):
    """Covariance eigenvalues exactly r^-alpha (singular values r^(-alpha/2) on centred, orthonormal
    columns): the fit over ranks 6..100 returns alpha."""
    z = _orthonormal(2000, 120) * torch.arange(1, 121, dtype=torch.float64).pow(-alpha / 2)
    assert alpha_req(z) == pytest.approx(alpha, abs=1e-6)


def test_alpha_req_needs_three_ranks_to_fit():
    # 8 non-zero eigenvalues: ranks 6, 7 and 8 are fitted; 7 leave two, too few
    assert math.isfinite(alpha_req(_orthonormal(100, 8)))
    assert math.isnan(alpha_req(_orthonormal(100, 7)))


def test_final_hidden_states_are_the_heads_inputs_at_seeded_positions(tiny_model_dir):
    model, _ = load_causal_lm(tiny_model_dir)
    batches = [torch.randint(0, 100, (4, 17), generator=torch.Generator().manual_seed(i)) for i in range(2)]
    every = final_hidden_states(model, batches, n=1000, seed=0)
    assert every.shape == (2 * 4 * 16, model.config.hidden_size)
    # what the output head reads: its logits are exactly the model's
    with torch.no_grad():
        logits = model(batches[1][:, :-1]).logits.flatten(0, 1)
        assert torch.allclose(model.lm_head(every[64:].clone()), logits, atol=1e-5)
    some = final_hidden_states(model, batches, n=50, seed=3)
    assert some.shape == (50, model.config.hidden_size)
    assert torch.equal(some, final_hidden_states(model, batches, n=50, seed=3))
    assert all(any(torch.equal(row, other) for other in every) for row in some)
    assert not torch.equal(some, final_hidden_states(model, batches, n=50, seed=4))


def test_block_outputs_are_the_hidden_states_at_the_sampled_positions(tiny_series):
    """Blocks 1 .. L-1's outputs at the kept positions are HF's hidden states there (HF's last one
    has the final norm applied, the block's output does not), over two batches of windows."""
    model, _ = load_causal_lm(str(tiny_series[max(tiny_series)]), device="cpu")
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, model.config.vocab_size, (3, 9), generator=g) for _ in range(2)]
    keep = kept_positions(2 * 3 * 8, 10, seed=5)
    assert len(keep) == 10 and list(keep) == sorted(keep) and kept_positions(7, 10, 0).tolist() == list(range(7))
    with torch.no_grad(), block_outputs(model, keep) as per_block:
        hidden = [model(b[:, :-1], output_hidden_states=True).hidden_states for b in batches]
    for layer in range(1, model.config.num_hidden_layers):
        every = torch.cat([h[layer].flatten(0, 1) for h in hidden])
        assert torch.equal(torch.cat(per_block[layer - 1]), every[torch.from_numpy(keep)])
