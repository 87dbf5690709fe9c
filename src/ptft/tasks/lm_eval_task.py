"""lm-evaluation-harness tasks as ptft eval sets: ``lm-eval:NAME`` or ``lm-eval:path/to/task.yaml``.

lm-eval's own ``TaskManager`` loads the task (its catalogue, or the YAML's folder as include
path) with its dataset, ``process_docs``, prompt (``doc_to_text``), choices (``doc_to_choice``)
and target (``doc_to_target``). ptft then scores it with its own engine: its demonstrations
(drawn with the study seed from the task's few-shot documents, lm-eval's ``fewshot_docs``), its
``loglik`` method (``acc`` and ``acc_norm`` as lm-eval computes them), bootstrap CIs and store.

What ptft takes over, and so refuses when the task says otherwise:

- ``multiple_choice`` output only (generation and rolling log-likelihood tasks have metrics of
  their own that ptft does not compute);
- a single input per document (no ``multiple_input`` tasks such as Winogrande);
- ``target_delimiter: " "`` and ``fewshot_delimiter: "\\n\\n"``, ptft's whitespace rule and demo
  separator, and no ``description`` preamble (ptft's demos have no place for one).

The prompt is the task's text as given (one field ``text``; all three ptft formats render it
unchanged, so evaluate these tasks in one format). Evaluation only: the task has no split ptft
could fine-tune on (``train: false`` in a study).
"""

from __future__ import annotations

import functools
from pathlib import Path

from ptft.errors import ConfigError
from ptft.tasks.base import EvalSet, Example, LoadRequest, PromptFormat, Task, TaskData, TaskDataError
from ptft.tasks.splits import subsample

PREFIX = "lm-eval:"
FIELD = "text"
TARGET_DELIMITER = " "
FEWSHOT_DELIMITER = "\n\n"


def is_lm_eval_name(name: str) -> bool:
    return name.startswith(PREFIX)


@functools.lru_cache(maxsize=None)
def load_lm_eval_task(name: str) -> Task:
    """The ptft task for ``lm-eval:NAME`` / ``lm-eval:PATH.yaml`` (loads lm-eval's task now, its
    documents when the task is loaded)."""
    spec = name[len(PREFIX):]
    if not spec:
        raise ConfigError(f"task {name!r}: give an lm-eval task name or task YAML after {PREFIX!r}")
    lm_task, task_name = _lm_eval_task(spec)
    _check_supported(name, lm_task)
    template = "{" + FIELD + "}"
    formats = {f: PromptFormat(f, template) for f in ("default", "io", "instruct")}
    eval_set = task_name
    return Task(name=name, task_type="multiple_choice", formats=formats, eval_sets=(EvalSet(eval_set, "in"),),
                loader=_loader(name, lm_task, eval_set), max_new_tokens=0,
                description=f"lm-evaluation-harness task {task_name} ({lm_task.config.output_type}), "
                            "scored by ptft")


def _lm_eval_task(spec: str):
    try:
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise ConfigError("lm-eval tasks need the lm-eval package (pip install lm-eval)") from None
    if spec.endswith((".yaml", ".yml")):
        import yaml

        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"lm-eval task file {spec} not found")
        try:
            task_name = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("task")
        except yaml.YAMLError as err:
            raise ConfigError(f"lm-eval task file {spec}: not valid YAML ({err})") from None
        if not isinstance(task_name, str):
            raise ConfigError(f"lm-eval task file {spec}: no 'task:' name")
        manager = TaskManager(include_path=str(path.resolve().parent), include_defaults=False)
    else:
        task_name, manager = spec, TaskManager()
    if task_name not in manager.all_tasks:
        raise ConfigError(f"lm-eval knows no task {task_name!r} (`lm-eval ls tasks` lists them)")
    declared = _declared_output_type(manager, task_name)
    if declared is not None and declared != "multiple_choice":
        # refused from its YAML, before lm-eval would download the task's data
        raise ConfigError(f"task {PREFIX + spec!r} cannot be scored by ptft: output_type is {declared!r} "
                          "(ptft scores multiple_choice tasks)")
    try:
        loaded = manager.load(task_name)
    except Exception as err:  # lm-eval raises many kinds (dataset download, config errors)
        raise ConfigError(f"lm-eval task {task_name!r} could not be loaded: {err}") from None
    tasks = loaded["tasks"]
    if loaded["groups"] or len(tasks) != 1:
        raise ConfigError(f"lm-eval name {task_name!r} is a group or tag of {len(tasks)} tasks; give one task")
    return next(iter(tasks.values())), task_name


