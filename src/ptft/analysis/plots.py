"""Plotting shared by every analysis figure, so that all of them read the same way: each series
varies marker and line style along with its colour (legible in greyscale), confidence intervals
are error bars, and checkpoints sit on one step axis.

Figures are built with :class:`matplotlib.figure.Figure` rather than pyplot: they render with
Agg whatever the session's backend, nothing accumulates in pyplot's figure list, and importing
this module does not switch the backend of a notebook that uses ptft (the CLI selects Agg).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Callable, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator

from ptft.analysis.slices import checkpoint_order

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
COLORS = tuple(matplotlib.colormaps["tab10"].colors)
MEAN_STYLE = dict(color="black", marker="o", linestyle="-", linewidth=2.5, markersize=7, elinewidth=1.2)
MAX_STEP_TICKS = 12
# Tukey's far-out fences: a value beyond 3 interquartile ranges from the quartiles is off the axis.
FENCE_IQR = 3.0


def style(i: int) -> dict:
    """The i-th series' look; shifting the line style every len(MARKERS) series keeps the first
    32 (marker, line style) combinations distinct."""
    return dict(marker=MARKERS[i % len(MARKERS)], linestyle=LINESTYLES[(i + i // len(MARKERS)) % len(LINESTYLES)],
                color=COLORS[i % len(COLORS)], linewidth=1.4, markersize=5)


def format_step(value: float, _pos: object = None) -> str:
    """18000 -> "18k", 1500000 -> "1.5M"."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    if abs(value) >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def format_count(value: float) -> str:
    """75e9 -> "75B", 1.2e12 -> "1.2T" (token counts)."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


class StepAxis:
    """Where each checkpoint sits on the x axis: at its pre-training step when every checkpoint
    has one, otherwise at its rank in pre-training order, labelled with its name."""

    def __init__(self, frame: pd.DataFrame):
        self.order = checkpoint_order(frame)
        steps = frame.groupby("checkpoint")["step"].first().astype(float)
        self.by_step = bool(self.order) and bool(steps.notna().all())
        self.x = {c: float(steps[c]) if self.by_step else float(i) for i, c in enumerate(self.order)}

    def positions(self, checkpoints: pd.Series) -> np.ndarray:
        return checkpoints.map(self.x).to_numpy(dtype=float)

    def apply(self, ax: Axes) -> None:
        ticks = np.array(sorted(set(self.x.values())))
        if not self.by_step:
            ax.set_xticks(ticks, self.order, rotation=30, ha="right")
            ax.set_xlabel("checkpoint, in pre-training order (not all have a step)")
            return
        scale = _best_scale(ax, ticks)
        steps_on_x(ax)
        if scale != "linear":
            ax.set_xlabel(f"pre-training step ({scale} scale)")
        if ticks.size <= MAX_STEP_TICKS:
            # Every checkpoint gets a tick mark; labels only where they do not run into each other.
            ax.set_xticks(ticks, minor=True)
            labelled = _spread_out(ticks, ax.xaxis.get_transform().transform(ticks))
            ax.set_xticks(labelled, [format_step(t) for t in labelled], rotation=30, ha="right")
        else:
            ax.xaxis.set_minor_locator(NullLocator())


def _best_scale(ax: Axes, ticks: np.ndarray) -> str:
    """Set and return the x scale that keeps the closest two checkpoints furthest apart.

    Checkpoint series differ: log-spaced early steps (Pythia: 1, 2, 4, ... 512, 1000, ...) want
    a symlog axis, a few early and many late ones (OLMo: 1k, 18k, 342k, ..., 738k) a square-root
    one, uniform spacing a linear one."""
    positive = ticks[ticks > 0]
    candidates: dict[str, dict] = {"linear": dict(value="linear")}
    if ticks.min() >= 0:
        candidates["square-root"] = dict(value="function", functions=(np.sqrt, np.square))
    if positive.size:
        candidates["symlog"] = dict(value="symlog", linthresh=float(positive.min()), linscale=0.5)
    best, best_gap = "linear", -1.0
    for name, kwargs in candidates.items():
        ax.set_xscale(**kwargs)
        positions = ax.xaxis.get_transform().transform(ticks)
        gap = float(np.diff(positions).min() / np.ptp(positions)) if ticks.size > 2 else 1.0
        if gap > best_gap + 1e-9:
            best, best_gap = name, gap
    ax.set_xscale(**candidates[best])
    return best


def _spread_out(ticks: np.ndarray, positions: np.ndarray, min_gap: float = 0.07) -> np.ndarray:
    """The first and last ticks, and those in between whose scaled positions lie at least
    ``min_gap`` of the axis span from their labelled neighbours."""
    scaled = (positions - positions.min()) / (float(np.ptp(positions)) or 1.0)
    keep = [len(ticks) - 1]
    for i in range(len(ticks) - 2, 0, -1):
        if scaled[keep[-1]] - scaled[i] >= min_gap and scaled[i] - scaled[0] >= min_gap:
            keep.append(i)
    return ticks[sorted(set(keep) | {0})]


def steps_on_x(ax: Axes) -> None:
    ax.xaxis.set_major_formatter(FuncFormatter(format_step))
    ax.set_xlabel("pre-training step")


def panels(n: int, title: str, *, width: float = 6.0, height: float = 4.2, sharey: bool = False
           ) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width * n, height), layout="constrained")
    axes = list(fig.subplots(1, n, squeeze=False, sharey=sharey)[0])
    fig.suptitle(title)
    return fig, axes


def draw_lines(ax: Axes, frame: pd.DataFrame, axis: StepAxis, y: str, by: Sequence[str], *,
               lo: str | None = None, hi: str | None = None, label: Callable[[tuple], str] | None = None,
               mean: bool = False) -> None:
    """One line per ``by`` group against the step axis, with [lo, hi] error bars where given.
    ``mean=True`` draws every group in the bold black style of an average."""
    for i, (key, g) in enumerate(frame.groupby(list(by), sort=True)):
        g = g.assign(_x=axis.positions(g["checkpoint"])).sort_values("_x")
        yerr = None
        if lo is not None and hi is not None:
            yerr = np.vstack([g[y] - g[lo], g[hi] - g[y]]).astype(float)
        name = label(key) if label else " / ".join(str(k) for k in key if str(k))
        ax.errorbar(g["_x"], g[y], yerr=yerr, capsize=3, label=name, **(MEAN_STYLE if mean else style(i)))


def robust_limits(values: Sequence[float] | np.ndarray) -> tuple[float, float] | None:
    """Y limits that hold the bulk of ``values`` and 0: the range of the values inside Tukey's
    far-out fences, padded by 8 %. None when no value lies outside them (no clipping needed)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 3:
        return None
    q1, q3 = np.quantile(v, [0.25, 0.75])
    inside = v[(v >= q1 - FENCE_IQR * (q3 - q1)) & (v <= q3 + FENCE_IQR * (q3 - q1))]
    if inside.size == v.size:
        return None
    low, high = min(inside.min(), 0.0), max(inside.max(), 0.0)
    pad = 0.08 * (high - low) if high > low else 1.0
    return low - pad, high + pad


