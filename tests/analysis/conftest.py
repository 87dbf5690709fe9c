"""A hand-made results table whose analyses are worked out by hand in the tests.

Two tasks, three checkpoints (steps 1k, 101k, 201k: 1 unit of 100k steps apart):
- nli (classification): in-domain nli_val, out-of-domain nli_ood;
- summ (generation): in-domain summ_test, out-of-domain summ_ood.

Headline slice (format default, 4 shots, selected lr, tokenprob/greedy):

    set        BASE c1 c2 c3     FT nli c1 c2 c3     FT summ c1 c2 c3
    nli_val    .40 .50 .60       .70 .80 .90         .36 .50 .66
    summ_test  .00 .10 .10       .00 .05 .02         .20 .30 .40
    nli_ood    .50 .50 .50       .55 .60 .45
    summ_ood   .20 .20 .20                           .22 .18 .20

BASE summ_test at c1 is 0: the ratio guard must leave it out, and count it.

Rows that the headline slice must ignore: 0-shot rows, the "io" format (used by format
sensitivity only), a constrained-method row, an unselected learning rate for nli, and two other
states of the fine-tuned nli models: half way through their training, and an edited ("lines") one.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from ptft.store import EXPORT_COLUMNS

STEPS = {"c1": 1000, "c2": 101000, "c3": 201000}
SETS = {  # eval_set: (eval_task, task_type, domain, metric, method)
    "nli_val": ("nli", "classification", "in", "accuracy", "tokenprob"),
    "nli_ood": ("nli", "classification", "out", "accuracy", "tokenprob"),
    "summ_test": ("summ", "generation", "in", "rougeL", "greedy"),
    "summ_ood": ("summ", "generation", "out", "rougeL", "greedy"),
    "arc": ("arc", "multiple_choice", "in", "acc", "loglik"),
}
LR = {"": None, "nli": 2e-6, "summ": 2e-7, "instruct": 2e-6}


def row(checkpoint: str, train_task: str, eval_set: str, value: float, *, fmt: str = "default", shots: int = 4,
        method: str | None = None, metric: str | None = None, lr: float | None = None, selected: bool = True,
        ci: float | None = 0.02, n: int = 200, ft_fraction: float | None = None, variant: str | None = None,
        ft_step: int | None = None) -> dict:
    eval_task, task_type, domain, default_metric, default_method = SETS[eval_set]
    return dict(checkpoint=checkpoint, step=STEPS[checkpoint], train_task=train_task, eval_set=eval_set,
                eval_task=eval_task, task_type=task_type, domain=domain, format=fmt, shots=shots,
                metric=metric or default_metric, value=value, lr=lr if lr is not None else LR[train_task],
                seed=None if train_task == "" else 0, method=method or default_method,
                ci_low=None if ci is None else value - ci, ci_high=None if ci is None else value + ci,
                n=n, selected=selected, ft_fraction=ft_fraction, variant=variant, ft_step=ft_step)


def series(train_task: str, eval_set: str, values: tuple[float, float, float], **kw) -> list[dict]:
    return [row(c, train_task, eval_set, v, **kw) for c, v in zip(STEPS, values)]


def headline_rows() -> list[dict]:
    return (series("", "nli_val", (0.40, 0.50, 0.60))
            + series("", "summ_test", (0.00, 0.10, 0.10), ci=0.10)
            + series("", "nli_ood", (0.50, 0.50, 0.50))
            + series("", "summ_ood", (0.20, 0.20, 0.20))
            + series("nli", "nli_val", (0.70, 0.80, 0.90))
            + series("nli", "summ_test", (0.00, 0.05, 0.02))
            + series("nli", "nli_ood", (0.55, 0.60, 0.45))
            + series("summ", "summ_test", (0.20, 0.30, 0.40))
            + series("summ", "nli_val", (0.36, 0.50, 0.66))
            + series("summ", "summ_ood", (0.22, 0.18, 0.20)))


def distractor_rows() -> list[dict]:
    return (series("", "nli_val", (0.9, 0.9, 0.9), shots=0)
            + series("nli", "nli_val", (0.1, 0.1, 0.1), shots=0)
            + series("", "nli_val", (0.30, 0.45, 0.58), fmt="io")
            + series("", "summ_test", (0.00, 0.06, 0.09), fmt="io")
            + series("nli", "nli_val", (0.50, 0.70, 0.85), fmt="io")
            + series("summ", "summ_test", (0.10, 0.25, 0.38), fmt="io")
            + series("", "nli_val", (0.99, 0.99, 0.99), method="constrained")
            + series("nli", "nli_val", (0.01, 0.01, 0.01), method="constrained")
            + series("nli", "nli_val", (0.45, 0.55, 0.65), lr=2e-7, selected=False)
            + series("nli", "nli_val", (0.02, 0.02, 0.02), ft_fraction=0.5, ft_step=10)
            + series("nli", "nli_ood", (0.03, 0.03, 0.03), ft_fraction=0.5, ft_step=10)
            + series("nli", "nli_val", (0.04, 0.04, 0.04), variant="lines", ft_step=20))


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=EXPORT_COLUMNS)


@pytest.fixture
def table() -> pd.DataFrame:
    return frame(headline_rows() + distractor_rows())


@pytest.fixture
def make() -> SimpleNamespace:
    """The row builders, for tests that need a table of their own (tests never import conftest)."""
    return SimpleNamespace(row=row, series=series, frame=frame, headline_rows=headline_rows)
