"""Loading a checkpoint (a Hugging Face causal-LM folder or Hub revision) as model + tokenizer.

Every checkpoint source (pre-trained here, local folders, Hub revisions) ends up here, so a broken
checkpoint gives the same clear error whatever its origin."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ptft.errors import CheckpointError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_tokenizer(path: str | Path, revision: str | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), revision=revision)
    if tok.pad_token is None:
        # Padding never reaches a loss or a score (attention masks and -100 labels cover it),
        # so reusing EOS is safe and keeps the vocabulary unchanged.
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(path: str | Path, *, revision: str | None = None, dtype: str = "float32",
                   device: str = "auto"):
    """(model in eval mode, tokenizer). ``path`` is a folder or a Hub repo id (with ``revision``)."""
    from transformers import AutoModelForCausalLM

    local = Path(path)
    if revision is None and not local.exists():
        raise CheckpointError(f"checkpoint folder {path} does not exist")
    if local.exists() and not (local / "config.json").exists():
        raise CheckpointError(f"{path} is not a Hugging Face checkpoint: no config.json in it")
    try:
        tokenizer = load_tokenizer(path, revision)
        model = AutoModelForCausalLM.from_pretrained(str(path), revision=revision, dtype=DTYPES[dtype])
    except (OSError, ValueError, RuntimeError) as err:
        where = f"{path}@{revision}" if revision else str(path)
        hint = " (offline? set HF_HUB_OFFLINE=0 or use a local mirror)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise CheckpointError(f"cannot load checkpoint {where}: {err}{hint}") from err
    model.to(pick_device(device))
    model.eval()
    return model, tokenizer
