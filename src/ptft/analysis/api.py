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

from ptft.analysis import (cka, dynamics, findings, forgetting, forgetting_law, formats, gain, geometry, grafting,
                           groups, lenses, methods, plots, prediction, seeds, trajectory, tuco)
from ptft.analysis.changes import RATIO_EPS, unpaired_count
from ptft.analysis.slices import Slice, comparable, resolve_method
from ptft.analysis.table import Source, load_table
from ptft.analysis.text import ci, markdown_table, percent


@dataclass(frozen=True)
class Inputs:
    """What an analysis may read: the table, the slice and settings, the source it came from (a
    run directory holds per-example scores) and the weights table's source."""

    table: pd.DataFrame
    slice: Slice
    seed: int
    eps: float
    source: Source
    weights: Source | None


@dataclass(frozen=True)
class Analysis:
    """One analysis: ``compute`` returns its frame under its own name, plus any companion frames
    (written as CSVs too); ``summary`` gives its section of summary.md and the report beyond the
    reading (lines of Markdown), ``heading`` that section's title."""

    title: str
    empty: str
    figure: Callable[..., Figure]
    reading: Callable[[pd.DataFrame], str]
    compute: Callable[[Inputs], dict[str, pd.DataFrame]]
    # A companion frame the figure needs too (passed as its second argument).
    detail: str | None = None
    heading: str | None = None
    summary: Callable[[Results], list[str]] | None = None
    # companion frames the report shows as tables beside the analysis's own, each with its caption
    companions: tuple[tuple[str, Callable[[pd.DataFrame], str]], ...] = ()


def _one(name: str, fn: Callable[[Inputs], pd.DataFrame]) -> Callable[[Inputs], dict[str, pd.DataFrame]]:
    return lambda i: {name: fn(i)}


def _findings(i: Inputs) -> dict[str, pd.DataFrame]:
    rows, detail = findings.evaluate(i.table, i.slice, seed=i.seed, eps=i.eps)
    return {"findings": rows, "findings_detail": detail}


def _prediction(i: Inputs) -> dict[str, pd.DataFrame]:
    rows, points = prediction.evaluate(i.table, i.slice, seed=i.seed)
    return {"prediction": rows, "prediction_points": points}


def _forgetting_law(i: Inputs) -> dict[str, pd.DataFrame]:
    fits, points = forgetting_law.forgetting_law(i.table, i.slice, seed=i.seed, eps=i.eps)
    return {"forgetting_law": fits, "forgetting_law_points": points}


def _gain(i: Inputs) -> dict[str, pd.DataFrame]:
    frame = gain.gain(i.table, i.slice, seed=i.seed, eps=i.eps)
    return {"gain": frame, "gain_slope": gain.gain_slope(frame)}


def _mrc_section(results: Results) -> list[str]:
    frame = results.frames["mrc"]
    totals = forgetting.mrc_totals(frame)
    lines = [f"- {r.direction}: {percent(r.mrc_percent)} ({ci(r.ci_low, r.ci_high, '+.1f')}), n={r.n} ratios"
             for r in totals.itertuples()]
    excluded = int(totals["n_excluded"].sum()) if not totals.empty else 0
    if excluded:
        where = ", ".join(f"{r.train_task} -> {r.eval_set} ({r.n_excluded})"
                          for r in frame.itertuples() if r.eval_set and r.n_excluded)
        lines.append(f"- {excluded} ratio(s) excluded because |BASE| < {results.eps:g}: {where}.")
    return lines


def _gain_section(results: Results) -> list[str]:
    frame = results.frames["gain"]
    if frame.empty:
        return []
    return [markdown_table(gain.checkpoint_means(frame)[["checkpoint", "step", "raw_change", "ci_low", "ci_high",
                                                         "change_ratio", "n", "n_excluded"]])]


def _groups_section(results: Results) -> list[str]:
    frame = results.frames["groups"]
    if frame.empty:
        return []
    return [markdown_table(frame[["group", "eval_set", "rise", "ci_low", "ci_high", "ci_source", "mean_gain", "n"]])]


def _prediction_section(results: Results) -> list[str]:
    return [*prediction.predicted_section(results.frames["prediction_points"], results.frames["prediction"]),
            "", f"Overtraining: {results.reading('overtraining')}", "",
            "Proxies, orientation and the bootstrap: docs/method.md, \"Predicting fine-tuning from proxies\"."]


def _headlines(name: str, lines: Callable[[pd.DataFrame], list[str]]) -> Callable[[Results], list[str]]:
    return lambda results: [f"- {line}" for line in lines(results.frames[name])] if not results.frames[name].empty \
        else []


