"""Loading a checkpoint (a Hugging Face causal-LM folder or Hub revision) as model + tokenizer.

Every checkpoint source (pre-trained here, local folders, Hub revisions) ends up here, so a broken
checkpoint gives the same clear error whatever its origin."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import torch

from ptft.errors import CheckpointError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def pick_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def fine_tuning_attention(device: str, half_precision: bool) -> str:
    """The attention kernels fine-tuning runs with: FlashAttention 2 on a CUDA GPU where the
    ``flash-attn`` package is installed and training computes in bf16 or fp16 (its kernels take
    nothing else), SDPA otherwise. Packed batches need no padding under FlashAttention's
    variable-length kernels; SDPA builds a block-diagonal mask per row instead (ptft.training.packing).
    Evaluation always runs on SDPA, whose 4-D masks its prefix-sharing scorer needs."""
    flash = (pick_device(device).startswith("cuda") and half_precision
             and importlib.util.find_spec("flash_attn") is not None)
    return "flash_attention_2" if flash else "sdpa"


def load_tokenizer(path: str | Path, revision: str | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), revision=revision)
    if tok.pad_token is None:
        # Padding never reaches a loss or a score (attention masks and -100 labels cover it),
        # so reusing EOS is safe and keeps the vocabulary unchanged.
        tok.pad_token = tok.eos_token
    return tok


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def check_checkpoint(path: str | Path, revision: str | None = None) -> None:
    """Refuse, without loading any weights, what ptft cannot use as a causal LM: a missing folder, no
    config.json, an architecture that is not a causal LM (a ``BertForMaskedLM`` would be scored,
    bidirectionally, as if it were one), no tokenizer, no weights or a truncated safetensors file.
    A Hub checkpoint is checked on its config.json when it can be fetched (the load reports the rest)."""
    if revision is not None:
        try:
            from huggingface_hub import hf_hub_download

            config_file = Path(hf_hub_download(str(path), "config.json", revision=revision))
        except Exception:  # offline, gated, no such repo: the load itself says which
            return
        _check_causal(json.loads(config_file.read_text(encoding="utf-8")), f"{path}@{revision}")
        return
    folder = Path(path)
    if not folder.exists():
        raise CheckpointError(f"checkpoint folder {path} does not exist")
    if not folder.is_dir():
        raise CheckpointError(f"{path} is a file; a checkpoint is a folder (config.json, weights, tokenizer)")
    if not (folder / "config.json").exists():
        raise CheckpointError(f"{path} is not a Hugging Face checkpoint: no config.json in it")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"cannot load checkpoint {path}: {folder / 'config.json'} is not valid JSON "
                              f"({err})") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"cannot load checkpoint {path}: {folder / 'config.json'} is not a JSON object")
    _check_causal(config, str(path))
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise CheckpointError(f"{path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save it next to the "
                              "weights with tokenizer.save_pretrained(folder)")
    if not any((folder / name).exists() for name in WEIGHT_FILES):
        raise CheckpointError(f"{path} has no weights (none of {', '.join(WEIGHT_FILES)})")
    for file in sorted(folder.glob("*.safetensors")):
        _check_safetensors(file)


def _check_causal(config: dict, where: str) -> None:
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    model_type = config.get("model_type")
    architectures = [a for a in config.get("architectures") or [] if isinstance(a, str)]
    described = f"{'/'.join(architectures) or 'a model'} (model_type {model_type!r})"
    advice = ("ptft fine-tunes and scores causal (decoder-only) language models: give a checkpoint that "
              "AutoModelForCausalLM loads as trained, e.g. Llama, OLMo, Pythia (GPT-NeoX), GPT-2")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise CheckpointError(f"{where} is {described}, not a causal language model; {advice}")
    causal_classes = {c for v in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values() for c in ([v] if isinstance(v, str) else v)}
    others = [a for a in architectures if a not in causal_classes and not a.endswith(("ForCausalLM", "LMHeadModel"))]
    if others:
        raise CheckpointError(f"{where} is {described}: {others[0]} is not a causal language model; {advice}")
    if model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not config.get("is_decoder"):
        raise CheckpointError(f"{where} is {described}, a bidirectional encoder not saved as a decoder "
                              f"(is_decoder is not true); {advice}")


def _check_safetensors(file: Path) -> None:
    """The header's tensor offsets must lie within the file: a copy cut short fails here, by name."""
    size = file.stat().st_size
    problem = None
    with open(file, "rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            problem = f"{size} bytes, too short for its header"
        else:
            try:
                header = json.loads(f.read(n))
                end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
            except (ValueError, KeyError, TypeError, IndexError):
                problem = "its header is not valid safetensors JSON"
            else:
                if 8 + n + end > size:
                    problem = f"{size} bytes where its header describes {8 + n + end}"
    if problem:
        raise CheckpointError(f"{file} is truncated or damaged ({problem}); copy or download it again")


def load_causal_lm(path: str | Path, *, revision: str | None = None, dtype: str = "float32",
                   device: str = "auto"):
    """(model in eval mode, tokenizer). ``path`` is a folder or a Hub repo id (with ``revision``)."""
    from transformers import AutoModelForCausalLM

    check_checkpoint(path, revision)
    where = f"{path}@{revision}" if revision else str(path)
    hint = (" (offline? set HF_HUB_OFFLINE=0 or use a local mirror)"
            if revision is not None and os.environ.get("HF_HUB_OFFLINE") else "")
    try:
        tokenizer = load_tokenizer(path, revision)
    except (OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"cannot load the tokenizer of {where}: {_one_line(err)}{hint}") from err
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), revision=revision, dtype=DTYPES[dtype])
    except Exception as err:  # OSError, ValueError, safetensors' own error type...
        raise CheckpointError(f"cannot load checkpoint {where}: {_one_line(err)}{hint}") from err
    model.to(pick_device(device))
    model.eval()
    return model, tokenizer


def _one_line(err: BaseException) -> str:
    """transformers' messages span lines (numbered lists of what it tried); the CLI prints one."""
    return " ".join(str(err).split())
