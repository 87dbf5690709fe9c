"""Run every analysis of the study on one results table and write tables, figures and summary.md.

An analysis without data (one format only, no generation task, ...) still writes its CSV (headers
only) and a "no data" figure, and summary.md says why: a partial run is analysed, never refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
from matplotlib.figure import Figure

from ptft.analysis import (dynamics, findings, forgetting, formats, gain, groups, lenses, methods, plots, prediction,
                           seeds, trajectory)
from ptft.analysis.changes import RATIO_EPS, unpaired_count
from ptft.analysis.slices import Slice, comparable, resolve_method
from ptft.analysis.table import Source, load_table
from ptft.analysis.text import ci, markdown_table, percent


@dataclass(frozen=True)
class Analysis:
    title: str
    empty: str
    figure: Callable[..., Figure]
    reading: Callable[[pd.DataFrame], str]
    # (table, slice, seed, eps) -> the analysis's frame; None for findings and prediction, which also
    # return their detail, for weights, which reads the weights table instead, and for seeds, which
    # also reads the per-example scores of a run directory
    compute: Callable[..., pd.DataFrame] | None = None
    # A companion frame the figure needs too (passed as its second argument).
    detail: str | None = None


ANALYSES: dict[str, Analysis] = {
    "findings": Analysis(findings.TITLE, findings.EMPTY, findings.figure, findings.reading,
                         detail="findings_detail"),
    "trajectory": Analysis(trajectory.TITLE, trajectory.EMPTY, trajectory.figure, trajectory.reading,
                           lambda table, sl, seed, eps: trajectory.trajectory(table, sl)),
    "gain": Analysis(gain.TITLE, gain.EMPTY, gain.figure, gain.reading, gain.gain),
    "groups": Analysis(groups.TITLE, groups.EMPTY, groups.figure, groups.reading, groups.groups),
    "mrc": Analysis(forgetting.MRC_TITLE, forgetting.MRC_EMPTY, forgetting.mrc_figure, forgetting.mrc_reading,
                    forgetting.mrc),
    "ood": Analysis(forgetting.OOD_TITLE, forgetting.OOD_EMPTY, forgetting.ood_figure, forgetting.ood_reading,
                    forgetting.ood),
    "format_sensitivity": Analysis(formats.TITLE, formats.EMPTY, formats.figure, formats.reading,
                                   lambda table, sl, seed, eps: formats.format_sensitivity(table, sl, seed=seed)),
    "prediction": Analysis(prediction.TITLE, prediction.EMPTY, prediction.figure, prediction.reading,
                           detail="prediction_points"),
    "overtraining": Analysis(prediction.OVERTRAINING_TITLE, prediction.OVERTRAINING_EMPTY,
                             prediction.overtraining_figure, prediction.overtraining_reading,
                             lambda table, sl, seed, eps: prediction.overtraining(table, sl)),
    "dynamics": Analysis(dynamics.TITLE, dynamics.EMPTY, dynamics.figure, dynamics.reading, dynamics.dynamics),
    "methods": Analysis(methods.TITLE, methods.EMPTY, methods.figure, methods.reading, methods.methods),
    "weights": Analysis(lenses.TITLE, lenses.EMPTY, lenses.figure, lenses.reading),
    "seeds": Analysis(seeds.TITLE, seeds.EMPTY, seeds.figure, seeds.reading),
}


@dataclass
class Results:
    """Every analysis table (plus ``gain_slope``, ``findings_detail`` and ``prediction_points``), with
    the slice they were computed on."""

    frames: dict[str, pd.DataFrame]
    slice: Slice
    shots: int | None
    seed: int
    eps: float
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """The slice and settings behind every number, in one sentence."""
        lr = ", ".join(f"{t}={v:g}" for t, v in self.slice.lr.items()) or "the dev-selected one per task"
        shots = "no results, hence no" if self.shots is None else str(self.shots)
        point = "the final fine-tuned model" if self.slice.ft_fraction == 1.0 else \
            f"the fine-tuned models at {self.slice.ft_fraction:g} of their training steps"
        method = f", fine-tuning method {self.slice.ft_method}" if self.slice.ft_method else ""
        return (f"Format {self.slice.fmt}, {shots} shots, learning rate {lr}, {point}{method}; bootstrap seed "
                f"{self.seed}; change ratios need |BASE| >= {self.eps:g}.")

    def reading(self, name: str) -> str:
        frame = self.frames[name]
        return f"No data: {ANALYSES[name].empty}." if frame.empty else ANALYSES[name].reading(frame)

    def figure(self, name: str) -> Figure:
        frame = self.frames[name]
        spec = ANALYSES[name]
        if frame.empty:
            return plots.no_data(spec.title, spec.empty)
        return spec.figure(frame, self.frames[spec.detail]) if spec.detail else spec.figure(frame)


def compute(source: Source, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS,
            weights: Source | None = None) -> Results:
    """All analyses of a run directory, results file or table (see :func:`load_table`).

    ``sl`` chooses the slice of the headline numbers (format, shots, learning-rate overrides, the
    point of fine-tuning, the fine-tuning method: :class:`~ptft.analysis.slices.Slice`; the
    dynamics analysis uses every point, the methods analysis every method); ``seed`` seeds every
    bootstrap; ``eps`` is the ratio guard (|BASE| below it gives no change ratio); ``weights`` is
    the weights table (default: the run directory's, or the file beside a results file; none
    beside a DataFrame)."""
    table = load_table(source)  # once: each analysis below re-validates a DataFrame, but never re-reads a file
    # analyses that compare methods (methods, prediction, overtraining) need to know whether one was asked for
    cells, resolved = comparable(table, sl)
    findings_rows, findings_detail = findings.evaluate(table, sl, seed=seed, eps=eps)
    prediction_rows, prediction_points = prediction.evaluate(table, sl, seed=seed)
    frames = {"findings": findings_rows, "findings_detail": findings_detail, "prediction": prediction_rows,
              "prediction_points": prediction_points}
    frames.update({name: spec.compute(table, sl, seed=seed, eps=eps)
                   for name, spec in ANALYSES.items() if spec.compute is not None})
    if weights is None and not isinstance(source, pd.DataFrame):
        weights = source
    frames["weights"] = lenses.weights(lenses.load_weights(weights), seed=seed)
    frames["seeds"] = seeds.seeds(table, sl, seed=seed, eps=eps, examples=seeds.load_examples(source))
    frames["gain_slope"] = gain.gain_slope(frames["gain"])
    notes = []
    unpaired = unpaired_count(cells)
    if unpaired:
        notes.append(f"{unpaired} fine-tuned result(s) have no BASE result at the same checkpoint, eval set, "
                     "format, shots and method, and enter no comparison.")
    return Results(frames, resolve_method(table, sl), resolved, seed, eps, notes)


def analyze(source: Source, out_dir: str | Path, sl: Slice = Slice(), *, seed: int = 0, eps: float = RATIO_EPS,
            weights: Source | None = None) -> dict[str, pd.DataFrame]:
    """Compute every analysis (see :func:`compute`) and write ``NAME.csv``, ``NAME.png`` and
    ``NAME.svg`` for each, ``gain_slope.csv``, ``findings_detail.csv``, ``prediction_points.csv`` and
    ``summary.md`` under
    ``out_dir``."""
    results = compute(source, sl, seed=seed, eps=eps, weights=weights)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in results.frames.items():
        frame.to_csv(out / f"{name}.csv", index=False)
    for name in ANALYSES:
        plots.save(results.figure(name), out / name)
    (out / "summary.md").write_text(summary_markdown(results), encoding="utf-8")
    return results.frames


def summary_markdown(results: Results) -> str:
    f = results.frames
    lines = ["# Findings", "", results.describe(), ""]
    for _, row in f["findings"].iterrows():
        lines.append(f"{findings.headline(row)} Figures: findings.png, {findings.BEHIND[int(row['finding'])]}.png.")
    lines += ["", "Definitions and verdict rules: docs/method.md, \"The four findings as verdicts\".", "",
              "![findings](findings.png)", "",
              "# Analyses", "", "## Cross-task forgetting (MRC)", ""]
    totals = forgetting.mrc_totals(f["mrc"])
    if totals.empty:
        lines.append(f"No data: {forgetting.MRC_EMPTY}.")
    for r in totals.itertuples():
        lines.append(f"- {r.direction}: {percent(r.mrc_percent)} ({ci(r.ci_low, r.ci_high, '+.1f')}), "
                     f"n={r.n} ratios")
    excluded = int(totals["n_excluded"].sum())
    if excluded:
        where = ", ".join(f"{r.train_task} -> {r.eval_set} ({r.n_excluded})"
                          for r in f["mrc"].itertuples() if r.eval_set and r.n_excluded)
        lines.append(f"- {excluded} ratio(s) excluded because |BASE| < {results.eps:g}: {where}.")
    lines += ["", "## Fine-tuning gain per checkpoint", "", results.reading("gain"), ""]
    if not f["gain"].empty:
        means = gain.checkpoint_means(f["gain"])
        lines.append(markdown_table(means[["checkpoint", "step", "raw_change", "ci_low", "ci_high",
                                           "change_ratio", "n", "n_excluded"]]))
    lines += ["", "## Learned in pre-training vs in fine-tuning", "", results.reading("groups"), ""]
    if not f["groups"].empty:
        lines.append(markdown_table(f["groups"][["group", "eval_set", "rise", "ci_low", "ci_high", "ci_source",
                                                 "mean_gain", "n"]]))
    lines += ["", "## Could we have predicted it?", "", results.reading("prediction"), ""]
    lines += prediction.predicted_section(f["prediction_points"], f["prediction"])
    lines += ["", f"Overtraining: {results.reading('overtraining')}", "",
              "Proxies, orientation and the bootstrap: docs/method.md, \"Predicting fine-tuning from proxies\"."]
    lines += ["", "## Per fine-tuning method", "", results.reading("methods"), ""]
    lines += [f"- {line}" for line in (methods.headlines(f["methods"]) if not f["methods"].empty else [])]
    lines += ["", results.reading("weights"), ""]
    lines += [f"- {line}" for line in (lenses.headlines(f["weights"]) if not f["weights"].empty else [])]
    lines += ["", "## All readings", ""]
    lines += [f"- **{name}**: {results.reading(name)}" for name in ANALYSES]
    if results.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results.notes]
    return "\n".join(lines) + "\n"
