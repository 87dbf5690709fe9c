"""The study config: one YAML file describes a whole grid.

Dataclasses are the schema. :func:`load_config` turns YAML into them and refuses, before anything
starts, unknown keys, wrong types, bad values and missing files, naming the file and the dotted key
(``tiny.yaml: finetune.epochs: expected an integer, got 'three'``). Presets shipped in the package
are found by name (``ptft run tiny``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from ptft.errors import CheckpointError, ConfigError, PtftError, yaml_problem
from ptft.grid import FULL, graft_variant
from ptft.task_types import all_methods
from ptft.tasks import get_task
from ptft.tasks.instructions import registered_mixture
from ptft.tasks.lm_eval_task import PREFIX as LM_EVAL_PREFIX
from ptft.training.args import NOT_HASHED, FinetuneArgs, MethodSettings, PretrainSettings, SftRecipe
from ptft.training.methods import METHODS, get_method


@dataclass
class LocalSource:
    paths: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)


@dataclass
class HubSource:
    repo: str = ""
    revisions: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    select: int | None = None
    revision_names: list[str] = field(default_factory=list)
    include_main: bool = True
    # the pre-training step of `main` (its name carries none), so analyses can place it on the axis
    main_step: int | None = None


@dataclass
class CheckpointsConfig:
    source: Literal["pretrain", "local", "hub"] = "pretrain"
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)
    local: LocalSource = field(default_factory=LocalSource)
    hub: HubSource = field(default_factory=HubSource)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


@dataclass
class TaskConfig:
    name: str = ""
    n_train: int | None = 6000
    n_dev: int | None = 200
    n_eval: int | None = 500
    train: bool = True
    lr: list[float] = field(default_factory=list)
    # formats to evaluate this task's eval sets in; empty: evaluation.formats
    formats: list[Literal["default", "io", "instruct"]] = field(default_factory=list)
    # formats of its out-of-domain sets alone; empty: those of its in-domain sets
    out_of_domain_formats: list[Literal["default", "io", "instruct"]] = field(default_factory=list)


def training_inputs(section) -> dict:
    """The settings of a config section that are inputs of a training's hash (all but those
    declared ``NOT_HASHED``, ``ptft.training.args``), by name."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(section)
            if f.metadata.get("training_input", True)}


@dataclass(frozen=True)
class FinetuneSettings(SftRecipe):
    """The ``finetune`` section without the methods' own sections: the recipe (declared in
    ``ptft.training.args``, with its checks) and the grid's fine-tuning axes."""

    learning_rates: list[float] = field(default_factory=lambda: [2e-5], metadata=NOT_HASHED)
    seeds: list[int] = field(default_factory=lambda: [0], metadata=NOT_HASHED)
    keep_weights: bool = field(default=False, metadata=NOT_HASHED)
    selection_metric: Literal["loss", "metric"] = field(default="loss", metadata=NOT_HASHED)
    # fractions of each fine-tuning run's steps at which the model is evaluated during that run;
    # the final model (1.0) always is
    eval_at: list[float] = field(default_factory=lambda: [1.0], metadata=NOT_HASHED)
    # which fine-tuned models are evaluated: every learning rate's ("all"), or only the one the dev
    # split selects per (checkpoint, task, method, seed) ("selected": every rate is trained, then
    # one cell evaluates the chosen model, and the other rates' evaluation is not paid for)
    evaluate: Literal["all", "selected"] = field(default="all", metadata=NOT_HASHED)
    # an axis of the grid, like learning_rates and seeds (ptft.training.methods)
    methods: list[str] = field(default_factory=lambda: [FULL], metadata=NOT_HASHED)

    def settings_of(self, method: str) -> MethodSettings | None:
        """The settings of ``method`` (its section of this one), None for a method without."""
        return getattr(self, method) if get_method(method).settings else None

    def run_args(self, method: str, **given) -> FinetuneArgs:
        """The arguments of one training run with ``method``: the recipe and the method's
        settings from here, the rest (``lr``, ``seed``) from ``given``."""
        return FinetuneArgs.from_settings(self, method=method, settings=self.settings_of(method), **given)


