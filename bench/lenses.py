"""What the lenses that compare a fine-tuned model with its BASE checkpoint on data cost, beside
what scoring the same eval set costs anyway: TuCo, CKA per block, and one grafted variant (the
edit; its evaluation is one more scoring of the set).

    python bench/lenses.py [--model tiny|smollm2|DIR] [--examples 300] [--repeats 3] [--threads 2]

The checkpoint stands for BASE and a copy with every weight moved by 1 % noise for the fine-tuned
model (the costs do not depend on what the weights hold). The set: ``review_polarity``'s test
sentences in the Default format, zero-shot, scored with tokenprob as a study scores them. Figures
are medians of ``--repeats``; the ratio is each lens's time over the scoring's. Prints figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import torch
from methods import smollm2_checkpoint, tiny_checkpoint


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny, smollm2 or a checkpoint folder")
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from ptft.checkpoints.loading import load_causal_lm
    from ptft.evaluation import Evaluator
    from ptft.evaluation.grafting import apply_graft
    from ptft.evaluation.similarity import last_token_states, linear_cka
    from ptft.evaluation.tuco import tuco
    from ptft.tasks import LoadRequest, get_task

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    task = get_task("review_polarity")
    data = task.load(LoadRequest(None, 1234, 16, 16, args.examples))
    eval_set = task.in_domain[0].name
    examples = data.eval[eval_set]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = {"tiny": lambda: tiny_checkpoint(Path(tmp)), "smollm2": smollm2_checkpoint}.get(
            args.model, lambda: Path(args.model))()
        base, tok = load_causal_lm(checkpoint)
    tuned = copy.deepcopy(base)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in tuned.parameters():
            p.add_(0.01 * p.abs().mean() * torch.randn(p.shape, generator=generator))
    evaluator = Evaluator(tuned, tok, batch_size=args.batch_size)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    prompts = [p["prompt"] for p in evaluator.evaluate(task, eval_set, examples, "default", [], "tokenprob",
                                                        seed=0, n_boot=1).predictions]
    ids = [x[-evaluator.max_length:] for x in evaluator.scorer.encode(prompts)]
    theta0 = {n: p.detach().clone() for n, p in base.named_parameters()}
    theta1 = {n: p.detach().clone() for n, p in tuned.named_parameters()}
    graft_model = copy.deepcopy(tuned)

    def cka() -> None:
        for x, y in zip(last_token_states(tuned, ids, args.batch_size, pad),
                        last_token_states(base, ids, args.batch_size, pad)):
            linear_cka(x, y)

    jobs = {
        "scoring (tokenprob)": lambda: evaluator.evaluate(task, eval_set, examples, "default", [], "tokenprob",
                                                          seed=0, n_boot=1000),
        "TuCo": lambda: tuco(tuned, base, ids, args.batch_size, pad),
        "CKA, every block": cka,
        "graft 1 % (the edit)": lambda: apply_graft(graft_model, theta0, theta1, 1.0),
    }
    seconds = {name: statistics.median(timed(job) for _ in range(args.repeats)) for name, job in jobs.items()}
    params = sum(p.numel() for p in base.parameters())
    print(f"{args.model}: {params / 1e6:.1f}M parameters, {base.config.num_hidden_layers} blocks; {len(examples)} "
          f"{eval_set} prompts (zero-shot, Default); {args.threads} thread(s); medians of {args.repeats}")
    print(f"  {'':22}{'seconds':>10}{'x scoring':>11}")
    for name, value in seconds.items():
        print(f"  {name:22}{value:10.3f}{value / seconds['scoring (tokenprob)']:11.2f}")


if __name__ == "__main__":
    main()
