"""Grafting's magnitude mask on weights worked out by hand, and its end points on a real model."""

from __future__ import annotations

import pytest
import torch

from ptft.evaluation.grafting import apply_graft, graft_threshold, kept_count
from ptft.grid import graft_percent, graft_variant


class _Two(torch.nn.Module):
    """Two parameters, so the mask is global across them."""

    def __init__(self, a, b):
        super().__init__()
        self.a = torch.nn.Parameter(a.clone())
        self.b = torch.nn.Parameter(b.clone())


def test_the_top_share_of_the_change_is_grafted_across_all_parameters():
    base = {"a": torch.tensor([0.0, 0.0, 0.0]), "b": torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])}
    # changes |theta1 - theta0|: a -> 3, 0.5, 0; b -> 0.1, 2, 0, 0.2, 1
    tuned = {"a": torch.tensor([3.0, -0.5, 0.0]), "b": torch.tensor([1.1, -1.0, 1.0, 1.2, 2.0])}
    model = _Two(tuned["a"], tuned["b"])
    # 8 entries: 25 % is 2 of them, the changes 3 (a[0]) and 2 (b[1])
    assert kept_count(8, 25) == 2 and graft_threshold(tuned, base, 25) == 2.0
    assert apply_graft(model, base, tuned, 25) == 2
    assert model.a.tolist() == [3.0, 0.0, 0.0] and model.b.tolist() == [1.0, -1.0, 1.0, 1.0, 1.0]
    # 50 %: 4 entries, adding 1 (b[4]) and 0.5 (a[1])
    apply_graft(model, base, tuned, 50)
    assert model.a.tolist() == [3.0, -0.5, 0.0]
    assert model.b.tolist() == pytest.approx([1.0, -1.0, 1.0, 1.0, 2.0])


def test_zero_percent_is_base_and_a_hundred_is_the_fine_tuned_weights_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    base = {"a": torch.randn(50, generator=g), "b": torch.randn(7, 3, generator=g)}
    tuned = {n: w + 1e-3 * torch.randn(w.shape, generator=g) for n, w in base.items()}
    model = _Two(tuned["a"], tuned["b"])
    assert apply_graft(model, base, tuned, 0) == 0
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters())
    assert apply_graft(model, base, tuned, 100) == 71
    assert all(torch.equal(p, tuned[n]) for n, p in model.named_parameters())
    # a positive share grafts at least one entry, even of a model too small for it
    assert kept_count(71, 0.01) == 1 and apply_graft(model, base, tuned, 0.01) == 1


def test_variant_names_carry_their_percent():
    assert graft_variant(0.01) == "graft0.01pct" and graft_variant(10.0) == "graft10pct"
    assert graft_percent("graft0.01pct") == 0.01 and graft_percent("graft100pct") == 100
    assert graft_percent("lines") is None and graft_percent("graftxpct") is None


def test_grafted_tiny_model_scores_base_at_zero_and_fine_tuned_at_a_hundred(tiny_series):
    """Two checkpoints of the test series as BASE and 'fine-tuned': the graft's log-likelihoods
    at 0 % and 100 % are theirs exactly, and 1 % lies elsewhere."""
    from ptft.checkpoints.loading import load_causal_lm

    steps = sorted(tiny_series)
    base_model, tok = load_causal_lm(str(tiny_series[steps[-2]]), device="cpu")
    tuned_model, _ = load_causal_lm(str(tiny_series[steps[-1]]), device="cpu")
    ids = tok("The quick brown fox jumps over the lazy dog.", return_tensors="pt").input_ids

    def logits(m):
        with torch.no_grad():
            return m(ids).logits

    theta0 = {n: p.detach().clone() for n, p in base_model.named_parameters()}
    theta1 = {n: p.detach().clone() for n, p in tuned_model.named_parameters()}
    base_logits, tuned_logits = logits(base_model), logits(tuned_model)
    apply_graft(tuned_model, theta0, theta1, 0)
    assert torch.equal(logits(tuned_model), base_logits)
    apply_graft(tuned_model, theta0, theta1, 100)
    assert torch.equal(logits(tuned_model), tuned_logits)
    apply_graft(tuned_model, theta0, theta1, 1)
    one = logits(tuned_model)
    assert not torch.equal(one, base_logits) and not torch.equal(one, tuned_logits)