# The ``finetune`` section: the settings above and a section ``finetune.<method>`` of each
# registered method's settings, so a method declares its settings in its own module alone.
_TAKEN = sorted({m.name for m in METHODS.values() if m.settings} & {f.name for f in dataclasses.fields(FinetuneSettings)})
if _TAKEN:
    raise ValueError(f"fine-tuning method {_TAKEN[0]!r}: its settings would replace finetune.{_TAKEN[0]}; "
                     "give the method another name")
FinetuneConfig = dataclasses.make_dataclass(
    "FinetuneConfig",
    [(m.name, m.settings, field(default_factory=m.settings, metadata=NOT_HASHED))
     for m in METHODS.values() if m.settings is not None],
    bases=(FinetuneSettings,), frozen=True)
FinetuneConfig.__module__ = __name__  # pickled by reference, for the worker processes


@dataclass
class InstructionTuningConfig:
    enabled: bool = False
    mixture: str = "mixed_instructions"
    n_train: int | None = 2000
    epochs: float = 5.0
    lr: float = 2e-6
    suite: list[str] = field(default_factory=list)
    n_eval: int | None = 500
    n_dev: int = 100
    max_length: int | None = None


@dataclass
class EvaluationConfig:
    shots: list[int] = field(default_factory=lambda: [4])
    formats: list[Literal["default", "io", "instruct"]] = field(default_factory=lambda: ["default", "io", "instruct"])
    # scoring methods of the task types (ptft.task_types); a type none of these belongs to is scored by its default
    methods: list[str] = field(default_factory=lambda: ["tokenprob"])
    batch_size: int = 16
    n_bootstrap: int = 1000
    cross_task: bool = True
    out_of_domain: bool = True
    max_new_tokens: int | None = None


@dataclass
class LensesConfig:
    """Weight-space lenses of each fine-tuned model against its BASE checkpoint (docs/method.md)."""

    enabled: bool = True
    # intruder dimensions: W1's top-k left singular vectors whose max |cos| with W0's is below epsilon
    # (Shuttleworth et al. examine the top 10 and use 0.5 or 0.6)
    intruder_k: int = 10
    intruder_epsilon: float = 0.5


@dataclass
class LinesConfig:
    """LiNeS (Wang et al. 2025): each fine-tuned model is also evaluated with block l of L at
    theta0 + (alpha + beta (l-1)/(L-1)) (theta1 - theta0). The paper's single-task setting ties
    beta = 1 - alpha (the last block keeps its whole change) and picks alpha on validation data
    from 0, 0.1, ..., 1; 0.5 is the middle of that range, fixed here (no search)."""

    enabled: bool = False
    alpha: float = 0.5
    beta: float = 0.5


@dataclass
class GraftingConfig:
    """Grafting (Panigrahi et al. 2023; ptft.evaluation.grafting), off by default: each fine-tuned
    model is also evaluated with only the top s % of its change by magnitude kept, for each s of
    ``top_percent`` (percent of all parameter entries; the paper finds skills in about 0.01 %)."""

    enabled: bool = False
    top_percent: list[float] = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0])


@dataclass
class TucoConfig:
    """TuCo (Nuti et al. 2025; ptft.evaluation.tuco): the fine-tuning contribution to the response
    to each scored prompt, for every fine-tuned model. Off by default: it costs about two more
    passes over every scored prompt (with CKA, 94 s for the 13 sets a `tiny` review-polarity model
    scores in 30 s)."""

    enabled: bool = False


@dataclass
class CkaConfig:
    """Linear CKA (Kornblith et al. 2019; ptft.evaluation.similarity) between each fine-tuned
    model's hidden states and its BASE checkpoint's, per layer, on the prompts of every set the
    fine-tuned model scores. Off by default: one more pass of each model over the prompts."""

    enabled: bool = False


