"""The short table printed at the end of `ptft run`: per task, BASE vs fine-tuned at each checkpoint."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ptft.grid import FULL, UNEDITED
from ptft.store import results_frame
from ptft.task_types import headline_metrics


def summary_table(run_dir: str | Path):
    """Rows: checkpoints; columns: (eval set, BASE|FT) on each task's own in-domain sets, at the
    first format, the largest shot count and the first method, FT at the selected learning rate
    (the final, unedited model; one column per fine-tuning method other than full, ``FT lora``)."""
    df = results_frame(run_dir)
    if df.empty:
        return pd.DataFrame()
    df = df[(df.domain == "in") & df.selected & df.metric.isin(headline_metrics())]
    df = df[(df.format == df.format.iloc[0]) & (df.shots == df.shots.max())]
    df = df[df.method == df.groupby("eval_set").method.transform("first")]
    base = df[df.train_task == ""].assign(model="BASE")
    ft = df[(df.train_task == df.eval_task) & (df.variant == UNEDITED) & (df.ft_fraction == 1.0)]
    # full fine-tuning, the paper's, is plain "FT"; another method names itself ("FT lora")
    ft = ft.assign(model=ft.ft_method.map(lambda method: "FT" if method == FULL else f"FT {method}"))
    both = pd.concat([base, ft])
    if both.empty:
        return pd.DataFrame()
    both["column"] = both.eval_set + " " + both.model
    table = both.pivot_table(index="checkpoint", columns="column", values="value", aggfunc="mean")
    # ordered by pre-training step; a checkpoint whose step is unknown (a local folder named
    # without one) comes last, shown with step '-', never dropped
    steps = both.groupby("checkpoint").step.first().reset_index().sort_values(["step", "checkpoint"],
                                                                              na_position="last")
    table = table.loc[steps.checkpoint]
    table.index = pd.MultiIndex.from_arrays(
        [["-" if pd.isna(s) else str(int(s)) for s in steps.step], list(steps.checkpoint)],
        names=["step", "checkpoint"])
    return table.sort_index(axis=1)

