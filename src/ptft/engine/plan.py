"""`ptft plan`: the grid a study config would run, and a rough cost estimate, computed offline.

Nothing is loaded or run and nothing touches the network: task types and eval sets come from the
task registry (the :class:`~ptft.tasks.Task` objects, never ``task.load``), checkpoints from the
config (a Hub series must list ``checkpoints.hub.revisions`` or ``revision_names``), and the cells
from :func:`ptft.engine.kinds.expand` itself with placeholder data fingerprints, so the plan and a
run agree on the grid by construction (cell ids differ: they hash the real data).

The cost estimate is an estimate: training FLOPs = k × parameters × training tokens (k = 6 for full
fine-tuning: forward 2, backward 4; fewer for a method that computes fewer weight gradients, see
:meth:`ptft.training.methods.FinetuneMethod.flops_per_parameter_token`), training
tokens = examples × epochs × a typical length per example (a rough figure that a task or mixture
declares, capped at the maximum length; for one that declares none the maximum length itself, an
upper bound), GPU-hours = FLOPs / (peak FLOP/s × MFU) with the assumptions of the config's ``estimate``
section. Evaluation is counted in units and scored examples, not GPU-hours; a fine-tuned model
evaluated during its training (``finetune.eval_at``) counts its units once per point.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ptft.checkpoints.series import PUBLISHED_PARAMETERS, resolve_series
from ptft.config import StudyConfig, learning_rates, method_settings
from ptft.engine.cells import intermediate_fractions, task_label
from ptft.engine.kinds import expand
from ptft.engine.preflight import check_methods
from ptft.engine.work import edit_variants
from ptft.errors import ConfigError
from ptft.grid import FULL, CellKind
from ptft.tasks import get_task
from ptft.tasks.instructions import registered_mixture
from ptft.training.methods import get_method

PLACEHOLDER_FINGERPRINT = "plan-no-data"


@dataclass
class TrainingEstimate:
    name: str            # task (with its fine-tuning method unless full) or mixture
    runs: int
    examples: int | None  # per run; None when unknown offline
    epochs: float
    tokens_per_example: int
    basis: str           # "typical" or "upper bound (max_length)"
    flops_factor: float = 6.0  # training FLOPs per parameter and token

    @property
    def tokens_per_run(self) -> int | None:
        return None if self.examples is None else round(self.examples * self.epochs * self.tokens_per_example)

    @property
    def tokens(self) -> int | None:
        per = self.tokens_per_run
        return None if per is None else per * self.runs


@dataclass
class StudyPlan:
    config: StudyConfig
    cells: list
    checkpoints: list
    task_types: dict[str, str]
    eval_sets: dict[str, list[tuple[str, str]]]
    # task -> fine-tuning method -> learning rates
    finetune_runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    units: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # kind -> (models, cells, units)
    scored: dict[str, int] = field(default_factory=dict)                 # kind -> scored examples
    training: list[TrainingEstimate] = field(default_factory=list)
    parameters: int | None = None
    parameters_source: str = ""
    ft_points: list[float] = field(default_factory=lambda: [1.0])  # where each FT model is evaluated
    ft_edits: list[str] = field(default_factory=list)  # the edits it is evaluated as too (grafts, LiNeS)

    def count(self, kind: CellKind) -> int:
        return sum(c.kind == kind for c in self.cells)

    @property
    def training_tokens(self) -> int:
        return sum(t.tokens or 0 for t in self.training)

    @property
    def training_flops(self) -> float | None:
        if self.parameters is None:
            return None
        return sum(t.flops_factor * self.parameters * (t.tokens or 0) for t in self.training)

    @property
    def gpu_hours(self) -> float | None:
        flops = self.training_flops
        est = self.config.estimate
        return None if flops is None else flops / (est.peak_tflops * 1e12 * est.mfu) / 3600


def task_metadata(config: StudyConfig) -> tuple[dict[str, str], dict[str, list[tuple[str, str]]]]:
    """Task types and eval sets of the study's tasks and IT suite, from the registry alone."""
    names = [t.name for t in config.tasks]
    it = config.instruction_tuning
    if it.enabled:
        if not it.suite:
            raise ConfigError("instruction_tuning.suite: list the multiple-choice tasks to evaluate IT models on")
        names += [s for s in it.suite if s not in names]
    types, sets = {}, {}
    for name in names:
        try:
            task = get_task(name)
        except (KeyError, FileNotFoundError) as err:
            raise ConfigError(f"task {name!r}: {err.args[0]}") from None
        types[name] = task.task_type
        sets[name] = [(e.name, e.domain) for e in task.eval_sets]
    return types, sets


