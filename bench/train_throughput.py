"""Pre-training and fine-tuning throughput, and model FLOP utilisation against the matmul peak
measured in the same run; optionally the wall time of each stage of a finished study run.

    python bench/train_throughput.py [--preset tiny] [--steps 30] [--run runs/tiny] [--repeats 3]

Prints figures; asserts nothing. MFU = achieved model FLOP/s / measured fp32 matmul peak, with
model FLOPs per token = 6 * parameters + 12 * layers * hidden * sequence (attention scores).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch


def matmul_peak(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def flops_per_token(params: int, shape, seq_len: int) -> float:
    return 6 * params + 12 * shape.num_layers * shape.hidden_size * seq_len


def bench_pretrain(preset: str, steps: int, bf16: bool) -> tuple[float, int, object, int]:
    from ptft.config import load_config
    from ptft.training.pretrain import pretrain_series

    settings = dataclasses.replace(load_config(preset).checkpoints.pretrain, steps=steps, save_steps=[steps],
                                   warmup_steps=2, bf16=bf16)
    with tempfile.TemporaryDirectory() as tmp:
        result = pretrain_series(settings, tmp, seed=0, progress=False)
    return result.tokens_per_second, result.parameters, settings.model, settings.seq_len


def bench_finetune(preset: str, group_by_length: bool, checkpointing: bool, bf16: bool) -> tuple[float, int]:
    from ptft.checkpoints.loading import load_causal_lm
    from ptft.config import load_config
    from ptft.tasks import LoadRequest, get_task
    from ptft.training.args import FinetuneArgs
    from ptft.training.finetune import finetune
    from ptft.training.pretrain import pretrain_series

    config = load_config(preset)
    tc = config.tasks[0]
    task = get_task(tc.name)
    data = task.load(LoadRequest(None, config.seed, 160, 16, 16))
    with tempfile.TemporaryDirectory() as tmp:
        settings = dataclasses.replace(config.checkpoints.pretrain, steps=5, save_steps=[5], warmup_steps=1)
        checkpoint_dir = pretrain_series(settings, tmp, seed=0, progress=False).checkpoints[5]
        model, tok = load_causal_lm(checkpoint_dir)
        args = FinetuneArgs.from_settings(config.finetune, lr=config.finetune.learning_rates[0], seed=0, epochs=1,
                                          weight_decay=0.0, bf16=bf16, group_by_length=group_by_length,
                                          activation_checkpointing=checkpointing)
        _, result = finetune(model, tok, data.train, data.dev, task.formats["default"], args, progress=False)
    return result.tokens_per_second, sum(p.numel() for p in model.parameters())


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
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", type=Path, help="a finished run directory, for per-stage wall times")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    threads = torch.get_num_threads()
    peak = {"fp32": matmul_peak(), "bf16": matmul_peak(dtype=torch.bfloat16)}
    print(f"threads {threads}; matmul peak (2048^2, median): fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s")
    print("MFU is against the fp32 peak (and the bf16 peak for bf16 autocast rows)")

    def line(name: str, tps: float, fpt: float, precision: str, reference: float | None = None) -> None:
        achieved = tps * fpt
        ratio = f", {tps / reference:.2f}x the first row" if reference else ""
        print(f"  {name:58} {tps:7.0f} tokens/s  {achieved / 1e9:6.1f} GFLOP/s  MFU {achieved / peak['fp32']:5.1%} fp32"
              + (f" / {achieved / peak['bf16']:5.1%} bf16" if precision == "bf16" else "") + ratio)

    pre = {precision: [bench_pretrain(args.preset, args.steps, precision == "bf16") for _ in range(args.repeats)]
           for precision in ("fp32", "bf16")}
    params, shape, seq = pre["fp32"][0][1], pre["fp32"][0][2], pre["fp32"][0][3]
    fpt = flops_per_token(params, shape, seq)
    print(f"pre-training ({args.preset} model, {params / 1e6:.2f}M params, seq {seq}), medians of {args.repeats}:")
    base = statistics.median(p[0] for p in pre["fp32"])
    for precision, runs in pre.items():
        line(f"{precision}", statistics.median(p[0] for p in runs), fpt, precision, None if precision == "fp32" else base)

    print(f"fine-tuning (trl SFTTrainer, same model, 160 examples of the preset's first task), "
          f"medians of {args.repeats}:")
    variants = [("shuffled batches, activation checkpointing (trl's default)", False, True, False),
                ("length-grouped batches, activation checkpointing", True, True, False),
                ("length-grouped batches, no activation checkpointing", True, False, False),
                ("length-grouped, no checkpointing, bf16 autocast", True, False, True)]
    first = None
    for name, grouped, checkpointing, bf16 in variants:
        runs = [bench_finetune(args.preset, grouped, checkpointing, bf16) for _ in range(args.repeats)]
        ftps = statistics.median(r[0] for r in runs)
        line(name, ftps, flops_per_token(runs[0][1], shape, seq), "bf16" if bf16 else "fp32", first)
        first = first or ftps
    if args.run:
        stage_times(args.run)


if __name__ == "__main__":
    main()