ANALYSES: dict[str, Analysis] = {
    "findings": Analysis(findings.TITLE, findings.EMPTY, findings.figure, findings.reading, _findings,
                         detail="findings_detail"),
    "trajectory": Analysis(trajectory.TITLE, trajectory.EMPTY, trajectory.figure, trajectory.reading,
                           _one("trajectory", lambda i: trajectory.trajectory(i.table, i.slice))),
    "gain": Analysis(gain.TITLE, gain.EMPTY, gain.figure, gain.reading, _gain,
                     heading="Fine-tuning gain per checkpoint", summary=_gain_section,
                     companions=(("gain_slope", gain.slope_caption),)),
    "groups": Analysis(groups.TITLE, groups.EMPTY, groups.figure, groups.reading,
                       _one("groups", lambda i: groups.groups(i.table, i.slice, seed=i.seed, eps=i.eps)),
                       heading="Learned in pre-training vs in fine-tuning", summary=_groups_section),
    "mrc": Analysis(forgetting.MRC_TITLE, forgetting.MRC_EMPTY, forgetting.mrc_figure, forgetting.mrc_reading,
                    _one("mrc", lambda i: forgetting.mrc(i.table, i.slice, seed=i.seed, eps=i.eps)),
                    heading="Cross-task forgetting (MRC)", summary=_mrc_section),
    "ood": Analysis(forgetting.OOD_TITLE, forgetting.OOD_EMPTY, forgetting.ood_figure, forgetting.ood_reading,
                    _one("ood", lambda i: forgetting.ood(i.table, i.slice, seed=i.seed, eps=i.eps))),
    "format_sensitivity": Analysis(formats.TITLE, formats.EMPTY, formats.figure, formats.reading,
                                   _one("format_sensitivity",
                                        lambda i: formats.format_sensitivity(i.table, i.slice, seed=i.seed))),
    "prediction": Analysis(prediction.TITLE, prediction.EMPTY, prediction.figure, prediction.reading, _prediction,
                           detail="prediction_points", heading="Could we have predicted it?",
                           summary=_prediction_section),
    "overtraining": Analysis(prediction.OVERTRAINING_TITLE, prediction.OVERTRAINING_EMPTY,
                             prediction.overtraining_figure, prediction.overtraining_reading,
                             _one("overtraining", lambda i: prediction.overtraining(i.table, i.slice))),
    "dynamics": Analysis(dynamics.TITLE, dynamics.EMPTY, dynamics.figure, dynamics.reading,
                         _one("dynamics", lambda i: dynamics.dynamics(i.table, i.slice, seed=i.seed, eps=i.eps))),
    "forgetting_law": Analysis(forgetting_law.TITLE, forgetting_law.EMPTY, forgetting_law.figure,
                               forgetting_law.reading, _forgetting_law, detail="forgetting_law_points",
                               heading="Forgetting along fine-tuning as a curve"),
    "methods": Analysis(methods.TITLE, methods.EMPTY, methods.figure, methods.reading,
                        _one("methods", lambda i: methods.methods(i.table, i.slice, seed=i.seed, eps=i.eps)),
                        heading="Per fine-tuning method", summary=_headlines("methods", methods.headlines)),
    "weights": Analysis(lenses.TITLE, lenses.EMPTY, lenses.figure, lenses.reading,
                        _one("weights", lambda i: lenses.weights(lenses.load_weights(i.weights), seed=i.seed)),
                        heading="Weight-space lenses", summary=_headlines("weights", lenses.headlines)),
    "grafting": Analysis(grafting.TITLE, grafting.EMPTY, grafting.figure, grafting.reading,
                         _one("grafting", lambda i: grafting.grafting(i.table, i.slice, seed=i.seed, eps=i.eps)),
                         heading="How localised the skill is (grafting)"),
    "cka": Analysis(cka.TITLE, cka.EMPTY, cka.figure, cka.reading,
                    _one("cka", lambda i: cka.cka(cka.load_layers(i.source), fmt=i.slice.fmt,
                                                  ft_method=i.slice.ft_method, seed=i.seed)),
                    heading="Where fine-tuning changes the representations (CKA)"),
    "geometry": Analysis(geometry.TITLE, geometry.EMPTY, geometry.figure, geometry.reading,
                         _one("geometry", lambda i: geometry.geometry(cka.load_layers(i.source)))),
    "tuco": Analysis(tuco.TITLE, tuco.EMPTY, tuco.figure, tuco.reading,
                     _one("tuco", lambda i: tuco.tuco(i.table, i.slice, seed=i.seed)),
                     heading="The fine-tuning contribution to the answers (TuCo)"),
    "seeds": Analysis(seeds.TITLE, seeds.EMPTY, seeds.figure, seeds.reading,
                      _one("seeds", lambda i: seeds.seeds(i.table, i.slice, seed=i.seed, eps=i.eps,
                                                           examples=seeds.load_examples(i.source)))),
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
    if weights is None and not isinstance(source, pd.DataFrame):
        weights = source
    inputs = Inputs(table, sl, seed, eps, source, weights)
    frames: dict[str, pd.DataFrame] = {}
    for spec in ANALYSES.values():
        frames.update(spec.compute(inputs))
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
    """The four verdicts, then a section for every analysis that has one (its reading and what it
    adds), then every analysis's reading, in the registry's order."""
    lines = ["# Findings", "", results.describe(), ""]
    for _, row in results.frames["findings"].iterrows():
        lines.append(f"{findings.headline(row)} Figures: findings.png, {findings.BEHIND[int(row['finding'])]}.png.")
    lines += ["", "Definitions and verdict rules: docs/method.md, \"The four findings as verdicts\".", "",
              "![findings](findings.png)", "", "# Analyses"]
    for name, spec in ANALYSES.items():
        if spec.summary is not None:
            lines += ["", f"## {spec.heading}", "", results.reading(name), "", *spec.summary(results)]
    lines += ["", "## All readings", ""]
    lines += [f"- **{name}**: {results.reading(name)}" for name in ANALYSES]
    if results.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in results.notes]
    return "\n".join(lines) + "\n"