def plan_study(config: StudyConfig, run_dir: str | Path | None = None) -> StudyPlan:
    hub = config.checkpoints.hub
    if config.checkpoints.source == "hub" and not (hub.revisions or hub.revision_names):
        raise ConfigError(f"checkpoints.hub: {hub.repo} would be listed from the Hub at run time; for an offline "
                          "plan (and a reproducible study) list its branches in checkpoints.hub.revision_names "
                          "or give checkpoints.hub.revisions")
    check_methods(config)  # as `ptft run` does before anything runs
    run_dir = Path(run_dir or config.output_dir)
    types, sets = task_metadata(config)
    fingerprints = {name: PLACEHOLDER_FINGERPRINT for name in types}
    series = resolve_series(config, run_dir, network=False)
    cells = expand(config, series, fingerprints, types, sets)
    plan = StudyPlan(config, cells, series, types, sets)
    for tc in config.tasks:
        if tc.train:
            plan.finetune_runs[tc.name] = {m: learning_rates(config, tc, m) for m in config.finetune.methods}
    study_tasks = {t.name for t in config.tasks}
    groups: dict[str, list] = defaultdict(list)
    for c in cells:
        if c.kind == CellKind.BASE:
            suite_only = c.units and all(u.eval_task not in study_tasks for u in c.units)
            groups["BASE-MC" if suite_only else "BASE"].append(c)
        elif c.kind in (CellKind.FINETUNE, CellKind.SELECTED, CellKind.INSTRUCT):
            groups["IT" if c.kind == CellKind.INSTRUCT else "FT"].append(c)
        elif c.kind == CellKind.PROBE:
            groups["PROBE"].append(c)
    plan.ft_points = intermediate_fractions(config.finetune.eval_at) + [1.0]
    plan.ft_edits = [name for name, _ in edit_variants(config)]
    times = {k: len(plan.ft_points) + len(plan.ft_edits) if k == "FT" else 1 for k in groups}
    # models scored: under finetune.evaluate: selected, one per selected-rate evaluation cell
    plan.units = {k: (len({c.model_id for c in v if c.units}), len(v), times[k] * sum(len(c.units) for c in v))
                  for k, v in groups.items()}
    n_eval = {name: config.instruction_tuning.n_eval for name in types}
    n_eval.update({t.name: t.n_eval for t in config.tasks})
    plan.scored = {k: times[k] * sum(n_eval[u.eval_task] or 0 for c in v for u in c.units)
                   for k, v in groups.items()}
    plan.parameters, plan.parameters_source = parameter_count(config)
    plan.training = training_estimates(config, plan)
    return plan


def training_estimates(config: StudyConfig, plan: StudyPlan) -> list[TrainingEstimate]:
    ft = config.finetune
    runs = Counter((c.train_task, c.ft_method) for c in plan.cells if c.kind == CellKind.FINETUNE)
    out = []
    for tc in config.tasks:
        if not tc.train:
            continue
        typical = get_task(tc.name).typical_tokens_per_example
        per, basis = (min(typical, ft.max_length), "typical") if typical else (ft.max_length, "upper bound (max_length)")
        for method in ft.methods:
            args = ft.run_args(method, lr=1.0, seed=0)
            name = task_label(tc.name) if method == FULL else f"{task_label(tc.name)} ({method})"
            out.append(TrainingEstimate(name, runs[tc.name, method], tc.n_train, ft.epochs, per, basis,
                                        get_method(method).flops_per_parameter_token(args)))
    it = config.instruction_tuning
    if it.enabled:
        max_length = it.max_length or ft.max_length
        mixture = registered_mixture(it.mixture)
        typical = mixture.typical_tokens_per_conversation if mixture else None
        per, basis = (min(typical, max_length), "typical") if typical else (max_length, "upper bound (max_length)")
        n = it.n_train if it.n_train is not None else (mixture.size if mixture else None)
        out.append(TrainingEstimate(f"IT {it.mixture}", plan.count(CellKind.INSTRUCT), n, it.epochs, per, basis))
    return out


