"""A study expanded into cells: every unit of work known before anything runs.

Cell kinds:
- ``pretrain``: pre-train the model series (only for ``checkpoints.source: pretrain``);
- ``base``: evaluate one checkpoint few-shot on one eval task's sets (computed once, reused by
  every comparison);
- ``finetune``: fine-tune one checkpoint on one task with one method at one learning rate and seed, then evaluate
  the fine-tuned model on the task's eval sets and the other tasks' in-domain sets;
- ``instruct``: instruction-tune one checkpoint and evaluate it on the multiple-choice suite;
- ``probe``: measure one checkpoint's proxies (held-out loss, sensitivity to weight noise, gold
  log-likelihood per in-domain eval set) without fine-tuning it; only when ``probes.enabled``.

A cell's id is a content hash over everything that determines its result and nothing else
(checkpoint identity, the fingerprints of the data it reads, hyperparameters, evaluation settings,
seed, thread count, ptft version; never the run directory's path), so changing a setting reruns exactly the cells it touches. Fine-tuned weights are addressed by a narrower *training*
hash, so kept weights are reused when only evaluation settings change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ptft import __version__
from ptft.checkpoints.series import Checkpoint, resolve_series
from ptft.config import LensesConfig, StudyConfig, learning_rates, method_settings, training_inputs
from ptft.grid import FULL, INSTRUCT_TRAIN_TASK, PROBE_METHOD, CellKind, EvalUnit
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

    def __post_init__(self):
        if self.kind in (CellKind.FINETUNE, CellKind.INSTRUCT) and not self.ft_method:
            self.ft_method = FULL

    @property
    def model_id(self) -> str:
        ck = self.checkpoint.label if self.checkpoint else ""
        if self.kind == CellKind.PRETRAIN:
            return "pretrain"
        if self.kind in (CellKind.BASE, CellKind.PROBE):
            return f"{self.kind}/{ck}"
        # full fine-tuning's ids were named before the method axis, and stay so
        method = "" if self.ft_method == FULL else f"/{self.ft_method}"
        return f"{self.kind}/{ck}/{self.train_task}{method}/lr{self.lr:g}/seed{self.seed}"

    def spec(self) -> dict:
        d = asdict(self)
        d["units"] = len(self.units)
        return d


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def heldout_source(config: StudyConfig) -> str:
    """Which text the probes' held-out loss is measured on (the rows' ``eval_task``): the
    pre-training held-out documents of a series ptft pre-trained, else ``probes.text``, else the
    training prompts of the study's tasks."""
    if config.checkpoints.source == "pretrain":
        return "pretrain_heldout"
    return "probes_text" if config.probes.text else "train_prompts"


def file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


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
    task_formats = {t.name: t.formats for t in config.tasks}
    units = []
    for task in tasks:
        methods = get_task_type(task_types[task]).study_methods(ev.methods)
        for eval_set, _domain in eval_sets[task]:
            for fmt in task_formats.get(task) or ev.formats:
                for shots in ev.shots:
                    for method in methods:
                        units.append(EvalUnit(task, eval_set, fmt, shots, method))
    return units


# What a cell hashes of each input added to the grid after cells were first hashed, in the
# configs that leave it as it was before it existed: the method (full fine-tuning) and its
# settings (none), evaluation points during fine-tuning (none), packing (off: no token budget),
# the weight lenses' settings (their defaults, or lenses off) and LiNeS (off).
_AS_BEFORE = {"ft_method": FULL, "method_settings": {}, "eval_at": [], "packed_batch_tokens": None,
              "lenses": {k: v for k, v in asdict(LensesConfig()).items() if k != "enabled"}, "lines": None}


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
    """What the weight lenses and LiNeS add to a fine-tuning cell's id: their settings where they
    differ from before (lens settings matter only with lenses on; cells resumed without a lens
    lack it instead of rerunning). Non-default lens settings change the stored lenses; LiNeS adds
    rows. Neither touches the training hash: kept weights are reused."""
    lenses = {k: v for k, v in asdict(config.lenses).items() if k != "enabled"}
    # "outside": parameters outside the blocks take alpha (the reference code's rule); LiNeS rows
    # made when they took alpha + beta are other numbers and must not be reused
    lines = {"alpha": config.lines.alpha, "beta": config.lines.beta, "outside": "alpha"}
    return added_inputs(lenses=lenses if config.lenses.enabled else _AS_BEFORE["lenses"],
                        lines=lines if config.lines.enabled else None)