def clip_to(frame: pd.DataFrame, columns: Sequence[str], limits: tuple[float, float] | None) -> pd.DataFrame:
    """``frame`` with ``columns`` clipped to ``limits`` (unchanged when there are none)."""
    if limits is None:
        return frame
    return frame.assign(**{c: frame[c].clip(*limits) for c in columns})


def mark_clipped(ax: Axes, frame: pd.DataFrame, axis: StepAxis, y: str, limits: tuple[float, float] | None,
                 unit: str = "") -> None:
    """:func:`mark_off_axis` for a panel with checkpoints on x and ``frame[y]`` on y."""
    mark_off_axis(ax, axis.positions(frame["checkpoint"]), frame[y].to_numpy(dtype=float), limits, unit, along="y")


def mark_off_axis(ax: Axes, where: np.ndarray, values: np.ndarray, limits: tuple[float, float] | None,
                  unit: str = "", *, along: str = "y") -> None:
    """Limit the ``along`` axis to ``limits`` and draw each value beyond them as a red triangle on the
    edge, at ``where`` on the other axis, labelled with its value: the reader sees that it is off
    the scale and by how much."""
    if limits is None:
        return
    (ax.set_ylim if along == "y" else ax.set_xlim)(*limits)
    first = True
    for pos, value in zip(where, values):
        if limits[0] <= value <= limits[1] or not np.isfinite(value):
            continue
        high = value > limits[1]
        edge = limits[1] if high else limits[0]
        point = (pos, edge) if along == "y" else (edge, pos)
        marker = ("^" if high else "v") if along == "y" else (">" if high else "<")
        ax.plot([point[0]], [point[1]], marker=marker, color="#c00", markersize=9, linestyle="none", clip_on=False,
                label="off the axis (value shown)" if first else None)
        shown = f"{value:+,.0f}" if abs(value) >= 100 else f"{value:+.3g}"
        offset = ((5, -10 if high else 4) if along == "y" else (-40 if high else 6, 6))
        ax.annotate(f"{shown}{unit}", point, textcoords="offset points", xytext=offset, fontsize="small",
                    color="#c00")
        first = False


def finish(ax: Axes, *, ylabel: str, zero: bool = False, axis: StepAxis | None = None) -> None:
    if axis is not None:
        axis.apply(ax)
    if zero:
        ax.axhline(0, color="0.5", linewidth=0.8, zorder=0)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="0.9")
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize="small", ncol=1 if len(handles) <= 8 else 2)


def no_data(title: str, reason: str) -> Figure:
    fig, (ax,) = panels(1, title, height=2.5)
    ax.text(0.5, 0.5, f"no data\n{reason}", ha="center", va="center", wrap=True)
    ax.set_axis_off()
    return fig


def save(fig: Figure, base: Path) -> list[Path]:
    """``base``.png and ``base``.svg."""
    paths = [base.with_suffix(".png"), base.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=110)
    # A fixed salt and no date: the same figure gives the same SVG bytes.
    with matplotlib.rc_context({"svg.hashsalt": "ptft"}):
        fig.savefig(paths[1], metadata={"Date": None})
    return paths


def png_data_uri(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
