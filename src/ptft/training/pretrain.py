"""Pre-train a small Llama-architecture model from scratch and keep a series of checkpoints.

Few model families publish their pre-training checkpoints, so ptft makes its own series: a BPE
tokenizer trained on the corpus (``tokenizers``), a ``LlamaForCausalLM`` trained on random
windows of the tokenised corpus, and a standard Hugging Face folder saved at each scheduled step,
with the training-loss curve and the held-out loss per checkpoint.

Each step's batch is a pure function of (seed, step), so a run resumed from a saved checkpoint
(which keeps the optimizer state) continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ptft.training.args import ModelShape, PretrainSettings
from ptft.training.corpus import load_corpus, split_documents

EOS = "<|endoftext|>"
PAD = "<|pad|>"
TRAINER_STATE = "pretrain_state.pt"


def train_tokenizer(docs: list[str], vocab_size: int, max_len: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(docs, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, pad_token=PAD, bos_token=None,
                                   model_max_length=max_len)


def llama_config(shape: ModelShape, vocab_size: int, eos_token_id: int | None = None,
                 pad_token_id: int | None = None):
    """The architecture of the models ptft pre-trains."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=shape.hidden_size, num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads, num_key_value_heads=shape.num_heads,
        intermediate_size=shape.intermediate_size, max_position_embeddings=shape.max_seq_len,
        eos_token_id=eos_token_id, pad_token_id=pad_token_id, bos_token_id=None,
        tie_word_embeddings=True, rope_theta=10000.0,
    )