def parameter_count(config: StudyConfig) -> tuple[int | None, str]:
    if config.estimate.parameters:
        return config.estimate.parameters, "estimate.parameters"
    ck = config.checkpoints
    if ck.source == "hub":
        if ck.hub.repo in PUBLISHED_PARAMETERS:
            return PUBLISHED_PARAMETERS[ck.hub.repo], f"published size of {ck.hub.repo}"
        return None, f"unknown for {ck.hub.repo}: set estimate.parameters"
    if ck.source == "pretrain":
        m = ck.pretrain.model
        h, i, n_layers = m.hidden_size, m.intermediate_size, m.num_layers
        return m.vocab_size * h + n_layers * (4 * h * h + 3 * h * i + 2 * h) + h, "the pre-training model shape"
    return _local_parameters(ck.local.paths[0]) if ck.local.paths else (None, "no checkpoint folder")


def _local_parameters(path: str) -> tuple[int | None, str]:
    """Counted on the meta device from the first folder's config.json (no weights are read)."""
    if not (Path(path) / "config.json").exists():
        return None, f"no config.json in {path}: set estimate.parameters"
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
        return sum(p.numel() for p in model.parameters()), f"{Path(path).name}/config.json"
    except Exception as err:  # an exotic config: the estimate is optional
        return None, f"cannot count from {path}/config.json ({type(err).__name__}): set estimate.parameters"


# ---------------------------------------------------------------------------------------- output

