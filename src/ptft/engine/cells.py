"""A study expanded into cells: every unit of work known before anything runs.

Cell kinds:
- ``pretrain``: pre-train the model series (only for ``checkpoints.source: pretrain``);
- ``base``: evaluate one checkpoint few-shot on every eval set (computed once, reused by every
  comparison);
- ``finetune``: fine-tune one checkpoint on one task at one learning rate and seed, then evaluate
  the fine-tuned model on the task's eval sets and the other tasks' in-domain sets;
- ``instruct``: instruction-tune one checkpoint and evaluate it on the multiple-choice suite.

A cell's id is a content hash over everything that determines its result (checkpoint identity,
data fingerprints, hyperparameters, evaluation settings, seed, ptft version), so changing a setting
reruns exactly the cells it touches. Fine-tuned weights are addressed by a narrower *training*
hash, so kept weights are reused when only evaluation settings change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ptft import __version__
from ptft.checkpoints.series import Checkpoint, resolve_series
from ptft.config import StudyConfig


@dataclass(frozen=True)
class EvalUnit:
    eval_task: str
    eval_set: str
    format: str
    shots: int
    method: str


@dataclass
class Cell:
    cell_id: str
    kind: str
    label: str
    checkpoint: Checkpoint | None = None
    train_task: str = ""
    lr: float | None = None
    seed: int | None = None
    training_hash: str = ""
    units: list[EvalUnit] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)

    @property
    def model_id(self) -> str:
        ck = self.checkpoint.label if self.checkpoint else ""
        if self.kind == "base":
            return f"base/{ck}"
        return f"{self.kind}/{ck}/{self.train_task}/lr{self.lr:g}/seed{self.seed}"

    def spec(self) -> dict:
        d = asdict(self)
        d["units"] = len(self.units)
        return d


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def eval_units(config: StudyConfig, task_types: dict[str, str], eval_sets: dict[str, list[tuple[str, str]]],
               tasks: list[str]) -> list[EvalUnit]:
    """Every (eval set, format, shots, method) to score for the given eval tasks' sets."""
    ev = config.evaluation
    units = []
    for task in tasks:
        methods = {"classification": ev.methods, "generation": ["greedy"], "multiple_choice": ["loglik"]}[task_types[task]]
        for eval_set, _domain in eval_sets[task]:
            for fmt in ev.formats:
                for shots in ev.shots:
                    for method in methods:
                        units.append(EvalUnit(task, eval_set, fmt, shots, method))
    return units


def expand(config: StudyConfig, run_dir: Path, fingerprints: dict[str, str],
           task_types: dict[str, str], task_eval_sets: dict[str, list[tuple[str, str]]]) -> list[Cell]:
    """The study's cells in dependency order. ``fingerprints`` maps task name to its data hash;
    ``task_eval_sets`` maps task name to [(eval set, domain)]."""
    series = resolve_series(config, run_dir)
    task_names = [t.name for t in config.tasks]
    ev_settings = asdict(config.evaluation)
    common = {"version": __version__, "seed": config.seed, "data": fingerprints,
              "tasks": [asdict(t) for t in config.tasks], "dtype": config.checkpoints.dtype}
    cells: list[Cell] = []
    pre: list[str] = []
    if config.checkpoints.source == "pretrain":
        pid = digest({"kind": "pretrain", "settings": asdict(config.checkpoints.pretrain), "seed": config.seed,
                      "version": __version__})
        cells.append(Cell(pid, "pretrain", "pretrain"))
        pre = [pid]

    def own_sets(task: str) -> dict[str, list[tuple[str, str]]]:
        sets = [(s, d) for s, d in task_eval_sets[task] if d == "in" or config.evaluation.out_of_domain]
        return {task: sets}

    all_sets = {t: [(s, d) for s, d in task_eval_sets[t] if d == "in" or config.evaluation.out_of_domain]
                for t in task_names}
    for ck in series:
        units = eval_units(config, task_types, all_sets, task_names)
        cid = digest({"kind": "base", "checkpoint": ck.identity, "eval": ev_settings, **common})
        cells.append(Cell(cid, "base", f"BASE {ck.label}", ck, units=units, depends_on=pre))
        for tc in config.tasks:
            if not tc.train:
                continue
            sets = own_sets(tc.name)
            if config.evaluation.cross_task:
                for other in task_names:
                    if other != tc.name:
                        sets[other] = [(s, d) for s, d in task_eval_sets[other] if d == "in"]
            units = eval_units(config, task_types, sets, list(sets))
            for lr in tc.lr or config.finetune.learning_rates:
                for seed in config.finetune.seeds:
                    training = {"kind": "finetune", "checkpoint": ck.identity, "task": tc.name, "lr": lr,
                                "seed": seed, "finetune": asdict(config.finetune) | {"keep_weights": None},
                                **common}
                    thash = digest(training)
                    cid = digest({**training, "eval": ev_settings})
                    cells.append(Cell(cid, "finetune", f"FT {ck.label} {tc.name} lr={lr:g} seed={seed}", ck,
                                      tc.name, lr, seed, thash, units, pre))
        it = config.instruction_tuning
        if it.enabled:
            mc_units = eval_units(config, task_types, {s: task_eval_sets[s] for s in it.suite}, it.suite)
            training = {"kind": "instruct", "checkpoint": ck.identity, "it": asdict(it), **common}
            thash = digest(training)
            cid = digest({**training, "eval": ev_settings})
            cells.append(Cell(cid, "instruct", f"IT {ck.label}", ck, "instruct", it.lr, config.seed, thash,
                              mc_units, pre))
            base_mc = eval_units(config, task_types, {s: task_eval_sets[s] for s in it.suite}, it.suite)
            bid = digest({"kind": "base-mc", "checkpoint": ck.identity, "eval": ev_settings, "it": asdict(it), **common})
            cells.append(Cell(bid, "base", f"BASE-MC {ck.label}", ck, units=base_mc, depends_on=pre))
    return cells
