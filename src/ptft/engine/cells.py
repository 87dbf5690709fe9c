"""A study's cells: the types every kind of cell shares (``ptft.engine.kinds`` has the kinds).

- :class:`Cell`: one unit of work known before anything runs, with its content-hash id;
- :class:`Expansion`: what a kind reads to make its cells and their ids;
- :class:`Kind`: what a kind of cell is (the cells it makes, what one runs, what is kept of it);
- :class:`CellOutput`: what a cell produced, handed back to the driver to store;
- the inputs the ids hash: data fingerprints, evaluation units, and the one rule for inputs the
  grid gained later (:func:`added_inputs`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ptft import __version__
from ptft.checkpoints.series import Checkpoint
from ptft.config import LensesConfig, StudyConfig, method_settings
from ptft.grid import FULL, CellKind, EvalUnit, ModelKey, ResultRow, Scores
from ptft.task_types import get_task_type
from ptft.tasks import get_task
from ptft.tasks.lm_eval_task import PREFIX as LM_EVAL_PREFIX


@dataclass
class Cell:
    cell_id: str
    kind: CellKind
    label: str
    checkpoint: Checkpoint | None = None
    train_task: str = ""
    lr: float | None = None
    seed: int | None = None
    training_hash: str = ""
    units: list[EvalUnit] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    # how the cell's model is fine-tuned (ptft.training.methods): '' for a model that is not
    ft_method: str = ""
    # the runs a selected-rate evaluation chooses among: (learning rate, training hash) of each
    candidates: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self):
        if self.kind in (CellKind.FINETUNE, CellKind.INSTRUCT, CellKind.SELECTED) and not self.ft_method:
            self.ft_method = FULL

    @property
    def model_id(self) -> str:
        ck = self.checkpoint.label if self.checkpoint else ""
        if self.kind == CellKind.PRETRAIN:
            return "pretrain"
        if not self.train_task:  # a checkpoint as it is (BASE, probes)
            return f"{self.kind}/{ck}"
        # full fine-tuning's ids were named before the method axis, and stay so
        method = "" if self.ft_method == FULL else f"/{self.ft_method}"
        rate = "" if self.lr is None else f"/lr{self.lr:g}"  # a selected-rate evaluation's rate is chosen as it runs
        return f"{self.kind}/{ck}/{self.train_task}{method}{rate}/seed{self.seed}"

    def model_key(self, train_task: str) -> ModelKey:
        """The model of the cell's results; ``train_task`` as results name the task
        (``ptft.engine.work.task_label``: a task file's own name, not its path)."""
        ck = self.checkpoint
        return ModelKey(ck.label, ck.step, train_task, self.ft_method, self.lr, self.seed)

    def spec(self) -> dict:
        d = asdict(self)
        d["units"] = len(self.units)
        return d


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def task_fingerprints(task, data) -> dict:
    """Content hashes of what each kind of cell reads from one task: ``train`` (fine-tuning data
    and few-shot demonstrations), ``dev`` (learning-rate selection), each eval set, and ``task``
    (its definition: type, prompt formats, labels, eval sets, generation length)."""
    definition = {"name": task.name, "type": task.task_type, "labels": list(task.labels),
                  "max_new_tokens": task.max_new_tokens,
                  "formats": {k: [f.name, f.template, f.cue] for k, f in sorted(task.formats.items())},
                  "eval_sets": [[e.name, e.domain, list(e.labels or ())] for e in task.eval_sets]}
    return {"task": digest(definition), **data.split_fingerprints()}


def task_label(name: str) -> str:
    """How a cell names a task: a task file by the task's own ``name:``, not by its path (an
    lm-eval task file by ``lm-eval:`` and its task's name)."""
    if not name.endswith((".yaml", ".yml")):
        return name
    task = get_task(name)
    return LM_EVAL_PREFIX + task.eval_sets[0].name if name.startswith(LM_EVAL_PREFIX) else task.name


def intermediate_fractions(eval_at: list[float]) -> list[float]:
    """The points of ``finetune.eval_at`` before the end of training, in order: the final model
    is evaluated anyway, so ``[1.0]`` (the default) and ``[]`` mean none."""
    return sorted({float(f) for f in eval_at if f < 1.0})


def eval_units(config: StudyConfig, task_types: dict[str, str], eval_sets: dict[str, list[tuple[str, str]]],
               tasks: list[str]) -> list[EvalUnit]:
    """Every (eval set, format, shots, method) to score for the given eval tasks' sets."""
    ev = config.evaluation
    task_config = {t.name: t for t in config.tasks}
    units = []
    for task in tasks:
        methods = get_task_type(task_types[task]).study_methods(ev.methods)
        tc = task_config.get(task)
        formats = (tc.formats if tc else None) or ev.formats
        for eval_set, domain in eval_sets[task]:
            out_formats = tc.out_of_domain_formats if tc and domain == "out" else None
            for fmt in out_formats or formats:
                for shots in ev.shots:
                    for method in methods:
                        units.append(EvalUnit(task, eval_set, fmt, shots, method))
    return units


# What a cell hashes of each input added to the grid after cells were first hashed, in the
# configs that leave it as it was before it existed: the method (full fine-tuning) and its
# settings (none), evaluation points during fine-tuning (none), packing (off: no token budget),
# the weight lenses' settings (their defaults, or lenses off), LiNeS and grafting (off).
_AS_BEFORE = {"ft_method": FULL, "method_settings": {}, "eval_at": [], "packed_batch_tokens": None,
              "lenses": {k: v for k, v in asdict(LensesConfig()).items() if k != "enabled"}, "lines": None,
              "grafting": None}


def added_inputs(**inputs) -> dict:
    """The one rule for an input added to the grid: hashed only where it differs from what the
    cells hashed before it existed (``_AS_BEFORE``), so adding it changes no existing cell id and a
    config that leaves it as it was keeps its cells (every preset's ids are pinned in the tests)."""
    return {k: v for k, v in inputs.items() if v != _AS_BEFORE[k]}


def packing_inputs(config: StudyConfig) -> dict:
    """What packing adds to a training's identity: its token budget, which decides the examples
    that share a step (packing on is the default now, but it was not when cells were first hashed)."""
    ft = config.finetune
    return added_inputs(packed_batch_tokens=ft.batch_tokens if ft.packing else None)


_EVAL_IN_UNITS = ("shots", "formats", "methods", "cross_task", "out_of_domain")


def weight_inputs(config: StudyConfig) -> dict:
    """What the weight lenses, LiNeS and grafting add to a fine-tuning cell's id: their settings
    where they differ from before (lens settings matter only with lenses on; cells resumed without
    a lens lack it instead of rerunning). Non-default lens settings change the stored lenses; LiNeS
    and grafting add rows. None touches the training hash: kept weights are reused."""
    lenses = {k: v for k, v in asdict(config.lenses).items() if k != "enabled"}
    # "outside": parameters outside the blocks take alpha (the reference code's rule); LiNeS rows
    # made when they took alpha + beta are other numbers and must not be reused
    lines = {"alpha": config.lines.alpha, "beta": config.lines.beta, "outside": "alpha"}
    # the mask's rule is named: an optimised mask would be other numbers under the same shares
    grafting = {"top_percent": sorted(config.grafting.top_percent), "mask": "magnitude"}
    return added_inputs(lenses=lenses if config.lenses.enabled else _AS_BEFORE["lenses"],
                        lines=lines if config.lines.enabled else None,
                        grafting=grafting if config.grafting.enabled else None)


def lens_inputs(config: StudyConfig) -> dict:
    """What the weight lenses alone add to a cell's id (:func:`weight_inputs` without LiNeS and
    grafting): the part of a fine-tuning cell's outputs that its training half measures."""
    return {k: v for k, v in weight_inputs(config).items() if k == "lenses"}


def method_inputs(config: StudyConfig, method: str) -> dict:
    """What a fine-tuning method adds to its cells' training hash: its name and its settings
    (its learning rates are the cells' own ``lr``); nothing for full fine-tuning, so adding a
    method keeps every existing id."""
    return added_inputs(ft_method=method, method_settings=method_settings(config, method))


@dataclass
class CellOutput:
    cell_id: str
    rows: list[ResultRow] = field(default_factory=list)
    predictions: dict[str, list[dict]] = field(default_factory=dict)
    scores: Scores = field(default_factory=dict)
    training: dict | None = None
    # weight-space lenses, one dict per matrix (the store's ``weights`` table)
    weights: list[dict] = field(default_factory=list)
    # per-layer representation measures, one dict per (eval set, format, shots, layer, measure)
    # (the store's ``layers`` table)
    layers: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    numerics: str = ""
    # the model its results are of, where that is not the cell's own (a selected-rate evaluation's:
    # the run it chose)
    model_id: str = ""


class Expansion:
    """What every kind's expansion reads: the config, the data fingerprints of its tasks
    (:func:`task_fingerprints` per task, or one string per task), their types and eval sets
    ([(eval set, domain)]), and the inputs every cell hashes."""

    def __init__(self, config: StudyConfig, fingerprints: dict[str, str | dict], task_types: dict[str, str],
                 task_eval_sets: dict[str, list[tuple[str, str]]]):
        self.config = config
        self.fingerprints = fingerprints
        self.task_types = task_types
        self.task_eval_sets = task_eval_sets
        # the cells every other one depends on: the pre-training that makes the series
        self.upstream: list[str] = []
        # the cells the kinds before the current one made for the checkpoint being expanded
        self.made: list[Cell] = []
        self.common = {"version": __version__, "study_seed": config.seed, "dtype": config.checkpoints.dtype,
                       "threads": config.executor.threads}
        self._eval_settings = {k: v for k, v in asdict(config.evaluation).items() if k not in _EVAL_IN_UNITS}

    def source(self, ck: Checkpoint) -> dict:
        """What a cell of checkpoint ``ck`` hashes of it: its identity and the cells that made it."""
        return {"checkpoint": ck.identity, "upstream": self.upstream}

    def fp(self, task: str, part: str, eval_set: str | None = None):
        f = self.fingerprints.get(task)
        if not isinstance(f, dict):
            return f
        return f["eval"].get(eval_set) if part == "eval" else f[part]

    def eval_inputs(self, units: list[EvalUnit]) -> dict:
        """What the evaluation of these units reads: per eval task its definition, its training
        split (the demonstrations) and the eval sets scored; the settings; the units."""
        data: dict[str, dict] = {}
        for u in units:
            d = data.setdefault(u.eval_task, {"task": self.fp(u.eval_task, "task"),
                                              "train": self.fp(u.eval_task, "train"), "sets": {}})
            d["sets"][u.eval_set] = self.fp(u.eval_task, "eval", u.eval_set)
        return {"eval": self._eval_settings, "units": [asdict(u) for u in units], "eval_data": data}

    def sets_of(self, task: str, out_of_domain: bool) -> list[tuple[str, str]]:
        return [(s, d) for s, d in self.task_eval_sets[task] if d == "in" or out_of_domain]

    def units(self, sets: dict[str, list[tuple[str, str]]]) -> list[EvalUnit]:
        return eval_units(self.config, self.task_types, sets, list(sets))


class Kind:
    """One kind of cell, one module of ``ptft.engine.kinds`` registered in its ``KINDS``: which
    cells it makes and what their ids hash (:meth:`per_study`, :meth:`per_checkpoint`), what a cell
    runs (:meth:`run`, wherever the executor puts it) and what of its output the trainings table
    keeps (:meth:`training_row`)."""

    kind: CellKind
    # a stage of its own: every other cell waits for it, and it shows its progress bar
    alone = False

    def per_study(self, ex: Expansion) -> list[Cell]:
        """The cells made once per study, before any checkpoint's (those all depend on them)."""
        return []

    def per_checkpoint(self, ex: Expansion, ck: Checkpoint) -> list[Cell]:
        return []

    def threads(self, config: StudyConfig) -> int:
        """The torch thread count its cells compute with: a study setting, whatever runs them."""
        return config.executor.threads

    def run(self, config: StudyConfig, run_dir: Path, cell: Cell, progress: bool) -> CellOutput:
        raise NotImplementedError

    def training_row(self, run_dir: Path, cell: Cell, out: CellOutput) -> dict | None:
        """The cell's row of the trainings table, if it trained a model."""
        if out.training is None:
            return None
        return {"model_id": cell.model_id, **asdict(cell.model_key(out.training.get("train_task") or cell.train_task)),
                **{k: out.training.get(k) for k in ("train_loss", "dev_loss", "steps", "tokens", "seconds",
                                                    "tokens_per_second", "dev_metric", "trainable_parameters",
                                                    "peak_memory_mb", "examples_per_step")},
                "reused": int(out.training.get("reused", 0) or 0)}