def _declared_output_type(manager, task_name: str) -> str | None:
    """The output type a task's YAML declares (lm-eval's default, generate_until, when it names
    none), read without building the task; None for a group, a Python task or an lm-eval whose
    internals differ (the built task is checked then)."""
    try:
        entry = manager._entry(task_name)
        cfg = manager._factory._load_full_config(entry)
    except Exception:  # noqa: BLE001 - private API of lm-eval 0.4: fall back to the built task's check
        return None
    if not isinstance(cfg, dict) or "class" in cfg or "task" not in cfg or cfg.get("group") or cfg.get("task_list"):
        return None
    return cfg.get("output_type", "generate_until")


def _check_supported(name: str, lm_task) -> None:
    cfg = lm_task.config
    problems = []
    if cfg.output_type != "multiple_choice":
        problems.append(f"output_type is {cfg.output_type!r} (ptft scores multiple_choice tasks)")
    if getattr(lm_task, "multiple_input", False):
        problems.append("it has several inputs per document (multiple_input)")
    if cfg.target_delimiter != TARGET_DELIMITER:
        problems.append(f"target_delimiter is {cfg.target_delimiter!r} (ptft uses ' ')")
    if cfg.fewshot_delimiter != FEWSHOT_DELIMITER:
        problems.append(f"fewshot_delimiter is {cfg.fewshot_delimiter!r} (ptft uses '\\n\\n')")
    if cfg.description:
        problems.append("it has a description preamble")
    if problems:
        raise ConfigError(f"task {name!r} cannot be scored by ptft: " + "; ".join(problems))


def _examples(name: str, lm_task, docs, split: str) -> list[Example]:
    out = []
    for i, doc in enumerate(docs):
        text = lm_task.doc_to_text(doc)
        choices = lm_task.doc_to_choice(doc)
        target = lm_task.doc_to_target(doc)
        if not isinstance(text, str):
            raise TaskDataError(f"{name}, split {split!r}, document {i}: doc_to_text gave {text!r}, not text")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise TaskDataError(f"{name}, split {split!r}, document {i}: doc_to_choice gave {choices!r}")
        if isinstance(target, int) and not isinstance(target, bool):
            if not 0 <= target < len(choices):
                raise TaskDataError(f"{name}, split {split!r}, document {i}: target index {target} outside "
                                    f"0..{len(choices) - 1}")
            gold = choices[target]
        elif isinstance(target, str) and target in choices:
            gold = target
        else:
            raise TaskDataError(f"{name}, split {split!r}, document {i}: doc_to_target gave {target!r}, "
                                "neither a choice index nor a choice")
        out.append(Example(f"{name}:{split}:{i}", {FIELD: text}, gold, tuple(choices)))
    return out


def _loader(name: str, lm_task, eval_set: str):
    def load(request: LoadRequest) -> TaskData:
        split = lm_task.config.test_split or lm_task.config.validation_split
        scored = _examples(name, lm_task, lm_task.eval_docs, split)
        fewshot = lm_task.fewshot_docs()
        # where lm-eval's fewshot_docs() takes them from
        demo_split = (getattr(getattr(lm_task, "fewshot_cfg", None), "split", None) or lm_task.config.training_split
                      or lm_task.config.validation_split or split)
        demos = _examples(name, lm_task, fewshot, demo_split) if fewshot is not None else []
        # a task whose few-shot documents are its scored ones (no other split) gives no demos
        scored_ids = {ex.uid for ex in scored}
        demos = [d for d in demos if d.uid not in scored_ids]
        if not demos:
            raise TaskDataError(f"{name}: lm-eval gives no few-shot documents outside the scored split "
                                f"{split!r}; ptft needs some for its demonstrations")
        # the few-shot documents serve as ptft's train split (demonstrations) and, since the task
        # is never fine-tuned on, as its dev split too
        return TaskData(train=subsample(demos, request.n_train, request.seed, "train"),
                        dev=subsample(demos, request.n_dev, request.seed, "dev"),
                        eval={eval_set: subsample(scored, request.n_eval, request.seed, eval_set)},
                        notes={"lm_eval": {"scored_split": split, "demo_split": demo_split}})

    return load