def _n(x: float | int | None) -> str:
    if x is None:
        return "?"
    x = float(x)
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def format_plan(plan: StudyPlan) -> str:
    cfg = plan.config
    lines = [f"Study {cfg.name!r}: the grid it would run (nothing is run, no data or network is touched).", ""]
    ck = cfg.checkpoints
    where = {"hub": ck.hub.repo, "local": "local folders", "pretrain": "pre-trained here"}[ck.source]
    lines.append(f"Checkpoints: {len(plan.checkpoints)} ({where})")
    fingerprints = any(c.fingerprint for c in plan.checkpoints)
    lines += _table([["label", "step", "revision / path"] + (["weights"] if fingerprints else [])] + [
        [c.label, "-" if c.step is None else str(c.step), c.revision or c.path] + ([c.fingerprint or "-"]
                                                                                   if fingerprints else [])
        for c in plan.checkpoints])
    if ck.source == "hub" and not all(c.fingerprint for c in plan.checkpoints):
        lines.append("  (weights fingerprinted from the Hugging Face cache only; `ptft run` asks the Hub for "
                     "the others, refuses two revisions holding the same weights and leaves out a main that holds "
                     "the last one's)")
    lines += ["", "Tasks"]
    rows = [["task", "type", "train", "n_train", "learning rates", "eval sets (in | out)"]]
    for tc in cfg.tasks:
        ins = [s for s, d in plan.eval_sets[tc.name] if d == "in"]
        outs = [s for s, d in plan.eval_sets[tc.name] if d == "out"] if cfg.evaluation.out_of_domain else []
        by_method = plan.finetune_runs.get(tc.name, {})
        lrs = "; ".join((f"{m} " if len(by_method) > 1 else "") + ", ".join(f"{lr:g}" for lr in rates)
                        for m, rates in by_method.items()) or "-"
        rows.append([task_label(tc.name), plan.task_types[tc.name], "yes" if tc.train else "no",
                     "all" if tc.n_train is None else str(tc.n_train), lrs,
                     ", ".join(ins) + (" | " + ", ".join(outs) if outs else "")])
    lines += _table(rows)
    n_ck, seeds = len(plan.checkpoints), len(cfg.finetune.seeds)
    n_ft = plan.count(CellKind.FINETUNE)
    lines += ["", "Runs"]
    lines.append(f"  pre-training runs:        {plan.count('pretrain')}")
    methods = cfg.finetune.methods
    combos = [(task, m, lrs) for task, by_method in plan.finetune_runs.items() for m, lrs in by_method.items()]
    per_combo = " + ".join(f"{len(lrs)}" for _, _, lrs in combos) or "0"
    what = "(task, learning rate) pairs" if len(methods) == 1 else "(task, method, learning rate) triples"
    lines.append(f"  fine-tuning runs (SFT):   {n_ft} = {n_ck} checkpoints x {sum(len(c[2]) for c in combos)} "
                 f"{what} [{per_combo}] x {seeds} seed(s)")
    for task, method, lrs in combos:
        shown = task_label(task) if len(methods) == 1 else f"{task_label(task)}, {method}"
        lines.append(f"    {shown}: {n_ck} x {len(lrs)} lr ({', '.join(f'{lr:g}' for lr in lrs)}) x {seeds} = "
                     f"{n_ck * len(lrs) * seeds}")
    if len(methods) > 1 or methods != [FULL]:
        lines.append(f"  fine-tuning methods:      {', '.join(_method_line(cfg, m) for m in methods)}")
    if cfg.finetune.evaluate == "selected":
        lines.append(f"  evaluated:                {plan.count(CellKind.SELECTED)} models, the rate chosen on the "
                     "dev split per (checkpoint, task, method, seed) (finetune.evaluate: selected)")
    it = cfg.instruction_tuning
    if it.enabled:
        n = "all" if it.n_train is None else it.n_train
        lines.append(f"  instruction-tuning runs:  {plan.count('instruct')} = {n_ck} checkpoints x 1 "
                     f"({it.mixture}, {n} conversations, {it.epochs:g} epochs, lr {it.lr:g}); "
                     f"suite: {', '.join(it.suite)}")
    else:
        lines.append("  instruction-tuning runs:  0 (instruction_tuning.enabled is false)")
    pr = cfg.probes
    if pr.enabled:
        lines.append(f"  probe cells:              {plan.count(CellKind.PROBE)} = {n_ck} checkpoints x 1 (held-out "
                     f"loss, sensitivity at sigma {pr.sigma:g} over {pr.draws} draws, gold log-likelihoods)")
    else:
        lines.append("  probe cells:              0 (probes.enabled is false)")
    lines.append(f"  cells in all:             {len(plan.cells)}")
    ev = cfg.evaluation
    lines += ["", f"Evaluation units (eval set x format x shots x method; formats {ev.formats}, shots {ev.shots}, "
                  f"classification methods {ev.methods})"]
    names = {"BASE": "BASE (study tasks)", "FT": "FT", "BASE-MC": "BASE (IT suite)", "IT": "IT",
             "PROBE": "PROBE (gold log-lik.)"}
    rows = [["kind", "models", "cells", "units", "scored examples"]]
    for kind in ("BASE", "FT", "BASE-MC", "IT", "PROBE"):
        if kind in plan.units:
            models, cells, units = plan.units[kind]
            rows.append([names[kind], str(models), str(cells), str(units), _n(plan.scored.get(kind))])
    rows.append(["total", "", str(sum(c for _, c, _ in plan.units.values())),
                 str(sum(u for _, _, u in plan.units.values())), _n(sum(plan.scored.values()))])
    lines += _table(rows)
    if len(plan.ft_points) > 1:
        lines.append(f"  FT units count each of the {len(plan.ft_points)} points of finetune.eval_at at which every "
                     f"fine-tuned model is evaluated ({', '.join(f'{f:g}' for f in plan.ft_points)} of its steps)")
    if plan.ft_edits:
        lines.append(f"  FT units count each of the {len(plan.ft_edits)} edit(s) every fine-tuned model is also "
                     f"evaluated as ({', '.join(plan.ft_edits)})")
    lines.append("  models: a BASE model is a checkpoint; scored examples: at most units x n_eval (smaller eval "
                 "sets score fewer; sets with n_eval null are not counted)")
    lines.append("  n_train, n_dev and n_eval are upper limits: a split smaller than asked is used whole, and "
                 "`ptft run` names each such split before any cell runs")
    lines += ["", "Training cost: an ESTIMATE, not a measurement"]
    rows = [["training", "runs", "examples", "epochs", "tokens/example", "tokens/run", "tokens", "FLOPs/(param x token)"]]
    for t in plan.training:
        rows.append([t.name, str(t.runs), _n(t.examples), f"{t.epochs:g}", f"{t.tokens_per_example} ({t.basis})",
                     _n(t.tokens_per_run), _n(t.tokens), f"{t.flops_factor:g}"])
    lines += _table(rows)
    unknown = [t.name for t in plan.training if t.tokens is None]
    if unknown:
        lines.append(f"  not estimated (n_train: all, size unknown offline): {', '.join(unknown)}")
    est = cfg.estimate
    lines.append(f"  training tokens:   {_n(plan.training_tokens)}")
    lines.append(f"  parameters:        {_n(plan.parameters)} ({plan.parameters_source})")
    if plan.gpu_hours is not None:
        factors = sorted({t.flops_factor for t in plan.training})
        k = f"{factors[0]:g}" if len(factors) == 1 else "k"
        lines.append(f"  training FLOPs:    {plan.training_flops:.3g} = {k} x parameters x tokens"
                     + ("" if len(factors) == 1 else " (k per training: the last column; 6 is full fine-tuning's "
                        "forward 2 + backward 4, frozen weights skip their weight gradients)"))
        lines.append(f"  GPU-hours:         {plan.gpu_hours:,.3g} = FLOPs / ({est.peak_tflops:g} TFLOP/s peak "
                     f"[{est.gpu}] x {est.mfu:g} MFU) / 3600")
    lines.append("  assumptions: tokens/example are rough typical lengths (GPT-NeoX/OLMo BPE) or max_length as "
                 "an upper bound; padding, evaluation and data loading are not counted; set the estimate "
                 "section (parameters, peak_tflops, mfu) to change them.")
    return "\n".join(lines)


