"""Evaluation throughput: ptft's engine against lm-evaluation-harness (HF backend), same model,
same examples, same prompts; and ptft's cost of a 4-shot evaluation against a 0-shot one.

    python bench/eval_throughput.py [--model DIR] [--reps 3] [--n-mc 300] [--n-cls 200]
                                    [--batch-size 16] [--device cpu] [--threads N]

Sets (real data shipped with ptft, through its registered tasks):
  MC   ``mc_arc_easy`` (ARC-Easy, mostly 4 choices), 0-shot and 4-shot (the study's multiple-choice
       suite is 4-shot): ptft ``loglik`` vs lm-eval ``multiple_choice``.
  CLS  ``sentiment`` (positive / negative / neutral), 4-shot: ptft ``tokenprob`` and
       ``constrained`` vs lm-eval ``multiple_choice`` over the label words (= Constrained). lm-eval
       (and MC 4-shot) gets the very same 4-shot prompts as its documents (demos baked into ``doc_to_text``,
       ``num_fewshot: 0``), so both tools score identical token sequences.
``--toy`` builds the sets from the tests' toy sentences instead.

Timing: each figure is the median over ``--reps`` runs of one whole evaluation. ptft: one
``Evaluator.evaluate`` call (tokenization, scoring, metrics with a 1000-resample bootstrap).
lm-eval: one ``simple_evaluate`` call on an already loaded ``HFLM`` (building the task and its
requests, scoring, metrics), and separately the time spent inside ``HFLM.loglikelihood`` alone
(its model work; the most favourable view of lm-eval). Model loading is excluded for both.
Nothing is asserted: the script prints figures, ratios and whether accuracies are identical.

The default model is a small Llama pre-trained here with ``ptft.training.pretrain`` (cached
under ``$PTFT_CACHE/bench-eval-model``), with a 1,024-token window so 4-shot prompts fit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ptft.evaluation import Evaluator, select_demos  # noqa: E402
from lm_eval_tasks import write_lm_eval_task  # noqa: E402
from ptft.tasks.base import LoadRequest, build_prompt  # noqa: E402


def default_model() -> Path:
    from ptft.sources import cache_dir
    from ptft.training.args import ModelShape, PretrainSettings
    from ptft.training.pretrain import pretrain_series

    settings = PretrainSettings(
        model=ModelShape(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=768, vocab_size=4096,
                         max_seq_len=1024),
        steps=120, batch_size=8, seq_len=128, lr=3e-3, warmup_steps=10, num_checkpoints=2, max_documents=3000,
        heldout_windows=16,
    )
    out = cache_dir() / "bench-eval-model"
    result = pretrain_series(settings, out, seed=0, progress=False)
    return result.checkpoints[max(result.checkpoints)]


def load_sets(n_mc: int, n_cls: int, toy: bool):
    if not toy:
        from ptft.tasks import get_task

        mc_task = get_task("mc_arc_easy")
        mc = mc_task.load(LoadRequest(data_dir=None, seed=0, n_eval=n_mc))
        cls_task = get_task("sentiment")
        cls = cls_task.load(LoadRequest(data_dir=None, seed=0, n_train=2000, n_eval=n_cls))
        mc_set, cls_set = mc_task.in_domain[0].name, cls_task.in_domain[0].name
        return (mc_task, mc_set, mc.eval[mc_set][:n_mc], mc.train), \
               (cls_task, cls_set, cls.eval[cls_set][:n_cls], cls.train)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluation"))
    import conftest as toys  # the tests' toy tasks

    mc_task, mc = toys.make_mc_task(n_eval=n_mc)
    cls_task, cls = toys.make_classification_task(labels=("yes", "no", "maybe"), n_train=40, n_eval=n_cls)
    return (mc_task, "test", mc.eval["test"], mc.train), (cls_task, "test", cls.eval["test"], cls.train)


def median_time(fn, reps: int):
    times, result = [], None
    for _ in range(reps):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="checkpoint folder (default: pre-train/reuse a small model)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n-mc", type=int, default=300)
    ap.add_argument("--n-cls", type=int, default=200)
    ap.add_argument("--shots", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    ap.add_argument("--toy", action="store_true", help="use the tests' toy sentences instead of the shipped data")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from ptft.checkpoints.loading import load_causal_lm

    model_dir = Path(args.model) if args.model else default_model()
    model, tok = load_causal_lm(model_dir, device=args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model {model_dir} ({n_params / 1e6:.1f}M parameters, window {model.config.max_position_embeddings}), "
          f"device {args.device}, torch threads {torch.get_num_threads()}, batch size {args.batch_size}, "
          f"{args.reps} repetitions (medians)")

    (mc_task, mc_set, mc_rows, mc_train), (cls_task, cls_set, cls_rows, cls_train) = load_sets(
        args.n_mc, args.n_cls, args.toy)
    demos = select_demos(cls_train, args.shots, seed=0)
    mc_demos = select_demos(mc_train, args.shots, seed=0)
    labels = tuple(cls_task.labels_for(cls_set))
    fmt = "default"

    tmp = Path(tempfile.mkdtemp(prefix="ptft-bench-"))
    write_lm_eval_task(tmp, "bench_mc", [
        {"prompt": mc_task.formats[fmt].render(ex), "choices": list(ex.choices), "gold": ex.choices.index(ex.target)}
        for ex in mc_rows])
    write_lm_eval_task(tmp, "bench_mc_k", [
        {"prompt": build_prompt(mc_task.formats[fmt], ex, mc_demos), "choices": list(ex.choices),
         "gold": ex.choices.index(ex.target)} for ex in mc_rows])
    write_lm_eval_task(tmp, "bench_cls", [
        {"prompt": build_prompt(cls_task.formats[fmt], ex, demos), "choices": list(labels),
         "gold": labels.index(ex.target)} for ex in cls_rows])
    manager = TaskManager(include_path=str(tmp))

    class TimedHFLM(HFLM):
        ll_seconds = 0.0

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            t = time.perf_counter()
            try:
                return super().loglikelihood(requests, disable_tqdm=True)
            finally:
                self.ll_seconds += time.perf_counter() - t

    lm = TimedHFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size, device=args.device)

    def run_lme(task_name):
        lm.ll_seconds = 0.0
        t = time.perf_counter()
        res = lm_eval.simple_evaluate(model=lm, tasks=[task_name], task_manager=manager, num_fewshot=0,
                                      log_samples=True, verbosity="ERROR")
        total = time.perf_counter() - t
        samples = sorted(res["samples"][task_name], key=lambda s: s["doc_id"])
        return samples, total, lm.ll_seconds

    def lme_medians(task_name):
        run_lme(task_name)  # warm-up (dataset cache, first-call overheads)
        runs = [run_lme(task_name) for _ in range(args.reps)]
        return runs[0][0], statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs)

    ev = Evaluator(model, tok, batch_size=args.batch_size)
    rows = []

    def report(label, n, ours_s, lme_s, lme_ll_s, same):
        rows.append((label, n, ours_s, lme_s, lme_ll_s, same))

    # ---------------- multiple choice, 0-shot and k-shot
    mc_costs = {}
    for k, lme_name in ((0, "bench_mc"), (args.shots, "bench_mc_k")):
        shots = mc_demos[:k]
        samples, lme_t, lme_ll = lme_medians(lme_name)
        ev.evaluate(mc_task, mc_set, mc_rows[:16], fmt, shots, "loglik")  # warm-up
        ours_t, _, ours = median_time(lambda: ev.evaluate(mc_task, mc_set, mc_rows, fmt, shots, "loglik"), args.reps)
        mc_costs[k] = (ours_t, ours)
        same = (np.array_equal(ours.scores["acc"], [s["acc"] for s in samples])
                and np.array_equal(ours.scores["acc_norm"], [s["acc_norm"] for s in samples]))
        max_diff = max(float(np.max(np.abs(np.array(p["loglikelihoods"]) - [float(r[0]) for r in s["filtered_resps"]])))
                       for p, s in zip(ours.predictions, samples))
        report(f"MC {mc_task.name} {k}-shot loglik (acc {ours.metrics['acc'].value:.3f}, "
               f"acc_norm {ours.metrics['acc_norm'].value:.3f}; max |dLL| {max_diff:.1e})",
               len(mc_rows), ours_t, lme_t, lme_ll, same)

    # ---------------- classification, k-shot
    samples, lme_t, lme_ll = lme_medians("bench_cls")
    k_costs = {}
    for method in ("tokenprob", "constrained"):
        ev.evaluate(cls_task, cls_set, cls_rows[:16], fmt, demos, method)
        t_k, _, out_k = median_time(lambda: ev.evaluate(cls_task, cls_set, cls_rows, fmt, demos, method), args.reps)
        t_0, _, out_0 = median_time(lambda: ev.evaluate(cls_task, cls_set, cls_rows, fmt, [], method), args.reps)
        k_costs[method] = (t_k, t_0, out_k, out_0)
        if method == "constrained":
            same = np.array_equal(out_k.scores["accuracy"], [s["acc"] for s in samples])
            max_diff = max(float(np.max(np.abs(np.array([p["label_loglikelihoods"][l] for l in labels])
                                               - [float(r[0]) for r in s["filtered_resps"]])))
                           for p, s in zip(out_k.predictions, samples))
            extra = f"; max |dLL| {max_diff:.1e}"
        else:
            same, extra = None, ""
        report(f"CLS {cls_task.name} {args.shots}-shot {out_k.method_used} (acc "
               f"{out_k.metrics['accuracy'].value:.3f}{extra})", len(cls_rows), t_k, lme_t, lme_ll, same)

    print()
    print(f"{'evaluation':<92} {'n':>4} {'ptft ex/s':>10} {'lm-eval ex/s':>13} {'speed-up':>9} "
          f"{'vs lm-eval model time':>22}  same accuracy")
    for label, n, ours_s, lme_s, lme_ll_s, same in rows:
        print(f"{label:<92} {n:>4} {n / ours_s:>10.1f} {n / lme_s:>13.1f} {lme_s / ours_s:>8.2f}x "
              f"{lme_ll_s / ours_s:>21.2f}x  {'-' if same is None else ('yes' if same else 'NO')}")
    print()
    print(f"ptft cost of {args.shots}-shot vs 0-shot (same examples):")
    (t_0, _), (t_k, out_k) = mc_costs[0], mc_costs[args.shots]
    prefix_note = next((n for n in out_k.notes if "prefix" in n), "no shared prefix")
    print(f"  {mc_task.name} loglik  {args.shots}-shot {t_k:6.2f} s   0-shot {t_0:6.2f} s   ratio {t_k / t_0:5.2f}x"
          f"   ({prefix_note})")
    for method, (t_k, t_0, out_k, out_0) in k_costs.items():
        prefix_note = next((n for n in out_k.notes if "prefix" in n), "no shared prefix")
        print(f"  {cls_task.name} {method:<12} {args.shots}-shot {t_k:6.2f} s   0-shot {t_0:6.2f} s   ratio {t_k / t_0:5.2f}x   ({prefix_note})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
