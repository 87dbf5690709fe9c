"""Weight-space lenses on constructed matrices with answers worked out by hand, and LiNeS on the
tiny test model (two checkpoints of its series as BASE and 'fine-tuned')."""

from __future__ import annotations

import math

import pytest
import torch

from ptft.checkpoints.names import block_of, module_of
from ptft.evaluation.weights import apply_lines, effective_rank, lines_scales, weight_lenses


def _rotations(seed: int = 0):
    """Random orthogonal Q (4x4) and R (3x3): lenses are invariant under W -> Q W R^T, so the
    hand-worked answers of diagonal matrices hold for these dense ones."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))
    r, _ = torch.linalg.qr(torch.randn(3, 3, generator=g, dtype=torch.float64))
    return q.float(), r.float()


def _lens(w0, w1, **kw):
    (lens,) = weight_lenses({"model.layers.0.mlp.up_proj.weight": w0}, {"model.layers.0.mlp.up_proj.weight": w1},
                            **kw)
    return lens


def test_rank_one_update_orthogonal_to_base_is_one_intruder():
    # W0 = diag(3, 2, 1) in 4x3: left singular vectors e1, e2, e3. dW = 10 e4 e1^T, e4 orthogonal
    # to all of them. W1's columns: 3 e1 + 10 e4, 2 e2, e3, so its left singular vectors are
    # (3 e1 + 10 e4)/sqrt(109) (sigma sqrt(109)), e2, e3. The first has max |cos| = 3/sqrt(109)
    # = 0.287 with W0's: an intruder for eps 0.5, none for eps 0.25; e2 and e3 have cos 1.
    q, r = _rotations()
    w0 = torch.zeros(4, 3)
    w0[0, 0], w0[1, 1], w0[2, 2] = 3, 2, 1
    dw = torch.zeros(4, 3)
    dw[3, 0] = 10
    w0, w1 = q @ w0 @ r.T, q @ (w0 + dw) @ r.T
    lens = _lens(w0, w1, k=3, epsilon=0.5)
    assert lens.intruders == 1
    assert lens.effective_rank == 1
    assert lens.relative_change == pytest.approx(10 / math.sqrt(14), rel=1e-5)
    assert _lens(w0, w1, k=3, epsilon=0.25).intruders == 0
    assert _lens(w0, w1, k=1, epsilon=0.5).intruders == 1  # the intruder is W1's top direction
    assert (lens.module, lens.layer, lens.rows, lens.cols) == ("mlp.up_proj", 1, 4, 3)


def test_rescaling_has_no_intruders_and_the_rank_of_base():
    # W1 = 1.5 W0: dW = 0.5 W0 has W0's singular vectors (no intruders at any eps <= 1) and its
    # spectrum 0.5 (3, 1, 0.5): squares 2.25, 0.25, 0.0625; 90 % of 2.5625 is 2.306, which
    # 2.25 misses and 2.5 reaches: effective rank 2. Relative change 0.5.
    q, r = _rotations(1)
    w0 = torch.zeros(4, 3)
    w0[0, 0], w0[1, 1], w0[2, 2] = 3, 1, 0.5
    w0 = q @ w0 @ r.T
    lens = _lens(w0, 1.5 * w0, k=3, epsilon=0.99)
    assert (lens.intruders, lens.effective_rank) == (0, 2)
    assert lens.relative_change == pytest.approx(0.5, rel=1e-6)
    # when W0's top singular value alone holds 90 % of its energy (9 of 9.5), the rank is 1
    w0 = torch.diag(torch.tensor([3.0, 0.5, 0.5]))
    assert _lens(w0, 1.5 * w0, k=3).effective_rank == 1


def test_effective_rank_edge_cases():
    # 90 % of 4+4+1+1 = 9 needs three values; an unchanged matrix has rank 0
    assert effective_rank(torch.tensor([[2.0, 2.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])).tolist() == [3, 0]


def test_matrices_batched_by_shape_in_name_order():
    g = torch.Generator().manual_seed(0)
    names = ["model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
             "model.layers.0.mlp.up_proj.weight", "model.layers.1.self_attn.q_proj.weight", "model.norm.weight"]
    shapes = [(10, 4), (4, 4), (6, 4), (4, 4), (4,)]
    w0 = {n: torch.randn(*s, generator=g) for n, s in zip(names, shapes)}
    w1 = {n: v.clone() for n, v in w0.items()}
    w1["model.layers.1.self_attn.q_proj.weight"] *= 2
    lenses = weight_lenses(w0, w1)
    assert [x.name for x in lenses] == names[:4]  # the 1-D norm is excluded
    assert [x.relative_change for x in lenses] == pytest.approx([0, 0, 0, 1])
    assert [x.effective_rank for x in lenses][:3] == [0, 0, 0]
    assert [(x.module, x.layer) for x in lenses] == [("embed_tokens", 0), ("self_attn.q_proj", 1),
                                                     ("mlp.up_proj", 1), ("self_attn.q_proj", 2)]


def test_lines_scales_by_depth():
    names = ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
             "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.up_proj.weight",
             "model.layers.2.mlp.up_proj.weight", "model.norm.weight", "lm_head.weight"]
    # L = 3: lambda = 0.2 + 0.6 (l - 1)/2 = 0.2, 0.5, 0.8; outside the blocks alpha = 0.2
    assert lines_scales(names, 0.2, 0.6) == pytest.approx(dict(zip(names, [0.2, 0.2, 0.2, 0.5, 0.8, 0.2, 0.2])))
    assert (block_of(names[2]), module_of(names[2]), module_of("lm_head.weight")) == (1, "self_attn.q_proj", "lm_head")


@pytest.fixture(scope="module")
def two_checkpoints(tiny_series):
    from ptft.checkpoints.loading import load_causal_lm

    steps = sorted(tiny_series)
    base, tok = load_causal_lm(tiny_series[steps[1]], device="cpu")
    return base, tok, tiny_series[steps[-1]]


def _scores(model, tok, toys):
    from ptft.evaluation import Evaluator

    ev = Evaluator(model, tok)
    task, data = toys.classification()
    gen, gdata = toys.generation(n_eval=4, max_new_tokens=8)
    cls = ev.evaluate(task, "test", data.eval["test"], "default", [], "tokenprob", n_boot=1)
    out = ev.evaluate(gen, "test", gdata.eval["test"], "default", [], "greedy", n_boot=1)
    # the per-example records hold every score and log-likelihood the evaluator computed
    return cls.predictions, out.predictions


def test_lines_endpoints_give_back_fine_tuned_and_base_score_for_score(two_checkpoints, toys):
    from ptft.checkpoints.loading import load_causal_lm

    base, tok, tuned_dir = two_checkpoints
    theta0 = {n: p.detach().clone() for n, p in base.named_parameters()}
    base_scores = _scores(base, tok, toys)
    tuned, _ = load_causal_lm(tuned_dir, device="cpu")
    tuned_scores = _scores(tuned, tok, toys)
    assert tuned_scores != base_scores

    scales = apply_lines(tuned, theta0, alpha=1.0, beta=0.0)
    assert set(scales.values()) == {1.0}
    assert _scores(tuned, tok, toys) == tuned_scores

    theta1 = {n: p.detach().clone() for n, p in tuned.named_parameters()}
    apply_lines(tuned, theta0, alpha=0.0, beta=0.0)
    assert all(torch.equal(p, theta0[n]) for n, p in tuned.named_parameters())
    assert _scores(tuned, tok, toys) == base_scores

    # the tiny model has 2 blocks and a head tied to its embeddings: lambda 0.5 for block 1, the
    # shared embedding matrix and the final norm, 1.0 for block 2
    with torch.no_grad():
        for n, p in tuned.named_parameters():
            p.copy_(theta1[n])
    scales = apply_lines(tuned, theta0, alpha=0.5, beta=0.5)
    assert "lm_head.weight" not in scales
    assert scales["model.embed_tokens.weight"] == 0.5 and scales["model.norm.weight"] == 0.5
    assert scales["model.layers.0.mlp.up_proj.weight"] == 0.5 and scales["model.layers.1.mlp.up_proj.weight"] == 1.0
    edited = dict(tuned.named_parameters())["model.layers.0.mlp.up_proj.weight"]
    n = "model.layers.0.mlp.up_proj.weight"
    assert torch.allclose(edited, (theta0[n] + theta1[n]) / 2, atol=1e-7)


def test_reused_bfloat16_weights_compare_in_one_precision():
    """Kept weights reused at checkpoints.dtype bfloat16 against a float32 BASE: a matrix that
    fine-tuning never touched is the BASE matrix rounded to bfloat16, and must read as unchanged."""
    g = torch.Generator().manual_seed(0)
    names = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight"]
    w0 = {n: torch.randn(256, 256, generator=g) for n in names}
    trained = {names[0]: w0[names[0]], names[1]: w0[names[1]] + 0.5 * torch.randn(256, 256, generator=g)}
    w1 = {n: v.to(torch.bfloat16) for n, v in trained.items()}
    untouched, changed = weight_lenses(w0, w1)
    assert (untouched.relative_change, untouched.effective_rank, untouched.intruders) == (0.0, 0, 0)
    assert changed.relative_change > 0.4 and changed.effective_rank > 100
    # float32 on both sides is left as it is
    assert weight_lenses(w0, {n: v.clone() for n, v in w0.items()})[0].relative_change == 0.0


def test_lines_scales_every_tensor_of_an_untied_model():
    """alpha 0.3, beta 0.4 on a 3-block Llama with an untied head. By hand: block l keeps
    0.3 + 0.4 (l - 1)/2 of its change, 0.3, 0.5, 0.7, norms included; the embeddings, the final norm
    and the head lie outside the blocks and keep alpha = 0.3 (the reference code's rule)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=24, num_hidden_layers=3,
                         num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    theta1 = {n: p.detach().clone() for n, p in model.named_parameters()}
    apply_lines(model, theta0, alpha=0.3, beta=0.4)
    expected = {"model.embed_tokens.weight": 0.3, "model.norm.weight": 0.3, "lm_head.weight": 0.3}
    for block, scale in enumerate((0.3, 0.5, 0.7)):
        for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                  "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm"):
            expected[f"model.layers.{block}.{m}.weight"] = scale
    edited = dict(model.named_parameters())
    assert edited.keys() == expected.keys()
    for n, scale in expected.items():
        assert torch.allclose(edited[n] - theta0[n], scale * (theta1[n] - theta0[n]), atol=1e-6), n