@dataclass
class ExecutorConfig:
    kind: Literal["local", "ray"] = "local"
    workers: int = 1
    # torch threads inside each cell. Not an execution detail: a CPU's floating-point sums depend
    # on how many threads split them, so this is part of every cell's identity, and the worker
    # count or executor never changes it (1 vs 2 threads changed fine-tuning losses in the 4th digit)
    threads: int = 1
    # the pre-training cell runs alone (every other cell waits for it), so it gets more threads
    pretrain_threads: int = 2
    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory_gb: float | None = None
    retries: int = 0


@dataclass
class EstimateConfig:
    """Assumptions of `ptft plan`'s cost estimate (nothing else reads them)."""

    parameters: int | None = None
    peak_tflops: float = 989.0
    mfu: float = 0.3
    gpu: str = "H100 SXM, bf16 dense"


@dataclass
class WandbConfig:
    project: str | None = None  # None: the study's name
    mode: Literal["offline", "online"] = "offline"


@dataclass
class TrackingConfig:
    """Experiment tracking (``ptft.tracking``), off by default."""

    tensorboard: bool = False
    wandb: WandbConfig | None = None


@dataclass
class ProbesConfig:
    """Probe cells: proxies measured on each checkpoint without fine-tuning (docs/method.md,
    "Predicting fine-tuning from proxies"), off by default."""

    enabled: bool = False
    # noise std of each weight tensor = sigma x that tensor's root mean square
    sigma: float = 0.1
    draws: int = 3
    # held-out text for a series ptft did not pre-train: paragraphs of this file (else the tasks'
    # training prompts); a pre-trained series always uses its own held-out documents
    text: str | None = None
    windows: int = 32
    seq_len: int = 256
    # token positions of the held-out windows whose final hidden states give RankMe and alpha-ReQ
    # (ptft.evaluation.geometry); 0: neither
    representation_tokens: int = 4096