def method_inputs(config: StudyConfig, method: str) -> dict:
    """What a fine-tuning method adds to its cells' training hash: its name and its settings
    (its learning rates are the cells' own ``lr``); nothing for full fine-tuning, so adding a
    method keeps every existing id."""
    return added_inputs(ft_method=method, method_settings=method_settings(config, method))


def expand(config: StudyConfig, run_dir: Path, fingerprints: dict[str, str | dict],
           task_types: dict[str, str], task_eval_sets: dict[str, list[tuple[str, str]]]) -> list[Cell]:
    """The study's cells in dependency order. ``fingerprints`` maps task name to its data hash:
    a single string, or (finer, what :func:`plan_cells` passes) the dict of
    :func:`task_fingerprints`; ``task_eval_sets`` maps task name to [(eval set, domain)].

    A cell's id hashes exactly its inputs, so a change reruns only the cells it touches:
    - BASE (checkpoint x eval task): the checkpoint (and the pre-training cell that made it), the
      eval task's definition, its training split (demonstrations) and the eval sets it scores,
      the evaluation settings and units, the seed, the dtype and ptft's version;
    - FT (checkpoint x task x method x lr x seed): its *training* hash (checkpoint, the task's
      definition, train and dev data, fine-tuning settings, lr, seed, dtype, version, and for a
      method other than full its name and settings (:func:`method_inputs`); not the list of other
      methods, learning rates or seeds, not ``keep_weights``) plus the evaluation inputs of every set it
      scores, the intermediate points of ``finetune.eval_at`` when there are any, and the lens
      and LiNeS settings where they differ from their defaults (:func:`weight_inputs`; both so
      the defaults keep every id). Kept weights are addressed by the training hash alone;
    - PROBE (checkpoint, only with ``probes.enabled``): see :func:`_probe_cell`. No other cell
      hashes the probe settings, so turning probes on or off changes no other id.
    """
    series = resolve_series(config, run_dir)
    task_names = [t.name for t in config.tasks]
    ev_settings = {k: v for k, v in asdict(config.evaluation).items() if k not in _EVAL_IN_UNITS}
    ft_settings = {**training_inputs(config.finetune), **packing_inputs(config)}
    during = intermediate_fractions(config.finetune.eval_at)
    common = {"version": __version__, "study_seed": config.seed, "dtype": config.checkpoints.dtype,
              "threads": config.executor.threads}

    def fp(task: str, part: str, eval_set: str | None = None):
        f = fingerprints.get(task)
        if not isinstance(f, dict):
            return f
        return f["eval"].get(eval_set) if part == "eval" else f[part]

    def eval_inputs(units: list[EvalUnit]) -> dict:
        """What the evaluation of these units reads: per eval task its definition, its training
        split (the demonstrations) and the eval sets scored; the settings; the units."""
        data: dict[str, dict] = {}
        for u in units:
            d = data.setdefault(u.eval_task, {"task": fp(u.eval_task, "task"), "train": fp(u.eval_task, "train"),
                                              "sets": {}})
            d["sets"][u.eval_set] = fp(u.eval_task, "eval", u.eval_set)
        return {"eval": ev_settings, "units": [asdict(u) for u in units], "eval_data": data}

    cells: list[Cell] = []
    pre: list[str] = []
    if config.checkpoints.source == "pretrain":
        pid = digest({"kind": CellKind.PRETRAIN, "settings": asdict(config.checkpoints.pretrain), "seed": config.seed,
                      "threads": config.executor.pretrain_threads, "version": __version__})
        cells.append(Cell(pid, CellKind.PRETRAIN, "pretrain"))
        pre = [pid]

    def sets_of(task: str, out_of_domain: bool) -> list[tuple[str, str]]:
        return [(s, d) for s, d in task_eval_sets[task] if d == "in" or out_of_domain]

    post_training = weight_inputs(config)
    it = config.instruction_tuning
    base_tasks = list(task_names) + [s for s in (it.suite if it.enabled else []) if s not in task_names]
    for ck in series:
        source = {"checkpoint": ck.identity, "upstream": pre}
        for task in base_tasks:
            units = eval_units(config, task_types, {task: sets_of(task, config.evaluation.out_of_domain)}, [task])
            cid = digest({"kind": CellKind.BASE, **source, **eval_inputs(units), **common})
            cells.append(Cell(cid, CellKind.BASE, f"BASE {ck.label} {task_label(task)}", ck, units=units,
                              depends_on=pre))
        for tc in config.tasks:
            if not tc.train:
                continue
            sets = {tc.name: sets_of(tc.name, config.evaluation.out_of_domain)}
            if config.evaluation.cross_task:
                for other in task_names:
                    if other != tc.name:
                        sets[other] = sets_of(other, False)
            units = eval_units(config, task_types, sets, list(sets))
            for method in config.finetune.methods:
                shown = "" if method == FULL else f" {method}"
                for lr in learning_rates(config, tc, method):
                    for seed in config.finetune.seeds:
                        training = {"kind": CellKind.FINETUNE, **source, "task": tc.name,
                                    "task_def": fp(tc.name, "task"), "train": fp(tc.name, "train"),
                                    "dev": fp(tc.name, "dev"), "lr": lr, "seed": seed, "finetune": ft_settings,
                                    **method_inputs(config, method), **common}
                        thash = digest(training)
                        points = added_inputs(eval_at=during)
                        cid = digest({**training, **eval_inputs(units),
                                      "selection": config.finetune.selection_metric, **points, **post_training})
                        label = f"FT {ck.label} {task_label(tc.name)}{shown} lr={lr:g} seed={seed}"
                        cells.append(Cell(cid, CellKind.FINETUNE, label, ck, tc.name, lr, seed, thash, units, pre,
                                          ft_method=method))
        if it.enabled:
            mc_units = eval_units(config, task_types, {s: sets_of(s, True) for s in it.suite}, it.suite)
            it_settings = {k: v for k, v in asdict(it).items() if k not in ("suite", "n_eval")}
            # the SFT settings it shares with fine-tuning are not hashed, as before, except packing
            training = {"kind": CellKind.INSTRUCT, **source, "it": it_settings, **packing_inputs(config), **common}
            thash = digest(training)
            cid = digest({**training, **eval_inputs(mc_units)})
            cells.append(Cell(cid, CellKind.INSTRUCT, f"IT {ck.label}", ck, INSTRUCT_TRAIN_TASK, it.lr, config.seed,
                              thash, mc_units, pre))
        if config.probes.enabled:
            cells.append(_probe_cell(config, ck, source, pre, task_eval_sets, fp, eval_inputs, common))
    return cells


