"""How a checkpoint names its parameters: which transformer block a weight belongs to, and its
module within the block. Fine-tuning methods choose weights by it (Half Fine-Tuning's halves), the
weight lenses and LiNeS group and scale them by it."""

from __future__ import annotations

import re

# what a decoder calls its list of transformer blocks: Llama/OLMo/Mistral ``layers``, GPT-2 ``h``,
# others ``blocks``; a block's parameters are named ``<list>.N.``
BLOCK_LISTS = ("layers", "h", "blocks")
_BLOCK = re.compile(rf"(?:^|\.)(?:{'|'.join(BLOCK_LISTS)})\.(\d+)\.")


def split_block(name: str) -> tuple[int | None, str]:
    """A parameter's 1-based block (None outside the blocks) and what its name says after the
    block index (``self_attn.q_proj.weight``; the whole name outside the blocks)."""
    m = _BLOCK.search(name)
    return (int(m.group(1)) + 1, name[m.end():]) if m else (None, name)


def block_of(name: str) -> int | None:
    """The 1-based block a parameter belongs to, None outside the blocks."""
    return split_block(name)[0]


def module_of(name: str) -> str:
    """A parameter's module with the model prefix and block index dropped: the name analyses
    group matrices by (``self_attn.q_proj`` in every block)."""
    block, rest = split_block(name.removesuffix(".weight"))
    return rest if block else rest.rsplit(".", 1)[-1]
