"""Weight-space lenses of a fine-tuned model against its BASE checkpoint, and the LiNeS edit.

Both read two state dicts with the same names, W0 (BASE) and W1 (fine-tuned), and no data
(definitions: docs/method.md, "Weight-space lenses").

Lenses, per 2-D weight matrix (blocks' attention and MLP projections, the embeddings and an untied
head; norms and biases are 1-D and excluded):
- relative change ||dW||_F / ||W0||_F, dW = W1 - W0;
- effective rank of dW: the smallest count of singular values whose squares reach 90 % of
  ||dW||_F^2 (0 for an unchanged matrix);
- intruder dimensions: of the top-k left singular vectors of W1, those whose largest |cos| with
  the left singular vectors of W0 (the min(rows, cols) of its thin SVD) is below epsilon.

SVDs run batched over the matrices of one shape, on the weights' device, in chunks that bound the
memory a stack takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ptft.checkpoints.names import block_of, module_of

# the share of ||dW||_F^2 the effective rank's singular values reach (Biderman et al. 2024)
RANK_SHARE = 0.9

# matrices stacked into one batched SVD at most (float32 elements: 2**27 is 512 MiB per copy)
_CHUNK_ELEMENTS = 1 << 27


@dataclass(frozen=True)
class MatrixLens:
    """The lenses of one weight matrix. ``layer`` is the 1-based block, 0 outside the blocks;
    ``module`` the matrix's name with its block index dropped (``self_attn.q_proj``,
    ``embed_tokens``)."""
    name: str
    module: str
    layer: int
    rows: int
    cols: int
    relative_change: float
    effective_rank: int
    intruders: int


def lens_matrices(state: Mapping[str, "torch.Tensor"]) -> list[str]:
    """The names of the 2-D weights the lenses cover, in the given order. Pass
    ``dict(model.named_parameters())``: it lists a head tied to the embeddings once."""
    return [k for k, v in state.items() if v.ndim == 2 and k.endswith("weight")]


def effective_rank(singular_values: "torch.Tensor", share: float = RANK_SHARE) -> "torch.Tensor":
    """Per row of a (batch, r) tensor of singular values in descending order: the smallest count
    whose squares sum to ``share`` of the total (0 where all are 0)."""
    import torch

    sq = singular_values.double() ** 2
    total = sq.sum(-1, keepdim=True)
    cumulative = sq.cumsum(-1)
    # the last singular value always reaches the total; rounding must not let it fall short
    reached = cumulative >= share * total * (1 - 1e-12)
    count = torch.argmax(reached.to(torch.int8), dim=-1) + 1
    return torch.where(total.squeeze(-1) > 0, count, torch.zeros_like(count))


def intruder_counts(u0: "torch.Tensor", u1_top: "torch.Tensor", epsilon: float) -> "torch.Tensor":
    """Per matrix of a batch: how many columns of ``u1_top`` (batch, m, k) have max |cos| below
    ``epsilon`` with every column of ``u0`` (batch, m, r). Singular vectors have unit norm, so
    the cosine is their dot product."""
    cos = (u1_top.transpose(-2, -1) @ u0).abs().amax(-1)
    return (cos < epsilon).sum(-1)


def coarser_dtype(a: "torch.dtype", b: "torch.dtype") -> "torch.dtype":
    """The dtype with the fewer mantissa bits. Kept weights reused at ``checkpoints.dtype`` bfloat16
    are compared with a float32 BASE: unless BASE is rounded alike, bfloat16's rounding of a matrix
    fine-tuning never touched reads as a change of full effective rank."""
    import torch

    return a if torch.finfo(a).eps >= torch.finfo(b).eps else b


def weight_lenses(w0: Mapping[str, "torch.Tensor"], w1: Mapping[str, "torch.Tensor"], k: int = 10,
                  epsilon: float = 0.5) -> list[MatrixLens]:
    """The lenses of every matrix of :func:`lens_matrices` (``w0``'s names; ``w1`` must hold each),
    computed on ``w1``'s device in float32 after rounding both to the coarser of their two dtypes
    (:func:`coarser_dtype`)."""
    import torch

    names = lens_matrices(w0)
    missing = [n for n in names if n not in w1]
    if missing:
        raise KeyError(f"the fine-tuned weights lack {missing[0]} (and {len(missing) - 1} more)")
    by_shape: dict[tuple[int, int], list[str]] = {}
    for n in names:
        by_shape.setdefault(tuple(w0[n].shape), []).append(n)
    out: dict[str, MatrixLens] = {}
    with torch.no_grad():
        for (rows, cols), group in by_shape.items():
            per_chunk = max(1, _CHUNK_ELEMENTS // (rows * cols))
            for start in range(0, len(group), per_chunk):
                chunk = group[start:start + per_chunk]
                device = w1[chunk[0]].device
                common = coarser_dtype(w0[chunk[0]].dtype, w1[chunk[0]].dtype)
                a = torch.stack([w0[n].detach().to(device, common).float() for n in chunk])
                b = torch.stack([w1[n].detach().to(device, common).float() for n in chunk])
                delta = b - a
                rel = torch.linalg.matrix_norm(delta) / torch.linalg.matrix_norm(a)
                ranks = effective_rank(torch.linalg.svdvals(delta))
                u0 = torch.linalg.svd(a, full_matrices=False).U
                u1 = torch.linalg.svd(b, full_matrices=False).U[..., :k]
                intruders = intruder_counts(u0, u1, epsilon)
                del a, b, delta, u0, u1
                for i, n in enumerate(chunk):
                    out[n] = MatrixLens(n, module_of(n), block_of(n) or 0, rows, cols, float(rel[i]),
                                        int(ranks[i]), int(intruders[i]))
    return [out[n] for n in names]


def lines_scale(layer: int, num_blocks: int, alpha: float, beta: float) -> float:
    """LiNeS's lambda(l) = alpha + beta (l - 1)/(L - 1) for block l of L (1-based); a one-block
    model has no depth to scale along and takes alpha."""
    return alpha + beta * ((layer - 1) / (num_blocks - 1) if num_blocks > 1 else 0.0)


def lines_scales(names: list[str], alpha: float, beta: float) -> dict[str, float]:
    """lambda for every parameter: a block's parameters (norms included) take their block's; every
    parameter outside the blocks (the embeddings, the final norm, an untied head) takes alpha, as
    the reference implementation's ``LiNeS_scaling`` does (wang-kee/LiNeS, src/eval/eval_utils.py:
    ``layer_scalings_dict.get(k, alpha)``, "scale with alpha for layers outside residual blocks")."""
    blocks = {n: block_of(n) for n in names}
    num_blocks = max((b for b in blocks.values() if b), default=0)
    return {n: lines_scale(blocks[n], num_blocks, alpha, beta) if blocks[n] else alpha for n in names}


def apply_lines(model, base: Mapping[str, "torch.Tensor"], alpha: float, beta: float) -> dict[str, float]:
    """Edit ``model`` in place to theta0 + lambda(l) (theta1 - theta0), ``base`` holding theta0 by
    parameter name (tied parameters are listed once by ``named_parameters`` and edited once).
    Returns lambda per parameter."""
    import torch

    params = dict(model.named_parameters())
    scales = lines_scales(list(params), alpha, beta)
    with torch.no_grad():
        for n, p in params.items():
            # lerp computes end - (1 - w)(end - start) for w >= 0.5: lambda 1 gives theta1 and lambda 0
            # gives theta0 bit for bit
            p.copy_(torch.lerp(base[n].to(p.device, p.dtype), p, scales[n]))
    return scales
