"""Linear CKA on representations worked out by hand, and between real models layer by layer."""

from __future__ import annotations

import copy

import pytest
import torch

from ptft.evaluation.similarity import last_token_states, linear_cka


def test_one_feature_cka_is_the_squared_correlation():
    # centred x = (-1, 0, 1), y = (1, 4, 9) - 14/3 = (-11, -2, 13)/3: (sum xy)^2 / (sum x^2 sum y^2)
    # = (24/3)^2 / (2 * 294/9) = 64 / (588/9) = 576/588 = 48/49
    x = torch.tensor([[1.0], [2.0], [3.0]])
    assert linear_cka(x, x**2) == pytest.approx(48 / 49)


def test_invariant_to_rotation_and_scale_not_to_mixing_in_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=g)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=torch.float64))
    assert linear_cka(x, 3.0 * x @ q.float() + 5.0) == pytest.approx(1.0, abs=1e-6)
    assert linear_cka(x, torch.randn(40, 6, generator=g)) < 0.5
    assert linear_cka(x, torch.zeros(40, 6)) != linear_cka(x, torch.zeros(40, 6))  # NaN: no variance


def test_the_gram_form_for_few_inputs_gives_the_same_number():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    wide = linear_cka(x, y)  # n < d: the 5 x 5 Gram matrices
    tall = linear_cka(x.repeat(2, 1), y.repeat(2, 1))  # 10 x 8: the feature form
    # duplicating every input leaves CKA as it was (the centring and both norms scale alike)
    assert wide == pytest.approx(tall, rel=1e-9)


def test_a_model_against_itself_is_one_at_every_layer(tiny_series):
    from ptft.checkpoints.loading import load_causal_lm

    steps = sorted(tiny_series)
    model, tok = load_causal_lm(str(tiny_series[steps[-1]]), device="cpu")
    earlier, _ = load_causal_lm(str(tiny_series[steps[0]]), device="cpu")
    ids = [tok(t).input_ids for t in ("A film I loved.", "Dull and long.", "The cat sat.", "Why?", "Rain today")]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    mine = last_token_states(model, ids, batch_size=2, pad_id=pad)
    assert len(mine) == model.config.num_hidden_layers and mine[0].shape == (5, model.config.hidden_size)
    same = last_token_states(copy.deepcopy(model), ids, batch_size=5, pad_id=pad)
    assert [linear_cka(x, y) for x, y in zip(mine, same)] == pytest.approx([1.0] * len(mine), abs=1e-6)
    other = [linear_cka(x, y) for x, y in zip(mine, last_token_states(earlier, ids, 3, pad))]
    assert all(0 <= v < 0.999 for v in other)