def _probe_cell(config: StudyConfig, ck: Checkpoint, source: dict, pre: list[str], task_eval_sets, fp, eval_inputs,
                common: dict) -> Cell:
    """One checkpoint's probe cell. Its units are the gold log-likelihoods: every in-domain set of
    the study's tasks in the default format at each shot count (the proxy is compared with FT
    metrics on in-domain sets only). Its id hashes those units' inputs, the probe settings and the
    held-out text: the pre-training cell (upstream), the file's content, or the tasks' definitions
    and training splits."""
    names = [t.name for t in config.tasks]
    units = [EvalUnit(task, s, "default", shots, PROBE_METHOD) for task in names
             for s, d in task_eval_sets[task] if d == "in" for shots in config.evaluation.shots]
    text = heldout_source(config)
    held = {"source": text}
    if text == "probes_text":
        held["file"] = file_digest(config.probes.text)
    elif text == "train_prompts":
        held["tasks"] = {t: [fp(t, "task"), fp(t, "train")] for t in names}
    settings = asdict(config.probes)
    settings.pop("text")  # its content is hashed above, not its path
    cid = digest({"kind": CellKind.PROBE, **source, "probes": settings, "heldout": held, **eval_inputs(units),
                  **common})
    return Cell(cid, CellKind.PROBE, f"PROBE {ck.label}", ck, units=units, depends_on=pre)
