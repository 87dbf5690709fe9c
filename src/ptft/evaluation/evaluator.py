"""Every scoring method of the study behind one call: ``Evaluator.evaluate``.

Methods by task type (declared in :mod:`ptft.task_types`, which dispatches to the scorers here)
    classification   ``tokenprob`` (the paper's: one forward pass, next-token log-probability of
                     each label's first token), ``constrained`` (full label sequences by
                     log-likelihood, argmax) and ``free`` (greedy, at most 5 new tokens, stop at
                     a newline, normalised whole-word prefix match to a label).
    generation       ``greedy`` (the task's ``max_new_tokens``, stop at a newline or the format's
                     cue, Rouge-L F-measure with stemming).
    multiple_choice  ``loglik`` (``acc``: argmax of the summed log-likelihood of " choice";
                     ``acc_norm``: argmax after dividing by the choice's length in characters, as
                     lm-evaluation-harness 0.4.13 does: ``len(choice)``, the delimiter not counted).
                     ``metrics``/``scores`` also carry ``accuracy`` (= ``acc``) so that
                     ``out.metrics[task.metric]`` works for every task type.

Prompts are ``demo_prefix(fmt, demos) + fmt.render(example)`` (= ``build_prompt``) and every
label, choice or reference is the completion ``" " + text`` (``completion_text``), so training,
demonstrations and scoring share one token boundary.

Predictions rows (one per scored example) carry ``uid``, ``target``, ``prediction``, the
``demo_uids`` of the demonstrations, ``prompt``, the exact text that was tokenised (demos
included), and ``prompt_tokens_dropped``, how many of its first tokens were cut so that it fits
the window (0: the model saw all of it; ``notes`` count the cut prompts), and
per method: ``first_token_logprobs`` per label (tokenprob, with ``label_tokens``, the first-token
variants), ``label_loglikelihoods`` per label (constrained, with ``label_num_tokens``),
``loglikelihoods`` per choice (loglik), ``output`` (free) or ``score`` (greedy).

TokenProb variants
    Each label has up to two first tokens: the first token of ``" label"`` as the tokenizer writes
    it after this very prompt (the Constrained continuation's first token) and the first token of
    ``"label"`` written on its own. A label's score is the **logsumexp** of the log-probabilities
    of its distinct variants (the probability that the model starts the label either way).
    A label whose first token carries none of its characters (a bare space) or whose variants
    share a token with another label's cannot be told apart by one next-token distribution: the
    evaluation then falls back to Constrained, says so in ``notes`` and in ``method_used``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ptft.errors import PtftError
from ptft.evaluation.demos import check_demos_not_scored
from ptft.evaluation.matching import match_label, normalize
from ptft.evaluation.scoring import LMScorer
from ptft.evaluation.stats import MetricValue, metric_value
from ptft.task_types import ScoringRequest, get_task_type
from ptft.tasks.base import Example, Task, completion_text, demo_prefix

FREE_MAX_NEW_TOKENS = 5


class EvaluationError(PtftError):
    """An evaluation that cannot be run as asked (unknown method or format, empty set)."""


def checked_request(task: Task, eval_set_name: str, fmt_name: str, method: str | None) -> str:
    """The scoring method that evaluating ``task``'s set in this format uses (the task type's
    default when ``method`` is None), after refusing a method of another task type, a format and
    an eval set the task lacks: what `ptft eval` checks before it loads a model, and the evaluator
    before it scores."""
    kind = get_task_type(task.task_type)
    method = method or kind.default_method
    if method not in kind.methods:
        raise EvaluationError(f"task {task.name!r} is {task.task_type}: method must be one of "
                              f"{', '.join(kind.methods)}, not {method!r}")
    if fmt_name not in task.formats:
        raise EvaluationError(f"task {task.name!r} has no format {fmt_name!r}; it has {', '.join(task.formats)}")
    if eval_set_name not in [e.name for e in task.eval_sets]:
        raise EvaluationError(f"task {task.name!r} has no eval set {eval_set_name!r}; it has "
                              f"{', '.join(e.name for e in task.eval_sets)}")
    return method


@dataclass
class EvalOutcome:
    """The result of one evaluation: metrics with CIs, per-example scores and predictions."""

    task: str
    eval_set: str
    format: str
    method: str
    method_used: str
    shots: int
    metrics: dict[str, MetricValue]
    scores: dict[str, np.ndarray]
    predictions: list[dict]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    demo_uids: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-able description without the per-example arrays."""
        return {
            "task": self.task, "eval_set": self.eval_set, "format": self.format, "method": self.method,
            "method_used": self.method_used, "shots": self.shots, "demo_uids": list(self.demo_uids),
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()}, "notes": list(self.notes),
            "seconds": self.seconds,
        }


