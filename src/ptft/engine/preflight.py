"""Checks a run makes before its first cell, and before it creates the run directory.

`load_config` has refused everything a config alone shows. What is left needs the data or the
checkpoints: demonstrations a training split is too small for, a fine-tuning length beyond a
checkpoint's context, a checkpoint that is not a causal LM, a run directory that cannot be
written. Each is refused here as a :class:`ConfigError` naming the key and what to do, instead of
as a failed cell minutes (or hours) later. Sizes asked for but not available (``n_eval: 1000000``
on a set of 5,000) are not errors: they are returned as notes the driver prints before any cell.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ptft.config import StudyConfig
from ptft.engine.work import study_tasks
from ptft.errors import CheckpointError, ConfigError
from ptft.training.methods import get_method

CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "n_ctx")


def check_study(config: StudyConfig, run_dir: Path, cells: list) -> list[str]:
    """Raise ConfigError for what would fail later; return notes on sizes capped by the data."""
    check_run_dir(run_dir)
    tasks = study_tasks(config)
    _check_demonstrations(config, cells, tasks)
    _check_checkpoints(config)
    check_methods(config)
    return size_notes(config, tasks)


def check_methods(config: StudyConfig) -> None:
    """Each fine-tuning method's settings against the series' architecture (a pre-trained series'
    from its settings, a local or Hub one's from its first checkpoint's config.json): what would
    otherwise fail every cell of the method, after the pre-training."""
    built = []

    def architecture():
        if not built:
            built.append(_architecture(config))
        return built[0]

    for method in config.finetune.methods:
        get_method(method).check_model(config.finetune.settings_of(method), architecture)


def _architecture(config: StudyConfig):
    """The series' model, built on the meta device (no weights), or None when its config cannot be had."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    ck = config.checkpoints
    if ck.source == "pretrain":
        # deferred like torch above: only a method that checks the series' modules builds the model
        from ptft.training.pretrain import llama_config

        model_config = llama_config(ck.pretrain.model, ck.pretrain.model.vocab_size)
    else:
        target, revision = (ck.local.paths[0], None) if ck.source == "local" else \
            (ck.hub.repo, (ck.hub.revisions or ["main"])[0])
        try:
            model_config = AutoConfig.from_pretrained(target, revision=revision)
        except (OSError, ValueError):
            return None
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(model_config)


def check_run_dir(run_dir: Path) -> None:
    """The run directory is a folder, or can be made one, and can be written."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} is a file; --out (or output_dir) must name a folder")
    existing = run_dir
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"run directory {run_dir}: {existing} is a file, so no folder can be made under it; "
                          "choose another --out (or output_dir)")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "the run directory" if existing == run_dir else f"{existing}, where it would be made,"
        raise ConfigError(f"run directory {run_dir}: {what} is not writable (read-only or no permission); "
                          "choose another --out (or output_dir) or fix its permissions")


def _check_demonstrations(config: StudyConfig, cells: list, tasks: dict) -> None:
    needed: dict[str, int] = {}
    for cell in cells:
        for unit in cell.units:
            needed[unit.eval_task] = max(needed.get(unit.eval_task, 0), unit.shots)
    for name, shots in needed.items():
        task, data = tasks[name]
        available = len(data.train)
        if shots > available:
            raise ConfigError(
                f"evaluation.shots: {shots} demonstrations, but the training split of task {task.name} has "
                f"{available} example(s) and demonstrations come from it; lower evaluation.shots to at most "
                f"{available}" + (" or raise the task's n_train" if any(t.name == name for t in config.tasks) else ""))


def _check_checkpoints(config: StudyConfig) -> None:
    """Local folders (each) and a Hub series (its first revision: one architecture per series) must
    be causal LMs whose context holds the fine-tuning length."""
    from ptft.checkpoints.loading import check_checkpoint  # deferred: torch, for start-up time

    ck = config.checkpoints
    if ck.source == "local":
        targets = [(p, None) for p in ck.local.paths]
    elif ck.source == "hub" and (ck.hub.revisions or ck.hub.revision_names):
        targets = [(ck.hub.repo, (ck.hub.revisions or ["main"])[0])]
    else:  # pre-trained here (checked with the config) or a series listed from the Hub at run time
        return
    lengths = [("finetune.max_length", config.finetune.max_length)]
    if config.instruction_tuning.enabled and config.instruction_tuning.max_length:
        lengths.append(("instruction_tuning.max_length", config.instruction_tuning.max_length))
    for path, revision in targets:
        where = f"{path}@{revision}" if revision else path
        try:
            check_checkpoint(path, revision)
        except CheckpointError as err:
            raise ConfigError(f"checkpoints: {err}") from None
        context = _context_length(path) if revision is None else None
        for key, length in lengths:
            if context is not None and length > context:
                raise ConfigError(f"{key}: {length} tokens is beyond the context of checkpoint {where} "
                                  f"({context} positions); lower {key} to at most {context}")


def _context_length(folder: str) -> int | None:
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return next((int(config[k]) for k in CONTEXT_KEYS if isinstance(config.get(k), int)), None)


def size_notes(config: StudyConfig, tasks: dict) -> list[str]:
    """One note per split smaller than the size the config asks for (it is used whole)."""
    notes = []
    for i, tc in enumerate(config.tasks):
        task, data = tasks[tc.name]
        splits = [("n_train", "train", tc.n_train, len(data.train)), ("n_dev", "dev", tc.n_dev, len(data.dev))]
        splits += [("n_eval", f"eval set {name}", tc.n_eval, len(rows)) for name, rows in data.eval.items()]
        for key, what, asked, have in splits:
            if asked is not None and asked > have:
                notes.append(f"tasks[{i}] ({task.name}): {key} is {asked} but its {what} has {have} "
                             f"example(s); all {have} are used")
    return notes
