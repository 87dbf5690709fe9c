"""TuCo on the tiny test model: 0 against itself, 1 against blocks that compute nothing, and the
decomposition is exact: the embeddings plus every block's PTC and FTC give the residual stream after
the last block."""

from __future__ import annotations

import copy

import pytest
import torch

from ptft.evaluation.residual import blocks_of, trace
from ptft.evaluation.tuco import tuco, tuco_ratio

# the shortest first: batching sorts them longest first and must put the values back in this order
PROMPTS = ["Hi", "The quick brown fox jumps over the lazy dog.", "Review: a dull film.\nSentiment:"]


@pytest.fixture(scope="module")
def models(tiny_series):
    from ptft.checkpoints.loading import load_causal_lm

    steps = sorted(tiny_series)
    base, tok = load_causal_lm(str(tiny_series[steps[-2]]), device="cpu")
    tuned, _ = load_causal_lm(str(tiny_series[steps[-1]]), device="cpu")
    ids = [tok(p).input_ids for p in PROMPTS]
    return base, tuned, ids, tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id


def test_a_model_against_itself_has_no_fine_tuning_contribution(models):
    base, _, ids, pad = models
    assert tuco(base, copy.deepcopy(base), ids, batch_size=2, pad_id=pad) == [0.0, 0.0, 0.0]


def test_against_blocks_that_add_nothing_everything_is_fine_tuning(models):
    base, tuned, ids, pad = models
    silent = copy.deepcopy(base)
    with torch.no_grad():  # a block whose output projections are 0 adds nothing to its input
        for block in blocks_of(silent):
            block.self_attn.o_proj.weight.zero_()
            block.mlp.down_proj.weight.zero_()
    assert tuco(tuned, silent, ids, batch_size=3, pad_id=pad) == [1.0, 1.0, 1.0]


def test_components_sum_to_the_residual_stream_and_batching_changes_nothing(models):
    """x_L = x_0 + sum PTC + sum FTC at the last token: x_0 the embedding (the first hidden state),
    x_L what the last block outputs (before the final norm), which the trace records too."""
    base, tuned, ids, pad = models
    traced = trace(tuned, ids, batch_size=2, pad_id=pad, base=base)
    for i, x in enumerate(ids):
        with torch.no_grad():
            embedded = tuned(input_ids=torch.tensor([x]), output_hidden_states=True).hidden_states[0][0, -1]
        rebuilt = embedded.double() + traced.ptc[i] + traced.ftc[i]
        assert torch.allclose(rebuilt, traced.states[-1][i].double(), atol=1e-5)
    values = tuco_ratio(traced.ptc, traced.ftc).tolist()
    assert all(0 < v < 1 for v in values)
    # prompts batched alone, or sorted into other batches, give the same numbers
    assert [tuco(tuned, base, [x], batch_size=1, pad_id=pad)[0] for x in ids] == pytest.approx(values, abs=1e-6)
    assert tuco(tuned, base, ids, batch_size=3, pad_id=pad) == pytest.approx(values, abs=1e-5)