def _method_line(config: StudyConfig, method: str) -> str:
    """A method and its settings, as the plan lists them."""
    settings = method_settings(config, method)
    return f"{method} ({', '.join(f'{k} {v}' for k, v in settings.items())})" if settings else method


def plan_dict(plan: StudyPlan) -> dict:
    """The plan as plain data (``ptft plan --json``)."""
    return {
        "name": plan.config.name,
        "checkpoints": [{"label": c.label, "step": c.step, "revision": c.revision, "path": c.path,
                         "fingerprint": c.fingerprint}
                        for c in plan.checkpoints],
        "finetune_runs": plan.count(CellKind.FINETUNE), "instruct_runs": plan.count(CellKind.INSTRUCT),
        "pretrain_runs": plan.count(CellKind.PRETRAIN), "probe_cells": plan.count(CellKind.PROBE),
        "cells": len(plan.cells), "learning_rates": plan.finetune_runs, "seeds": list(plan.config.finetune.seeds),
        "ft_eval_points": plan.ft_points,
        "ft_edits": plan.ft_edits,
        "units": {k: {"models": m, "cells": c, "units": u, "scored_examples": plan.scored.get(k)}
                  for k, (m, c, u) in plan.units.items()},
        "training": [{"name": t.name, "runs": t.runs, "examples": t.examples, "epochs": t.epochs,
                      "tokens_per_example": t.tokens_per_example, "basis": t.basis, "tokens": t.tokens,
                      "flops_per_parameter_token": t.flops_factor}
                     for t in plan.training],
        "methods": list(plan.config.finetune.methods),
        "training_tokens": plan.training_tokens, "parameters": plan.parameters,
        "parameters_source": plan.parameters_source, "training_flops": plan.training_flops,
        "gpu_hours": plan.gpu_hours,
        "assumptions": {"peak_tflops": plan.config.estimate.peak_tflops, "mfu": plan.config.estimate.mfu,
                        "gpu": plan.config.estimate.gpu},
    }


def plan_json(plan: StudyPlan) -> str:
    return json.dumps(plan_dict(plan), indent=1)