def _eos_ids(model, tokenizer) -> list[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None), tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return sorted(ids)


@dataclass(frozen=True)
class LabelRequests:
    """A classification set ready to score: its examples and label words, each prompt's tokens
    (cut to fit) with each label's continuation tokens, the prompt tokens each lost, and each
    example's gold label index (-1: none of the labels)."""

    examples: list
    labels: tuple[str, ...]
    ctx_ids: list
    cont_ids: list
    dropped: list[int]
    gold: list[int]


class Evaluator:
    """Scores one model on any task, eval set, format, demonstrations and method.

    ``batch_size`` counts sequences per forward pass; ``max_length`` defaults to the model's
    context window (contexts that do not fit are cut from the left, as lm-evaluation-harness
    does, and reported in ``notes``). The device is the model's."""

    def __init__(self, model, tokenizer, batch_size: int = 16, max_length: int | None = None,
                 reuse_prefix: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.scorer = LMScorer(model, tokenizer, batch_size=batch_size, max_length=max_length,
                               reuse_prefix=reuse_prefix)
        self.eos_ids = _eos_ids(model, tokenizer)
        self._rouge = None

    @property
    def batch_size(self) -> int:
        return self.scorer.batch_size

    @property
    def max_length(self) -> int:
        return self.scorer.max_length

    # ------------------------------------------------------------------ entry point
    def evaluate(self, task: Task, eval_set_name: str, examples: Sequence[Example], fmt_name: str,
                 demos: Sequence[Example] = (), method: str | None = None, seed: int = 0,
                 n_boot: int = 1000) -> EvalOutcome:
        start = time.perf_counter()
        kind = get_task_type(task.task_type)
        method = checked_request(task, eval_set_name, fmt_name, method)
        if not examples:
            raise EvaluationError(f"task {task.name!r}, eval set {eval_set_name!r}: no examples to score")
        check_demos_not_scored(demos, examples, where=f"{task.name}/{eval_set_name}")
        fmt = task.formats[fmt_name]
        prefix = demo_prefix(fmt, demos)
        queries = [fmt.render(ex) for ex in examples]
        prompts = [prefix + q for q in queries]
        notes: list[str] = []
        method_used, scores, preds = kind.scorer(
            self, ScoringRequest(task, eval_set_name, examples, prompts, fmt, method, notes))

        demo_uids = [d.uid for d in demos]
        for pred, prompt in zip(preds, prompts, strict=True):
            # the scorer's count (None from one that does not say), written after the prompt it describes
            dropped = pred.pop("prompt_tokens_dropped", None)
            pred["demo_uids"] = demo_uids
            pred["prompt"] = prompt
            pred["prompt_tokens_dropped"] = dropped
        if self.scorer.last_prefix_len:
            notes.append(f"shared prompt prefix of {self.scorer.last_prefix_len} tokens encoded once "
                         "and its KV cache reused")
        metrics = {name: metric_value(vals, seed, n_boot=n_boot) for name, vals in scores.items()}
        return EvalOutcome(
            task=task.name, eval_set=eval_set_name, format=fmt_name, method=method, method_used=method_used,
            shots=len(demos), metrics=metrics, scores=scores, predictions=preds, notes=notes,
            seconds=time.perf_counter() - start, demo_uids=demo_uids,
        )

    def gold_logliks(self, task: Task, eval_set_name: str, examples: Sequence[Example], fmt_name: str,
                     demos: Sequence[Example] = ()) -> tuple[np.ndarray, list[str]]:
        """Per example, the mean log-probability per token of its gold completion (" " + target)
        after the few-shot prompt, and notes: the probes' likelihood proxy, whatever the task type."""
        check_demos_not_scored(demos, examples, where=f"{task.name}/{eval_set_name}")
        fmt = task.formats[fmt_name]
        prefix = demo_prefix(fmt, demos)
        notes: list[str] = []
        ctx_ids, cont_ids = self.scorer.encode_pairs([prefix + fmt.render(ex) for ex in examples],
                                                     [[completion_text(ex.target)] for ex in examples])
        ctx_ids, _ = self._fit_for_scoring(ctx_ids, cont_ids, notes)
        lls = self.scorer.loglikelihoods(ctx_ids, cont_ids)
        return np.array([total / n_tokens for ((total, _, n_tokens),) in lls]), notes

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _fit(ctx: list[int], room: int) -> tuple[list[int], int]:
        """The context cut from the left to ``room`` tokens, and how many it lost."""
        room = max(room, 1)
        return ctx[-room:], max(len(ctx) - room, 0)

    def _fit_for_scoring(self, ctx_ids, cont_ids, notes) -> tuple[list[list[int]], list[int]]:
        """Cut contexts from the left so context + continuation - 1 fits the window (lm-eval's rule,
        applied with the example's longest continuation); with the tokens each lost."""
        out, dropped = [], []
        for ctx, conts in zip(ctx_ids, cont_ids):
            longest = max(len(c) for c in conts)
            if longest > self.max_length:
                raise EvaluationError(f"a continuation of {longest} tokens does not fit the model's "
                                      f"{self.max_length}-token window")
            fitted, lost = self._fit(ctx, self.max_length + 1 - longest)
            out.append(fitted)
            dropped.append(lost)
        if cut := sum(n > 0 for n in dropped):
            notes.append(f"{cut} prompt(s) longer than the {self.max_length}-token window were cut from the left")
        return out, dropped

    def _label_pairs(self, prompts, labels):
        ctx_ids, cont_ids = self.scorer.encode_pairs(prompts, [[completion_text(l) for l in labels]] * len(prompts))
        for i, conts in enumerate(cont_ids):
            for label, cont in zip(labels, conts):
                if not cont:
                    raise EvaluationError(f"label {label!r} tokenizes to nothing after prompt {i}")
        return ctx_ids, cont_ids

    # ------------------------------------------------------------------ scoring primitives (the task types' scorers call them)
    def _tokenprob_variants(self, labels, cont_ids) -> tuple[list[list[list[int]]] | None, str]:
        """Per example, per label: its distinct first-token variants; or None and the reason."""
        tok = self.tokenizer
        bare = tok([l.strip() for l in labels], add_special_tokens=False)["input_ids"]
        problems: list[str] = []
        variants_all = []
        for conts in cont_ids:
            per_label = []
            for label, cont, alone in zip(labels, conts, bare):
                vs = []
                for t in (cont[0], alone[0] if alone else None):
                    if t is None or t in vs:
                        continue
                    if not tok.decode([t]).strip():
                        if t == cont[0]:
                            problems.append(f"label {label!r}: its first token {tok.decode([t])!r} after the "
                                            "prompt carries none of its characters")
                        continue
                    vs.append(t)
                per_label.append(vs)
            for a in range(len(labels)):
                for b in range(a + 1, len(labels)):
                    shared = set(per_label[a]) & set(per_label[b])
                    if shared:
                        t = sorted(shared)[0]
                        problems.append(f"labels {labels[a]!r} and {labels[b]!r} share the first token "
                                        f"{tok.decode([t])!r}")
            if problems:
                return None, problems[0]
            variants_all.append(per_label)
        return variants_all, ""

    def label_requests(self, examples, prompts, labels, notes) -> LabelRequests:
        """The prompts tokenised and cut to fit with each label as a continuation (a note says how
        many were cut), once for whichever label scoring follows."""
        ctx_ids, cont_ids = self._label_pairs(prompts, labels)
        ctx_ids, dropped = self._fit_for_scoring(ctx_ids, cont_ids, notes)
        gold = [labels.index(ex.target) if ex.target in labels else -1 for ex in examples]
        return LabelRequests(list(examples), tuple(labels), ctx_ids, cont_ids, dropped, gold)

    def score_first_label_tokens(self, req: LabelRequests, notes):
        """The label whose first token (summed over the label's tokenisations) is most probable
        next: one forward pass per prompt. None, with a note, when first tokens cannot tell the
        labels apart (the caller scores the full sequences then)."""
        variants, reason = self._tokenprob_variants(req.labels, req.cont_ids)
        if variants is None:
            notes.append(f"tokenprob cannot separate the labels ({reason}); fell back to constrained")
            return None
        flat = [[t for vs in per_label for t in vs] for per_label in variants]
        lps = self.scorer.next_token_logprobs(req.ctx_ids, flat)
        preds, correct = [], np.zeros(len(req.examples))
        for i, (ex, per_label, lp) in enumerate(zip(req.examples, variants, lps)):
            scores, k = [], 0
            for vs in per_label:
                scores.append(float(np.logaddexp.reduce(lp[k : k + len(vs)])))
                k += len(vs)
            best = int(np.argmax(scores))
            correct[i] = float(best == req.gold[i])
            preds.append({
                "uid": ex.uid, "target": ex.target, "prediction": req.labels[best], "correct": bool(correct[i]),
                "first_token_logprobs": dict(zip(req.labels, scores)),
                "label_tokens": {l: [self.tokenizer.decode([t]) for t in vs] for l, vs in zip(req.labels, per_label)},
                "prompt_tokens_dropped": req.dropped[i],
            })
        return {"accuracy": correct}, preds

    def score_label_sequences(self, req: LabelRequests):
        """The label whose whole token sequence is most likely after the prompt."""
        lls = self.scorer.loglikelihoods(req.ctx_ids, req.cont_ids)
        preds, correct = [], np.zeros(len(req.examples))
        for i, (ex, per_label) in enumerate(zip(req.examples, lls)):
            scores = [s for s, _, _ in per_label]
            best = int(np.argmax(scores))
            correct[i] = float(best == req.gold[i])
            preds.append({
                "uid": ex.uid, "target": ex.target, "prediction": req.labels[best], "correct": bool(correct[i]),
                "label_loglikelihoods": dict(zip(req.labels, scores)),
                "label_num_tokens": dict(zip(req.labels, [n for _, _, n in per_label])),
                "prompt_tokens_dropped": req.dropped[i],
            })
        return {"accuracy": correct}, preds

    def _fit_for_generation(self, ctx_ids, max_new, notes) -> tuple[list[list[int]], list[int]]:
        fitted = [self._fit(ctx, self.max_length - max_new) for ctx in ctx_ids]
        dropped = [lost for _, lost in fitted]
        if cut := sum(n > 0 for n in dropped):
            notes.append(f"{cut} prompt(s) cut from the left to leave room for {max_new} new tokens "
                         f"in the {self.max_length}-token window")
        return [ctx for ctx, _ in fitted], dropped

    def score_free_answers(self, examples, prompts, labels, fmt, notes):
        ctx_ids, dropped = self._fit_for_generation(self.scorer.encode(prompts), FREE_MAX_NEW_TOKENS, notes)
        outputs = self.scorer.generate(ctx_ids, FREE_MAX_NEW_TOKENS, fmt.stop_sequences(), self.eos_ids)
        preds, correct = [], np.zeros(len(examples))
        unmatched = 0
        for i, (ex, (text, _)) in enumerate(zip(examples, outputs)):
            answer = match_label(text, labels)
            unmatched += answer is None
            correct[i] = float(answer == ex.target)
            preds.append({"uid": ex.uid, "target": ex.target, "output": text, "normalized": normalize(text),
                          "prediction": answer, "correct": bool(correct[i]), "prompt_tokens_dropped": dropped[i]})
        if unmatched:
            notes.append(f"free: {unmatched} of {len(examples)} outputs match no label (counted wrong)")
        return {"accuracy": correct}, preds

    def score_generations(self, examples, prompts, fmt, max_new, notes):
        if self._rouge is None:
            from rouge_score import rouge_scorer

            self._rouge = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        ctx_ids, dropped = self._fit_for_generation(self.scorer.encode(prompts), max_new, notes)
        outputs = self.scorer.generate(ctx_ids, max_new, fmt.stop_sequences(), self.eos_ids)
        preds, values = [], np.zeros(len(examples))
        for i, (ex, (text, stopped)) in enumerate(zip(examples, outputs)):
            prediction = text.strip()
            values[i] = self._rouge.score(ex.target, prediction)["rougeL"].fmeasure
            preds.append({"uid": ex.uid, "target": ex.target, "prediction": prediction, "stopped": stopped,
                          "score": float(values[i]), "prompt_tokens_dropped": dropped[i]})
        return {"rougeL": values}, preds

    def score_choices(self, examples, prompts, notes):
        for ex in examples:
            if not ex.choices:
                raise EvaluationError(f"multiple-choice example {ex.uid!r} has no choices")
        ctx_ids, cont_ids = self.scorer.encode_pairs(
            prompts, [[completion_text(c) for c in ex.choices] for ex in examples])
        ctx_ids, dropped = self._fit_for_scoring(ctx_ids, cont_ids, notes)
        lls = self.scorer.loglikelihoods(ctx_ids, cont_ids)
        acc, acc_norm = np.zeros(len(examples)), np.zeros(len(examples))
        preds = []
        for i, (ex, per_choice) in enumerate(zip(examples, lls)):
            ll = np.array([s for s, _, _ in per_choice])
            lengths = np.array([float(len(c)) for c in ex.choices])
            gold = ex.choices.index(ex.target) if ex.target in ex.choices else -1
            pred, pred_norm = int(np.argmax(ll)), int(np.argmax(ll / lengths))
            acc[i], acc_norm[i] = float(pred == gold), float(pred_norm == gold)
            preds.append({"uid": ex.uid, "target": ex.target, "choices": list(ex.choices),
                          "loglikelihoods": ll.tolist(), "prediction": ex.choices[pred],
                          "prediction_norm": ex.choices[pred_norm], "correct": bool(acc[i]),
                          "correct_norm": bool(acc_norm[i]), "prompt_tokens_dropped": dropped[i]})
        return {"acc": acc, "acc_norm": acc_norm, "accuracy": acc}, preds
