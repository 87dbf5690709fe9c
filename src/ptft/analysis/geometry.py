"""Representation geometry per block along pre-training: RankMe and alpha-ReQ of each checkpoint's
residual stream after every block, on the probes' held-out positions (the layers table's rows of
measure ``rankme`` and ``alpha_req``, written by the probe cells; definitions: docs/method.md,
"Predicting fine-tuning from proxies"). The last-layer values enter the prediction analysis as
proxies; this one shows where along the depth the representations gain or lose directions. One
measurement per checkpoint and block, so no interval.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import plots
from ptft.analysis.slices import BASE, sort_by_checkpoint
from ptft.analysis.text import num

TITLE = "Representation geometry per block: RankMe and alpha-ReQ of each checkpoint"
EMPTY = "no per-block geometry (probes.enabled with probes.representation_tokens > 0 writes it)"
MEASURES = {"rankme": "RankMe (effective dimensions)", "alpha_req": "alpha-ReQ (eigenspectrum decay)"}
COLUMNS = ["measure", "checkpoint", "step", "layer", "value", "n"]


def geometry(layers: pd.DataFrame) -> pd.DataFrame:
    """One row per (measure, checkpoint, block) of the checkpoints' own rows (no train task)."""
    mine = layers[layers["measure"].isin(list(MEASURES)) & (layers["train_task"].fillna("") == BASE)]
    if mine.empty:
        return pd.DataFrame(columns=COLUMNS)
    frame = mine.groupby(["measure", "checkpoint", "layer"], as_index=False).agg(
        step=("step", "first"), value=("value", "mean"), n=("n", "first"))[COLUMNS]
    return sort_by_checkpoint(frame, ["measure", "layer"])


def figure(frame: pd.DataFrame) -> Figure:
    measures = [m for m in MEASURES if (frame["measure"] == m).any()]
    fig, axes = plots.panels(len(measures), TITLE, width=5.5)
    order = {c: i for i, c in enumerate(sort_by_checkpoint(frame, [])["checkpoint"].unique())}
    for ax, measure in zip(axes, measures):
        for checkpoint, g in sorted(frame[frame["measure"] == measure].groupby("checkpoint"),
                                    key=lambda kv: order[kv[0]]):
            g = g.sort_values("layer")
            ax.plot(g["layer"], g["value"], label=checkpoint, **plots.style(order[checkpoint]))
        ax.set_xlabel("block")
        plots.finish(ax, ylabel=MEASURES[measure])
    return fig


def reading(frame: pd.DataFrame) -> str:
    """RankMe of the last block at the first and last checkpoint, and where it peaks at the last."""
    rank = sort_by_checkpoint(frame[frame["measure"] == "rankme"], [])
    if rank.empty:
        return "No per-block RankMe."
    first, last = rank["checkpoint"].iloc[0], rank["checkpoint"].iloc[-1]
    deepest = rank["layer"].max()
    at = rank[rank["checkpoint"] == last].set_index("layer")["value"]
    then = rank[rank["checkpoint"] == first].set_index("layer")["value"]
    text = f"RankMe of the last block is {num(at.get(deepest), '.1f')} at {last}"
    if first != last:
        text += f" against {num(then.get(deepest), '.1f')} at {first}"
    return text + f"; at {last} it peaks at block {int(at.idxmax())} of {int(deepest)} ({num(at.max(), '.1f')})."
