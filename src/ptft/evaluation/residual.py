"""A decoder's residual stream at each prompt's last token, block by block, and the split of a
fine-tuned model's block updates against its BASE checkpoint's blocks (what TuCo and CKA read:
``ptft.evaluation.tuco``, ``ptft.evaluation.similarity``).

One forward pass of the model over the prompts, with a hook on each block. Prompts are batched
longest first and right-padded: a causal model's real positions never see the padding, and
batches of similar lengths waste little on it.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from ptft.checkpoints.names import BLOCK_LISTS

# the ModuleList of a decoder's blocks (``model.layers``, ``transformer.h``, ``gpt_neox.layers``)
_BLOCKS = re.compile(rf"(?:^|\.)(?:{'|'.join(BLOCK_LISTS)})$")


def blocks_of(model) -> torch.nn.ModuleList:
    found = [m for name, m in model.named_modules() if _BLOCKS.search(name) and isinstance(m, torch.nn.ModuleList)]
    if len(found) != 1:
        raise ValueError(f"expected the model's one list of transformer blocks, found {len(found)} "
                         f"({type(model).__name__})")
    return found[0]


@contextlib.contextmanager
def hooked(blocks: torch.nn.ModuleList, hook, with_kwargs: bool = False) -> Iterator[None]:
    """While open, ``hook(i)`` is a forward hook of block i."""
    handles = [block.register_forward_hook(hook(i), with_kwargs=with_kwargs) for i, block in enumerate(blocks)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class Trace:
    """Per block, the n x d residual stream after it at each prompt's last token (float32, on the
    CPU, in the prompts' order); with a BASE model, the sums over the blocks of the pre-training
    and fine-tuning components (n x d, float64)."""
    states: list[torch.Tensor]
    ptc: torch.Tensor | None = None
    ftc: torch.Tensor | None = None


def _output(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@contextlib.contextmanager
def _hooks(model, base, at: list) -> Iterator[dict[str, list]]:
    """While open, each forward pass of ``model`` records, per block, its output at the positions
    ``at[0]`` (rows, last positions) and, with ``base``, that block's PTC = f_base(x) and
    FTC = f(x) - f_base(x) there, f_base being BASE's block run on the same input x."""
    got: dict[str, list] = {"states": [], "ptc": [], "ftc": []}
    base_blocks = blocks_of(base) if base is not None else None

    def hook(index: int):
        def record(module, args, kwargs, output):
            y = _output(output)
            got["states"][index].append(y[at[0]].float().cpu())
            if base_blocks is None:
                return
            x = args[0] if args else kwargs["hidden_states"]
            shared = {k: v for k, v in kwargs.items() if k != "hidden_states"}
            y_base = _output(base_blocks[index](x, *args[1:], **shared))
            got["ptc"][index].append((y_base[at[0]] - x[at[0]]).double())
            got["ftc"][index].append((y[at[0]] - y_base[at[0]]).double())
        return record

    blocks = blocks_of(model)
    for key in got:
        got[key] = [[] for _ in blocks]
    with hooked(blocks, hook, with_kwargs=True):
        yield got


@torch.inference_mode()
def trace(model, ids: Sequence[Sequence[int]], batch_size: int, pad_id: int, base=None) -> Trace:
    """The residual stream of ``model`` over the prompts (token ids, already cut to its window)
    and, with ``base``, the components of TuCo."""
    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    at: list = [None]
    with _hooks(model, base, at) as got:
        for start in range(0, len(order), batch_size):
            chunk = [ids[i] for i in order[start:start + batch_size]]
            input_ids = torch.full((len(chunk), len(chunk[0])), pad_id, dtype=torch.long)
            mask = torch.zeros_like(input_ids)
            for i, x in enumerate(chunk):
                input_ids[i, :len(x)] = torch.tensor(x)
                mask[i, :len(x)] = 1
            at[0] = (torch.arange(len(chunk), device=device), torch.tensor([len(x) - 1 for x in chunk], device=device))
            model.get_decoder()(input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=False)
    back = torch.argsort(torch.tensor(order))

    def gathered(parts: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(parts)[back.to(parts[0].device)]

    states = [gathered(per_block) for per_block in got["states"]]
    if base is None:
        return Trace(states)
    return Trace(states, sum(gathered(p) for p in got["ptc"]), sum(gathered(p) for p in got["ftc"]))
