"""The evaluation engine: every scoring method of the study, exact and batch-invariant.

>>> demos = select_demos(data.train, k=4, seed=0)
>>> ev = Evaluator(model, tokenizer, batch_size=16)
>>> out = ev.evaluate(task, "mnli_m", data.eval["mnli_m"], "default", demos, "tokenprob", seed=0)
>>> out.metrics["accuracy"]            # MetricValue(value, ci_low, ci_high, n)
"""

from ptft.evaluation.demos import DemoError, check_demos_not_scored, select_demos
from ptft.evaluation.evaluator import EvalOutcome, EvaluationError, Evaluator, checked_request
from ptft.evaluation.matching import match_label, normalize
from ptft.evaluation.scoring import LMScorer
from ptft.evaluation.stats import MetricValue, bootstrap_ci, metric_value, paired_bootstrap

__all__ = [
    "DemoError", "EvalOutcome", "EvaluationError", "Evaluator", "LMScorer", "checked_request",
    "MetricValue", "bootstrap_ci", "check_demos_not_scored", "match_label", "metric_value", "normalize",
    "paired_bootstrap", "select_demos",
]