@dataclass
class StudyConfig:
    name: str = "study"
    seed: int = 1234
    output_dir: str = "runs/study"
    data_dir: str | None = None
    device: str = "auto"
    checkpoints: CheckpointsConfig = field(default_factory=CheckpointsConfig)
    tasks: list[TaskConfig] = field(default_factory=list)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    instruction_tuning: InstructionTuningConfig = field(default_factory=InstructionTuningConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    lenses: LensesConfig = field(default_factory=LensesConfig)
    lines: LinesConfig = field(default_factory=LinesConfig)
    grafting: GraftingConfig = field(default_factory=GraftingConfig)
    tuco: TucoConfig = field(default_factory=TucoConfig)
    cka: CkaConfig = field(default_factory=CkaConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    estimate: EstimateConfig = field(default_factory=EstimateConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    probes: ProbesConfig = field(default_factory=ProbesConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:12]


# -- loading and validation ----------------------------------------------------------------------

def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("ptft.presets").iterdir() if p.name.endswith(".yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A config file, else the preset of that name. A folder is never a config: `ptft run smoke`
    inside a folder that holds a run directory ``smoke/`` means the preset."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if str(name_or_path) in preset_names():
        return Path(str(resources.files("ptft.presets") / f"{name_or_path}.yaml"))
    if path.is_dir():
        raise ConfigError(f"{name_or_path} is a folder, not a study config; give a YAML file or a preset name "
                          f"({', '.join(preset_names())})")
    raise ConfigError(f"no config file {name_or_path!r} and no preset of that name (presets: {', '.join(preset_names())})")


def load_config(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> StudyConfig:
    """Read and validate a study config. ``overrides`` maps dotted keys to values (``seed``,
    ``output_dir``, ``finetune.epochs``...) applied before validation.

    A config may start from another: ``include: tiny`` (a preset) or ``include: base.yaml`` (a
    file, relative to the including one) reads that config first, and this file's keys replace its
    keys, section by section (a mapping is merged key by key, a list or a value replaced whole).
    Relative paths inside an included file are read relative to the config being loaded."""
    path = resolve_config_path(name_or_path)
    raw, chain = _read_with_includes(path, [])
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, last = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    file = path.name + "".join(f" (including {p.name})" for p in chain[1:])
    config = _build(StudyConfig, raw, file, "")
    _check_semantics(config, path, file)
    return _normalized(config, path)


def _read_yaml_mapping(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(err)}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file ({err.reason} at byte {err.start}); give a YAML study "
                          "config") from None
    if raw is None:
        raise ConfigError(f"{path}: the file is empty (or only comments); a study config needs at least "
                          "`tasks:` (see `ptft tasks` and the presets, e.g. `ptft plan smoke`)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    return raw


def _read_with_includes(path: Path, seen: list[Path]) -> tuple[dict, list[Path]]:
    """The file's mapping over whatever it includes, and the chain of files read (this one first)."""
    if path.resolve() in seen:
        raise ConfigError(f"{path.name}: include: {' -> '.join(p.name for p in seen + [path])} is a cycle")
    raw = _read_yaml_mapping(path)
    included = raw.pop("include", None)
    if included is None:
        return raw, [path]
    if not isinstance(included, str):
        raise ConfigError(f"{path.name}: include: expected a preset name or a YAML file, got {included!r}")
    beside = path.parent / included
    try:
        target = beside if beside.is_file() else resolve_config_path(included)
    except ConfigError as err:
        raise ConfigError(f"{path.name}: include: {err}") from None
    base, chain = _read_with_includes(target, seen + [path.resolve()])
    return _merged(_anchored(base, target.parent), raw), [path] + chain


def _anchored(raw: dict, folder: Path) -> dict:
    """An included file's mapping with the relative paths it writes made absolute against its own
    folder, so that it means the same wherever it is included from and wherever ptft is started
    (the including file's own paths are resolved against it by :func:`_normalized`)."""
    out = {**raw}

    def here(value: Any, only_existing: bool = False) -> Any:
        if not isinstance(value, str) or not value or Path(value).is_absolute():
            return value
        candidate = folder / value
        return str(candidate.resolve()) if candidate.exists() or not only_existing else value

    if isinstance(out.get("tasks"), list):
        out["tasks"] = [{**t, "name": _task_file(t["name"], folder)} if isinstance(t, dict) and isinstance(
            t.get("name"), str) else t for t in out["tasks"]]
    if "data_dir" in out:
        out["data_dir"] = here(out["data_dir"])
    ck = out.get("checkpoints")
    if isinstance(ck, dict):
        ck = out["checkpoints"] = {**ck}
        if isinstance(ck.get("local"), dict) and isinstance(ck["local"].get("paths"), list):
            ck["local"] = {**ck["local"], "paths": [here(p) for p in ck["local"]["paths"]]}
        if isinstance(ck.get("pretrain"), dict) and isinstance(ck["pretrain"].get("corpus"), list):
            corpus = [here(c, only_existing=True) for c in ck["pretrain"]["corpus"]]
            ck["pretrain"] = {**ck["pretrain"], "corpus": corpus}
    if isinstance(out.get("probes"), dict) and "text" in out["probes"]:
        out["probes"] = {**out["probes"], "text": here(out["probes"]["text"])}
    if isinstance(out.get("instruction_tuning"), dict) and "mixture" in out["instruction_tuning"]:
        it = out["instruction_tuning"]
        out["instruction_tuning"] = {**it, "mixture": here(it["mixture"], only_existing=True)}
    return out


def _merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, typing.List):
        return f"a list of {_plural(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):  # a section: say what it holds, not the class's name
        return "a mapping (" + ", ".join(f"{f.name}: ..." for f in dataclasses.fields(tp)) + ")"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _plural(tp: Any) -> str:
    plain = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}
    if tp in plain:
        return plain[tp]
    return f"items each {_type_name(tp)}"


def _build(tp: Any, value: Any, file: str, key: str) -> Any:
    where = f"{file}: {key or '(top level)'}"
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        hints = typing.get_type_hints(tp)
        known = {f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(f"{file}: unknown key {'.'.join(filter(None, [key, str(unknown[0])]))!r}; "
                              f"allowed here: {', '.join(sorted(known))}")
        fields = {k: _build(hints[k], v, file, f"{key}.{k}" if key else k) for k, v in value.items()}
        try:
            return tp(**fields)
        except ConfigError as err:  # a section that validates itself names its own keys
            raise ConfigError(f"{file}: {err}") from None
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _build(arg, value, file, key)
            except ConfigError:
                continue  # the message names the whole union, not the last alternative tried
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_build(item, v, file, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        # YAML reads 2e-5 (no dot) as a string; accept it as the number every user means
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"config schema type {tp!r} is not supported")
    raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")


def _local_folder(config_path: Path, folder: str) -> Path:
    """A checkpoint folder relative to the config file, wherever `ptft` is started from."""
    return (config_path.parent / folder) if not Path(folder).is_absolute() else Path(folder)


def _task_name(config_path: Path, name: str) -> str:
    """A task name, with a relative task file that exists beside the config made absolute."""
    return _task_file(name, config_path.parent)


def _task_file(name: str, folder: Path) -> str:
    prefix = LM_EVAL_PREFIX if name.startswith(LM_EVAL_PREFIX) else ""
    local = name[len(prefix):]
    if local.endswith((".yaml", ".yml")) and not Path(local).is_absolute() and (folder / local).exists():
        return prefix + str((folder / local).resolve())
    return name


def _normalized(config: StudyConfig, path: Path) -> StudyConfig:
    """A copy of the validated config with the files it names resolved against the config file's
    folder (an included file's were resolved against its own when it was read): local checkpoint
    folders, task files, ``data_dir``, corpus text files, a local instruction mixture and the
    probes' text."""
    ck = config.checkpoints
    if ck.source == "local":
        local = dataclasses.replace(ck.local, paths=[str(_local_folder(path, p).resolve()) for p in ck.local.paths])
        ck = dataclasses.replace(ck, local=local)
    beside = lambda name: str((path.parent / name).resolve()) if (  # noqa: E731
        not Path(name).is_absolute() and (path.parent / name).exists()) else name
    pretrain = dataclasses.replace(ck.pretrain, corpus=[beside(c) for c in ck.pretrain.corpus])
    ck = dataclasses.replace(ck, pretrain=pretrain)
    tasks = [dataclasses.replace(t, name=_task_name(path, t.name)) for t in config.tasks]
    probes = config.probes
    if probes.text is not None:
        probes = dataclasses.replace(probes, text=str(_local_folder(path, probes.text).resolve()))
    data_dir = str(_local_folder(path, config.data_dir).resolve()) if config.data_dir is not None else None
    it = config.instruction_tuning
    it = dataclasses.replace(it, mixture=beside(it.mixture))
    return dataclasses.replace(config, checkpoints=ck, tasks=tasks, probes=probes, data_dir=data_dir,
                               instruction_tuning=it)


def _check_semantics(config: StudyConfig, path: Path, file: str | None = None) -> None:
    """Refuse what the schema's types cannot: missing files, unknown tasks, values out of range.
    Reads ``config`` and changes nothing (see :func:`_normalized`). ``file`` names the config in
    messages (default: the file's name)."""
    file = file or path.name
    known = all_methods()  # checked first, as a type error would be
    for i, method in enumerate(config.evaluation.methods):
        if method not in known:
            raise ConfigError(f"{file}: evaluation.methods[{i}]: expected one of "
                              f"{', '.join(repr(m) for m in known)}, got {method!r}")
    ck = config.checkpoints
    if ck.source == "local":
        if not ck.local.paths:
            raise ConfigError(f"{file}: checkpoints.local.paths: give at least one checkpoint folder")
        for i, p in enumerate(ck.local.paths):
            if not _local_folder(path, p).exists():
                raise ConfigError(f"{file}: checkpoints.local.paths[{i}]: folder {p} does not exist")
        for name in ("labels", "steps"):
            given = getattr(ck.local, name)
            if given and len(given) != len(ck.local.paths):
                raise ConfigError(f"{file}: checkpoints.local.{name}: {len(given)} entries for {len(ck.local.paths)} paths")
        # deferred for start-up time: it imports torch, which validating any other config never needs
        from ptft.checkpoints.loading import check_checkpoint

        for i, p in enumerate(ck.local.paths):
            try:
                check_checkpoint(str(_local_folder(path, p).resolve()))
            except CheckpointError as err:
                raise ConfigError(f"{file}: checkpoints.local.paths[{i}]: {err}") from None
    if ck.source == "hub" and not ck.hub.repo:
        raise ConfigError(f"{file}: checkpoints.hub.repo: name the model repository, e.g. allenai/OLMo-1B-hf")
    if not config.tasks:
        raise ConfigError(f"{file}: tasks: list at least one task (see `ptft tasks`)")
    seen = set()
    labels: dict[str, int] = {}
    for i, t in enumerate(config.tasks):
        if not t.name:
            raise ConfigError(f"{file}: tasks[{i}].name: missing")
        if t.name in seen:
            raise ConfigError(f"{file}: tasks[{i}].name: {t.name!r} is listed twice")
        seen.add(t.name)
        name = _task_name(path, t.name)
        if name.startswith(LM_EVAL_PREFIX) and t.train:
            raise ConfigError(f"{file}: tasks[{i}].train: {name!r} is an lm-eval task, evaluation only; "
                              "set train: false")
        try:
            task = get_task(name)
        except (KeyError, FileNotFoundError) as err:
            raise ConfigError(f"{file}: tasks[{i}].name: {err.args[0]}") from None
        except ConfigError as err:
            raise ConfigError(f"{file}: tasks[{i}].name: {err}") from None
        _check_available(task.requires, f"{file}: tasks[{i}].name: {name}")
        label = task.name
        if label in labels:  # results name a task by its own name, so two must not share one
            raise ConfigError(f"{file}: tasks[{i}].name: {name} defines task {label!r}, as tasks[{labels[label]}] "
                              "does; give each task its own `name:`")
        labels[label] = i
        for key in ("n_train", "n_dev", "n_eval"):
            v = getattr(t, key)
            if v is not None and v < 1:
                raise ConfigError(f"{file}: tasks[{i}].{key}: must be at least 1 (or null for all), got {v}")
        if any(lr <= 0 for lr in t.lr):
            raise ConfigError(f"{file}: tasks[{i}].lr: learning rates must be positive, got {t.lr}")
    if ck.source == "pretrain":
        _check_pretrain(config, file)
    ft = config.finetune  # the recipe's own settings checked themselves when the section was built
    it = config.instruction_tuning
    if ft.packing and it.enabled and it.max_length and ft.batch_tokens < it.max_length:
        raise ConfigError(f"{file}: finetune.batch_tokens: {ft.batch_tokens} is below instruction_tuning.max_length "
                          f"({it.max_length}); a packed step holds rows of max_length tokens: raise batch_tokens, "
                          "lower max_length or set finetune.packing: false")
    if not ft.learning_rates or any(lr <= 0 for lr in ft.learning_rates):
        raise ConfigError(f"{file}: finetune.learning_rates: give one or more positive rates")
    if not ft.eval_at or any(not 0 < f <= 1 for f in ft.eval_at):
        raise ConfigError(f"{file}: finetune.eval_at: fractions of the training steps in (0, 1], got {ft.eval_at}")
    if ft.evaluate == "selected" and any(f < 1 for f in ft.eval_at):
        raise ConfigError(f"{file}: finetune.eval_at: points during training evaluate every learning rate's run, "
                          "which finetune.evaluate: selected leaves out; set finetune.evaluate: all, or eval_at: [1.0]")
    if not ft.seeds or len(set(ft.seeds)) != len(ft.seeds):
        raise ConfigError(f"{file}: finetune.seeds: give one or more distinct seeds, got {ft.seeds}")
    for key, seed in [("seed", config.seed), *((f"finetune.seeds[{i}]", s) for i, s in enumerate(ft.seeds))]:
        if not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"{file}: {key}: a seed must be between 0 and {MAX_SEED} (2**32 - 1), got {seed}")
    if not ft.methods or len(set(ft.methods)) != len(ft.methods):
        raise ConfigError(f"{file}: finetune.methods: give one or more distinct methods, got {ft.methods}")
    for i, method in enumerate(ft.methods):
        if method not in METHODS:
            raise ConfigError(f"{file}: finetune.methods[{i}]: expected one of "
                              f"{', '.join(repr(m) for m in METHODS)}, got {method!r}")
    ev = config.evaluation
    if ev.shots and max(ev.shots) > 0:
        for i, t in enumerate(config.tasks):
            if t.n_train is not None and t.n_train < max(ev.shots):
                raise ConfigError(
                    f"{file}: evaluation.shots: {max(ev.shots)} demonstrations, but tasks[{i}] ({t.name}) has "
                    f"n_train {t.n_train} and demonstrations come from the training split; raise "
                    f"tasks[{i}].n_train to at least {max(ev.shots)} or lower evaluation.shots")
    it = config.instruction_tuning
    if it.enabled:
        if not it.suite:
            raise ConfigError(f"{file}: instruction_tuning.suite: list the multiple-choice tasks to evaluate on")
        mixture = registered_mixture(it.mixture)
        if mixture is not None:
            _check_available(mixture.requires, f"{file}: instruction_tuning.mixture: {it.mixture}")
        for i, name in enumerate(it.suite):
            try:
                task = get_task(name)
            except KeyError as err:
                raise ConfigError(f"{file}: instruction_tuning.suite[{i}]: {err.args[0]}") from None
            _check_available(task.requires, f"{file}: instruction_tuning.suite[{i}]: {name}")
            kind = task.task_type
            if kind != "multiple_choice":
                raise ConfigError(f"{file}: instruction_tuning.suite[{i}]: {name!r} is a {kind} task; "
                                  "the suite takes multiple_choice tasks")
        if it.n_dev < 1 or it.epochs <= 0 or it.lr <= 0:
            raise ConfigError(f"{file}: instruction_tuning: n_dev, epochs and lr must be positive")
    if not ev.shots or any(k < 0 for k in ev.shots):
        raise ConfigError(f"{file}: evaluation.shots: give one or more non-negative counts")
    if not ev.formats or not ev.methods:
        raise ConfigError(f"{file}: evaluation.formats and evaluation.methods must not be empty")
    if config.lenses.intruder_k < 1:
        raise ConfigError(f"{file}: lenses.intruder_k: must be at least 1, got {config.lenses.intruder_k}")
    if not 0 < config.lenses.intruder_epsilon <= 1:
        raise ConfigError(f"{file}: lenses.intruder_epsilon: a cosine in (0, 1], got {config.lenses.intruder_epsilon}")
    for key in ("workers", "threads", "pretrain_threads"):
        if getattr(config.executor, key) < 1:
            raise ConfigError(f"{file}: executor.{key}: must be at least 1")
    _check_probes(config, path, file)
    _check_lines(config.lines, file)
    _check_grafting(config.grafting, file)
    _check_tracking(config.tracking, file)


MAX_SEED = 2**32 - 1  # numpy's and torch's generators take no other seeds


def _check_available(requires, where: str) -> None:
    """A task or mixture whose data the user must provide (BIG-bench) is refused before anything
    runs, in the one line its check gives."""
    if requires is None:
        return
    try:
        requires()
    except PtftError as err:
        raise ConfigError(f"{where}: {err}") from None


def method_settings(config: StudyConfig, method: str) -> dict:
    """A fine-tuning method's settings (``finetune.<method>``) without its learning rates: what
    makes its training differ from another method's; empty for a method without settings."""
    settings = config.finetune.settings_of(method)
    return {} if settings is None else {k: v for k, v in dataclasses.asdict(settings).items() if k != "learning_rates"}


def learning_rates(config: StudyConfig, task: TaskConfig, method: str) -> list[float]:
    """The learning rates a task is fine-tuned at with ``method``: the method's own
    (``finetune.<method>.learning_rates``) when it gives some, else the task's ``lr``, else
    ``finetune.learning_rates``."""
    settings = config.finetune.settings_of(method)
    return list((settings.learning_rates if settings else []) or task.lr or config.finetune.learning_rates)


def _check_probes(config: StudyConfig, path: Path, file: str) -> None:
    probes = config.probes
    if probes.sigma <= 0:
        raise ConfigError(f"{file}: probes.sigma: a relative noise scale, above 0 (0 adds no noise, so every "
                          f"checkpoint's sensitivity would read 0), got {probes.sigma:g}")
    for key, least in (("draws", 1), ("windows", 1), ("seq_len", 2), ("representation_tokens", 0)):
        if getattr(probes, key) < least:
            raise ConfigError(f"{file}: probes.{key}: must be at least {least}, got {getattr(probes, key)}")
    if probes.text is None:
        return
    if config.checkpoints.source == "pretrain":
        raise ConfigError(f"{file}: probes.text: a series pre-trained here is probed on its own held-out "
                          "documents, so this file would be ignored; remove probes.text (it is for local and Hub "
                          "series)")
    text_file = _local_folder(path, probes.text)
    if not text_file.is_file():
        raise ConfigError(f"{file}: probes.text: no text file {probes.text}")
    try:
        empty = not text_file.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError as err:
        raise ConfigError(f"{file}: probes.text: {probes.text} is not UTF-8 text ({err.reason} at byte {err.start})") \
            from None
    if empty:
        raise ConfigError(f"{file}: probes.text: {probes.text} holds no text; give a file of held-out paragraphs "
                          "(separated by blank lines) or remove probes.text to probe on the tasks' training prompts")


def _check_grafting(config: GraftingConfig, file: str) -> None:
    if config.enabled and not config.top_percent:
        raise ConfigError(f"{file}: grafting.top_percent: give one or more shares in percent, or set "
                          "grafting.enabled: false")
    bad = [p for p in config.top_percent if not 0 <= p <= 100]
    if bad:
        raise ConfigError(f"{file}: grafting.top_percent: shares of the change in percent, in [0, 100], got {bad[0]:g}")
    if len({graft_variant(p) for p in config.top_percent}) != len(config.top_percent):
        raise ConfigError(f"{file}: grafting.top_percent: a share is listed twice")


def _check_lines(lines: LinesConfig, file: str) -> None:
    """LiNeS keeps alpha + beta (l-1)/(L-1) of each block's change: a share in [0, 1] at every block."""
    if not 0 <= lines.alpha <= 1:
        raise ConfigError(f"{file}: lines.alpha: the share of its change the first block keeps, in [0, 1], "
                          f"got {lines.alpha:g}")
    if not 0 <= lines.beta <= 1 - lines.alpha:
        raise ConfigError(f"{file}: lines.beta: the share added by the last block, in [0, 1 - alpha] = "
                          f"[0, {1 - lines.alpha:g}] so that no block keeps more than its whole change, "
                          f"got {lines.beta:g}")


def _check_tracking(tracking: TrackingConfig, file: str) -> None:
    """Tracking whose package is missing is refused with the config, so `ptft plan` says so too."""
    import importlib.util

    if tracking.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(f"{file}: tracking.tensorboard: the tensorboard package is not installed "
                          "(pip install 'ptft[tracking]' or pip install tensorboard)")
    if tracking.wandb is not None and importlib.util.find_spec("wandb") is None:
        raise ConfigError(f"{file}: tracking.wandb: the wandb package is not installed (pip install wandb), "
                          "or remove tracking.wandb from the config")


def _check_pretrain(config: StudyConfig, file: str) -> None:
    """What the pre-training settings cannot check alone (they validate themselves): the model's
    context must hold the fine-tuning sequences."""
    key = "checkpoints.pretrain"
    m = config.checkpoints.pretrain.model
    for name, length in (("finetune.max_length", config.finetune.max_length),
                         ("instruction_tuning.max_length", config.instruction_tuning.max_length
                          if config.instruction_tuning.enabled else None)):
        if length is not None and length > m.max_seq_len:
            raise ConfigError(f"{file}: {key}.model.max_seq_len: {m.max_seq_len} is below {name} ({length}): "
                              "fine-tuning sequences and prompts would be cut to the model's context; raise "
                              f"max_seq_len to at least {length} or lower {name}")