def build_model(shape: ModelShape, tokenizer, seed: int):
    from transformers import LlamaForCausalLM

    config = llama_config(shape, len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def tokenize_corpus(tokenizer, docs: list[str]) -> np.ndarray:
    # the fast backend directly: the corpus is one long stream, not model inputs, so the
    # model_max_length warning of the wrapper does not apply
    encodings = tokenizer.backend_tokenizer.encode_batch(docs, add_special_tokens=False)
    eos = tokenizer.eos_token_id
    return np.fromiter((t for enc in encodings for t in (*enc.ids, eos)), dtype=np.int32)


def batch_at(tokens: np.ndarray, seed: int, step: int, batch_size: int, seq_len: int) -> torch.Tensor:
    rng = np.random.default_rng([seed, step])
    starts = rng.integers(0, len(tokens) - seq_len - 1, size=batch_size)
    return torch.from_numpy(np.stack([tokens[s: s + seq_len + 1] for s in starts]).astype(np.int64))


def heldout_batches(tokens: np.ndarray, n_windows: int, seq_len: int, batch_size: int) -> list[torch.Tensor]:
    """Fixed, evenly spaced windows, identical for every checkpoint."""
    starts = np.linspace(0, len(tokens) - seq_len - 1, num=min(n_windows, max(1, len(tokens) // seq_len))).astype(int)
    windows = np.stack([tokens[s: s + seq_len + 1] for s in starts]).astype(np.int64)
    return [torch.from_numpy(windows[i: i + batch_size]) for i in range(0, len(windows), batch_size)]


def lm_loss(model, batch: torch.Tensor, bf16: bool) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16 and batch.device.type == "cpu"), \
         torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16 and batch.device.type == "cuda"):
        logits = model(input_ids=batch[:, :-1]).logits
    return torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten())


@torch.no_grad()
def heldout_loss(model, batches: list[torch.Tensor], bf16: bool) -> float:
    model.eval()
    total = sum(lm_loss(model, b, bf16).item() * len(b) for b in batches)
    model.train()
    return total / sum(len(b) for b in batches)


@dataclass
class PretrainResult:
    checkpoints: dict[int, Path]
    tokens_per_second: float
    parameters: int
    seconds: float


def pretrain_series(settings: PretrainSettings, out_dir: str | Path, seed: int = 0, *,
                    progress: bool = True) -> PretrainResult:
    """Pre-train and save ``out_dir/step{N}`` folders at the scheduled steps. Resumes from the last
    complete checkpoint found in ``out_dir``; returns every checkpoint of the schedule."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    schedule = settings.schedule()
    done = {s: out / f"step{s}" for s in schedule if (out / f"step{s}" / "config.json").exists()}
    if len(done) == len(schedule):
        return PretrainResult(done, 0.0, 0, 0.0)

    from transformers import PreTrainedTokenizerFast

    device = "cuda" if torch.cuda.is_available() else "cpu"
    docs = load_corpus(settings.corpus, settings.max_documents)
    train_docs, heldout_docs = split_documents(docs, settings.heldout_fraction)
    tok_dir = out / "tokenizer"
    if (tok_dir / "tokenizer.json").exists():
        tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir)
    else:
        tokenizer = train_tokenizer(train_docs, settings.model.vocab_size, settings.model.max_seq_len)
        tokenizer.save_pretrained(tok_dir)
    train_tokens = tokenize_corpus(tokenizer, train_docs)
    eval_batches = [b.to(device) for b in heldout_batches(
        tokenize_corpus(tokenizer, heldout_docs), settings.heldout_windows, settings.seq_len, settings.batch_size)]

    model = build_model(settings.model, tokenizer, seed).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:  # linear warm-up, cosine decay to 10 %
        if step < settings.warmup_steps:
            return settings.lr * (step + 1) / settings.warmup_steps
        progress_ = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        return settings.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_)))

    start = 0
    resumable = [s for s in sorted(done) if (done[s] / TRAINER_STATE).exists()]
    if resumable:
        start = resumable[-1]
        state = torch.load(done[start] / TRAINER_STATE, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])

    log_path = out / "loss.csv"
    log_rows = _read_log(log_path, below=start)
    model.train()
    t0 = time.perf_counter()
    bar = tqdm(range(start, settings.steps), desc="pre-train", unit="step", disable=not progress, initial=start,
               total=settings.steps)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        batch = batch_at(train_tokens, seed, step, settings.batch_size, settings.seq_len).to(device)
        loss = lm_loss(model, batch, settings.bf16)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pre-training loss became {loss.item()} at step {step + 1}; lower pretrain.lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        n = step + 1
        row = {"step": n, "train_loss": round(loss.item(), 5), "heldout_loss": ""}
        if n in schedule:
            row["heldout_loss"] = round(heldout_loss(model, eval_batches, settings.bf16), 5)
            _save_checkpoint(model, tokenizer, optimizer, out / f"step{n}", n, row["heldout_loss"], settings)
            done[n] = out / f"step{n}"
            bar.set_postfix(loss=f"{loss.item():.3f}", heldout=row["heldout_loss"])
        log_rows.append(row)
        if n in schedule or n % 50 == 0:
            _write_log(log_path, log_rows)
    seconds = time.perf_counter() - t0
    _write_log(log_path, log_rows)
    trained = settings.steps - start
    return PretrainResult(
        checkpoints={s: done[s] for s in schedule},
        tokens_per_second=trained * settings.batch_size * settings.seq_len / seconds if seconds else 0.0,
        parameters=sum(p.numel() for p in model.parameters()),
        seconds=seconds,
    )


def _save_checkpoint(model, tokenizer, optimizer, path: Path, step: int, heldout: float, settings) -> None:
    """Write to a temporary folder and rename, so a crash never leaves a half-written checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, tmp / TRAINER_STATE)
    (tmp / "ptft_checkpoint.json").write_text(json.dumps(
        {"step": step, "heldout_loss": heldout, "settings": asdict(settings)}, indent=1, default=str))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def _read_log(path: Path, below: int) -> list[dict]:
    if not path.exists() or below == 0:
        return []
    with open(path, newline="") as f:
        return [r for r in csv.DictReader(f) if int(r["step"]) <= below]


def _write_log(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["step", "train_loss", "heldout_loss"])
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
